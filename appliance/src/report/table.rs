//! The table writer (`--format table`): a report for people at a terminal.
//!
//! Everything shown here may come from the network (banners, product names, certificate subjects,
//! PTR names), so every cell goes through [`clean`]: control characters are escaped, so a hostile
//! service cannot move the cursor, rewrite earlier lines or change the terminal's title.

use crate::diff::{NetDiff, ServiceId};
use crate::store::{ListEntry, ScanSummary};
use picket_model::{HostFinding, HostReport, HostScanStatus, NetReport, PortResult, Severity};
use std::fmt::Write;

/// Longest cell, in characters, before it is cut with `…`.
const MAX_CELL: usize = 80;

/// Escapes control characters and cuts overlong text.
pub fn clean(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(MAX_CELL * 2));
    for (n, c) in s.chars().enumerate() {
        if n >= MAX_CELL {
            out.push('…');
            break;
        }
        if c.is_control()
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Lays out rows in left-aligned columns separated by two spaces, each line indented.
fn columns(indent: &str, rows: &[Vec<String>]) -> String {
    let ncols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; ncols];
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::from(indent);
        for (i, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < row.len() {
                let pad = widths[i] - cell.chars().count() + 2;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn product_version(p: &PortResult) -> String {
    let Some(s) = &p.service else {
        return String::new();
    };
    let mut parts = Vec::new();
    parts.extend(s.product.as_deref());
    parts.extend(s.version.as_deref());
    let mut text = parts.join(" ");
    if let Some(extra) = &s.extra {
        if !text.is_empty() {
            text.push(' ');
        }
        let _ = write!(text, "({extra})");
    }
    clean(&text)
}

fn tls_note(p: &PortResult) -> String {
    let Some(t) = &p.tls else {
        return String::new();
    };
    let mut note = format!("TLS {}", t.subject);
    if !t.not_after.is_empty() {
        let _ = write!(
            note,
            ", until {}",
            t.not_after.get(..10).unwrap_or(&t.not_after)
        );
    }
    if t.self_signed {
        note.push_str(", self-signed");
    }
    if !t.versions.is_empty() {
        let _ = write!(note, ", {}", t.versions.join("/"));
    }
    clean(&note)
}

/// A network-scan report as text.
pub fn net_report(r: &NetReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "scan {}  {}  {} .. {}",
        clean(&r.scan.id),
        r.scan.kind.as_str(),
        clean(&r.scan.started_at),
        clean(&r.scan.finished_at)
    );
    let targets: Vec<String> = r.scan.targets.iter().map(|t| clean(t)).collect();
    let _ = writeln!(out, "targets: {}", targets.join(" "));

    let mut open_ports = 0usize;
    for h in &r.hosts {
        out.push('\n');
        let mut head = clean(&h.address);
        if !h.hostnames.is_empty() {
            let names: Vec<String> = h.hostnames.iter().map(|n| clean(n)).collect();
            let _ = write!(head, " ({})", names.join(", "));
        }
        let status = match h.status {
            picket_model::HostStatus::Up => "up",
            picket_model::HostStatus::Down => "down",
        };
        let _ = write!(head, "  {status} ({})", clean(&h.reason));
        if let Some(mac) = &h.mac {
            let _ = write!(head, "  mac {}", clean(mac));
        }
        if let Some(os) = &h.os {
            let _ = write!(head, "  os {} ({}%)", clean(&os.family), os.confidence);
        }
        if let Some(rtt) = h.rtt_us {
            let _ = write!(head, "  rtt {:.1} ms", rtt as f64 / 1000.0);
        }
        out.push_str(&head);
        out.push('\n');
        if !h.ports.is_empty() {
            let mut rows = vec![vec![
                "PORT".to_owned(),
                "STATE".to_owned(),
                "SERVICE".to_owned(),
                "VERSION".to_owned(),
                "NOTES".to_owned(),
            ]];
            for p in &h.ports {
                if p.state == picket_model::PortState::Open {
                    open_ports += 1;
                }
                rows.push(vec![
                    format!("{}/{}", p.port, p.protocol),
                    p.state.as_str().to_owned(),
                    p.service
                        .as_ref()
                        .map(|s| clean(&s.name))
                        .unwrap_or_default(),
                    product_version(p),
                    tls_note(p),
                ]);
            }
            out.push_str(&columns("  ", &rows));
        }
        let s = &h.port_summary;
        let listed = h.ports.len() as u64;
        let counted = u64::from(s.open)
            + u64::from(s.closed)
            + u64::from(s.filtered)
            + u64::from(s.open_filtered);
        if counted > listed {
            let _ = writeln!(
                out,
                "  not shown: {} closed, {} filtered ports",
                s.closed, s.filtered
            );
        }
    }

    if !r.findings.is_empty() {
        out.push_str("\nfindings\n");
        let mut rows = vec![vec![
            "SEVERITY".to_owned(),
            "TITLE".to_owned(),
            "ASSET".to_owned(),
        ]];
        let mut sorted: Vec<_> = r.findings.iter().collect();
        sorted.sort_by(|a, b| b.severity.cmp(&a.severity).then_with(|| a.id.cmp(&b.id)));
        for f in sorted {
            rows.push(vec![
                f.severity.as_str().to_owned(),
                clean(&f.title),
                clean(&asset_text(&f.asset)),
            ]);
        }
        out.push_str(&columns("  ", &rows));
    }

    let up = r
        .hosts
        .iter()
        .filter(|h| h.status == picket_model::HostStatus::Up)
        .count();
    let _ = writeln!(
        out,
        "\n{up} of {} addresses up, {open_ports} open ports, {}; {} scan, {} probes, {:.2} s",
        r.stats.addresses_targeted,
        findings_text(&r.findings),
        clean(&r.stats.technique),
        r.stats.probes_sent,
        r.stats.duration_ms as f64 / 1000.0
    );
    out
}

fn findings_text(findings: &[picket_model::Finding]) -> String {
    if findings.is_empty() {
        return "no findings".to_owned();
    }
    let parts: Vec<String> = Severity::ALL
        .iter()
        .rev()
        .filter_map(|sev| {
            let n = findings.iter().filter(|f| f.severity == *sev).count();
            (n > 0).then(|| format!("{n} {sev}"))
        })
        .collect();
    format!("findings: {}", parts.join(", "))
}

/// A host-scan report as text: one block per host, then its findings, most severe first.
pub fn host_report(r: &HostReport) -> String {
    let mut out = String::new();
    for h in &r.hosts {
        match h.status {
            HostScanStatus::Failed => {
                let _ = writeln!(
                    out,
                    "{}  FAILED: {}",
                    clean(&h.target),
                    clean(h.error.as_deref().unwrap_or("unknown error"))
                );
            }
            HostScanStatus::Ok => {
                let os = h.os.as_ref().map(|o| clean(&o.name)).unwrap_or_default();
                let _ = writeln!(
                    out,
                    "{} ({})  {}  kernel {}  {} packages ({})  {} listening  {:.2} s",
                    clean(&h.target),
                    clean(&h.address),
                    os,
                    clean(h.kernel.as_deref().unwrap_or("-")),
                    h.packages.len(),
                    clean(h.package_manager.as_deref().unwrap_or("-")),
                    h.listening.len(),
                    h.duration_ms as f64 / 1000.0
                );
                let mine: Vec<&HostFinding> = r
                    .findings
                    .iter()
                    .filter(|f| f.asset.address.as_deref() == Some(h.address.as_str()))
                    .collect();
                let rows: Vec<Vec<String>> = mine
                    .iter()
                    .map(|f| {
                        vec![
                            f.severity.as_str().to_owned(),
                            clean(f.advisory.as_deref().unwrap_or(&f.id)),
                            clean(f.package.as_deref().unwrap_or("")),
                            clean(f.installed_version.as_deref().unwrap_or("")),
                            match (&f.package, &f.fixed_version) {
                                (Some(_), Some(v)) => format!("fixed {}", clean(v)),
                                (Some(_), None) => "no fix".to_owned(),
                                _ => String::new(),
                            },
                            clean(&f.title),
                        ]
                    })
                    .collect();
                out.push_str(&columns("  ", &rows));
            }
        }
    }
    let plain: Vec<picket_model::Finding> =
        r.findings.iter().map(HostFinding::to_finding).collect();
    let _ = write!(
        out,
        "\n{} of {} hosts inventoried, {} packages, {}; matched against {} advisories in {} ms; {:.2} s",
        r.stats.succeeded,
        r.stats.targets,
        r.stats.packages,
        findings_text(&plain),
        r.stats.kb_advisories,
        r.stats.matching_ms,
        r.stats.duration_ms as f64 / 1000.0
    );
    out.push('\n');
    out
}

/// A web-scan report as text: findings most severe first, then what was crawled.
pub fn web_report(r: &picket_model::WebReport) -> String {
    let mut out = String::new();
    let rows: Vec<Vec<String>> = r
        .findings
        .iter()
        .map(|f| {
            vec![
                f.severity.as_str().to_owned(),
                clean(&f.check),
                clean(&f.method),
                clean(&f.url),
                clean(f.parameter.as_deref().unwrap_or("-")),
                clean(&f.title),
            ]
        })
        .collect();
    out.push_str(&columns("", &rows));
    for w in &r.warnings {
        let _ = writeln!(out, "warning: {}", clean(w));
    }
    let plain: Vec<picket_model::Finding> = r.findings.iter().map(|f| f.to_finding()).collect();
    let _ =
        writeln!(
        out,
        "\n{}: {} pages, {} endpoints, {} injection points, {} requests ({} failed), {}{}; {:.2} s",
        clean(&r.web.target),
        r.stats.pages,
        r.stats.endpoints,
        r.stats.injection_points,
        r.stats.requests,
        r.stats.errors,
        findings_text(&plain),
        if r.web.authenticated { ", logged in" } else { "" },
        r.stats.duration_ms as f64 / 1000.0
    );
    out
}

/// How an asset is shown in one cell: `host:port/proto`, a URL, or whatever is known.
pub fn asset_text(a: &picket_model::Asset) -> String {
    if let Some(url) = &a.url {
        return url.clone();
    }
    let mut s = a
        .address
        .clone()
        .or_else(|| a.hostname.clone())
        .unwrap_or_default();
    if let Some(port) = a.port {
        let _ = write!(s, ":{port}");
        if let Some(proto) = a.protocol {
            let _ = write!(s, "/{proto}");
        }
    }
    s
}

/// `scans list` as text.
pub fn scan_list(entries: &[ListEntry]) -> String {
    let mut rows = vec![vec![
        "ID".to_owned(),
        "KIND".to_owned(),
        "STARTED".to_owned(),
        "HOSTS UP".to_owned(),
        "OPEN PORTS".to_owned(),
        "FINDINGS".to_owned(),
        "TARGETS".to_owned(),
    ]];
    for e in entries {
        match &e.summary {
            Ok(s) => rows.push(summary_row(s)),
            Err(err) => rows.push(vec![
                clean(&e.id),
                "?".to_owned(),
                format!("unreadable: {}", clean(&err.to_string())),
            ]),
        }
    }
    if entries.is_empty() {
        return "no scans stored\n".to_owned();
    }
    columns("", &rows)
}

fn summary_row(s: &ScanSummary) -> Vec<String> {
    let targets: Vec<String> = s.targets.iter().map(|t| clean(t)).collect();
    vec![
        clean(&s.id),
        s.kind.as_str().to_owned(),
        clean(&s.started_at),
        s.hosts_up.to_string(),
        s.open_ports.to_string(),
        s.findings.total().to_string(),
        targets.join(" "),
    ]
}

fn service_text(s: Option<&ServiceId>) -> String {
    let Some(s) = s else {
        return "-".to_owned();
    };
    let parts: Vec<&str> = [&s.name, &s.product, &s.version]
        .into_iter()
        .filter_map(|p| p.as_deref())
        .collect();
    if parts.is_empty() {
        "-".to_owned()
    } else {
        clean(&parts.join(" "))
    }
}

/// `scans diff` as text: `+` appeared, `-` disappeared, `~` changed.
pub fn net_diff(d: &NetDiff) -> String {
    let mut out = format!("diff {} .. {}\n", clean(&d.old), clean(&d.new));
    if d.is_empty() {
        out.push_str("no changes\n");
        return out;
    }
    let mut rows = Vec::new();
    let host_row = |sign: &str, h: &crate::diff::HostRef| {
        let names: Vec<String> = h.hostnames.iter().map(|n| clean(n)).collect();
        vec![
            sign.to_owned(),
            "host".to_owned(),
            clean(&h.address),
            String::new(),
            names.join(", "),
        ]
    };
    for h in &d.new_hosts {
        rows.push(host_row("+", h));
    }
    for h in &d.gone_hosts {
        rows.push(host_row("-", h));
    }
    for (sign, list) in [("+", &d.opened_ports), ("-", &d.closed_ports)] {
        for p in list {
            rows.push(vec![
                sign.to_owned(),
                "port".to_owned(),
                clean(&p.address),
                format!("{}/{}", p.port, p.protocol),
                service_text(p.service.as_ref()),
            ]);
        }
    }
    for c in &d.changed_services {
        rows.push(vec![
            "~".to_owned(),
            "service".to_owned(),
            clean(&c.address),
            format!("{}/{}", c.port, c.protocol),
            format!(
                "{} -> {}",
                service_text(Some(&c.old)),
                service_text(Some(&c.new))
            ),
        ]);
    }
    out.push_str(&columns("", &rows));
    let _ = writeln!(
        out,
        "{} new hosts, {} gone hosts, {} opened ports, {} closed ports, {} changed services",
        d.new_hosts.len(),
        d.gone_hosts.len(),
        d.opened_ports.len(),
        d.closed_ports.len(),
        d.changed_services.len()
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_long_cells_cut() {
        assert_eq!(clean("nginx\x1b]0;pwned\x07"), "nginx\\u{1b}]0;pwned\\u{7}");
        assert_eq!(clean("a\r\nb"), "a\\r\\nb");
        assert_eq!(clean("x\u{202e}y"), "x\\u{202e}y");
        let long = "a".repeat(100);
        assert_eq!(clean(&long).chars().count(), MAX_CELL + 1);
        assert_eq!(clean("OpenSSH 9.2p1"), "OpenSSH 9.2p1");
    }

    #[test]
    fn columns_align() {
        let rows = vec![
            vec!["PORT".to_owned(), "STATE".to_owned()],
            vec!["22/tcp".to_owned(), "open".to_owned()],
        ];
        assert_eq!(columns("  ", &rows), "  PORT    STATE\n  22/tcp  open\n");
    }
}
