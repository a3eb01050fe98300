//! Fuzz target: rpm -qa --qf output (netscan::host::parse).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = picket_netscan::host::parse::rpm_packages(data);
});
