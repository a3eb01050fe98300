//! The daemon's configuration file (TOML), and the fragment the platform may send with the
//! `update_config` command.
//!
//! Why strict: a typo in a config file that is silently ignored (`scopes = [...]`) is a scanner
//! aimed at nothing, or at everything. Every table denies unknown keys; the error names the key,
//! the file and the line. Every key is documented in docs/daemon.md.
//!
//! Effective configuration, in increasing precedence: built-in defaults < the console settings
//! stored on the box (platform URL and CA fingerprint, proxy) < this file < the platform-managed
//! fragment (only `[scan]`, `[outbox]` and `[log]` keys; anything else in it is refused).

use crate::app::AppError;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Where `picket daemon` looks without `--config`.
pub const DEFAULT_CONFIG: &str = "/etc/picket/picket.toml";
/// Largest config file read.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub platform: PlatformConfig,
    #[serde(default)]
    pub proxy: Option<ProxyConfig>,
    #[serde(default)]
    pub scan: ScanConfig,
    #[serde(default)]
    pub outbox: OutboxConfig,
    #[serde(default)]
    pub metrics: MetricsConfig,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub secrets: SecretsConfig,
    #[serde(default)]
    pub daemon: DaemonTuning,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlatformConfig {
    /// `https://HOST[:PORT]`; the API is under `/api/v1`.
    pub url: Option<String>,
    /// PEM file of CAs trusted for the platform's certificate at enrollment (besides the system
    /// roots unless `ca_fingerprint` is set).
    pub ca_file: Option<PathBuf>,
    /// SHA-256 of the platform CA certificate (hex, colons optional): at enrollment the server
    /// chain must contain this certificate and chain to it; nothing else is trusted.
    pub ca_fingerprint: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyConfig {
    /// `http://HOST:PORT` of an HTTP CONNECT proxy.
    pub url: String,
    pub username: Option<String>,
    /// Name of an environment variable holding the password (e.g. from the unit's
    /// `LoadCredential=` via `EnvironmentFile=`); else the console-stored sealed password.
    pub password_env: Option<String>,
    /// Extra CA bundle (PEM) of a TLS-inspecting proxy; trusted at enrollment only (see docs).
    pub ca_bundle: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScanConfig {
    /// Networks jobs may target. Required for jobs: with none, every job is refused.
    #[serde(default)]
    pub scope: Vec<String>,
    #[serde(default = "default_max_jobs")]
    pub max_concurrent_jobs: u32,
    #[serde(default = "default_timeout")]
    pub default_timeout_secs: u64,
}

fn default_max_jobs() -> u32 {
    2
}
fn default_timeout() -> u64 {
    3600
}

impl Default for ScanConfig {
    fn default() -> Self {
        ScanConfig {
            scope: Vec::new(),
            max_concurrent_jobs: default_max_jobs(),
            default_timeout_secs: default_timeout(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxConfig {
    /// Bytes of results kept for upload while offline; the oldest chunks are dropped beyond it.
    #[serde(default = "default_quota")]
    pub quota_bytes: u64,
}

fn default_quota() -> u64 {
    256 * 1024 * 1024
}

impl Default for OutboxConfig {
    fn default() -> Self {
        OutboxConfig {
            quota_bytes: default_quota(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// `127.0.0.1:9187`: loopback only (anything else is refused). Unset: no metrics listener.
    pub listen: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// error, warn, info, debug, trace (`PICKET_LOG` overrides with a tracing filter).
    #[serde(default = "default_level")]
    pub level: String,
}

fn default_level() -> String {
    "info".into()
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: default_level(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretsConfig {
    /// Key-encryption key file, used when no systemd credential `picket-kek` is passed.
    pub kek_file: Option<PathBuf>,
}

/// Timings; the defaults suit production, tests shorten them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonTuning {
    /// How long one long-poll is held open by the platform (≤ 60).
    #[serde(default = "default_poll_wait")]
    pub poll_wait_secs: u64,
    #[serde(default = "default_heartbeat")]
    pub heartbeat_secs: u64,
    /// Longest wait between retries after errors (backoff with jitter grows up to it).
    #[serde(default = "default_backoff")]
    pub max_backoff_secs: u64,
}

fn default_poll_wait() -> u64 {
    25
}
fn default_heartbeat() -> u64 {
    60
}
fn default_backoff() -> u64 {
    60
}

impl Default for DaemonTuning {
    fn default() -> Self {
        DaemonTuning {
            poll_wait_secs: default_poll_wait(),
            heartbeat_secs: default_heartbeat(),
            max_backoff_secs: default_backoff(),
        }
    }
}

/// The part of the configuration the platform may manage (`update_config` command).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManagedConfig {
    #[serde(default)]
    pub scan: Option<ManagedScan>,
    #[serde(default)]
    pub outbox: Option<ManagedOutbox>,
    #[serde(default)]
    pub log: Option<ManagedLog>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManagedScan {
    pub scope: Option<Vec<String>>,
    pub max_concurrent_jobs: Option<u32>,
    pub default_timeout_secs: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManagedOutbox {
    pub quota_bytes: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManagedLog {
    pub level: Option<String>,
}

fn config_err(path: &Path, reason: impl Into<String>) -> AppError {
    AppError::Config {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// toml's message plus the line, without its multi-line source excerpt.
fn toml_reason(text: &str, e: &toml::de::Error) -> String {
    let line = e.span().map(|s| {
        text.get(..s.start)
            .map_or(0, |t| t.matches('\n').count() + 1)
    });
    match line {
        Some(l) => format!("line {l}: {}", e.message()),
        None => e.message().to_owned(),
    }
}

impl Config {
    /// Reads and validates `path`. A missing default file is an empty configuration; a missing
    /// explicitly named file is an error.
    pub fn load(path: &Path, explicit: bool) -> Result<Config, AppError> {
        use std::io::Read;
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
                return Ok(Config::default())
            }
            Err(e) => return Err(config_err(path, format!("cannot open: {e}"))),
        };
        let mut bytes = Vec::new();
        file.take(MAX_CONFIG_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| config_err(path, format!("cannot read: {e}")))?;
        if bytes.len() as u64 > MAX_CONFIG_BYTES {
            return Err(config_err(
                path,
                format!("larger than {MAX_CONFIG_BYTES} bytes"),
            ));
        }
        let text = String::from_utf8(bytes).map_err(|_| config_err(path, "not UTF-8 text"))?;
        Config::parse(&text, path)
    }

    /// Parses and validates TOML text; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Config, AppError> {
        let cfg: Config =
            toml::from_str(text).map_err(|e| config_err(path, toml_reason(text, &e)))?;
        cfg.validate().map_err(|r| config_err(path, r))?;
        Ok(cfg)
    }

    /// Checks values that parse but make no sense.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(u) = &self.platform.url {
            check_platform_url(u).map_err(|r| format!("platform.url: {r}"))?;
        }
        if let Some(fp) = &self.platform.ca_fingerprint {
            parse_fingerprint(fp).map_err(|r| format!("platform.ca_fingerprint: {r}"))?;
        }
        if let Some(p) = &self.proxy {
            check_proxy_url(&p.url).map_err(|r| format!("proxy.url: {r}"))?;
            if let Some(v) = &p.password_env {
                if v.is_empty() || !v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                    return Err(format!("proxy.password_env {v:?}: not a variable name"));
                }
            }
        }
        parse_scope(&self.scan.scope).map_err(|r| format!("scan.scope: {r}"))?;
        if !(1..=64).contains(&self.scan.max_concurrent_jobs) {
            return Err("scan.max_concurrent_jobs: must be 1..=64".into());
        }
        if !(1..=7 * 86400).contains(&self.scan.default_timeout_secs) {
            return Err("scan.default_timeout_secs: must be 1..=604800".into());
        }
        if self.outbox.quota_bytes < 64 * 1024 {
            return Err("outbox.quota_bytes: must be at least 65536".into());
        }
        if let Some(l) = &self.metrics.listen {
            parse_metrics_listen(l).map_err(|r| format!("metrics.listen: {r}"))?;
        }
        check_level(&self.log.level).map_err(|r| format!("log.level: {r}"))?;
        let d = &self.daemon;
        if !(1..=picket_model::api::MAX_POLL_WAIT_SECS).contains(&d.poll_wait_secs) {
            return Err("daemon.poll_wait_secs: must be 1..=60".into());
        }
        if !(1..=3600).contains(&d.heartbeat_secs) {
            return Err("daemon.heartbeat_secs: must be 1..=3600".into());
        }
        if !(1..=3600).contains(&d.max_backoff_secs) {
            return Err("daemon.max_backoff_secs: must be 1..=3600".into());
        }
        Ok(())
    }

    /// This configuration with a platform-managed fragment applied over it.
    pub fn with_managed(&self, m: &ManagedConfig) -> Config {
        let mut c = self.clone();
        if let Some(s) = &m.scan {
            if let Some(v) = &s.scope {
                c.scan.scope = v.clone();
            }
            if let Some(v) = s.max_concurrent_jobs {
                c.scan.max_concurrent_jobs = v;
            }
            if let Some(v) = s.default_timeout_secs {
                c.scan.default_timeout_secs = v;
            }
        }
        if let Some(v) = m.outbox.as_ref().and_then(|o| o.quota_bytes) {
            c.outbox.quota_bytes = v;
        }
        if let Some(v) = m.log.as_ref().and_then(|l| l.level.clone()) {
            c.log.level = v;
        }
        c
    }

    /// The scope as networks.
    pub fn scope(&self) -> Vec<IpNet> {
        parse_scope(&self.scan.scope).unwrap_or_default()
    }
}

impl ManagedConfig {
    /// Parses a fragment sent by the platform; unknown keys (anything outside `[scan]`,
    /// `[outbox]`, `[log]`) are refused with their name. `base` is checked with it applied.
    pub fn parse(text: &str, base: &Config) -> Result<ManagedConfig, String> {
        if text.len() > 64 * 1024 {
            return Err("fragment larger than 64 KiB".into());
        }
        let m: ManagedConfig = toml::from_str(text).map_err(|e| toml_reason(text, &e))?;
        base.with_managed(&m).validate()?;
        Ok(m)
    }

    /// Merges `newer` over `self` (keys `newer` sets win).
    pub fn merge(&self, newer: &ManagedConfig) -> ManagedConfig {
        let mut m = self.clone();
        if let Some(s) = &newer.scan {
            let cur = m.scan.get_or_insert_with(ManagedScan::default);
            if s.scope.is_some() {
                cur.scope.clone_from(&s.scope);
            }
            if s.max_concurrent_jobs.is_some() {
                cur.max_concurrent_jobs = s.max_concurrent_jobs;
            }
            if s.default_timeout_secs.is_some() {
                cur.default_timeout_secs = s.default_timeout_secs;
            }
        }
        if let Some(o) = &newer.outbox {
            m.outbox = Some(o.clone());
        }
        if let Some(l) = &newer.log {
            m.log = Some(l.clone());
        }
        m
    }
}

/// `https://host[:port]` with nothing after the authority but an optional `/`.
pub fn check_platform_url(url: &str) -> Result<(), String> {
    let u = url::Url::parse(url).map_err(|e| format!("{url:?}: {e}"))?;
    if u.scheme() != "https" {
        return Err(format!("{url:?}: must be https://"));
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(format!("{url:?}: no host"));
    }
    if !(u.path() == "/" || u.path().is_empty()) || u.query().is_some() || !u.username().is_empty()
    {
        return Err(format!(
            "{url:?}: give only scheme, host and port (the API path is fixed)"
        ));
    }
    Ok(())
}

/// `http://host:port` (a CONNECT proxy; credentials belong in `username`/the password, not the URL).
pub fn check_proxy_url(url: &str) -> Result<(), String> {
    let u = url::Url::parse(url).map_err(|e| format!("{url:?}: {e}"))?;
    if u.scheme() != "http" {
        return Err(format!(
            "{url:?}: must be http:// (an HTTP CONNECT proxy; the tunnel inside is TLS)"
        ));
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(format!("{url:?}: no host"));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(format!(
            "{url:?}: put credentials in username/password, not the URL"
        ));
    }
    Ok(())
}

/// A SHA-256 fingerprint: 64 hex digits, colons and spaces ignored, any case.
pub fn parse_fingerprint(s: &str) -> Result<[u8; 32], String> {
    let hex: String = s
        .chars()
        .filter(|c| !matches!(c, ':' | ' '))
        .collect::<String>()
        .to_ascii_lowercase();
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("{s:?}: not a SHA-256 fingerprint (64 hex digits)"));
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        let pair = hex.get(2 * i..2 * i + 2).unwrap_or("00");
        *o = u8::from_str_radix(pair, 16).map_err(|e| e.to_string())?;
    }
    Ok(out)
}

fn parse_scope(scope: &[String]) -> Result<Vec<IpNet>, String> {
    scope
        .iter()
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
                .map(|n| n.trunc())
                .map_err(|_| format!("{s:?}: not a CIDR or address"))
        })
        .collect()
}

/// The metrics listen address; only loopback addresses are accepted.
pub fn parse_metrics_listen(s: &str) -> Result<SocketAddr, String> {
    let a: SocketAddr = s
        .parse()
        .map_err(|_| format!("{s:?}: not ADDRESS:PORT (e.g. 127.0.0.1:9187)"))?;
    if !a.ip().is_loopback() {
        return Err(format!(
            "{s:?}: metrics are served on loopback only (127.0.0.0/8 or ::1)"
        ));
    }
    Ok(a)
}

fn check_level(l: &str) -> Result<(), String> {
    match l {
        "error" | "warn" | "info" | "debug" | "trace" => Ok(()),
        _ => Err(format!("{l:?}: one of error, warn, info, debug, trace")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
[platform]
url = "https://platform.example:8443"
ca_fingerprint = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89"

[proxy]
url = "http://proxy.example:3128"
username = "picket"
password_env = "PICKET_PROXY_PASSWORD"

[scan]
scope = ["198.18.0.0/15", "2001:db8::/32", "192.0.2.7"]
max_concurrent_jobs = 2
default_timeout_secs = 3600

[outbox]
quota_bytes = 268435456

[metrics]
listen = "127.0.0.1:9187"

[log]
level = "info"
"#;

    fn p() -> &'static Path {
        Path::new("/etc/picket/picket.toml")
    }

    #[test]
    fn the_documented_example_parses() {
        let c = Config::parse(EXAMPLE, p()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.scope().len(), 3);
        assert_eq!(c.scan.max_concurrent_jobs, 2);
        // docs/daemon.md carries the same example; keep them equal.
        let doc = include_str!("../../docs/daemon.md");
        assert!(
            doc.contains(EXAMPLE.trim()),
            "docs/daemon.md example differs"
        );
    }

    #[test]
    fn unknown_keys_are_errors_naming_key_file_and_line() {
        let e = Config::parse("[scan]\nscopes = [\"10.0.0.0/8\"]\n", p())
            .err()
            .unwrap_or_else(|| panic!("accepted a typo"));
        let msg = e.to_string();
        assert!(
            msg.contains("scopes") && msg.contains("picket.toml") && msg.contains("line 2"),
            "{msg}"
        );
        assert_eq!(e.exit_code(), 2);
        assert!(Config::parse("[nope]\n", p()).is_err());
    }

    #[test]
    fn values_are_checked() {
        for bad in [
            "[metrics]\nlisten = \"0.0.0.0:9187\"\n",
            "[metrics]\nlisten = \"192.0.2.1:9187\"\n",
            "[platform]\nurl = \"http://x\"\n",
            "[platform]\nurl = \"https://x/api\"\n",
            "[proxy]\nurl = \"http://u:p@x:3128\"\n",
            "[scan]\nscope = [\"10.0.0.0/33\"]\n",
            "[scan]\nmax_concurrent_jobs = 0\n",
            "[log]\nlevel = \"loud\"\n",
            "[platform]\nca_fingerprint = \"abcd\"\n",
        ] {
            assert!(Config::parse(bad, p()).is_err(), "{bad}");
        }
        assert!(Config::parse("[metrics]\nlisten = \"[::1]:9187\"\n", p()).is_ok());
    }

    #[test]
    fn managed_fragment_only_touches_managed_keys() {
        let base = Config::parse(EXAMPLE, p()).unwrap_or_else(|e| panic!("{e}"));
        let m = ManagedConfig::parse("[scan]\nmax_concurrent_jobs = 4\n", &base)
            .unwrap_or_else(|e| panic!("{e}"));
        let eff = base.with_managed(&m);
        assert_eq!(eff.scan.max_concurrent_jobs, 4);
        assert_eq!(eff.scan.scope, base.scan.scope);
        let e = ManagedConfig::parse("[proxy]\nurl = \"http://evil:3128\"\n", &base);
        assert!(e.as_ref().is_err_and(|e| e.contains("proxy")), "{e:?}");
        assert!(ManagedConfig::parse("[scan]\nmax_concurrent_jobs = 0\n", &base).is_err());
        let merged =
            m.merge(&ManagedConfig::parse("[log]\nlevel = \"debug\"\n", &base).unwrap_or_default());
        let eff = base.with_managed(&merged);
        assert_eq!(
            (eff.scan.max_concurrent_jobs, eff.log.level.as_str()),
            (4, "debug")
        );
    }

    #[test]
    fn fingerprints_parse_with_or_without_colons() {
        let a = parse_fingerprint(&"ab".repeat(32));
        let b = parse_fingerprint(&vec!["AB"; 32].join(":"));
        assert_eq!(a, b);
        assert!(a.is_ok());
    }
}
