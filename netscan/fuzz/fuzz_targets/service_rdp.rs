//! Fuzz target: RDP X.224 Connection Confirm.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = picket_netscan::service::rdp::identify(data);
    let _ = picket_netscan::service::rdp::tpkt_complete(data);
});
