//! Fuzz target: FTP greetings.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = picket_netscan::service::ftp::identify(data, true);
    let _ = picket_netscan::service::ftp::identify(data, false);
});
