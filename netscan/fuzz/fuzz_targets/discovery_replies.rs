//! Fuzz target: host-discovery reply parsers (ARP, neighbour advertisement, ICMP, TCP).
#![no_main]

use libfuzzer_sys::fuzz_target;
use picket_netscan::discovery::{self, ProbeKeys};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fuzz_target!(|data: &[u8]| {
    let keys = ProbeKeys::new(1, 2, 0x4242, 45_000);
    let _ = discovery::parse_arp_reply(data, Ipv4Addr::new(198, 18, 200, 2));
    let _ = discovery::parse_neighbor_advert(data);
    let _ = discovery::parse_icmp4(data, &keys);
    let _ = discovery::parse_tcp4(data, &keys);
    let from = IpAddr::V6(Ipv6Addr::LOCALHOST);
    let _ = discovery::parse_icmp_message(true, from, data, &keys);
    let _ = discovery::parse_icmp_message(false, from, data, &keys);
    let _ = discovery::parse_tcp_segment(from, data, &keys);
});
