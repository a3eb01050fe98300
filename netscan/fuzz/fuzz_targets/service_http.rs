//! Fuzz target: HTTP response heads and the Server header.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = picket_netscan::service::http::identify(data);
    let _ = picket_netscan::service::http::response_complete(data);
    let _ = picket_netscan::service::http::says_tls_required(data);
});
