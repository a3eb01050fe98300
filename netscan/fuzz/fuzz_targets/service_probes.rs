//! Fuzz target: The whole probe dispatch: every matcher after every probe, on a port taken from the input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    use picket_netscan::service::probes::{identify, wants_tls, Probe};
    let port = match data {
        [a, b, ..] => u16::from_be_bytes([*a, *b]),
        _ => 0,
    };
    let body = data.get(2..).unwrap_or_default();
    for p in [
        Probe::Banner,
        Probe::Http,
        Probe::Redis,
        Probe::Memcached,
        Probe::DnsTcp,
        Probe::Postgres,
        Probe::Rdp,
        Probe::Smb,
        Probe::Ldap,
    ] {
        let _ = identify(p, port, body);
        let _ = p.complete(body);
    }
    let _ = wants_tls(body);
});
