//! Fuzz target: The BER reader under SNMP and LDAP.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = picket_netscan::service::ber::read_tlv(data);
    let _ = picket_netscan::service::ber::tlv_total_len(data);
    let _ = picket_netscan::service::ber::children(data).count();
    let _ = picket_netscan::service::ber::oid_to_string(data);
});
