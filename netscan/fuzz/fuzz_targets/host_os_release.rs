//! Fuzz target: os-release files (netscan::host::parse).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = picket_netscan::host::parse::os_release(data);
});
