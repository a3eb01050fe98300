//! Fuzz target: VNC and telnet greetings.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = picket_netscan::service::banner::identify_vnc(data);
    let _ = picket_netscan::service::banner::identify_telnet(data);
});
