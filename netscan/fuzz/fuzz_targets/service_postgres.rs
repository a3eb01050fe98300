//! Fuzz target: PostgreSQL backend messages.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = picket_netscan::service::postgres::identify(data);
    let _ = picket_netscan::service::postgres::message_complete(data);
});
