//! Fuzz target: LDAP messages (root DSE answers).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = picket_netscan::service::ldap::identify(data);
    let _ = picket_netscan::service::ldap::message_complete(data);
});
