//! Fuzz target: the one-line outputs of the host scan (stat, find -print0, apt-config,
//! systemctl) and the ssh:// target parser (netscan::host).
#![no_main]

use libfuzzer_sys::fuzz_target;
use picket_netscan::host::parse;

fuzz_target!(|data: &[u8]| {
    let _ = parse::stat_line(data);
    let _ = parse::nul_paths(data, 20);
    let _ = parse::apt_unattended_upgrade(data);
    let _ = parse::systemctl_any_enabled(data);
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = picket_netscan::host::SshTarget::parse(s);
    }
});
