//! Fuzz target: DNS answers (UDP and TCP framing).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = picket_netscan::service::dns::identify(data, "domain", None);
    let _ = picket_netscan::service::dns::unframe_tcp(data)
        .map(picket_netscan::service::dns::parse_response);
});
