//! Fuzz target: ss -Hltnu[p] and netstat -ltnu output (netscan::host::parse).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = picket_netscan::host::parse::ss_listening(data);
    let _ = picket_netscan::host::parse::netstat_listening(data);
});
