//! Developer tool: SYN-scan one host's ports and print what opened, for engine tuning.
#![allow(clippy::unwrap_used, clippy::expect_used)] // developer tool
//! Usage: synprobe ADDR FIRST LAST [RATE]
use picket_netscan::scan::{HostTarget, NoProgress, PortScanConfig};
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(addr), Some(first), Some(last)) = (args.get(1), args.get(2), args.get(3)) else {
        eprintln!("usage: synprobe ADDR FIRST LAST [RATE]");
        std::process::exit(2);
    };
    let addrs: Vec<std::net::IpAddr> = addr.split(',').filter_map(|a| a.parse().ok()).collect();
    let ports: Vec<u16> = (first.parse().unwrap_or(1)..=last.parse().unwrap_or(1024)).collect();
    let rate = args.get(4).and_then(|r| r.parse().ok());
    let hosts: Vec<HostTarget> = addrs
        .iter()
        .map(|a| HostTarget {
            addr: *a,
            rtt: Default::default(),
        })
        .collect();
    let cfg = PortScanConfig {
        max_rate: rate,
        retries: 3,
        keep_closed: false,
    };
    let t = std::time::Instant::now();
    match picket_netscan::syn::syn_scan(&hosts, &ports, &cfg, &NoProgress) {
        Ok((res, stats)) => {
            for (h, r) in hosts.iter().zip(res) {
                println!(
                    "{} open={:?} closed={} filtered={} srtt={:?} rto={:?}",
                    h.addr,
                    r.open,
                    r.closed_count,
                    r.filtered.len(),
                    r.rtt.srtt(),
                    r.rtt.rto()
                );
            }
            println!("{:?} {:?}", t.elapsed(), stats);
        }
        Err(e) => eprintln!("error: {e}"),
    }
}
