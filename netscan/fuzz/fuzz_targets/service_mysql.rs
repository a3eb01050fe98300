//! Fuzz target: MySQL/MariaDB greeting and error packets.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = picket_netscan::service::mysql::identify(data);
    let _ = picket_netscan::service::mysql::packet_complete(data);
});
