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

const HOSTINFO_OPTIONAL: &[&str] = &["error", "os", "kernel", "package_manager", "host_key"];
const OS_OPTIONAL: &[&str] = &["codename"];
const PACKAGE_FINDING_KEYS: &[&str] = &[
    "package",
    "installed_version",
    "fixed_version",
    "advisory",
    "aliases",
];

/// A host-scan report as the contract's JSON value: `host` only with one target; for findings
/// that are not about a package (configuration checks) the package keys are left out, while a
/// package finding keeps `fixed_version: null` when no fix is known, as the contract says.
pub fn host_report_value(report: &HostReport) -> Result<Value, serde_json::Error> {
    let mut v = serde_json::to_value(report)?;
    if let Value::Object(top) = &mut v {
        remove_null(top, &["host"]);
    }
    let tidy_host = |host: &mut Value| {
        remove_null_keys(host, HOSTINFO_OPTIONAL);
        if let Some(Value::Object(os)) = host.get_mut("os") {
            remove_null(os, OS_OPTIONAL);
        }
        for sock in array_items(host, "listening") {
            remove_null_keys(sock, &["process"]);
        }
    };
    if let Some(host) = v.get_mut("host") {
        tidy_host(host);
    }
    for host in array_items(&mut v, "hosts") {
        tidy_host(host);
    }
    for finding in array_items(&mut v, "findings") {
        if let Some(Value::Object(asset)) = finding.get_mut("asset") {
            remove_null(asset, ASSET_OPTIONAL);
        }
        if let Value::Object(f) = finding {
            if f.get("package").is_some_and(Value::is_null) {
                for k in PACKAGE_FINDING_KEYS {
                    f.remove(*k);
                }
            }
        }
    }
    Ok(v)
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
