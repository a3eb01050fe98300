//! Fuzz target: target and port specifications as a user (or an `@file`) may write them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = picket_netscan::targets::parse_target(text);
    let _ = picket_netscan::targets::parse_target_file_text(text, Path::new("fuzz.txt"));
    if let Ok(spec) = picket_netscan::targets::parse_target(text) {
        // Every parsed spec has a size; computing it must not overflow.
        let _ = spec.address_count();
    }
    if let Ok(ports) = picket_netscan::ports::parse_port_spec(text) {
        assert!(ports.windows(2).all(|w| w[0] < w[1]) && !ports.contains(&0));
    }
});
