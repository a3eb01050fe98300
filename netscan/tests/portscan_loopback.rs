//! Port scanners against listeners this test opens on 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation is the test failing
//!
//! The SYN scanner needs CAP_NET_RAW: the test fails without it unless PICKET_SKIP_NETNS=1 says
//! the privileged tests are meant to be skipped on this machine.

use picket_netscan::scan::{HostTarget, NoProgress, PortScanConfig};
use picket_netscan::{connect, syn};
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::sync::Arc;

fn listeners(n: usize) -> (Vec<TcpListener>, Vec<u16>) {
    let mut ls = Vec::new();
    let mut ports = Vec::new();
    for _ in 0..n {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind loopback listener");
        ports.push(l.local_addr().expect("local addr").port());
        ls.push(l);
    }
    ports.sort_unstable();
    (ls, ports)
}

/// The listeners' ports plus closed neighbours around each of them.
fn scan_ports(open: &[u16]) -> Vec<u16> {
    let mut v: Vec<u16> = open
        .iter()
        .flat_map(|&p| p.saturating_sub(50)..=p.saturating_add(50))
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Ground truth from the kernel: every TCP port with a listener reachable on 127.0.0.1
/// (bound to 127.0.0.1 or to the wildcard), from /proc/net/tcp and tcp6. Other tests and
/// processes may listen next to our ports; the scanners must report those too.
fn listening_on_loopback() -> std::collections::BTreeSet<u16> {
    let mut set = std::collections::BTreeSet::new();
    for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() < 4 || cols[3] != "0A" {
                continue;
            }
            let Some((addr, port)) = cols[1].split_once(':') else {
                continue;
            };
            let reachable = matches!(
                addr,
                "0100007F" | "00000000" | "00000000000000000000000000000000"
            );
            if let (true, Ok(p)) = (reachable, u16::from_str_radix(port, 16)) {
                set.insert(p);
            }
        }
    }
    set
}

fn expected_open(ports: &[u16]) -> Vec<u16> {
    let listening = listening_on_loopback();
    ports
        .iter()
        .copied()
        .filter(|p| listening.contains(p))
        .collect()
}

/// The tests of this file open listeners next to each other's ports; run them one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn skip_privileged() -> bool {
    std::env::var("PICKET_SKIP_NETNS").as_deref() == Ok("1")
}

fn target() -> Vec<HostTarget> {
    vec![HostTarget {
        addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
        rtt: Default::default(),
    }]
}

#[test]
fn syn_scan_finds_exactly_the_open_loopback_ports() {
    if !syn::raw_sockets_available() {
        assert!(
            skip_privileged(),
            "SYN scan test needs CAP_NET_RAW (run as root) or PICKET_SKIP_NETNS=1"
        );
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (_ls, open) = listeners(5);
    let ports = scan_ports(&open);
    let cfg = PortScanConfig {
        max_rate: None,
        retries: 2,
        keep_closed: true,
    };
    let (res, stats) = syn::syn_scan(&target(), &ports, &cfg, &NoProgress).expect("syn scan runs");
    let mut found = res[0].open.clone();
    found.sort_unstable();
    assert_eq!(found, expected_open(&ports), "open ports");
    assert!(open.iter().all(|p| found.contains(p)));
    assert!(
        res[0].filtered.is_empty(),
        "loopback never filters: {:?}",
        res[0].filtered
    );
    assert_eq!(res[0].closed_count as usize + found.len(), ports.len());
    assert_eq!(res[0].closed.len(), res[0].closed_count as usize);
    assert!(stats.probes_sent >= ports.len() as u64);
    let fp = res[0].fingerprint.clone().expect("SYN-ACK fingerprint");
    assert_eq!(fp.ttl, 64);
    assert_eq!(fp.options, "MSTNW");
}

#[test]
fn syn_scan_honours_rate_cap() {
    if !syn::raw_sockets_available() {
        assert!(
            skip_privileged(),
            "SYN scan test needs CAP_NET_RAW or PICKET_SKIP_NETNS=1"
        );
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (_ls, open) = listeners(1);
    let ports = scan_ports(&open);
    let cfg = PortScanConfig {
        max_rate: Some(1000),
        retries: 1,
        keep_closed: false,
    };
    let t = std::time::Instant::now();
    let (res, stats) = syn::syn_scan(&target(), &ports, &cfg, &NoProgress).expect("syn scan runs");
    assert!(res[0].open.contains(&open[0]));
    // At 1000 probes/s (bursts of rate/100 allowed), n probes take at least (n - 10) ms.
    let min = std::time::Duration::from_millis(stats.probes_sent.saturating_sub(10));
    assert!(
        t.elapsed() >= min,
        "sent {} probes in {:?}",
        stats.probes_sent,
        t.elapsed()
    );
}

#[test]
fn connect_scan_finds_exactly_the_open_loopback_ports() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (_ls, open) = listeners(5);
    let ports = scan_ports(&open);
    let cfg = PortScanConfig {
        max_rate: None,
        retries: 1,
        keep_closed: false,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let (res, _) = rt
        .block_on(connect::connect_scan(
            &target(),
            &ports,
            &cfg,
            Arc::new(NoProgress),
        ))
        .expect("connect scan runs");
    assert_eq!(res[0].open, expected_open(&ports));
    assert!(open.iter().all(|p| res[0].open.contains(p)));
    assert!(res[0].filtered.is_empty());
    assert_eq!(
        res[0].closed_count as usize,
        ports.len() - res[0].open.len()
    );
}
