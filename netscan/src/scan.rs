//! The policy layer: runs discovery, port scanning, UDP probing, service detection and reverse
//! DNS in order and assembles the report.
//!
//! Round-trip times measured in one phase feed the timeouts of the next: discovery's replies seed
//! each host's estimator, the port scan refines it, and service detection derives its banner
//! timeouts from it.

use crate::error::{NetscanError, Result};
use crate::timing::RttEstimator;
use crate::{connect, discovery, osguess, ports, rdns, service, syn, targets, udp};
use picket_model::{
    HostStatus, NetHost, PortResult, PortState, PortSummary, Protocol, ScanStats, Service, TlsInfo,
};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

/// Everything `picket scan net` can be asked.
#[derive(Debug, Clone)]
pub struct NetScanConfig {
    /// Targets as the user typed them (addresses, CIDRs, ranges, hostnames, `@file`).
    pub targets: Vec<String>,
    pub exclude: Vec<String>,
    /// TCP port spec (`top1000` by default).
    pub tcp_ports: String,
    /// UDP port spec (`none` by default).
    pub udp_ports: String,
    /// Global cap on probes per second, over all hosts.
    pub max_rate: Option<u32>,
    /// Skip discovery and treat every target as up.
    pub no_ping: bool,
    /// Skip service detection.
    pub no_service: bool,
    /// Keep closed and filtered ports in the report.
    pub all_ports: bool,
    /// Keep down hosts in the report.
    pub all_hosts: bool,
    /// Skip reverse DNS.
    pub no_rdns: bool,
    /// Force the unprivileged connect scan even when raw sockets are available.
    pub force_connect: bool,
    /// How many times an unanswered probe is sent again.
    pub retries: u8,
    /// Concurrent service-detection connections.
    pub service_concurrency: usize,
}

impl Default for NetScanConfig {
    fn default() -> Self {
        Self {
            targets: Vec::new(),
            exclude: Vec::new(),
            tcp_ports: "top1000".into(),
            udp_ports: "none".into(),
            max_rate: None,
            no_ping: false,
            no_service: false,
            all_ports: false,
            all_hosts: false,
            no_rdns: false,
            force_connect: false,
            retries: 3,
            service_concurrency: 64,
        }
    }
}

/// Progress reporting; the binary draws a bar on a terminal, tests ignore it.
pub trait Progress: Send + Sync {
    /// A new phase begins with `total` units of work.
    fn phase(&self, name: &str, total: u64);
    /// `n` units of the current phase are done.
    fn advance(&self, n: u64);
}

/// A [`Progress`] that ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn phase(&self, _name: &str, _total: u64) {}
    fn advance(&self, _n: u64) {}
}

/// Configuration shared by the TCP port scanners.
#[derive(Debug, Clone)]
pub struct PortScanConfig {
    pub max_rate: Option<u32>,
    pub retries: u8,
    /// Keep the list of closed ports (not only their count).
    pub keep_closed: bool,
}

/// A host handed to a port scanner, with what discovery learned about it.
#[derive(Debug, Clone)]
pub struct HostTarget {
    pub addr: IpAddr,
    pub rtt: RttEstimator,
}

/// TCP port-scan result of one host.
#[derive(Debug, Clone, Default)]
pub struct HostPorts {
    pub open: Vec<u16>,
    /// Listed only when `keep_closed`; `closed_count` always counts them.
    pub closed: Vec<u16>,
    pub closed_count: u32,
    pub filtered: Vec<u16>,
    pub rtt: RttEstimator,
    /// TCP/IP stack traits seen in a SYN-ACK, for the OS guess.
    pub fingerprint: Option<osguess::StackFingerprint>,
    /// True if any probe of this host got any answer.
    pub responded: bool,
}

/// Counters the port scanners fill in.
#[derive(Debug, Clone, Copy, Default)]
pub struct PortScanStats {
    pub probes_sent: u64,
    pub retransmissions: u64,
    pub rate_limit_events: u64,
}

/// What a scan returns: the hosts, statistics and warnings for the user.
#[derive(Debug, Clone)]
pub struct ScanOutcome {
    pub hosts: Vec<NetHost>,
    pub stats: ScanStats,
    /// Things the user should be told once on stderr (e.g. the connect-scan fallback).
    pub warnings: Vec<String>,
}

/// Runs a whole network scan.
pub async fn run(cfg: &NetScanConfig, progress: Arc<dyn Progress>) -> Result<ScanOutcome> {
    let started = Instant::now();
    if cfg.max_rate == Some(0) {
        return Err(NetscanError::Config("--rate must be at least 1".into()));
    }
    let tcp_ports = ports::parse_port_spec(&cfg.tcp_ports)?;
    let udp_ports = ports::parse_port_spec(&cfg.udp_ports)?;
    let target_set = targets::resolve_targets(&cfg.targets, &cfg.exclude).await?;
    let mut warnings = Vec::new();

    let privileged = !cfg.force_connect && syn::raw_sockets_available();
    if !privileged && !cfg.force_connect {
        warnings.push(
            "no raw-socket privilege (CAP_NET_RAW): using a TCP connect scan and unprivileged discovery"
                .to_string(),
        );
    }

    // 1. Discovery.
    let mut up: HashMap<IpAddr, discovery::UpHost> = HashMap::new();
    if cfg.no_ping {
        for &addr in &target_set.addrs {
            up.insert(
                addr,
                discovery::UpHost {
                    addr,
                    reason: "user-set".into(),
                    mac: None,
                    rtt: None,
                    ttl: None,
                },
            );
        }
    } else {
        progress.phase("discovery", target_set.addrs.len() as u64);
        let dcfg = discovery::DiscoveryConfig {
            privileged,
            max_rate: cfg.max_rate,
            retries: cfg.retries,
        };
        for h in discovery::discover(&target_set.addrs, &dcfg, progress.clone()).await? {
            up.insert(h.addr, h);
        }
    }
    let mut up_addrs: Vec<IpAddr> = target_set
        .addrs
        .iter()
        .copied()
        .filter(|a| up.contains_key(a))
        .collect();
    up_addrs.sort();

    // 2. TCP ports.
    let hosts: Vec<HostTarget> = up_addrs
        .iter()
        .map(|a| HostTarget {
            addr: *a,
            rtt: up
                .get(a)
                .and_then(|h| h.rtt)
                .map(RttEstimator::with_sample)
                .unwrap_or_default(),
        })
        .collect();
    let pcfg = PortScanConfig {
        max_rate: cfg.max_rate,
        retries: cfg.retries,
        keep_closed: cfg.all_ports,
    };
    let mut pstats = PortScanStats::default();
    let mut tcp: HashMap<IpAddr, HostPorts> = HashMap::new();
    if !tcp_ports.is_empty() && !hosts.is_empty() {
        progress.phase("tcp ports", hosts.len() as u64 * tcp_ports.len() as u64);
        let results = if privileged {
            let (hosts, tcp_ports, pcfg, progress) = (
                hosts.clone(),
                tcp_ports.clone(),
                pcfg.clone(),
                progress.clone(),
            );
            tokio::task::spawn_blocking(move || {
                syn::syn_scan(&hosts, &tcp_ports, &pcfg, progress.as_ref())
            })
            .await
            .map_err(|e| NetscanError::Config(format!("SYN scan task failed: {e}")))??
        } else {
            connect::connect_scan(&hosts, &tcp_ports, &pcfg, progress.clone()).await?
        };
        pstats = results.1;
        for (addr, hp) in hosts.iter().map(|h| h.addr).zip(results.0) {
            tcp.insert(addr, hp);
        }
    }

    // 3. UDP ports.
    let mut udp_results: HashMap<IpAddr, Vec<PortResult>> = HashMap::new();
    if !udp_ports.is_empty() && !up_addrs.is_empty() {
        progress.phase("udp ports", up_addrs.len() as u64 * udp_ports.len() as u64);
        let uhosts: Vec<(IpAddr, RttEstimator)> = up_addrs
            .iter()
            .map(|a| (*a, tcp.get(a).map(|t| t.rtt).unwrap_or_default()))
            .collect();
        let ucfg = udp::UdpConfig {
            retries: cfg.retries,
            max_rate: cfg.max_rate,
        };
        for (addr, results) in udp::udp_scan(&uhosts, &udp_ports, &ucfg, progress.clone()).await? {
            udp_results.insert(addr, results);
        }
    }

    // 4. Service detection on open TCP ports (UDP services are identified by the UDP probes).
    let mut services: HashMap<(IpAddr, u16), (Service, Option<TlsInfo>)> = HashMap::new();
    if !cfg.no_service {
        let mut jobs = Vec::new();
        for (addr, hp) in &tcp {
            for &p in &hp.open {
                jobs.push((SocketAddr::new(*addr, p), hp.rtt));
            }
        }
        progress.phase("services", jobs.len() as u64);
        let names = target_set.hostnames.clone();
        let detected = service::detect_many(
            jobs,
            &names,
            cfg.service_concurrency.max(1),
            progress.clone(),
        )
        .await;
        for (sa, found) in detected {
            services.insert((sa.ip(), sa.port()), found);
        }
    }

    // 5. Reverse DNS.
    let mut names: HashMap<IpAddr, Vec<String>> = target_set.hostnames.clone();
    if !cfg.no_rdns && !up_addrs.is_empty() {
        progress.phase("reverse dns", up_addrs.len() as u64);
        for (addr, mut ptr) in rdns::reverse_names(&up_addrs).await {
            let entry = names.entry(addr).or_default();
            entry.append(&mut ptr);
            entry.sort();
            entry.dedup();
        }
    }

    // 6. Assemble.
    let mut out_hosts = Vec::new();
    let mut all_addrs = target_set.addrs.clone();
    all_addrs.sort();
    for addr in all_addrs {
        let Some(uh) = up.get(&addr) else {
            if cfg.all_hosts {
                out_hosts.push(NetHost {
                    address: addr.to_string(),
                    status: HostStatus::Down,
                    reason: "no-response".into(),
                    hostnames: names.get(&addr).cloned().unwrap_or_default(),
                    mac: None,
                    os: None,
                    ports: Vec::new(),
                    port_summary: PortSummary::default(),
                    rtt_us: None,
                });
            }
            continue;
        };
        let mut summary = PortSummary::default();
        let mut port_list = Vec::new();
        let mut rtt_us = uh.rtt.map(|d| d.as_micros() as u64);
        let mut os = None;
        if let Some(hp) = tcp.get(&addr) {
            if let Some(s) = hp.rtt.srtt() {
                rtt_us = Some(s.as_micros() as u64);
            }
            if let Some(fp) = &hp.fingerprint {
                os = Some(osguess::guess(fp));
            }
            summary.open += hp.open.len() as u32;
            summary.closed += hp.closed_count;
            summary.filtered += hp.filtered.len() as u32;
            for &p in &hp.open {
                let (service, tls) = match services.remove(&(addr, p)) {
                    Some((s, t)) => (Some(s), t),
                    None => (None, None),
                };
                port_list.push(PortResult {
                    port: p,
                    protocol: Protocol::Tcp,
                    state: PortState::Open,
                    reason: if privileged { "syn-ack" } else { "connect" }.into(),
                    service,
                    tls,
                });
            }
            if cfg.all_ports {
                for &p in &hp.closed {
                    port_list.push(simple_port(p, Protocol::Tcp, PortState::Closed, "rst"));
                }
                for &p in &hp.filtered {
                    port_list.push(simple_port(
                        p,
                        Protocol::Tcp,
                        PortState::Filtered,
                        "no-response",
                    ));
                }
            }
        }
        if let Some(results) = udp_results.remove(&addr) {
            for r in results {
                match r.state {
                    PortState::Open => summary.open += 1,
                    PortState::Closed => summary.closed += 1,
                    PortState::Filtered => summary.filtered += 1,
                    PortState::OpenFiltered => summary.open_filtered += 1,
                }
                if cfg.all_ports || matches!(r.state, PortState::Open | PortState::OpenFiltered) {
                    port_list.push(r);
                }
            }
        }
        port_list.sort_by_key(|p| (p.protocol, p.port));
        out_hosts.push(NetHost {
            address: addr.to_string(),
            status: HostStatus::Up,
            reason: uh.reason.clone(),
            hostnames: names.get(&addr).cloned().unwrap_or_default(),
            mac: uh.mac.clone(),
            os,
            ports: port_list,
            port_summary: summary,
            rtt_us,
        });
    }

    let stats = ScanStats {
        technique: if privileged { "syn" } else { "connect" }.into(),
        addresses_targeted: target_set.addrs.len() as u64,
        hosts_up: up_addrs.len() as u64,
        probes_sent: pstats.probes_sent,
        retransmissions: pstats.retransmissions,
        rate_limit_events: pstats.rate_limit_events,
        duration_ms: started.elapsed().as_millis() as u64,
    };
    Ok(ScanOutcome {
        hosts: out_hosts,
        stats,
        warnings,
    })
}

fn simple_port(port: u16, protocol: Protocol, state: PortState, reason: &str) -> PortResult {
    PortResult {
        port,
        protocol,
        state,
        reason: reason.into(),
        service: None,
        tls: None,
    }
}
