//! What changed on the network between two stored scans (`picket scans diff OLD NEW`).
//!
//! Why a pure function: the comparison is the part users script against (alert when a port
//! opens), so it is computed from two reports alone, without the store or the clock, and tested
//! on hand-written reports.
//!
//! Rules: a host counts when its status is `up`; a port counts when its state is `open`
//! (`open|filtered` UDP ports say nothing certain and are left out). A port that is open in NEW
//! and not in OLD is "opened" even when its host is new, so `opened_ports` alone lists everything
//! newly reachable; likewise `closed_ports` includes the ports of gone hosts.

use picket_model::{HostStatus, NetReport, PortResult, PortState, Protocol};
use serde::Serialize;
use std::collections::BTreeMap;

/// The diff of two net scans. Its JSON form is the stable schema of `scans diff --format json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetDiff {
    pub old: String,
    pub new: String,
    pub new_hosts: Vec<HostRef>,
    pub gone_hosts: Vec<HostRef>,
    pub opened_ports: Vec<PortChange>,
    pub closed_ports: Vec<PortChange>,
    pub changed_services: Vec<ServiceChange>,
}

impl NetDiff {
    /// True when nothing changed.
    pub fn is_empty(&self) -> bool {
        self.new_hosts.is_empty()
            && self.gone_hosts.is_empty()
            && self.opened_ports.is_empty()
            && self.closed_ports.is_empty()
            && self.changed_services.is_empty()
    }
}

/// A host that appeared or disappeared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostRef {
    pub address: String,
    pub hostnames: Vec<String>,
}

/// A port that opened (service as seen in NEW) or closed (service as seen in OLD).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortChange {
    pub address: String,
    pub port: u16,
    pub protocol: Protocol,
    /// `null` when no service was identified.
    pub service: Option<ServiceId>,
}

/// The identity of a service: what changing means.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceId {
    pub name: Option<String>,
    pub product: Option<String>,
    pub version: Option<String>,
}

/// A port open in both scans whose service name, product or version differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceChange {
    pub address: String,
    pub port: u16,
    pub protocol: Protocol,
    pub old: ServiceId,
    pub new: ServiceId,
}

fn service_id(p: &PortResult) -> ServiceId {
    match &p.service {
        Some(s) => ServiceId {
            name: Some(s.name.clone()),
            product: s.product.clone(),
            version: s.version.clone(),
        },
        None => ServiceId {
            name: None,
            product: None,
            version: None,
        },
    }
}

fn known(id: ServiceId) -> Option<ServiceId> {
    if id.name.is_none() && id.product.is_none() && id.version.is_none() {
        None
    } else {
        Some(id)
    }
}

/// Sort key of an address: parsed IPs in numeric order, anything else after, by text.
fn addr_key(a: &str) -> (u8, Option<std::net::IpAddr>, String) {
    match a.parse::<std::net::IpAddr>() {
        Ok(ip) => (0, Some(ip), String::new()),
        Err(_) => (1, None, a.to_owned()),
    }
}

type PortKey = (
    (u8, Option<std::net::IpAddr>, String),
    String,
    Protocol,
    u16,
);

fn up_hosts(r: &NetReport) -> BTreeMap<(u8, Option<std::net::IpAddr>, String), HostRef> {
    r.hosts
        .iter()
        .filter(|h| h.status == HostStatus::Up)
        .map(|h| {
            (
                addr_key(&h.address),
                HostRef {
                    address: h.address.clone(),
                    hostnames: h.hostnames.clone(),
                },
            )
        })
        .collect()
}

fn open_ports(r: &NetReport) -> BTreeMap<PortKey, &PortResult> {
    let mut out = BTreeMap::new();
    for h in r.hosts.iter().filter(|h| h.status == HostStatus::Up) {
        for p in h.ports.iter().filter(|p| p.state == PortState::Open) {
            out.insert(
                (addr_key(&h.address), h.address.clone(), p.protocol, p.port),
                p,
            );
        }
    }
    out
}

/// Compares two net reports. Every list is sorted by address, then protocol, then port.
pub fn diff_net(old: &NetReport, new: &NetReport) -> NetDiff {
    let old_hosts = up_hosts(old);
    let new_hosts = up_hosts(new);
    let old_ports = open_ports(old);
    let new_ports = open_ports(new);

    let change = |k: &PortKey, p: &PortResult| PortChange {
        address: k.1.clone(),
        port: p.port,
        protocol: p.protocol,
        service: known(service_id(p)),
    };

    let mut changed_services = Vec::new();
    for (k, np) in &new_ports {
        if let Some(op) = old_ports.get(k) {
            let (o, n) = (service_id(op), service_id(np));
            if o != n {
                changed_services.push(ServiceChange {
                    address: k.1.clone(),
                    port: np.port,
                    protocol: np.protocol,
                    old: o,
                    new: n,
                });
            }
        }
    }

    NetDiff {
        old: old.scan.id.clone(),
        new: new.scan.id.clone(),
        new_hosts: new_hosts
            .iter()
            .filter(|(k, _)| !old_hosts.contains_key(*k))
            .map(|(_, h)| h.clone())
            .collect(),
        gone_hosts: old_hosts
            .iter()
            .filter(|(k, _)| !new_hosts.contains_key(*k))
            .map(|(_, h)| h.clone())
            .collect(),
        opened_ports: new_ports
            .iter()
            .filter(|(k, _)| !old_ports.contains_key(*k))
            .map(|(k, p)| change(k, p))
            .collect(),
        closed_ports: old_ports
            .iter()
            .filter(|(k, _)| !new_ports.contains_key(*k))
            .map(|(k, p)| change(k, p))
            .collect(),
        changed_services,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use picket_model::{
        NetHost, PortSummary, ScanKind, ScanMeta, ScanStats, Service, PICKET_VERSION,
    };

    fn port(
        port: u16,
        protocol: Protocol,
        state: PortState,
        svc: Option<(&str, &str, &str)>,
    ) -> PortResult {
        PortResult {
            port,
            protocol,
            state,
            reason: "syn-ack".into(),
            service: svc.map(|(n, p, v)| Service {
                name: n.into(),
                product: (!p.is_empty()).then(|| p.into()),
                version: (!v.is_empty()).then(|| v.into()),
                ..Service::default()
            }),
            tls: None,
        }
    }

    fn host(addr: &str, status: HostStatus, ports: Vec<PortResult>) -> NetHost {
        NetHost {
            address: addr.into(),
            status,
            reason: "echo-reply".into(),
            hostnames: vec![],
            mac: None,
            os: None,
            ports,
            port_summary: PortSummary::default(),
            rtt_us: None,
        }
    }

    fn report(id: &str, hosts: Vec<NetHost>) -> NetReport {
        NetReport {
            picket_version: PICKET_VERSION.into(),
            scan: ScanMeta {
                id: id.into(),
                kind: ScanKind::Net,
                started_at: "2026-11-21T07:00:00Z".into(),
                finished_at: "2026-11-21T07:00:01Z".into(),
                targets: vec!["198.18.0.0/24".into()],
            },
            hosts,
            findings: vec![],
            stats: ScanStats::default(),
        }
    }

    use HostStatus::{Down, Up};
    use PortState::{Closed, Open, OpenFiltered};
    use Protocol::{Tcp, Udp};

    #[test]
    fn identical_scans_have_an_empty_diff() {
        let hosts = vec![host(
            "198.18.0.1",
            Up,
            vec![port(22, Tcp, Open, Some(("ssh", "OpenSSH", "9.2p1")))],
        )];
        let d = diff_net(&report("a", hosts.clone()), &report("b", hosts));
        assert!(d.is_empty(), "{d:?}");
        assert_eq!((d.old.as_str(), d.new.as_str()), ("a", "b"));
    }

    #[test]
    fn hosts_ports_and_services_changes_are_reported() {
        let old = report(
            "old",
            vec![
                host(
                    "198.18.0.1",
                    Up,
                    vec![
                        port(22, Tcp, Open, Some(("ssh", "OpenSSH", "9.2p1"))),
                        port(80, Tcp, Open, Some(("http", "nginx", "1.22.1"))),
                        port(53, Udp, Open, Some(("dns", "", ""))),
                    ],
                ),
                host("198.18.0.2", Up, vec![port(25, Tcp, Open, None)]),
                host("198.18.0.3", Down, vec![]),
            ],
        );
        let new = report(
            "new",
            vec![
                host(
                    "198.18.0.1",
                    Up,
                    vec![
                        port(22, Tcp, Open, Some(("ssh", "OpenSSH", "9.6p1"))),
                        port(443, Tcp, Open, Some(("https", "nginx", ""))),
                        port(53, Tcp, Open, None),
                        port(53, Udp, Open, Some(("dns", "", ""))),
                    ],
                ),
                host("198.18.0.3", Up, vec![port(8080, Tcp, Open, None)]),
            ],
        );
        let d = diff_net(&old, &new);
        let addrs = |v: &[HostRef]| v.iter().map(|h| h.address.clone()).collect::<Vec<_>>();
        assert_eq!(addrs(&d.new_hosts), vec!["198.18.0.3"]);
        assert_eq!(addrs(&d.gone_hosts), vec!["198.18.0.2"]);
        let ports = |v: &[PortChange]| {
            v.iter()
                .map(|p| format!("{} {}/{}", p.address, p.port, p.protocol))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            ports(&d.opened_ports),
            vec![
                "198.18.0.1 53/tcp",
                "198.18.0.1 443/tcp",
                "198.18.0.3 8080/tcp"
            ]
        );
        assert_eq!(
            ports(&d.closed_ports),
            vec!["198.18.0.1 80/tcp", "198.18.0.2 25/tcp"]
        );
        assert_eq!(
            d.closed_ports[0]
                .service
                .as_ref()
                .and_then(|s| s.product.as_deref()),
            Some("nginx")
        );
        assert_eq!(
            d.opened_ports[0].service, None,
            "unidentified service is null"
        );
        assert_eq!(d.changed_services.len(), 1);
        let c = &d.changed_services[0];
        assert_eq!((c.port, c.protocol), (22, Tcp));
        assert_eq!(c.old.version.as_deref(), Some("9.2p1"));
        assert_eq!(c.new.version.as_deref(), Some("9.6p1"));
    }

    #[test]
    fn non_open_states_and_down_hosts_do_not_count() {
        let old = report(
            "old",
            vec![host(
                "198.18.0.1",
                Up,
                vec![
                    port(161, Udp, OpenFiltered, None),
                    port(23, Tcp, Closed, None),
                ],
            )],
        );
        let new = report(
            "new",
            vec![host("198.18.0.1", Down, vec![port(22, Tcp, Open, None)])],
        );
        let d = diff_net(&old, &new);
        assert!(
            d.opened_ports.is_empty() && d.closed_ports.is_empty(),
            "{d:?}"
        );
        assert_eq!(d.gone_hosts.len(), 1);
        assert!(d.new_hosts.is_empty());
    }

    #[test]
    fn addresses_sort_numerically_and_service_appearing_is_a_change() {
        let old = report(
            "old",
            vec![host("198.18.0.10", Up, vec![port(22, Tcp, Open, None)])],
        );
        let new = report(
            "new",
            vec![
                host("198.18.0.9", Up, vec![port(22, Tcp, Open, None)]),
                host(
                    "198.18.0.10",
                    Up,
                    vec![port(22, Tcp, Open, Some(("ssh", "", "")))],
                ),
                host("2001:db8::1", Up, vec![]),
            ],
        );
        let d = diff_net(&old, &new);
        let addrs: Vec<_> = d.new_hosts.iter().map(|h| h.address.as_str()).collect();
        assert_eq!(addrs, vec!["198.18.0.9", "2001:db8::1"]);
        assert_eq!(d.changed_services.len(), 1);
        assert_eq!(d.changed_services[0].old.name, None);
        assert_eq!(d.changed_services[0].new.name.as_deref(), Some("ssh"));
    }

    #[test]
    fn json_schema_is_stable() {
        let old = report("old", vec![]);
        let new = report(
            "new",
            vec![host(
                "198.18.0.1",
                Up,
                vec![port(22, Tcp, Open, Some(("ssh", "OpenSSH", "9.2p1")))],
            )],
        );
        let v = serde_json::to_value(diff_net(&old, &new)).unwrap_or_default();
        assert_eq!(
            v,
            serde_json::json!({
                "old": "old", "new": "new",
                "new_hosts": [{"address": "198.18.0.1", "hostnames": []}],
                "gone_hosts": [],
                "opened_ports": [{"address": "198.18.0.1", "port": 22, "protocol": "tcp",
                    "service": {"name": "ssh", "product": "OpenSSH", "version": "9.2p1"}}],
                "closed_ports": [],
                "changed_services": []
            })
        );
    }
}
