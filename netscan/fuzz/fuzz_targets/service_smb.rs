//! Fuzz target: SMB negotiate responses and NetBIOS session replies.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = picket_netscan::service::smb::identify(data);
    let _ = picket_netscan::service::smb::message_complete(data);
});
