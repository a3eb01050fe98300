//! Parsers of what the inventory commands print.
//!
//! The scanned host is not trusted: its commands may print anything (a hostile login shell, a
//! broken package database). So every parser is a pure function over the bytes received, bounded
//! in what it keeps, and fails with an [`OutputError`] rather than guessing; the session layer
//! adds the host and command to make it a [`crate::NetscanError::SshBadOutput`].

use std::collections::BTreeMap;
use std::fmt;

use picket_model::{ListeningSocket, OsRelease, Package, Protocol};

/// Most packages one host may report; the largest real systems have a few thousand.
pub const MAX_PACKAGES: usize = 200_000;
/// Most listening sockets kept.
pub const MAX_SOCKETS: usize = 65_536;
/// Most lines of sshd configuration (all files together) considered.
pub const MAX_CONFIG_LINES: usize = 100_000;
/// Include nesting followed in sshd configuration files.
const MAX_INCLUDE_DEPTH: usize = 8;
/// Work allowed while evaluating Includes (one unit per line visited and per file name matched
/// against a glob), all nesting levels together: a hostile host could otherwise make every file
/// include every other one and cost exponential time. Real configurations need a few hundred.
const MAX_CONFIG_VISITS: usize = 20_000;

/// Why a command's output was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum OutputError {
    /// Text was expected; the bytes are not UTF-8 from this offset on.
    NotUtf8 { offset: usize },
    /// A line (1-based) does not have the command's format.
    BadLine { line: usize, reason: &'static str },
    /// Something every valid output contains is missing.
    Missing { what: &'static str },
    /// More records than any real host has.
    TooMany { what: &'static str, limit: usize },
}

impl fmt::Display for OutputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OutputError::NotUtf8 { offset } => {
                write!(f, "not UTF-8 text (invalid byte at offset {offset})")
            }
            OutputError::BadLine { line, reason } => write!(f, "line {line}: {reason}"),
            OutputError::Missing { what } => write!(f, "missing {what}"),
            OutputError::TooMany { what, limit } => write!(f, "more than {limit} {what}"),
        }
    }
}

impl std::error::Error for OutputError {}

/// The output as text, or where it stops being UTF-8.
pub fn text(bytes: &[u8]) -> Result<&str, OutputError> {
    std::str::from_utf8(bytes).map_err(|e| OutputError::NotUtf8 {
        offset: e.valid_up_to(),
    })
}

/// Lines of `s` with their 1-based numbers, skipping blank ones.
fn numbered_lines(s: &str) -> impl Iterator<Item = (usize, &str)> {
    s.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .filter(|(_, l)| !l.trim().is_empty())
}

// ---------------------------------------------------------------------------------------------
// os-release
// ---------------------------------------------------------------------------------------------

/// Parses `/etc/os-release` (shell-style `KEY=value` assignments, os-release(5)).
///
/// Lines that are not assignments are ignored, as systemd does; an output with no assignment at
/// all is refused, since every real os-release has at least `ID` or `NAME`.
pub fn os_release(bytes: &[u8]) -> Result<OsRelease, OutputError> {
    let s = text(bytes)?;
    let mut vars: BTreeMap<&str, String> = BTreeMap::new();
    for (_, line) in numbered_lines(s) {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            continue;
        }
        if let Some(v) = unquote_shell(value) {
            vars.entry(key).or_insert(v);
        }
    }
    if !vars.contains_key("ID") && !vars.contains_key("NAME") {
        return Err(OutputError::Missing {
            what: "ID= and NAME= (not an os-release file)",
        });
    }
    let get = |k: &str| vars.get(k).cloned().unwrap_or_default();
    let id = match vars.get("ID") {
        Some(id) if !id.is_empty() => id.clone(),
        // os-release(5): "If not set, a default of ID=linux may be used."
        _ => "linux".to_owned(),
    };
    let name = match vars.get("PRETTY_NAME") {
        Some(p) if !p.is_empty() => p.clone(),
        _ => get("NAME"),
    };
    Ok(OsRelease {
        id,
        version_id: get("VERSION_ID"),
        name,
        id_like: get("ID_LIKE")
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
        codename: vars
            .get("VERSION_CODENAME")
            .filter(|c| !c.is_empty())
            .cloned(),
    })
}

/// The value of a shell assignment: `"double"` (with `\` escapes), `'single'` or bare.
/// `None` when a quote is not closed.
fn unquote_shell(v: &str) -> Option<String> {
    if let Some(inner) = v.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => return Some(out),
                '\\' => match chars.next() {
                    Some(e @ ('"' | '\\' | '$' | '`')) => out.push(e),
                    Some(other) => {
                        out.push('\\');
                        out.push(other);
                    }
                    None => return None,
                },
                c => out.push(c),
            }
        }
        None
    } else if let Some(inner) = v.strip_prefix('\'') {
        inner.split_once('\'').map(|(s, _)| s.to_owned())
    } else {
        Some(v.to_owned())
    }
}

// ---------------------------------------------------------------------------------------------
// Package databases
// ---------------------------------------------------------------------------------------------

/// The dpkg-query format the inventory asks for: one tab-separated line per package.
pub const DPKG_FORMAT: &str = "${Package}\\t${Version}\\t${Architecture}\\t${source:Package}\\t${source:Version}\\t${db:Status-Abbrev}\\n";

/// Whether a dpkg status abbreviation (`ii `, `hi `, `rc `...) means the package's files are on
/// disk. The second letter is the package state: `n` not installed and `c` config-files only are
/// absent; installed, triggers-pending/awaited, unpacked and half-configured/installed are
/// present, and so may be vulnerable.
pub fn dpkg_status_installed(abbrev: &str) -> bool {
    matches!(
        abbrev.as_bytes().get(1),
        Some(b'i' | b't' | b'W' | b'U' | b'F' | b'H')
    )
}

/// Parses `dpkg-query -W -f` output in [`DPKG_FORMAT`], keeping installed packages only.
pub fn dpkg_packages(bytes: &[u8]) -> Result<Vec<Package>, OutputError> {
    let s = text(bytes)?;
    let mut out = Vec::new();
    for (n, line) in numbered_lines(s) {
        let f: Vec<&str> = line.split('\t').collect();
        let [name, version, arch, src_name, src_version, status] = f.as_slice() else {
            return Err(OutputError::BadLine {
                line: n,
                reason: "expected 6 tab-separated fields",
            });
        };
        if name.is_empty() || status.len() < 2 {
            return Err(OutputError::BadLine {
                line: n,
                reason: "empty package name or status",
            });
        }
        if !dpkg_status_installed(status) || version.is_empty() {
            continue;
        }
        if out.len() >= MAX_PACKAGES {
            return Err(OutputError::TooMany {
                what: "packages",
                limit: MAX_PACKAGES,
            });
        }
        out.push(Package {
            name: (*name).to_owned(),
            version: (*version).to_owned(),
            arch: (*arch).to_owned(),
            source_name: if src_name.is_empty() { name } else { src_name }.to_string(),
            source_version: if src_version.is_empty() {
                version
            } else {
                src_version
            }
            .to_string(),
            ecosystem: String::new(),
        });
    }
    Ok(out)
}

/// The rpm query format the inventory asks for.
pub const RPM_FORMAT: &str =
    "%{NAME}\\t%{EPOCHNUM}\\t%{VERSION}\\t%{RELEASE}\\t%{ARCH}\\t%{SOURCERPM}\\n";

/// Parses `rpm -qa --qf` output in [`RPM_FORMAT`]. Versions become `[epoch:]version-release`
/// (epoch only when non-zero, as rpm and OSV write them); the source name and version come from
/// the source rpm's file name. `gpg-pubkey` entries are keys, not software, and are dropped.
pub fn rpm_packages(bytes: &[u8]) -> Result<Vec<Package>, OutputError> {
    let s = text(bytes)?;
    let mut out = Vec::new();
    for (n, line) in numbered_lines(s) {
        let f: Vec<&str> = line.split('\t').collect();
        let [name, epoch, version, release, arch, srpm] = f.as_slice() else {
            return Err(OutputError::BadLine {
                line: n,
                reason: "expected 6 tab-separated fields",
            });
        };
        if name.is_empty() || version.is_empty() {
            return Err(OutputError::BadLine {
                line: n,
                reason: "empty name or version",
            });
        }
        let epoch: u64 = epoch.parse().map_err(|_| OutputError::BadLine {
            line: n,
            reason: "epoch is not a number",
        })?;
        if *name == "gpg-pubkey" {
            continue;
        }
        if out.len() >= MAX_PACKAGES {
            return Err(OutputError::TooMany {
                what: "packages",
                limit: MAX_PACKAGES,
            });
        }
        let evr = |v: &str, r: &str| {
            let vr = if r.is_empty() || r == "(none)" {
                v.to_owned()
            } else {
                format!("{v}-{r}")
            };
            if epoch == 0 {
                vr
            } else {
                format!("{epoch}:{vr}")
            }
        };
        let (source_name, source_version) = match split_source_rpm(srpm) {
            Some((sn, sv, sr)) => (sn.to_owned(), evr(sv, sr)),
            None => ((*name).to_owned(), evr(version, release)),
        };
        out.push(Package {
            name: (*name).to_owned(),
            version: evr(version, release),
            arch: (*arch).to_owned(),
            source_name,
            source_version,
            ecosystem: String::new(),
        });
    }
    Ok(out)
}

/// `openssl-3.0.7-27.el9.src.rpm` → (`openssl`, `3.0.7`, `27.el9`). Name-version-release is
/// split at the last two hyphens, since names contain hyphens but versions and releases do not.
pub fn split_source_rpm(srpm: &str) -> Option<(&str, &str, &str)> {
    let base = srpm
        .strip_suffix(".src.rpm")
        .or_else(|| srpm.strip_suffix(".nosrc.rpm"))?;
    let (nv, release) = base.rsplit_once('-')?;
    let (name, version) = nv.rsplit_once('-')?;
    if name.is_empty() || version.is_empty() || release.is_empty() {
        return None;
    }
    Some((name, version, release))
}

/// Parses apk's installed database (`/lib/apk/db/installed`): blank-line-separated records of
/// `X:value` lines, of which `P` (name), `V` (version), `A` (arch) and `o` (origin) matter.
pub fn apk_packages(bytes: &[u8]) -> Result<Vec<Package>, OutputError> {
    let s = text(bytes)?;
    let mut out = Vec::new();
    let mut cur: [Option<&str>; 4] = [None; 4];
    let mut start_line = 1;
    let mut flush = |cur: &mut [Option<&str>; 4], line: usize| -> Result<(), OutputError> {
        if cur.iter().all(Option::is_none) {
            return Ok(());
        }
        let [p, v, a, o] = std::mem::take(cur);
        let (Some(p), Some(v)) = (p, v) else {
            return Err(OutputError::BadLine {
                line,
                reason: "package record without P: and V:",
            });
        };
        if out.len() >= MAX_PACKAGES {
            return Err(OutputError::TooMany {
                what: "packages",
                limit: MAX_PACKAGES,
            });
        }
        out.push(Package {
            name: p.to_owned(),
            version: v.to_owned(),
            arch: a.unwrap_or_default().to_owned(),
            source_name: o.filter(|o| !o.is_empty()).unwrap_or(p).to_owned(),
            source_version: v.to_owned(),
            ecosystem: String::new(),
        });
        Ok(())
    };
    for (i, line) in s.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            flush(&mut cur, start_line)?;
            start_line = n + 1;
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            return Err(OutputError::BadLine {
                line: n,
                reason: "expected X:value",
            });
        };
        let slot = match key {
            "P" => 0,
            "V" => 1,
            "A" => 2,
            "o" => 3,
            k if k.len() == 1 => continue,
            _ => {
                return Err(OutputError::BadLine {
                    line: n,
                    reason: "field key is not one character",
                })
            }
        };
        if let Some(c) = cur.get_mut(slot) {
            *c = Some(value);
        }
    }
    flush(&mut cur, start_line)?;
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Listening sockets
// ---------------------------------------------------------------------------------------------

/// Parses `ss -Hltnu[p]` output: `Netid State Recv-Q Send-Q Local Peer [Process]`.
pub fn ss_listening(bytes: &[u8]) -> Result<Vec<ListeningSocket>, OutputError> {
    let s = text(bytes)?;
    let mut out = Vec::new();
    for (n, line) in numbered_lines(s) {
        let mut f = line.split_whitespace();
        let (Some(netid), Some(state), Some(_rq), Some(_sq), Some(local), Some(_peer)) =
            (f.next(), f.next(), f.next(), f.next(), f.next(), f.next())
        else {
            return Err(OutputError::BadLine {
                line: n,
                reason: "expected at least 6 columns",
            });
        };
        let protocol = match (netid, state) {
            ("tcp", "LISTEN") => Protocol::Tcp,
            ("udp", "UNCONN") => Protocol::Udp,
            ("tcp" | "udp", _) => continue,
            _ => {
                return Err(OutputError::BadLine {
                    line: n,
                    reason: "netid is not tcp or udp",
                })
            }
        };
        let rest: Vec<&str> = f.collect();
        let process = rest.iter().find_map(|c| ss_process_name(c));
        push_socket(&mut out, n, protocol, local, process)?;
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Adds one listening socket of line `n` (`ADDRESS:PORT` in `local`), within [`MAX_SOCKETS`].
fn push_socket(
    out: &mut Vec<ListeningSocket>,
    n: usize,
    protocol: Protocol,
    local: &str,
    process: Option<String>,
) -> Result<(), OutputError> {
    let (address, port) = split_host_port(local).ok_or(OutputError::BadLine {
        line: n,
        reason: "local address is not ADDRESS:PORT",
    })?;
    if out.len() >= MAX_SOCKETS {
        return Err(OutputError::TooMany {
            what: "listening sockets",
            limit: MAX_SOCKETS,
        });
    }
    out.push(ListeningSocket {
        protocol,
        address,
        port,
        process,
    });
    Ok(())
}

/// Parses `netstat -ltnu` output (busybox or net-tools), the fallback where `ss` is missing
/// (Alpine without iproute2): `Proto Recv-Q Send-Q Local Foreign [State]` after two header lines.
pub fn netstat_listening(bytes: &[u8]) -> Result<Vec<ListeningSocket>, OutputError> {
    let s = text(bytes)?;
    let mut out = Vec::new();
    for (n, line) in numbered_lines(s) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let protocol = match f.first().copied() {
            Some("tcp" | "tcp6") => Protocol::Tcp,
            Some("udp" | "udp6") => Protocol::Udp,
            // "Active Internet connections ..." and the column header.
            _ => continue,
        };
        let Some(local) = f.get(3) else {
            return Err(OutputError::BadLine {
                line: n,
                reason: "expected at least 5 columns",
            });
        };
        if protocol == Protocol::Tcp && f.get(5) != Some(&"LISTEN") {
            continue;
        }
        push_socket(&mut out, n, protocol, local, None)?;
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// `users:(("sshd",pid=812,fd=3),...)` → `sshd`.
fn ss_process_name(col: &str) -> Option<String> {
    let inner = col.strip_prefix("users:((\"")?;
    let (name, _) = inner.split_once('"')?;
    (!name.is_empty()).then(|| name.to_owned())
}

/// `0.0.0.0:22`, `[::]:22`, `*:68`, `127.0.0.53%lo:53`, `[fe80::1]%eth0:546` → (address, port),
/// without brackets or interface scope.
fn split_host_port(local: &str) -> Option<(String, u16)> {
    let (addr, port) = local.rsplit_once(':')?;
    let port: u16 = if port == "*" { 0 } else { port.parse().ok()? };
    let addr = addr.split('%').next().unwrap_or(addr);
    let addr = addr
        .strip_prefix('[')
        .and_then(|a| a.strip_suffix(']'))
        .unwrap_or(addr);
    if addr.is_empty() {
        return None;
    }
    Some((addr.to_owned(), port))
}

// ---------------------------------------------------------------------------------------------
// sshd configuration
// ---------------------------------------------------------------------------------------------

/// The sshd settings the configuration checks look at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SshdSettings {
    /// Lower-cased value, `None` when not set (the OpenSSH default applies).
    pub permit_root_login: Option<String>,
    pub password_authentication: Option<String>,
    /// `sshd -T` (effective configuration) or the configuration files read as text.
    pub effective: bool,
}

impl SshdSettings {
    fn set(&mut self, keyword: &str, value: &str) {
        let slot = match keyword.to_ascii_lowercase().as_str() {
            "permitrootlogin" => &mut self.permit_root_login,
            "passwordauthentication" => &mut self.password_authentication,
            _ => return,
        };
        // sshd: the first value obtained for a keyword wins.
        if slot.is_none() {
            *slot = Some(value.to_ascii_lowercase());
        }
    }
}

/// Parses `sshd -T` (the effective configuration: `keyword value` per line, lower case).
pub fn sshd_effective(bytes: &[u8]) -> Result<SshdSettings, OutputError> {
    let s = text(bytes)?;
    let mut st = SshdSettings {
        effective: true,
        ..SshdSettings::default()
    };
    let mut seen = 0usize;
    for (n, line) in numbered_lines(s) {
        let (k, v) = line.split_once(' ').ok_or(OutputError::BadLine {
            line: n,
            reason: "expected `keyword value`",
        })?;
        if !k
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        {
            return Err(OutputError::BadLine {
                line: n,
                reason: "keyword is not lower-case alphanumeric",
            });
        }
        st.set(k, v.trim());
        seen += 1;
    }
    if seen == 0 {
        return Err(OutputError::Missing {
            what: "any sshd setting",
        });
    }
    Ok(st)
}

/// The main sshd configuration file, where evaluation starts.
pub const SSHD_CONFIG: &str = "/etc/ssh/sshd_config";

/// Parses `grep -rHZa '' /etc/ssh/sshd_config /etc/ssh/sshd_config.d` output (`PATH\0LINE\n`,
/// every line of every file) and evaluates it as sshd would for a connection that matches no
/// `Match` block: first value wins, `Include` expands its globs in lexical order (relative paths
/// against /etc/ssh), and `Match` blocks are skipped.
pub fn sshd_config_files(bytes: &[u8]) -> Result<SshdSettings, OutputError> {
    let s = text(bytes)?;
    let mut files: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (n, line) in s.lines().enumerate() {
        if n >= MAX_CONFIG_LINES {
            return Err(OutputError::TooMany {
                what: "configuration lines",
                limit: MAX_CONFIG_LINES,
            });
        }
        let (path, content) = line.split_once('\0').ok_or(OutputError::BadLine {
            line: n + 1,
            reason: "expected PATH\\0LINE",
        })?;
        files.entry(path).or_default().push(content);
    }
    if files.is_empty() {
        return Err(OutputError::Missing {
            what: "sshd configuration lines",
        });
    }
    let mut st = SshdSettings::default();
    let mut budget = MAX_CONFIG_VISITS;
    eval_sshd_file(&files, SSHD_CONFIG, &mut st, 0, &mut budget);
    Ok(st)
}

fn eval_sshd_file(
    files: &BTreeMap<&str, Vec<&str>>,
    path: &str,
    st: &mut SshdSettings,
    depth: usize,
    budget: &mut usize,
) {
    let Some(lines) = files.get(path) else {
        return;
    };
    if depth > MAX_INCLUDE_DEPTH {
        return;
    }
    for line in lines {
        if *budget == 0 {
            return;
        }
        *budget -= 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (kw, value) = split_sshd_line(line);
        if kw.eq_ignore_ascii_case("match") {
            // Everything after a Match line in this file is conditional.
            return;
        }
        if kw.eq_ignore_ascii_case("include") {
            for pattern in value.split_whitespace() {
                let pattern = if pattern.starts_with('/') {
                    pattern.to_owned()
                } else {
                    format!("/etc/ssh/{pattern}")
                };
                // BTreeMap keys are in lexical order, as glob(3) sorts.
                if *budget < files.len() {
                    *budget = 0;
                    return;
                }
                *budget -= files.len();
                let matched: Vec<&str> = files
                    .keys()
                    .copied()
                    .filter(|p| glob_match(&pattern, p))
                    .collect();
                for p in matched {
                    eval_sshd_file(files, p, st, depth + 1, budget);
                }
            }
            continue;
        }
        st.set(kw, value);
    }
}

/// `Keyword value`, `Keyword=value` or `Keyword = value`.
fn split_sshd_line(line: &str) -> (&str, &str) {
    let end = line
        .find(|c: char| c.is_whitespace() || c == '=')
        .unwrap_or(line.len());
    let (kw, rest) = line.split_at(end);
    let rest = rest.trim_start();
    let rest = rest.strip_prefix('=').unwrap_or(rest).trim();
    let value = rest
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .unwrap_or(rest);
    (kw, value)
}

/// Shell glob with `*` and `?`, which never match `/` (as glob(3) without FNM_PATHNAME tricks).
pub fn glob_match(pattern: &str, s: &str) -> bool {
    // Bytes: a `?` against a multi-byte character is irrelevant for sshd's file names, and
    // no allocation keeps Include evaluation cheap.
    let p = pattern.as_bytes();
    let t = s.as_bytes();
    // Iterative matcher with single-star backtracking: linear memory, O(p*t) worst time.
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match (p.get(pi), t.get(ti)) {
            (Some(b'*'), _) => {
                star = Some((pi, ti));
                pi += 1;
            }
            (Some(b'?'), Some(c)) if *c != b'/' => {
                pi += 1;
                ti += 1;
            }
            (Some(a), Some(b)) if a == b && *a != b'*' && *a != b'?' => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) if t.get(st).is_some_and(|c| *c != b'/') => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                _ => return false,
            },
        }
    }
    p.get(pi..)
        .is_some_and(|rest| rest.iter().all(|c| *c == b'*'))
}

// ---------------------------------------------------------------------------------------------
// File permissions and update settings
// ---------------------------------------------------------------------------------------------

/// Mode and ownership of a file, from `stat -c '%a %U %G'`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStat {
    /// Permission bits (octal as printed, e.g. 0o640).
    pub mode: u32,
    pub owner: String,
    pub group: String,
}

/// Parses one `stat -c '%a %U %G'` line.
pub fn stat_line(bytes: &[u8]) -> Result<FileStat, OutputError> {
    let s = text(bytes)?;
    let line = s.trim_end_matches('\n');
    if line.contains('\n') {
        return Err(OutputError::BadLine {
            line: 2,
            reason: "expected a single line",
        });
    }
    let f: Vec<&str> = line.split(' ').collect();
    let [mode, owner, group] = f.as_slice() else {
        return Err(OutputError::BadLine {
            line: 1,
            reason: "expected `MODE OWNER GROUP`",
        });
    };
    if mode.is_empty() || mode.len() > 4 || owner.is_empty() || group.is_empty() {
        return Err(OutputError::BadLine {
            line: 1,
            reason: "empty or overlong field",
        });
    }
    let mode = u32::from_str_radix(mode, 8).map_err(|_| OutputError::BadLine {
        line: 1,
        reason: "mode is not octal",
    })?;
    Ok(FileStat {
        mode,
        owner: (*owner).to_owned(),
        group: (*group).to_owned(),
    })
}

/// World-writable files found by `find ... -print0`: the first `keep` paths (lossily decoded:
/// file names need not be UTF-8) and how many there were.
pub fn nul_paths(bytes: &[u8], keep: usize) -> (Vec<String>, usize) {
    let mut kept = Vec::new();
    let mut count = 0usize;
    for p in bytes.split(|b| *b == 0).filter(|p| !p.is_empty()) {
        if kept.len() < keep {
            kept.push(String::from_utf8_lossy(p).into_owned());
        }
        count += 1;
    }
    (kept, count)
}

/// The value of `APT::Periodic::Unattended-Upgrade` in `apt-config dump` output, if set.
pub fn apt_unattended_upgrade(bytes: &[u8]) -> Result<Option<String>, OutputError> {
    let s = text(bytes)?;
    for (n, line) in numbered_lines(s) {
        let Some((key, value)) = line.trim().split_once(' ') else {
            continue;
        };
        if key == "APT::Periodic::Unattended-Upgrade" {
            let v = value
                .trim()
                .strip_suffix(';')
                .and_then(|v| v.strip_prefix('"'))
                .and_then(|v| v.strip_suffix('"'))
                .ok_or(OutputError::BadLine {
                    line: n,
                    reason: "expected KEY \"VALUE\";",
                })?;
            return Ok(Some(v.to_owned()));
        }
    }
    Ok(None)
}

/// Whether `systemctl is-enabled UNIT...` reported any unit as enabled (one state per line).
pub fn systemctl_any_enabled(bytes: &[u8]) -> Result<bool, OutputError> {
    let s = text(bytes)?;
    Ok(s.lines().any(|l| l.trim() == "enabled"))
}

#[cfg(test)]
mod tests;
