//! The shared model of Picket: scans, hosts, ports, services and findings.
//!
//! Why a crate of its own: every scanner (netscan today; host, web and image scanners later), the
//! appliance's store, its report writers and the platform all speak these types. Keeping them in one
//! small crate with no I/O lets each of those depend on the vocabulary without depending on each other.
//!
//! The types are encoded twice: as JSON for users (see `shared/CONTRACT.md`) and as postcard records in
//! the store. Postcard is not self-describing, so these types must not use `skip_serializing_if`,
//! `flatten`, untagged enums or `serde_json::Value`: every field is always written. Optional keys are
//! `Option`s that the JSON writer may prune (`prune_nulls`).
#![forbid(unsafe_code)]

pub mod api;
#[cfg(feature = "sealed")]
pub mod sealed;

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Version string reported in every JSON report.
pub const PICKET_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Severity of a finding, ordered from least to most severe so that `--fail-on` is a comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error returned when a severity name is not one of the five the contract defines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownSeverity(pub String);

impl fmt::Display for UnknownSeverity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown severity {:?} (expected one of critical, high, medium, low, info)",
            self.0
        )
    }
}

impl std::error::Error for UnknownSeverity {}

impl FromStr for Severity {
    type Err = UnknownSeverity;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Severity::ALL
            .into_iter()
            .find(|sev| sev.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownSeverity(s.to_owned()))
    }
}

/// What kind of scan produced a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScanKind {
    Net,
    Host,
    Containers,
    Image,
    Web,
}

impl ScanKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ScanKind::Net => "net",
            ScanKind::Host => "host",
            ScanKind::Containers => "containers",
            ScanKind::Image => "image",
            ScanKind::Web => "web",
        }
    }
}

/// The `scan` object of every report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanMeta {
    /// Sortable unique id: `YYYYMMDDTHHMMSSZ-xxxxxxxx` (UTC start time, then random hex).
    pub id: String,
    pub kind: ScanKind,
    /// RFC 3339, UTC.
    pub started_at: String,
    /// RFC 3339, UTC.
    pub finished_at: String,
    /// The targets as the user gave them.
    pub targets: Vec<String>,
}

/// The asset a finding is about.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Asset {
    pub address: Option<String>,
    pub hostname: Option<String>,
    pub port: Option<u16>,
    pub protocol: Option<Protocol>,
    pub url: Option<String>,
}

/// A finding, as the contract defines it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable id: the same issue on the same asset gets the same id in every scan.
    pub id: String,
    pub title: String,
    pub severity: Severity,
    pub cwe: Vec<u32>,
    pub cve: Vec<String>,
    pub asset: Asset,
    /// Human-readable evidence: what was sent and seen.
    pub evidence: String,
    pub remediation: String,
}

/// Transport protocol of a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// State of a scanned port, named as nmap names them so users can compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PortState {
    #[serde(rename = "open")]
    Open,
    #[serde(rename = "closed")]
    Closed,
    #[serde(rename = "filtered")]
    Filtered,
    /// UDP with no answer at all: it may be open and silent, or filtered.
    #[serde(rename = "open|filtered")]
    OpenFiltered,
}

impl PortState {
    pub fn as_str(self) -> &'static str {
        match self {
            PortState::Open => "open",
            PortState::Closed => "closed",
            PortState::Filtered => "filtered",
            PortState::OpenFiltered => "open|filtered",
        }
    }
}

impl fmt::Display for PortState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What was identified behind an open port.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    /// Protocol name, lowercase: `ssh`, `http`, `https`, `smtp`, `dns`, ...
    pub name: String,
    /// Implementation, e.g. `OpenSSH`, `nginx`, `Redis`.
    pub product: Option<String>,
    /// Version as the service announced it, e.g. `9.2p1`.
    pub version: Option<String>,
    /// Extra detail the service revealed (distribution patch level, OS hint...).
    pub extra: Option<String>,
    /// CPE 2.3 names.
    pub cpe: Vec<String>,
    /// True when the service spoke TLS on this port (the `tls` object then holds the details).
    pub tunnel_tls: bool,
    /// First bytes the service sent, printable-escaped and truncated, for humans.
    pub banner: Option<String>,
}

/// TLS details of a port that speaks TLS.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsInfo {
    pub subject: String,
    pub issuer: String,
    pub sans: Vec<String>,
    /// RFC 3339.
    pub not_before: String,
    /// RFC 3339.
    pub not_after: String,
    /// Protocol versions the server accepted, e.g. `["TLSv1.2", "TLSv1.3"]`.
    pub versions: Vec<String>,
    pub self_signed: bool,
    /// Hex SHA-256 of the leaf certificate (DER).
    pub sha256: String,
}

/// One port's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortResult {
    pub port: u16,
    pub protocol: Protocol,
    pub state: PortState,
    /// Why the state was decided: `syn-ack`, `rst`, `no-response`, `icmp-unreach`, `udp-response`, `connect`...
    pub reason: String,
    pub service: Option<Service>,
    pub tls: Option<TlsInfo>,
}

/// Whether a host answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HostStatus {
    Up,
    Down,
}

/// Operating-system family guessed from a host's TCP/IP stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OsGuess {
    /// `linux`, `windows`, `bsd` (FreeBSD, macOS), `network-device`, `unknown`.
    pub family: String,
    /// 0-100.
    pub confidence: u8,
    /// What the guess rests on, e.g. `ttl=64 window=64240 options=MSS,SACK,TS,NOP,WS`.
    pub evidence: String,
}

/// Per-host counts of ports that are not listed individually.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortSummary {
    pub open: u32,
    pub closed: u32,
    pub filtered: u32,
    pub open_filtered: u32,
}

/// One host of a network scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetHost {
    pub address: String,
    pub status: HostStatus,
    /// Why the host is considered up (or down): `arp-response`, `nd-response`, `echo-reply`,
    /// `timestamp-reply`, `syn-ack`, `rst`, `user-set` (with `--no-ping`), `no-response`.
    pub reason: String,
    pub hostnames: Vec<String>,
    pub mac: Option<String>,
    pub os: Option<OsGuess>,
    /// Open and open|filtered ports; closed and filtered too when `--all-ports` was given.
    pub ports: Vec<PortResult>,
    /// Counts over every scanned port of this host, listed or not.
    pub port_summary: PortSummary,
    /// Smoothed round-trip time in microseconds, when measured.
    pub rtt_us: Option<u64>,
}

/// A whole network-scan report (`picket scan net --format json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetReport {
    pub picket_version: String,
    pub scan: ScanMeta,
    pub hosts: Vec<NetHost>,
    pub findings: Vec<Finding>,
    /// Scan statistics (probes sent, retransmissions, scan technique...), for humans and benchmarks.
    pub stats: ScanStats,
}

/// Counters that explain how a scan went.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanStats {
    /// `syn` or `connect`.
    pub technique: String,
    pub addresses_targeted: u64,
    pub hosts_up: u64,
    pub probes_sent: u64,
    pub retransmissions: u64,
    /// Times the congestion control detected loss or rate limiting and slowed down.
    pub rate_limit_events: u64,
    pub duration_ms: u64,
}

/// The operating system of a scanned host, from its `/etc/os-release`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OsRelease {
    /// `ID`: `debian`, `ubuntu`, `rocky`, `almalinux`, `rhel`, `alpine`...
    pub id: String,
    /// `VERSION_ID`: `12`, `22.04`, `9.4`, `3.20.3`.
    pub version_id: String,
    /// `PRETTY_NAME` (or `NAME` when there is none).
    pub name: String,
    /// `ID_LIKE`, split on spaces.
    pub id_like: Vec<String>,
    /// `VERSION_CODENAME`, when given.
    pub codename: Option<String>,
}

/// An installed package, as the contract defines it.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Package {
    pub name: String,
    /// The full version as the package manager orders it (dpkg: `[epoch:]upstream[-revision]`;
    /// rpm: `[epoch:]version-release`; apk: `version-rREL`).
    pub version: String,
    pub arch: String,
    /// The source package (Debian `Source:`, rpm's source rpm name, apk's origin); the binary name
    /// when the package is its own source.
    pub source_name: String,
    pub source_version: String,
    /// OSV ecosystem with release, e.g. `Debian:12`, `Rocky Linux:9`, `Alpine:v3.20`.
    pub ecosystem: String,
}

/// A listening socket on a scanned host.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ListeningSocket {
    pub protocol: Protocol,
    /// Local address as `ss` shows it (`0.0.0.0`, `::`, `127.0.0.1`, `*`).
    pub address: String,
    pub port: u16,
    /// Process name, when the account we ran as may see it.
    pub process: Option<String>,
}

/// Whether a host in a host scan was inventoried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HostScanStatus {
    /// Connected, inventoried, matched.
    Ok,
    /// The scan of this host failed; `error` says why. Other hosts are unaffected.
    Failed,
}

/// One host of a host (SSH) scan: the contract's `host` object, plus the target as given and
/// the outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostInfo {
    /// The target as the user gave it (`ssh://root@198.18.0.10`).
    pub target: String,
    /// The address connected to.
    pub address: String,
    pub status: HostScanStatus,
    /// Why the scan of this host failed (status `failed`).
    pub error: Option<String>,
    pub os: Option<OsRelease>,
    /// `uname -r` of the running kernel.
    pub kernel: Option<String>,
    /// The package manager whose database was read: `dpkg`, `rpm` or `apk`.
    pub package_manager: Option<String>,
    pub packages: Vec<Package>,
    pub listening: Vec<ListeningSocket>,
    /// SHA-256 fingerprint of the host key, as OpenSSH prints it (`SHA256:...`).
    pub host_key: Option<String>,
    /// How long this host took, connect to match.
    pub duration_ms: u64,
}

/// A finding of a host scan: the contract's finding plus, for package findings, the package,
/// installed and fixed versions and the advisory (null for configuration findings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostFinding {
    pub id: String,
    pub title: String,
    pub severity: Severity,
    pub cwe: Vec<u32>,
    pub cve: Vec<String>,
    pub asset: Asset,
    pub evidence: String,
    pub remediation: String,
    pub package: Option<String>,
    pub installed_version: Option<String>,
    /// `None` when no fix is known (an unfixed advisory).
    pub fixed_version: Option<String>,
    /// The advisory id (`DSA-5678-1`, `DEBIAN-CVE-2024-1234`, `RLSA-2024:1234`, `GHSA-...`).
    pub advisory: Option<String>,
    /// The advisory's other ids (CVE, GHSA...).
    pub aliases: Vec<String>,
}

impl HostFinding {
    /// The contract's plain finding (for writers that know only those, such as SARIF).
    pub fn to_finding(&self) -> Finding {
        Finding {
            id: self.id.clone(),
            title: self.title.clone(),
            severity: self.severity,
            cwe: self.cwe.clone(),
            cve: self.cve.clone(),
            asset: self.asset.clone(),
            evidence: self.evidence.clone(),
            remediation: self.remediation.clone(),
        }
    }
}

/// Counters of a host scan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostScanStats {
    pub targets: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub packages: u64,
    /// Advisories in the knowledge base when the scan matched.
    pub kb_advisories: u64,
    /// Time spent matching packages against the knowledge base, all hosts together.
    pub matching_ms: u64,
    pub duration_ms: u64,
}

/// A whole host-scan report (`picket scan host --format json`). `host` is the contract's object
/// and is set when exactly one target was scanned; `hosts` lists every target, failed ones too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostReport {
    pub picket_version: String,
    pub scan: ScanMeta,
    pub host: Option<HostInfo>,
    pub hosts: Vec<HostInfo>,
    pub findings: Vec<HostFinding>,
    pub stats: HostScanStats,
}

/// Evidence of a web finding: the request as sent and an excerpt of the response around what
/// proved the issue, so a developer can reproduce it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebEvidence {
    pub request: String,
    pub response_excerpt: String,
}

/// A finding of a web scan: the contract's finding plus `url`, `method`, `parameter` (null for
/// page-level findings) and structured evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebFinding {
    pub id: String,
    pub title: String,
    pub severity: Severity,
    pub cwe: Vec<u32>,
    pub cve: Vec<String>,
    pub asset: Asset,
    pub url: String,
    pub method: String,
    pub parameter: Option<String>,
    /// Where the parameter is: `query`, `form`, `multipart`, `json`, `path`, `cookie`, `header`
    /// (null for page-level findings).
    pub location: Option<String>,
    /// The check that found it (`xss-reflected`, `sqli-boolean`, `missing-header`...).
    pub check: String,
    pub evidence: WebEvidence,
    pub remediation: String,
}

impl WebFinding {
    /// The contract's plain finding (for writers that know only those, such as SARIF).
    pub fn to_finding(&self) -> Finding {
        let param = self
            .parameter
            .as_deref()
            .map(|p| format!(" parameter {p}"))
            .unwrap_or_default();
        Finding {
            id: self.id.clone(),
            title: self.title.clone(),
            severity: self.severity,
            cwe: self.cwe.clone(),
            cve: self.cve.clone(),
            asset: self.asset.clone(),
            evidence: format!(
                "{} {}{param}\n--- request ---\n{}\n--- response excerpt ---\n{}",
                self.method, self.url, self.evidence.request, self.evidence.response_excerpt
            ),
            remediation: self.remediation.clone(),
        }
    }
}

/// What a web scan saw of the site.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebSite {
    /// The start URL.
    pub target: String,
    /// Whether the scan ran logged in (form login, cookie or header token).
    pub authenticated: bool,
    /// Pages fetched by the crawler (URLs, in crawl order, capped).
    pub pages: Vec<String>,
    /// Distinct endpoints (method, path pattern, parameter names) tested.
    pub endpoints: Vec<String>,
}

/// Counters of a web scan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebScanStats {
    /// Requests sent, all phases (crawl, login, checks).
    pub requests: u64,
    pub pages: u64,
    pub endpoints: u64,
    pub injection_points: u64,
    pub max_requests: u64,
    pub max_rps: Option<u32>,
    /// Requests that failed (timeouts, resets, malformed responses).
    pub errors: u64,
    pub relogins: u64,
    pub duration_ms: u64,
}

/// A whole web-scan report (`picket scan web --format json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebReport {
    pub picket_version: String,
    pub scan: ScanMeta,
    pub web: WebSite,
    pub findings: Vec<WebFinding>,
    pub stats: WebScanStats,
    /// Conditions that limited the scan (budget spent, deadline, hostile responses).
    pub warnings: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_orders_and_parses() {
        assert!(Severity::Critical > Severity::High);
        assert!(Severity::Info < Severity::Low);
        assert_eq!("HIGH".parse::<Severity>(), Ok(Severity::High));
        assert!("severe".parse::<Severity>().is_err());
    }

    #[test]
    fn port_state_json_names_match_contract() {
        let s = serde_json::to_string(&PortState::OpenFiltered).unwrap_or_default();
        assert_eq!(s, "\"open|filtered\"");
    }

    #[test]
    fn net_report_round_trips_through_postcard() {
        let report = NetReport {
            picket_version: PICKET_VERSION.into(),
            scan: ScanMeta {
                id: "20261121T070000Z-deadbeef".into(),
                kind: ScanKind::Net,
                started_at: "2026-11-21T07:00:00Z".into(),
                finished_at: "2026-11-21T07:00:01Z".into(),
                targets: vec!["198.18.0.0/24".into()],
            },
            hosts: vec![NetHost {
                address: "198.18.0.10".into(),
                status: HostStatus::Up,
                reason: "arp-response".into(),
                hostnames: vec!["ssh.test".into()],
                mac: Some("02:00:00:00:00:0a".into()),
                os: None,
                ports: vec![PortResult {
                    port: 22,
                    protocol: Protocol::Tcp,
                    state: PortState::Open,
                    reason: "syn-ack".into(),
                    service: Some(Service {
                        name: "ssh".into(),
                        product: Some("OpenSSH".into()),
                        version: Some("9.2p1".into()),
                        ..Service::default()
                    }),
                    tls: None,
                }],
                port_summary: PortSummary {
                    open: 1,
                    closed: 999,
                    ..PortSummary::default()
                },
                rtt_us: Some(80),
            }],
            findings: vec![],
            stats: ScanStats::default(),
        };
        let bytes = postcard::to_stdvec(&report).unwrap_or_default();
        let back: Result<NetReport, _> = postcard::from_bytes(&bytes);
        assert_eq!(back.ok(), Some(report));
    }
}
