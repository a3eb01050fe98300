//! Response heads, body framing and chunked decoding on arbitrary bytes: no panic, and the
//! decoder never reports consuming more than it was given.
#![no_main]

use libfuzzer_sys::fuzz_target;
use picket_webscan::http::wire;

fuzz_target!(|data: &[u8]| {
    if let Ok(head) = wire::parse_head(data) {
        assert!(head.len <= data.len());
        let _ = wire::framing("GET", &head);
        let rest = &data[head.len..];
        let mut st = wire::Chunked::default();
        let mut out = Vec::new();
        if wire::decode_chunks(rest, &mut st, &mut out).is_ok() {
            assert!(st.pos <= rest.len());
            assert!(out.len() <= rest.len());
        }
    }
    let mut st = wire::Chunked::default();
    let mut out = Vec::new();
    let _ = wire::decode_chunks(data, &mut st, &mut out);
});
