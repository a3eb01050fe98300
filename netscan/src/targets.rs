//! Target parsing and expansion for `picket scan net`.
//!
//! Why a module of its own: targets come straight from the user (command line and `@file`s), so
//! they are parsed strictly into typed [`TargetSpec`]s by a pure function ([`parse_target`]) that
//! is unit-, property- and fuzz-tested, before anything is resolved or expanded. Expansion works on
//! address intervals rather than address lists, so deduplication, `--exclude` and the size limit
//! cost memory proportional to the number of specs, not to the number of addresses, until the
//! final (bounded) list is built.

use crate::error::{NetscanError, Result};
use hickory_resolver::config::{LookupIpStrategy, ResolverConfig};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::TokioResolver;
use ipnet::IpNet;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Most addresses one scan may hold (a /8): beyond this, a typo such as `/4` for `/24` would keep
/// the appliance busy for days.
pub const MAX_TARGETS: u64 = 16_777_216;
/// Largest `@file` we read.
pub const MAX_TARGET_FILE_BYTES: u64 = 16 * 1024 * 1024;
/// How long one hostname may take to resolve, over all its servers and attempts.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long resolving all hostname targets together may take.
pub const RESOLVE_TOTAL_TIMEOUT: Duration = Duration::from_secs(60);
/// Hostnames resolved at once.
const RESOLVE_CONCURRENCY: usize = 32;
/// Longest single target we accept (a hostname is at most 253 bytes; CIDRs and ranges are shorter).
const MAX_TARGET_LEN: usize = 256;

/// Expanded targets: every address to scan, and the hostnames the user gave for them.
#[derive(Debug, Clone, Default)]
pub struct TargetSet {
    /// Unique addresses, in the order first given.
    pub addrs: Vec<IpAddr>,
    /// Hostnames that resolved to each address (from hostname targets).
    pub hostnames: HashMap<IpAddr, Vec<String>>,
}

/// One target as the user wrote it, parsed but not yet resolved or expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetSpec {
    Addr(IpAddr),
    /// A CIDR block; host bits the user set are cleared (`10.0.0.5/24` is `10.0.0.0/24`), and
    /// every address in it is a target, network and broadcast addresses included.
    Net(IpNet),
    /// An inclusive range of one address family, `start <= end`.
    Range {
        start: IpAddr,
        end: IpAddr,
    },
    /// A hostname to resolve (lower-cased, without a trailing dot).
    Host(String),
}

impl TargetSpec {
    /// How many addresses the spec stands for (hostnames count as one until resolved).
    pub fn address_count(&self) -> u128 {
        match self {
            TargetSpec::Addr(_) | TargetSpec::Host(_) => 1,
            TargetSpec::Net(n) => {
                let host_bits = u32::from(n.max_prefix_len() - n.prefix_len());
                if host_bits >= 128 {
                    u128::MAX
                } else {
                    1u128 << host_bits
                }
            }
            TargetSpec::Range { start, end } => {
                let (_, lo) = key(*start);
                let (_, hi) = key(*end);
                (hi - lo).saturating_add(1)
            }
        }
    }
}

fn bad(target: &str, reason: impl Into<String>) -> NetscanError {
    NetscanError::BadTarget {
        target: target.to_string(),
        reason: reason.into(),
    }
}

/// Parses one target: an IPv4/IPv6 address, a CIDR, a range (`a.b.c.d-e`, `a.b.c.d-a.b.c.e`,
/// `x::1-ff`, `x::1-x::ff`) or a hostname. `@file` is handled by [`resolve_targets`], not here.
pub fn parse_target(input: &str) -> Result<TargetSpec> {
    let s = input.trim();
    if s.is_empty() {
        return Err(bad(input, "empty target"));
    }
    if s.len() > MAX_TARGET_LEN {
        return Err(bad(input, format!("longer than {MAX_TARGET_LEN} bytes")));
    }
    if s.starts_with('@') {
        return Err(bad(input, "an @file is not allowed here"));
    }
    let unbracketed = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s);
    if let Some((addr, len)) = s.split_once('/') {
        let addr: IpAddr = addr.parse().map_err(|_| {
            bad(
                input,
                format!("{addr:?} before the '/' is not an IP address"),
            )
        })?;
        if len.is_empty() || len.len() > 3 || !len.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad(input, format!("{len:?} is not a prefix length")));
        }
        let len: u8 = len
            .parse()
            .map_err(|_| bad(input, format!("{len:?} is not a prefix length")))?;
        let net = IpNet::new(addr, len).map_err(|_| {
            bad(
                input,
                format!(
                    "prefix length {len} is longer than {} bits",
                    if addr.is_ipv4() { 32 } else { 128 }
                ),
            )
        })?;
        return Ok(TargetSpec::Net(net.trunc()));
    }
    if let Ok(a) = unbracketed.parse::<IpAddr>() {
        return Ok(TargetSpec::Addr(a));
    }
    if let Some((left, right)) = s.split_once('-') {
        if let Ok(start) = left.parse::<IpAddr>() {
            let end = parse_range_end(start, right).ok_or_else(|| {
                bad(
                    input,
                    format!("{right:?} is not the end of an address range"),
                )
            })?;
            if key(end) < key(start) {
                return Err(bad(input, "range ends before it starts"));
            }
            return Ok(if start == end {
                TargetSpec::Addr(start)
            } else {
                TargetSpec::Range { start, end }
            });
        }
    }
    validate_hostname(s).map_err(|reason| bad(input, reason))?;
    Ok(TargetSpec::Host(
        s.trim_end_matches('.').to_ascii_lowercase(),
    ))
}

/// The end of a range: a full address of the start's family, or the last IPv4 octet (decimal) or
/// last IPv6 group (hex).
fn parse_range_end(start: IpAddr, right: &str) -> Option<IpAddr> {
    if let Ok(end) = right.parse::<IpAddr>() {
        return (end.is_ipv4() == start.is_ipv4()).then_some(end);
    }
    match start {
        IpAddr::V4(v4) => {
            if right.is_empty() || right.len() > 3 || !right.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let last: u8 = right.parse().ok()?;
            let mut o = v4.octets();
            o[3] = last;
            Some(IpAddr::V4(Ipv4Addr::from(o)))
        }
        IpAddr::V6(v6) => {
            if right.is_empty() || right.len() > 4 || !right.bytes().all(|b| b.is_ascii_hexdigit())
            {
                return None;
            }
            let last = u16::from_str_radix(right, 16).ok()?;
            let mut seg = v6.segments();
            seg[7] = last;
            Some(IpAddr::V6(Ipv6Addr::from(seg)))
        }
    }
}

/// RFC 1123 host names, plus `_` which real internal zones use. All-numeric last labels are refused
/// so that a mistyped address (`10.0.0.256`, `10.0.0`) is an error instead of a DNS query.
fn validate_hostname(s: &str) -> std::result::Result<(), String> {
    let name = s.strip_suffix('.').unwrap_or(s);
    if name.is_empty() || name.len() > 253 {
        return Err("not an IP address, CIDR, range or hostname".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')))
    {
        return Err(format!(
            "character {c:?} is not allowed in a hostname, and the target is not an IP address, CIDR or range"
        ));
    }
    let labels: Vec<&str> = name.split('.').collect();
    for l in &labels {
        if l.is_empty() || l.len() > 63 {
            return Err("a hostname label is empty or longer than 63 bytes".into());
        }
        if l.starts_with('-') || l.ends_with('-') {
            return Err(format!("hostname label {l:?} starts or ends with '-'"));
        }
    }
    if labels
        .last()
        .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err("not a valid IP address (and a hostname cannot end in a numeric label)".into());
    }
    Ok(())
}

/// Address family and numeric value: the key of the interval arithmetic below.
fn key(a: IpAddr) -> (u8, u128) {
    match a {
        IpAddr::V4(v) => (4, u128::from(u32::from(v))),
        IpAddr::V6(v) => (6, u128::from(v)),
    }
}

fn from_key(fam: u8, v: u128) -> IpAddr {
    if fam == 4 {
        IpAddr::V4(Ipv4Addr::from(u32::try_from(v).unwrap_or(u32::MAX)))
    } else {
        IpAddr::V6(Ipv6Addr::from(v))
    }
}

fn interval(spec: &TargetSpec) -> Option<(u8, u128, u128)> {
    match spec {
        TargetSpec::Addr(a) => {
            let (f, v) = key(*a);
            Some((f, v, v))
        }
        TargetSpec::Net(n) => {
            let (f, lo) = key(n.network());
            let (_, hi) = key(n.broadcast());
            Some((f, lo, hi))
        }
        TargetSpec::Range { start, end } => {
            let (f, lo) = key(*start);
            let (_, hi) = key(*end);
            Some((f, lo, hi))
        }
        TargetSpec::Host(_) => None,
    }
}

/// Disjoint, merged inclusive intervals per address family.
#[derive(Debug, Default)]
struct IntervalSet {
    map: BTreeMap<(u8, u128), u128>,
}

impl IntervalSet {
    /// Parts of `[lo, hi]` not in the set, ascending.
    fn uncovered(&self, fam: u8, lo: u128, hi: u128) -> Vec<(u128, u128)> {
        let mut out = Vec::new();
        let mut cur = lo;
        let before = self.map.range(..(fam, lo)).next_back();
        let overlapping = before
            .into_iter()
            .chain(self.map.range((fam, lo)..=(fam, hi)));
        for (&(f, s), &e) in overlapping {
            if f != fam || e < cur {
                continue;
            }
            if s > cur {
                out.push((cur, s - 1));
            }
            if e >= hi {
                return out;
            }
            cur = e + 1;
        }
        out.push((cur, hi));
        out
    }

    fn insert(&mut self, fam: u8, mut lo: u128, mut hi: u128) {
        let touching: Vec<(u8, u128)> = self
            .map
            .range(..=(fam, hi.saturating_add(1)))
            .rev()
            .take_while(|(&(f, _), &e)| f == fam && e.saturating_add(1) >= lo)
            .map(|(&k, _)| k)
            .collect();
        for k in touching {
            if let Some(e) = self.map.remove(&k) {
                lo = lo.min(k.1);
                hi = hi.max(e);
            }
        }
        self.map.insert((fam, lo), hi);
    }

    fn contains(&self, a: IpAddr) -> bool {
        let (f, v) = key(a);
        self.map
            .range(..=(f, v))
            .next_back()
            .is_some_and(|(&(ff, _), &e)| ff == f && e >= v)
    }
}

/// A parsed spec and where it came from, for error messages.
#[derive(Debug)]
struct Located {
    spec: TargetSpec,
    origin: Option<(PathBuf, usize)>,
}

fn origin_note(origin: &Option<(PathBuf, usize)>) -> String {
    match origin {
        Some((p, line)) => format!(" (in {} line {line})", p.display()),
        None => String::new(),
    }
}

/// Parses command-line specs, expanding `@file`s in place.
fn parse_all(specs: &[String]) -> Result<Vec<Located>> {
    let mut out = Vec::new();
    for s in specs {
        if let Some(path) = s.trim().strip_prefix('@') {
            out.extend(read_target_file(Path::new(path))?);
        } else {
            out.push(Located {
                spec: parse_target(s)?,
                origin: None,
            });
        }
    }
    Ok(out)
}

/// Reads an `@file`: one or more whitespace-separated targets per line, `#` starts a comment.
fn read_target_file(path: &Path) -> Result<Vec<Located>> {
    let io_err = |source| NetscanError::TargetFile {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io_err)?;
    let mut bytes = Vec::new();
    file.take(MAX_TARGET_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err)?;
    if bytes.len() as u64 > MAX_TARGET_FILE_BYTES {
        return Err(io_err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {MAX_TARGET_FILE_BYTES} bytes"),
        )));
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        io_err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
        ))
    })?;
    parse_target_lines(&text, path)
}

/// Parses the text of an `@file` (pure: used by the fuzz target too).
pub fn parse_target_file_text(text: &str, path: &Path) -> Result<Vec<TargetSpec>> {
    Ok(parse_target_lines(text, path)?
        .into_iter()
        .map(|l| l.spec)
        .collect())
}

fn parse_target_lines(text: &str, path: &Path) -> Result<Vec<Located>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let content = line.split('#').next().unwrap_or("");
        for tok in content.split_whitespace() {
            let at = format!("{} line {}", path.display(), i + 1);
            if tok.starts_with('@') {
                return Err(bad(tok, format!("nested @file is not allowed (in {at})")));
            }
            let spec = parse_target(tok).map_err(|e| match e {
                NetscanError::BadTarget { target, reason } => NetscanError::BadTarget {
                    target,
                    reason: format!("{reason} (in {at})"),
                },
                other => other,
            })?;
            out.push(Located {
                spec,
                origin: Some((path.to_path_buf(), i + 1)),
            });
        }
    }
    Ok(out)
}

/// The resolver of the system configuration (`/etc/resolv.conf`, `/etc/hosts`), asking for A and
/// AAAA records with bounded timeouts. Without a usable resolv.conf it still answers from
/// `/etc/hosts` but sends no query anywhere.
pub(crate) fn system_resolver() -> TokioResolver {
    let mut builder = TokioResolver::builder_tokio().unwrap_or_else(|_| {
        TokioResolver::builder_with_config(
            ResolverConfig::new(),
            TokioConnectionProvider::default(),
        )
    });
    let opts = builder.options_mut();
    opts.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
    opts.timeout = opts.timeout.min(Duration::from_secs(2));
    opts.attempts = opts.attempts.clamp(1, 2);
    builder.build()
}

/// Expands address, CIDR, range, hostname and `@file` targets, minus `exclude`.
pub async fn resolve_targets(specs: &[String], exclude: &[String]) -> Result<TargetSet> {
    resolve_targets_with(specs, exclude, &system_resolver()).await
}

/// [`resolve_targets`] with a given resolver.
pub(crate) async fn resolve_targets_with(
    specs: &[String],
    exclude: &[String],
    resolver: &TokioResolver,
) -> Result<TargetSet> {
    let include = parse_all(specs)?;
    let excl = parse_all(exclude)?;

    let mut names: Vec<(String, Option<(PathBuf, usize)>)> = Vec::new();
    let mut seen_names = HashSet::new();
    for l in include.iter().chain(excl.iter()) {
        if let TargetSpec::Host(h) = &l.spec {
            if seen_names.insert(h.clone()) {
                names.push((h.clone(), l.origin.clone()));
            }
        }
    }
    let resolved = resolve_names(names, resolver).await?;

    let mut excluded = IntervalSet::default();
    for l in &excl {
        match &l.spec {
            TargetSpec::Host(h) => {
                for a in resolved.get(h).into_iter().flatten() {
                    let (f, v) = key(*a);
                    excluded.insert(f, v, v);
                }
            }
            spec => {
                if let Some((f, lo, hi)) = interval(spec) {
                    excluded.insert(f, lo, hi);
                }
            }
        }
    }

    // Plan the output as intervals first, so the size limit is checked before any allocation.
    let mut emitted = IntervalSet::default();
    let mut plan: Vec<(u8, u128, u128)> = Vec::new();
    let mut total: u128 = 0;
    let mut hostnames: HashMap<IpAddr, Vec<String>> = HashMap::new();
    for l in &include {
        let ranges: Vec<(u8, u128, u128)> = match &l.spec {
            TargetSpec::Host(h) => {
                let addrs = resolved.get(h).map(Vec::as_slice).unwrap_or_default();
                for a in addrs {
                    if !excluded.contains(*a) {
                        let names = hostnames.entry(*a).or_default();
                        if !names.contains(h) {
                            names.push(h.clone());
                        }
                    }
                }
                addrs
                    .iter()
                    .map(|a| {
                        let (f, v) = key(*a);
                        (f, v, v)
                    })
                    .collect()
            }
            spec => interval(spec).into_iter().collect(),
        };
        for (f, lo, hi) in ranges {
            for (a, b) in emitted.uncovered(f, lo, hi) {
                for (c, d) in excluded.uncovered(f, a, b) {
                    total = total.saturating_add((d - c).saturating_add(1));
                    if total > u128::from(MAX_TARGETS) {
                        // Report the whole request's size, which is what the user typed.
                        let requested = include
                            .iter()
                            .map(|l| l.spec.address_count())
                            .fold(0u128, u128::saturating_add);
                        return Err(NetscanError::TooManyTargets {
                            count: requested.max(total),
                            limit: MAX_TARGETS,
                        });
                    }
                    plan.push((f, c, d));
                }
            }
            emitted.insert(f, lo, hi);
        }
    }

    let mut addrs = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    for (f, lo, hi) in plan {
        let mut v = lo;
        loop {
            addrs.push(from_key(f, v));
            if v >= hi {
                break;
            }
            v += 1;
        }
    }
    Ok(TargetSet { addrs, hostnames })
}

/// Resolves every hostname (A and AAAA) concurrently; any that fails is an error naming it.
async fn resolve_names(
    names: Vec<(String, Option<(PathBuf, usize)>)>,
    resolver: &TokioResolver,
) -> Result<HashMap<String, Vec<IpAddr>>> {
    let mut out = HashMap::new();
    if names.is_empty() {
        return Ok(out);
    }
    let all_names: Vec<String> = names.iter().map(|(n, _)| n.clone()).collect();
    let sem = Arc::new(tokio::sync::Semaphore::new(RESOLVE_CONCURRENCY));
    let mut set = tokio::task::JoinSet::new();
    for (name, origin) in names {
        let resolver = resolver.clone();
        let sem = sem.clone();
        set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            let r = tokio::time::timeout(RESOLVE_TIMEOUT, resolver.lookup_ip(name.as_str())).await;
            let result = match r {
                Err(_) => Err(format!("no answer within {} s", RESOLVE_TIMEOUT.as_secs())),
                Ok(Err(e)) => Err(e.to_string()),
                Ok(Ok(lookup)) => {
                    let mut v: Vec<IpAddr> = Vec::new();
                    for a in lookup.iter() {
                        if !v.contains(&a) {
                            v.push(a);
                        }
                    }
                    if v.is_empty() {
                        Err("no A or AAAA records".to_string())
                    } else {
                        Ok(v)
                    }
                }
            };
            (name, origin, result)
        });
    }
    let deadline = tokio::time::Instant::now() + RESOLVE_TOTAL_TIMEOUT;
    loop {
        let joined = match tokio::time::timeout_at(deadline, set.join_next()).await {
            Ok(Some(j)) => j,
            Ok(None) => break,
            Err(_) => {
                set.abort_all();
                let mut pending: Vec<&String> =
                    all_names.iter().filter(|n| !out.contains_key(*n)).collect();
                pending.sort();
                return Err(NetscanError::Resolve {
                    host: pending.first().map(|s| s.to_string()).unwrap_or_default(),
                    reason: format!(
                        "{} hostnames still unresolved after {} s",
                        pending.len(),
                        RESOLVE_TOTAL_TIMEOUT.as_secs()
                    ),
                });
            }
        };
        let (name, origin, result) = joined.map_err(|e| NetscanError::Resolve {
            host: String::from("?"),
            reason: format!("resolver task failed: {e}"),
        })?;
        match result {
            Ok(v) => {
                out.insert(name, v);
            }
            Err(reason) => {
                set.abort_all();
                return Err(NetscanError::Resolve {
                    reason: format!("{reason}{}", origin_note(&origin)),
                    host: name,
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v4(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }

    /// A resolver with no name servers: answers only from /etc/hosts and never sends a packet,
    /// which keeps unit tests off the machine's real DNS server.
    fn offline_resolver() -> TokioResolver {
        let mut b = TokioResolver::builder_with_config(
            ResolverConfig::new(),
            TokioConnectionProvider::default(),
        );
        b.options_mut().ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        b.build()
    }

    fn expand(specs: &[&str], excl: &[&str]) -> Result<TargetSet> {
        let s: Vec<String> = specs.iter().map(|s| s.to_string()).collect();
        let e: Vec<String> = excl.iter().map(|s| s.to_string()).collect();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| NetscanError::Config(e.to_string()))?;
        rt.block_on(resolve_targets_with(&s, &e, &offline_resolver()))
    }

    fn addrs(specs: &[&str], excl: &[&str]) -> Vec<String> {
        match expand(specs, excl) {
            Ok(t) => t.addrs.iter().map(|a| a.to_string()).collect(),
            Err(e) => panic!("{specs:?} - {excl:?}: {e}"),
        }
    }

    #[test]
    fn parses_each_form() {
        assert_eq!(
            parse_target("10.1.2.3").ok(),
            Some(TargetSpec::Addr(v4("10.1.2.3")))
        );
        assert_eq!(
            parse_target(" 2001:db8::1 ").ok(),
            Some(TargetSpec::Addr(
                "2001:db8::1".parse().unwrap_or(v4("0.0.0.0"))
            ))
        );
        assert_eq!(
            parse_target("[2001:db8::1]")
                .ok()
                .map(|s| s.address_count()),
            Some(1)
        );
        assert_eq!(
            parse_target("10.0.0.5/24").ok(),
            "10.0.0.0/24".parse().ok().map(TargetSpec::Net)
        );
        assert_eq!(
            parse_target("10.0.0.1-20").ok(),
            Some(TargetSpec::Range {
                start: v4("10.0.0.1"),
                end: v4("10.0.0.20")
            })
        );
        assert_eq!(
            parse_target("10.0.0.250-10.0.1.3")
                .ok()
                .map(|s| s.address_count()),
            Some(10)
        );
        assert_eq!(
            parse_target("2001:db8::1-ff")
                .ok()
                .map(|s| s.address_count()),
            Some(255)
        );
        assert_eq!(
            parse_target("2001:db8::1-2001:db8::1:0")
                .ok()
                .map(|s| s.address_count()),
            Some(65536)
        );
        assert_eq!(
            parse_target("Web-01.Example.ORG.").ok(),
            Some(TargetSpec::Host("web-01.example.org".into()))
        );
        assert_eq!(
            parse_target("localhost").ok(),
            Some(TargetSpec::Host("localhost".into()))
        );
        assert_eq!(
            parse_target("10.0.0.7-7").ok(),
            Some(TargetSpec::Addr(v4("10.0.0.7")))
        );
        assert_eq!(
            parse_target("::/0").ok().map(|s| s.address_count()),
            Some(u128::MAX)
        );
    }

    #[test]
    fn malformed_targets_are_named() {
        for t in [
            "",
            "10.0.0.256",
            "10.0.0",
            "10.0.0.1/33",
            "2001:db8::/129",
            "10.0.0.0/",
            "10.0.0.0/x",
            "10.0.0.9-3",
            "10.0.0.1-256",
            "10.0.0.1-2001:db8::1",
            "2001:db8::1-fffff",
            "host name",
            "-bad.example",
            "a..b",
            "x/24",
            "@inline",
            "10.0.0.1/24/3",
            "ä.example",
            "10.0.0.1-",
            "1.2.3.4.5",
            "[10.0.0.1",
            "fe80::1%eth0",
        ] {
            match parse_target(t) {
                Err(NetscanError::BadTarget { target, reason }) => {
                    assert_eq!(target, t, "error names the input");
                    assert!(!reason.is_empty());
                }
                other => panic!("{t:?} parsed as {other:?}"),
            }
        }
    }

    #[test]
    fn expands_in_order_dedups_and_excludes() {
        assert_eq!(
            addrs(&["10.0.0.3", "10.0.0.0/30", "10.0.0.1-5"], &[]),
            ["10.0.0.3", "10.0.0.0", "10.0.0.1", "10.0.0.2", "10.0.0.4", "10.0.0.5"]
        );
        assert_eq!(
            addrs(&["10.0.0.0/29"], &["10.0.0.2", "10.0.0.4-5", "10.0.0.7/32"]),
            ["10.0.0.0", "10.0.0.1", "10.0.0.3", "10.0.0.6"]
        );
        assert_eq!(
            addrs(
                &["2001:db8::fe-2001:db8::101", "10.9.9.9"],
                &["2001:db8::ff"]
            ),
            ["2001:db8::fe", "2001:db8::100", "2001:db8::101", "10.9.9.9"]
        );
        // IPv4 and IPv6 intervals with equal numeric values stay apart.
        assert_eq!(addrs(&["0.0.0.1", "::1"], &[]), ["0.0.0.1", "::1"]);
        assert_eq!(addrs(&["10.0.0.0/24"], &[]).len(), 256);
        assert!(addrs(&["10.0.0.0/24"], &["10.0.0.0/16"]).is_empty());
    }

    #[test]
    fn refuses_absurd_sizes() {
        for t in ["0.0.0.0/0", "2001:db8::/64", "10.0.0.0/7"] {
            match expand(&[t], &[]) {
                Err(NetscanError::TooManyTargets { count, limit }) => {
                    assert!(count > u128::from(limit), "{t}: {count} vs {limit}");
                }
                other => panic!("{t}: {other:?}"),
            }
        }
        // Exactly the limit is fine, and so is a large block mostly excluded.
        let t = expand(&["2001:db8::/104"], &[]);
        assert_eq!(t.map(|t| t.addrs.len()).ok(), Some(16_777_216));
        let t = expand(&["10.0.0.0/7"], &["11.0.0.0/8", "10.0.0.0/9"]);
        assert_eq!(t.map(|t| t.addrs.len()).ok(), Some(1 << 23));
    }

    #[test]
    fn hostnames_resolve_from_hosts_file_and_are_recorded() {
        let t = expand(&["localhost", "127.0.0.1"], &[]).unwrap_or_default();
        assert!(t.addrs.contains(&v4("127.0.0.1")), "{:?}", t.addrs);
        assert_eq!(t.addrs.iter().filter(|a| **a == v4("127.0.0.1")).count(), 1);
        assert_eq!(
            t.hostnames.get(&v4("127.0.0.1")).map(Vec::as_slice),
            Some(&["localhost".to_string()][..])
        );
        let t = expand(&["127.0.0.0/30"], &["localhost"]).unwrap_or_default();
        assert!(!t.addrs.contains(&v4("127.0.0.1")));
        assert_eq!(t.addrs.len(), 3);
    }

    #[test]
    fn unresolvable_hostname_is_an_error_naming_it() {
        match expand(&["no-such-host.invalid"], &[]) {
            Err(NetscanError::Resolve { host, .. }) => assert_eq!(host, "no-such-host.invalid"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn target_files_name_file_and_line() -> std::result::Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile_dir()?;
        let good = dir.join("good.txt");
        std::fs::write(
            &good,
            "# lab\n10.0.0.1\n\n10.0.0.2 10.0.0.3  # two more\n  10.0.1.0/31\n",
        )?;
        let path = format!("@{}", good.display());
        assert_eq!(
            addrs(&["10.0.0.9", path.as_str()], &[]),
            ["10.0.0.9", "10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.1.0", "10.0.1.1"]
        );
        let excl_file = dir.join("excl.txt");
        std::fs::write(&excl_file, "10.0.0.2\n")?;
        let excl = format!("@{}", excl_file.display());
        assert_eq!(addrs(&[path.as_str()], &[excl.as_str()]).len(), 4);

        let badf = dir.join("bad.txt");
        std::fs::write(&badf, "10.0.0.1\n# ok\n10.0.0.300\n")?;
        let msg = expand(&[&format!("@{}", badf.display())], &[])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            msg.contains("10.0.0.300") && msg.contains("bad.txt line 3"),
            "{msg}"
        );
        let missing = dir.join("missing.txt");
        match expand(&[&format!("@{}", missing.display())], &[]) {
            Err(NetscanError::TargetFile { path, .. }) => assert_eq!(path, missing),
            other => panic!("{other:?}"),
        }
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }

    fn tempfile_dir() -> std::io::Result<PathBuf> {
        let d = std::env::temp_dir().join(format!(
            "picket-targets-test-{}-{}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&d)?;
        Ok(d)
    }

    #[test]
    fn interval_set_merges_and_subtracts() {
        let mut s = IntervalSet::default();
        s.insert(4, 10, 20);
        s.insert(4, 30, 40);
        assert_eq!(s.uncovered(4, 0, 50), vec![(0, 9), (21, 29), (41, 50)]);
        assert_eq!(s.uncovered(6, 15, 16), vec![(15, 16)]);
        s.insert(4, 21, 29);
        assert_eq!(s.map.len(), 1);
        assert_eq!(s.uncovered(4, 5, 45), vec![(5, 9), (41, 45)]);
        s.insert(4, u128::from(u32::MAX), u128::from(u32::MAX));
        assert!(s.contains(v4("255.255.255.255")));
        assert!(!s.contains("::ffff:ffff".parse().unwrap_or(v4("0.0.0.0"))));
    }

    proptest! {
        #[test]
        fn parser_never_panics(s in "\\PC{0,80}") {
            let _ = parse_target(&s);
        }

        #[test]
        fn addresses_and_cidrs_round_trip(a: u32, len in 0u8..=32) {
            let ip = IpAddr::V4(Ipv4Addr::from(a));
            prop_assert_eq!(parse_target(&ip.to_string()).ok(), Some(TargetSpec::Addr(ip)));
            let net = IpNet::new(ip, len).map(|n| n.trunc());
            prop_assert_eq!(parse_target(&format!("{ip}/{len}")).ok(), net.ok().map(TargetSpec::Net));
        }

        #[test]
        fn v6_round_trips(a: u128) {
            let ip = IpAddr::V6(Ipv6Addr::from(a));
            prop_assert_eq!(parse_target(&ip.to_string()).ok(), Some(TargetSpec::Addr(ip)));
        }

        #[test]
        fn expansion_matches_naive_set_arithmetic(
            inc in proptest::collection::vec((0u32..64, 0u32..8), 1..6),
            exc in proptest::collection::vec((0u32..64, 0u32..8), 0..4),
        ) {
            let render = |(s, n): &(u32, u32)| format!("10.0.0.{}-{}", s, s + n);
            let inc_s: Vec<String> = inc.iter().map(render).collect();
            let exc_s: Vec<String> = exc.iter().map(render).collect();
            let inc_r: Vec<&str> = inc_s.iter().map(String::as_str).collect();
            let exc_r: Vec<&str> = exc_s.iter().map(String::as_str).collect();
            let got = addrs(&inc_r, &exc_r);
            let mut want = Vec::new();
            for (s, n) in &inc {
                for o in *s..=s + n {
                    let excluded = exc.iter().any(|(es, en)| (*es..=es + en).contains(&o));
                    let a = format!("10.0.0.{o}");
                    if !excluded && !want.contains(&a) {
                        want.push(a);
                    }
                }
            }
            prop_assert_eq!(got, want);
        }
    }
}
