//! Raw-socket reply parsing (netscan/src/packet.rs): IPv4+TCP and bare TCP segments, and the
//! cookie check every parsed reply goes through. Must never panic, whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use picket_netscan::packet::{parse_ipv4_tcp, parse_tcp, Cookie};
use std::net::{IpAddr, Ipv4Addr};

fuzz_target!(|data: &[u8]| {
    let cookie = Cookie::new(1, 2);
    if let Ok(p) = parse_ipv4_tcp(data) {
        let _ = cookie.validates(IpAddr::V4(p.src), &p.tcp);
        let _ = p.tcp.options.order_str();
    }
    if let Ok(seg) = parse_tcp(data) {
        let _ = cookie.validates(IpAddr::V4(Ipv4Addr::LOCALHOST), &seg);
    }
});
