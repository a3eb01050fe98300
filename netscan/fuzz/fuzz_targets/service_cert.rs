//! Fuzz target: X.509 leaf certificates as servers send them.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = picket_netscan::service::cert::tls_info(data);
});
