//! Fuzz target: UDP answer identification, on a port taken from the input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let port = match data {
        [a, b, ..] => u16::from_be_bytes([*a, *b]),
        _ => 0,
    };
    let _ = picket_netscan::udp::identify_udp_answer(port, data.get(2..).unwrap_or_default());
});
