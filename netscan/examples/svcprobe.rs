//! Service detection (and optionally a UDP scan) of given ports, for trying detection by hand
//! against the test network: `svcprobe HOST PORT,PORT,... [udp:PORT,PORT,...]`.
//!
//! Why: the scan pipeline needs discovery and a port scan first; this runs detection alone so
//! its timing can be compared with `nmap -sV -p` on exactly the same ports.
#![forbid(unsafe_code)]

use picket_netscan::scan::NoProgress;
use picket_netscan::service::detect_many;
use picket_netscan::timing::RttEstimator;
use picket_netscan::udp::{udp_scan, UdpConfig};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn ports(list: &str) -> Vec<u16> {
    list.split(',')
        .filter_map(|p| p.trim().parse().ok())
        .collect()
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(host), Some(tcp)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: svcprobe HOST PORT,PORT,... [udp:PORT,...]");
        std::process::exit(2);
    };
    let Ok(ip) = host.parse::<IpAddr>() else {
        eprintln!("svcprobe: {host:?} is not an IP address");
        std::process::exit(2);
    };
    // A typical LAN round trip, as the port scan would have measured it.
    let rtt = RttEstimator::with_sample(Duration::from_micros(200));
    let jobs = ports(tcp)
        .into_iter()
        .map(|p| (SocketAddr::new(ip, p), rtt))
        .collect();
    let started = Instant::now();
    let found = detect_many(jobs, &HashMap::new(), 64, Arc::new(NoProgress)).await;
    let tcp_time = started.elapsed();
    for (addr, (svc, tls)) in &found {
        println!(
            "{}/tcp {} product={:?} version={:?} extra={:?} tls={} cpe={:?}",
            addr.port(),
            svc.name,
            svc.product,
            svc.version,
            svc.extra,
            tls.as_ref()
                .map(|t| t.versions.join(" "))
                .unwrap_or_default(),
            svc.cpe
        );
    }
    println!("tcp detection: {tcp_time:?}");
    if let Some(udp) = args.get(3).and_then(|a| a.strip_prefix("udp:")) {
        let started = Instant::now();
        let cfg = UdpConfig {
            retries: 3,
            max_rate: None,
        };
        match udp_scan(&[(ip, rtt)], &ports(udp), &cfg, Arc::new(NoProgress)).await {
            Ok(res) => {
                for (_, results) in res {
                    for r in results {
                        let svc = r.service.as_ref();
                        println!(
                            "{}/udp {} {} {:?} {:?} {:?}",
                            r.port,
                            r.state,
                            r.reason,
                            svc.map(|s| s.name.as_str()),
                            svc.and_then(|s| s.product.as_deref()),
                            svc.and_then(|s| s.version.as_deref())
                        );
                    }
                }
            }
            Err(e) => eprintln!("svcprobe: UDP scan failed: {e}"),
        }
        println!("udp scan: {:?}", started.elapsed());
    }
}
