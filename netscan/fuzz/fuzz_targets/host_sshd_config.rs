//! Fuzz target: sshd configuration files as grep -rHZa prints them (Include evaluation) (netscan::host::parse).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = picket_netscan::host::parse::sshd_config_files(data);
});
