//! The JSON writer (`--format json`), per `shared/CONTRACT.md`.
//!
//! The model types serialize every field (the store's postcard encoding needs that), so absent
//! optional values arrive here as `null`. The contract marks some keys optional (`mac`?, `os`?,
//! `service`?, `tls`?...): those are dropped when null, so scripts can test for presence. Keys the
//! contract defines as null-able are left alone; they are simply not in the lists below.

use picket_model::{HostReport, NetReport};
use serde::Serialize;
use serde_json::{Map, Value};

const HOST_OPTIONAL: &[&str] = &["mac", "os", "rtt_us"];
const PORT_OPTIONAL: &[&str] = &["service", "tls"];
const SERVICE_OPTIONAL: &[&str] = &["product", "version", "extra", "banner"];
const ASSET_OPTIONAL: &[&str] = &["address", "hostname", "port", "protocol", "url"];

/// The report as the contract's JSON value.
pub fn net_report_value(report: &NetReport) -> Result<Value, serde_json::Error> {
    let mut v = serde_json::to_value(report)?;
    prune_nulls(&mut v);
    Ok(v)
}

/// A host-scan report as the contract's JSON, written straight from the report through
/// borrowing views (a 50-host report holds ~200,000 findings: going through a `Value` tree took
/// seconds and a gigabyte). `host` only with one target; null optional keys omitted; for
/// findings that are not about a package (configuration checks) the package keys are left out,
/// while a package finding keeps `fixed_version: null` when no fix is known, as the contract
/// says.
pub fn host_report_bytes(report: &HostReport) -> Result<Vec<u8>, serde_json::Error> {
    let view = HostReportView {
        picket_version: &report.picket_version,
        scan: &report.scan,
        host: report.host.as_ref().map(HostView),
        hosts: report.hosts.iter().map(HostView).collect(),
        findings: report.findings.iter().map(FindingView).collect(),
        stats: &report.stats,
    };
    let mut out = Vec::with_capacity(1 << 16);
    let mut ser = serde_json::Serializer::with_formatter(
        &mut out,
        serde_json::ser::PrettyFormatter::with_indent(b"  "),
    );
    view.serialize(&mut ser)?;
    out.push(b'\n');
    Ok(out)
}

#[derive(Serialize)]
struct HostReportView<'a> {
    picket_version: &'a str,
    scan: &'a picket_model::ScanMeta,
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<HostView<'a>>,
    hosts: Vec<HostView<'a>>,
    findings: Vec<FindingView<'a>>,
    stats: &'a picket_model::HostScanStats,
}

struct HostView<'a>(&'a picket_model::HostInfo);

impl Serialize for HostView<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let h = self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("target", &h.target)?;
        m.serialize_entry("address", &h.address)?;
        m.serialize_entry("status", &h.status)?;
        if let Some(e) = &h.error {
            m.serialize_entry("error", e)?;
        }
        if let Some(os) = &h.os {
            m.serialize_entry("os", &OsView(os))?;
        }
        if let Some(k) = &h.kernel {
            m.serialize_entry("kernel", k)?;
        }
        if let Some(p) = &h.package_manager {
            m.serialize_entry("package_manager", p)?;
        }
        m.serialize_entry("packages", &h.packages)?;
        let listening: Vec<SocketView<'_>> = h.listening.iter().map(SocketView).collect();
        m.serialize_entry("listening", &listening)?;
        if let Some(k) = &h.host_key {
            m.serialize_entry("host_key", k)?;
        }
        m.serialize_entry("duration_ms", &h.duration_ms)?;
        m.end()
    }
}

struct OsView<'a>(&'a picket_model::OsRelease);

impl Serialize for OsView<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let o = self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("id", &o.id)?;
        m.serialize_entry("version_id", &o.version_id)?;
        m.serialize_entry("name", &o.name)?;
        m.serialize_entry("id_like", &o.id_like)?;
        if let Some(c) = &o.codename {
            m.serialize_entry("codename", c)?;
        }
        m.end()
    }
}

struct SocketView<'a>(&'a picket_model::ListeningSocket);

impl Serialize for SocketView<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let l = self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("protocol", &l.protocol)?;
        m.serialize_entry("address", &l.address)?;
        m.serialize_entry("port", &l.port)?;
        if let Some(p) = &l.process {
            m.serialize_entry("process", p)?;
        }
        m.end()
    }
}

struct FindingView<'a>(&'a picket_model::HostFinding);

impl Serialize for FindingView<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let f = self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("id", &f.id)?;
        m.serialize_entry("title", &f.title)?;
        m.serialize_entry("severity", &f.severity)?;
        m.serialize_entry("cwe", &f.cwe)?;
        m.serialize_entry("cve", &f.cve)?;
        m.serialize_entry("asset", &AssetView(&f.asset))?;
        m.serialize_entry("evidence", &f.evidence)?;
        m.serialize_entry("remediation", &f.remediation)?;
        if let Some(p) = &f.package {
            m.serialize_entry("package", p)?;
            m.serialize_entry("installed_version", &f.installed_version)?;
            m.serialize_entry("fixed_version", &f.fixed_version)?;
            m.serialize_entry("advisory", &f.advisory)?;
            m.serialize_entry("aliases", &f.aliases)?;
        }
        m.end()
    }
}

struct AssetView<'a>(&'a picket_model::Asset);

impl Serialize for AssetView<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let a = self.0;
        let mut m = s.serialize_map(None)?;
        if let Some(v) = &a.address {
            m.serialize_entry("address", v)?;
        }
        if let Some(v) = &a.hostname {
            m.serialize_entry("hostname", v)?;
        }
        if let Some(v) = &a.port {
            m.serialize_entry("port", v)?;
        }
        if let Some(v) = &a.protocol {
            m.serialize_entry("protocol", v)?;
        }
        if let Some(v) = &a.url {
            m.serialize_entry("url", v)?;
        }
        m.end()
    }
}

/// Drops the contract's optional keys where they are null, in hosts, ports, services and
/// finding assets.
pub fn prune_nulls(report: &mut Value) {
    for host in array_items(report, "hosts") {
        remove_null_keys(host, HOST_OPTIONAL);
        for port in array_items(host, "ports") {
            remove_null_keys(port, PORT_OPTIONAL);
            if let Some(Value::Object(service)) = port.get_mut("service") {
                remove_null(service, SERVICE_OPTIONAL);
            }
        }
    }
    for finding in array_items(report, "findings") {
        if let Some(Value::Object(asset)) = finding.get_mut("asset") {
            remove_null(asset, ASSET_OPTIONAL);
        }
    }
}

fn array_items<'a>(v: &'a mut Value, key: &str) -> impl Iterator<Item = &'a mut Value> {
    v.get_mut(key)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
}

fn remove_null_keys(v: &mut Value, keys: &[&str]) {
    if let Value::Object(map) = v {
        remove_null(map, keys);
    }
}

fn remove_null(map: &mut Map<String, Value>, keys: &[&str]) {
    for k in keys {
        if map.get(*k).is_some_and(Value::is_null) {
            map.remove(*k);
        }
    }
}

/// A web-scan report as the contract's JSON: findings carry `url`, `method`, `parameter` (null
/// for page-level findings) and `evidence: {request, response_excerpt}`; null optional asset
/// keys are dropped as elsewhere.
pub fn web_report_value(report: &picket_model::WebReport) -> Result<Value, serde_json::Error> {
    let mut v = serde_json::to_value(report)?;
    prune_nulls(&mut v);
    Ok(v)
}

/// Pretty JSON with a final newline.
pub fn to_bytes<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = serde_json::to_vec_pretty(value)?;
    out.push(b'\n');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use picket_model::*;

    fn report() -> NetReport {
        NetReport {
            picket_version: PICKET_VERSION.into(),
            scan: ScanMeta {
                id: "20261121T070000Z-deadbeef".into(),
                kind: ScanKind::Net,
                started_at: "2026-11-21T07:00:00Z".into(),
                finished_at: "2026-11-21T07:00:01Z".into(),
                targets: vec!["198.18.0.10".into()],
            },
            hosts: vec![NetHost {
                address: "198.18.0.10".into(),
                status: HostStatus::Up,
                reason: "syn-ack".into(),
                hostnames: vec![],
                mac: None,
                os: None,
                ports: vec![
                    PortResult {
                        port: 22,
                        protocol: Protocol::Tcp,
                        state: PortState::Open,
                        reason: "syn-ack".into(),
                        service: Some(Service {
                            name: "ssh".into(),
                            product: Some("OpenSSH".into()),
                            ..Service::default()
                        }),
                        tls: None,
                    },
                    PortResult {
                        port: 161,
                        protocol: Protocol::Udp,
                        state: PortState::OpenFiltered,
                        reason: "no-response".into(),
                        service: None,
                        tls: None,
                    },
                ],
                port_summary: PortSummary::default(),
                rtt_us: Some(120),
            }],
            findings: vec![Finding {
                id: "x".into(),
                title: "t".into(),
                severity: Severity::Info,
                cwe: vec![],
                cve: vec![],
                asset: Asset {
                    address: Some("198.18.0.10".into()),
                    ..Asset::default()
                },
                evidence: "e".into(),
                remediation: "r".into(),
            }],
            stats: ScanStats::default(),
        }
    }

    #[test]
    fn optional_nulls_are_pruned_and_required_keys_stay() {
        let v = net_report_value(&report()).unwrap_or_default();
        let host = &v["hosts"][0];
        assert!(host.get("mac").is_none() && host.get("os").is_none());
        assert_eq!(host["rtt_us"], 120);
        assert_eq!(host["hostnames"], serde_json::json!([]));
        let ssh = &host["ports"][0];
        assert!(ssh.get("tls").is_none());
        assert_eq!(
            ssh["service"],
            serde_json::json!({
                "name": "ssh", "product": "OpenSSH", "cpe": [], "tunnel_tls": false
            })
        );
        let udp = &host["ports"][1];
        assert!(udp.get("service").is_none());
        assert_eq!(udp["state"], "open|filtered");
        assert_eq!(
            v["findings"][0]["asset"],
            serde_json::json!({"address": "198.18.0.10"})
        );
        assert_eq!(v["scan"]["kind"], "net");
        for key in ["picket_version", "scan", "hosts", "findings", "stats"] {
            assert!(v.get(key).is_some(), "{key}");
        }
    }
}
