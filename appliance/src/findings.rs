//! Findings derived from what a network scan saw.
//!
//! Why here and not in netscan: the scanner reports facts (a certificate, its dates); whether a
//! fact is a finding, and how severe, is policy that belongs with the report. For now these are
//! the cheap, certain ones: TLS certificates that are expired or self-signed.

use picket_model::{Asset, Finding, NetHost, PortState, Severity};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The findings of a net scan's hosts, judged at `now`.
pub fn net_findings(hosts: &[NetHost], now: OffsetDateTime) -> Vec<Finding> {
    let mut out = Vec::new();
    for host in hosts {
        for port in &host.ports {
            if port.state != PortState::Open {
                continue;
            }
            let Some(tls) = &port.tls else { continue };
            let asset = Asset {
                address: Some(host.address.clone()),
                hostname: host.hostnames.first().cloned(),
                port: Some(port.port),
                protocol: Some(port.protocol),
                url: None,
            };
            let where_ = format!("{}:{}/{}", host.address, port.port, port.protocol);
            if let Ok(not_after) = OffsetDateTime::parse(&tls.not_after, &Rfc3339) {
                if not_after < now {
                    out.push(Finding {
                        id: format!("net.tls.cert-expired:{where_}"),
                        title: "TLS certificate expired".into(),
                        severity: Severity::Info,
                        cwe: vec![298],
                        cve: vec![],
                        asset: asset.clone(),
                        evidence: format!(
                            "certificate subject {:?} issued by {:?} expired at {}",
                            tls.subject, tls.issuer, tls.not_after
                        ),
                        remediation: "Install a valid certificate and set up automatic renewal."
                            .into(),
                    });
                }
            }
            if tls.self_signed {
                out.push(Finding {
                    id: format!("net.tls.cert-self-signed:{where_}"),
                    title: "TLS certificate self-signed".into(),
                    severity: Severity::Info,
                    cwe: vec![295],
                    cve: vec![],
                    asset,
                    evidence: format!(
                        "certificate subject {:?} is signed by itself (sha256 {})",
                        tls.subject, tls.sha256
                    ),
                    remediation: "Use a certificate issued by a CA the clients trust, or pin \
                                  this certificate in the clients."
                        .into(),
                });
            }
        }
    }
    // A stable order, whatever order the hosts came in, keeps reports diffable.
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use picket_model::{HostStatus, PortResult, PortSummary, Protocol, TlsInfo};

    fn host_with_tls(not_after: &str, self_signed: bool) -> NetHost {
        NetHost {
            address: "198.18.0.5".into(),
            status: HostStatus::Up,
            reason: "syn-ack".into(),
            hostnames: vec!["web.test".into()],
            mac: None,
            os: None,
            ports: vec![PortResult {
                port: 443,
                protocol: Protocol::Tcp,
                state: PortState::Open,
                reason: "syn-ack".into(),
                service: None,
                tls: Some(TlsInfo {
                    subject: "CN=web.test".into(),
                    issuer: "CN=web.test".into(),
                    not_after: not_after.into(),
                    self_signed,
                    ..TlsInfo::default()
                }),
            }],
            port_summary: PortSummary::default(),
            rtt_us: None,
        }
    }

    #[test]
    fn expired_and_self_signed_certificates_are_findings() {
        let now = OffsetDateTime::parse("2026-11-21T07:00:00Z", &Rfc3339);
        let now = match now {
            Ok(n) => n,
            Err(e) => panic!("{e}"),
        };
        let f = net_findings(&[host_with_tls("2025-01-01T00:00:00Z", true)], now);
        let ids: Vec<_> = f.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(
            ids,
            vec![
                "net.tls.cert-expired:198.18.0.5:443/tcp",
                "net.tls.cert-self-signed:198.18.0.5:443/tcp"
            ]
        );
        assert_eq!(f[0].asset.hostname.as_deref(), Some("web.test"));

        let valid = net_findings(&[host_with_tls("2027-01-01T00:00:00Z", false)], now);
        assert!(valid.is_empty(), "{valid:?}");
        let unparsable = net_findings(&[host_with_tls("soon", false)], now);
        assert!(unparsable.is_empty());
    }
}
