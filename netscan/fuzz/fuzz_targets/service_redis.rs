//! Fuzz target: Redis RESP replies.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = picket_netscan::service::redis::identify(data);
    let _ = picket_netscan::service::redis::reply_complete(data);
});
