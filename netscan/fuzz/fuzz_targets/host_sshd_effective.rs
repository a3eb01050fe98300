//! Fuzz target: sshd -T output (netscan::host::parse).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = picket_netscan::host::parse::sshd_effective(data);
});
