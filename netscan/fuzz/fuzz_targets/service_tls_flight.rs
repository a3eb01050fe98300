//! Fuzz target: TLS server flights (ServerHello, Certificate, alerts) from the hand-built hello.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = picket_netscan::service::tls::parse_server_flight(data);
});
