//! The SARIF 2.1.0 writer (`--format sarif`), for code-scanning dashboards and CI.
//!
//! SARIF is about rules and results located in artifacts; a network finding has no file, so each
//! result is located by a logical location naming the asset (`198.18.0.5:443/tcp`, a URL...).
//! A rule groups the findings of one kind: its id is the finding's first CVE when it has one,
//! otherwise a slug of its title. The finding's own stable id goes in `partialFingerprints`, so
//! dashboards track the same issue across scans.

use picket_model::{Finding, NetReport, Severity, PICKET_VERSION};
use serde_json::{json, Value};

const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// SARIF's levels: `error`, `warning`, `note`.
pub fn level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// The rule a finding belongs to.
pub fn rule_id(f: &Finding) -> String {
    if let Some(cve) = f.cve.first() {
        return cve.clone();
    }
    let mut slug = String::new();
    for c in f.title.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    let slug = slug.trim_end_matches('-');
    if slug.is_empty() {
        "picket-finding".to_owned()
    } else {
        slug.to_owned()
    }
}

/// A SARIF log with one run holding the findings of a network scan.
pub fn net_report(r: &NetReport) -> Value {
    findings_log(&r.scan.id, r.scan.kind.as_str(), &r.findings)
}

/// A SARIF log of `findings`, for the scan `scan_id`.
pub fn findings_log(scan_id: &str, kind: &str, findings: &[Finding]) -> Value {
    let ruled: Vec<(String, &Finding)> = findings.iter().map(|f| (rule_id(f), f)).collect();
    ruled_findings_log(scan_id, kind, &ruled)
}

/// A SARIF log of a web scan: one rule per check (`xss-reflected`, `sqli`...), whatever the
/// finding's detailed title says.
pub fn web_report(r: &picket_model::WebReport) -> Value {
    let plain: Vec<(String, Finding)> = r
        .findings
        .iter()
        .map(|f| (format!("web/{}", f.check), f.to_finding()))
        .collect();
    let ruled: Vec<(String, &Finding)> = plain.iter().map(|(r, f)| (r.clone(), f)).collect();
    ruled_findings_log(&r.scan.id, "web", &ruled)
}

/// A SARIF log of findings whose rule ids the caller chose.
pub fn ruled_findings_log(scan_id: &str, kind: &str, findings: &[(String, &Finding)]) -> Value {
    let mut rules: Vec<(String, &Finding)> = Vec::new();
    let mut results = Vec::new();
    for (id, f) in findings {
        let (id, f) = (id.clone(), *f);
        let index = match rules.iter().position(|(r, _)| *r == id) {
            Some(i) => i,
            None => {
                rules.push((id.clone(), f));
                rules.len() - 1
            }
        };
        let asset = crate::report::table::asset_text(&f.asset);
        results.push(json!({
            "ruleId": id,
            "ruleIndex": index,
            "level": level(f.severity),
            "message": { "text": format!("{}: {}", f.title, f.evidence) },
            "locations": [{
                "logicalLocations": [{
                    "name": asset,
                    "fullyQualifiedName": asset,
                    "kind": "resource"
                }]
            }],
            "partialFingerprints": { "picketFindingId/v1": f.id },
            "properties": {
                "severity": f.severity.as_str(),
                "cwe": f.cwe,
                "cve": f.cve,
                "remediation": f.remediation
            }
        }));
    }
    let rules: Vec<Value> = rules
        .iter()
        .map(|(id, f)| {
            let mut tags: Vec<String> = f.cwe.iter().map(|c| format!("CWE-{c}")).collect();
            tags.extend(f.cve.iter().cloned());
            json!({
                "id": id,
                "shortDescription": { "text": f.title },
                "help": { "text": f.remediation },
                "defaultConfiguration": { "level": level(f.severity) },
                "properties": { "tags": tags }
            })
        })
        .collect();
    json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "picket",
                    "version": PICKET_VERSION,
                    "rules": rules
                }
            },
            "automationDetails": { "id": format!("picket/{kind}/{scan_id}") },
            "results": results
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use picket_model::Asset;

    fn finding(id: &str, title: &str, sev: Severity, cve: &[&str]) -> Finding {
        Finding {
            id: id.into(),
            title: title.into(),
            severity: sev,
            cwe: vec![295],
            cve: cve.iter().map(|c| c.to_string()).collect(),
            asset: Asset {
                address: Some("198.18.0.5".into()),
                port: Some(443),
                protocol: Some(picket_model::Protocol::Tcp),
                ..Asset::default()
            },
            evidence: "seen".into(),
            remediation: "fix".into(),
        }
    }

    #[test]
    fn results_reference_deduplicated_rules() {
        let fs = vec![
            finding("a", "TLS certificate self-signed", Severity::Info, &[]),
            finding("b", "TLS certificate self-signed", Severity::Info, &[]),
            finding(
                "c",
                "OpenSSH regreSSHion",
                Severity::High,
                &["CVE-2024-6387"],
            ),
        ];
        let log = findings_log("20261121T070000Z-deadbeef", "net", &fs);
        assert_eq!(log["version"], "2.1.0");
        let run = &log["runs"][0];
        let rules = run["tool"]["driver"]["rules"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0]["id"], "tls-certificate-self-signed");
        assert_eq!(rules[1]["id"], "CVE-2024-6387");
        let results = run["results"].as_array().cloned().unwrap_or_default();
        assert_eq!(results.len(), 3);
        assert_eq!(results[1]["ruleIndex"], 0);
        assert_eq!(results[2]["ruleIndex"], 1);
        assert_eq!(results[2]["level"], "error");
        assert_eq!(results[0]["level"], "note");
        assert_eq!(
            results[0]["locations"][0]["logicalLocations"][0]["name"],
            "198.18.0.5:443/tcp"
        );
        assert_eq!(results[1]["partialFingerprints"]["picketFindingId/v1"], "b");
    }

    #[test]
    fn empty_report_is_a_valid_log_with_no_results() {
        let log = findings_log("x", "net", &[]);
        assert_eq!(log["runs"][0]["results"], json!([]));
        assert_eq!(log["runs"][0]["tool"]["driver"]["name"], "picket");
    }
}
