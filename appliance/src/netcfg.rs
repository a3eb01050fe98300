//! The appliance's network settings turned into systemd-networkd files, and their application.
//!
//! Why a module of its own: the console (and, at boot, the image's /etc rendering) writes INI
//! files that a root daemon reads, from text a person typed. Everything therefore goes through
//! strict parsers into typed values ([`NetPlan`]): an interface name of a restricted alphabet,
//! addresses that are `IpAddr`s, a VLAN id in 1..=4094. The renderer only ever formats those typed
//! values, so no newline, `[` or `=` can reach a file. Rendering is a pure function (plan → list
//! of relative path and contents), tested byte for byte; [`apply`] is the thin I/O on top.

use crate::fsutil;
use crate::settings::{AddressMode, NetworkSettings};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where systemd-networkd reads administrator configuration.
pub const DEFAULT_NETWORK_DIR: &str = "/etc/systemd/network";

/// Every file this module writes starts with this, so stale ones (another interface chosen, VLAN
/// removed) can be found and removed without touching anyone else's files.
const FILE_PREFIX: &str = "10-picket-";

/// Longest interface name the kernel accepts (IFNAMSIZ - 1).
const IFNAME_MAX: usize = 15;

/// resolv.conf honours at most three name servers (glibc MAXNS); more would be silently ignored.
pub const MAX_DNS: usize = 3;

/// Errors of validation and application; validation errors name the field and say what is
/// accepted, since a person reads them at the console and retypes.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum NetcfgError {
    /// A value outside the accepted syntax.
    #[error("{field} {value:?}: {reason}")]
    Invalid {
        field: &'static str,
        value: String,
        reason: String,
    },
    /// Writing or removing a file failed.
    #[error("cannot {op} {}: {reason}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        reason: String,
    },
    /// `networkctl reload` could not be run or failed.
    #[error("networkctl reload failed: {reason}")]
    Reload { reason: String },
}

fn invalid(field: &'static str, value: &str, reason: impl Into<String>) -> NetcfgError {
    // The value is echoed back to a terminal: keep it short and printable.
    let shown: String = value
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    NetcfgError::Invalid {
        field,
        value: shown,
        reason: reason.into(),
    }
}

/// A validated interface name: 1 to 15 characters of `A-Z a-z 0-9 _ . -`, not starting with `-`
/// or `.`, and not `lo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfName(String);

impl IfName {
    pub fn parse(s: &str) -> Result<Self, NetcfgError> {
        let field = "interface";
        if s.is_empty() || s.len() > IFNAME_MAX {
            return Err(invalid(field, s, "must be 1 to 15 characters"));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        {
            return Err(invalid(field, s, "only letters, digits, '_', '.' and '-'"));
        }
        if s.starts_with(['-', '.']) {
            return Err(invalid(field, s, "must not start with '-' or '.'"));
        }
        if s == "lo" {
            return Err(invalid(
                field,
                s,
                "the loopback interface cannot be configured",
            ));
        }
        Ok(IfName(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An interface address with its prefix length (`192.0.2.10/24`, `2001:db8::10/64`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    /// Parses `ADDRESS/PREFIX` as a host address on a network: the address must be usable by a
    /// host (not unspecified, loopback, multicast or broadcast), and on IPv4 networks larger than
    /// /31 neither the network nor the broadcast address.
    pub fn parse(s: &str) -> Result<Self, NetcfgError> {
        let field = "address";
        let Some((a, p)) = s.split_once('/') else {
            return Err(invalid(field, s, "give ADDRESS/PREFIX, e.g. 192.0.2.10/24"));
        };
        let addr = parse_ip_text(a).ok_or_else(|| invalid(field, s, "not an IP address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = parse_small_decimal(p)
            .filter(|n| *n <= max)
            .ok_or_else(|| invalid(field, s, format!("prefix must be 0 to {max}")))?;
        let prefix = u8::try_from(prefix).map_err(|_| invalid(field, s, "prefix too large"))?;
        if prefix == 0 {
            return Err(invalid(field, s, "a /0 prefix is not a network"));
        }
        host_usable(&addr).map_err(|r| invalid(field, s, r))?;
        if let IpAddr::V4(v4) = addr {
            if prefix < 31 {
                let host_bits = u32::from(v4) & (u32::MAX >> prefix);
                if host_bits == 0 {
                    return Err(invalid(field, s, "that is the network address"));
                }
                if host_bits == u32::MAX >> prefix {
                    return Err(invalid(field, s, "that is the broadcast address"));
                }
            }
        }
        Ok(Cidr { addr, prefix })
    }

    /// Whether `other` lies in this address's network.
    pub fn contains(&self, other: &IpAddr) -> bool {
        match (self.addr, other) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(a) & mask == u32::from(*b) & mask
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(a) & mask == u128::from(*b) & mask
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Only the canonical textual forms `std` parses (no zone ids, no surrounding spaces).
fn parse_ip_text(s: &str) -> Option<IpAddr> {
    s.parse::<IpAddr>().ok()
}

/// A decimal of 1 to 4 digits; no sign, no spaces.
fn parse_small_decimal(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 4 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn host_usable(addr: &IpAddr) -> Result<(), &'static str> {
    if addr.is_unspecified() {
        return Err("the unspecified address is not a host address");
    }
    if addr.is_loopback() {
        return Err("a loopback address is not reachable from the network");
    }
    if addr.is_multicast() {
        return Err("a multicast address is not a host address");
    }
    if let IpAddr::V4(v4) = addr {
        if v4.is_broadcast() {
            return Err("the broadcast address is not a host address");
        }
    }
    Ok(())
}

/// Parses a gateway or DNS server address: a host address (see [`Cidr::parse`]).
pub fn parse_host_ip(field: &'static str, s: &str) -> Result<IpAddr, NetcfgError> {
    let ip = parse_ip_text(s).ok_or_else(|| invalid(field, s, "not an IP address"))?;
    host_usable(&ip).map_err(|r| invalid(field, s, r))?;
    Ok(ip)
}

/// Parses a list of DNS servers separated by spaces or commas (at most [`MAX_DNS`]).
pub fn parse_dns_list(s: &str) -> Result<Vec<IpAddr>, NetcfgError> {
    let mut out = Vec::new();
    for part in s.split([' ', ',']).filter(|p| !p.is_empty()) {
        if out.len() == MAX_DNS {
            return Err(invalid("DNS servers", s, "at most 3 servers"));
        }
        let ip = parse_host_ip("DNS server", part)?;
        if !out.contains(&ip) {
            out.push(ip);
        }
    }
    Ok(out)
}

/// Parses a VLAN id, 1 to 4094 (0 and 4095 are reserved by 802.1Q).
pub fn parse_vlan(s: &str) -> Result<u16, NetcfgError> {
    parse_small_decimal(s)
        .and_then(|n| u16::try_from(n).ok())
        .filter(|n| (1..=4094).contains(n))
        .ok_or_else(|| invalid("VLAN id", s, "must be a number from 1 to 4094"))
}

/// Static addressing, validated: the gateway (if any) is in the address's network and of its
/// family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticAddressing {
    address: Cidr,
    gateway: Option<IpAddr>,
    dns: Vec<IpAddr>,
}

impl StaticAddressing {
    pub fn new(
        address: Cidr,
        gateway: Option<IpAddr>,
        dns: Vec<IpAddr>,
    ) -> Result<Self, NetcfgError> {
        if let Some(gw) = gateway {
            if gw.is_ipv4() != address.addr.is_ipv4() {
                return Err(invalid(
                    "gateway",
                    &gw.to_string(),
                    format!("not of the same IP version as {address}"),
                ));
            }
            if gw == address.addr {
                return Err(invalid("gateway", &gw.to_string(), "is the address itself"));
            }
            // IPv6 routers are usually addressed by their link-local address, which is on
            // every link whatever the prefix.
            let link_local_v6 = matches!(gw, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80);
            if !address.contains(&gw) && !link_local_v6 {
                return Err(invalid(
                    "gateway",
                    &gw.to_string(),
                    format!("not in the network of {address}"),
                ));
            }
        }
        if dns.len() > MAX_DNS {
            return Err(invalid(
                "DNS servers",
                &format!("{} servers", dns.len()),
                "at most 3 servers",
            ));
        }
        Ok(StaticAddressing {
            address,
            gateway,
            dns,
        })
    }

    pub fn address(&self) -> Cidr {
        self.address
    }
    pub fn gateway(&self) -> Option<IpAddr> {
        self.gateway
    }
    pub fn dns(&self) -> &[IpAddr] {
        &self.dns
    }
}

/// How the interface gets its address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Addressing {
    Dhcp,
    Static(StaticAddressing),
}

/// A validated network configuration: which interface, how it is addressed, and whether the
/// appliance sits on a tagged VLAN of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetPlan {
    pub interface: IfName,
    pub addressing: Addressing,
    pub vlan: Option<u16>,
}

/// One file to write: its name inside the networkd directory and its contents.
pub type RenderedFile = (String, String);

const HEADER: &str =
    "# Written by picket from the appliance settings; changes here are overwritten.\n";

impl NetPlan {
    /// The name of the VLAN interface: `PARENT.ID`, or `vlanID` when that would exceed the
    /// kernel's 15 characters.
    pub fn vlan_interface(&self) -> Option<String> {
        self.vlan.map(|id| {
            let dotted = format!("{}.{id}", self.interface.as_str());
            if dotted.len() <= IFNAME_MAX {
                dotted
            } else {
                format!("vlan{id}")
            }
        })
    }

    /// The interface that carries the appliance's address (the VLAN interface when tagged).
    pub fn addressed_interface(&self) -> String {
        self.vlan_interface()
            .unwrap_or_else(|| self.interface.as_str().to_owned())
    }

    /// The systemd-networkd files for this plan, sorted by name.
    pub fn render(&self) -> Vec<RenderedFile> {
        let parent = self.interface.as_str();
        let mut files = Vec::new();
        match self.vlan_interface() {
            None => files.push((
                format!("{FILE_PREFIX}{parent}.network"),
                address_network(parent, &self.addressing),
            )),
            Some(vlan_if) => {
                // The parent only carries the tagged link; no address, no DHCP, no IPv6 on it.
                let mut p = String::from(HEADER);
                let _ = write!(
                    p,
                    "\n[Match]\nName={parent}\n\n[Network]\nVLAN={vlan_if}\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n"
                );
                files.push((format!("{FILE_PREFIX}{parent}.network"), p));
                let mut d = String::from(HEADER);
                let _ = write!(
                    d,
                    "\n[NetDev]\nName={vlan_if}\nKind=vlan\n\n[VLAN]\nId={}\n",
                    self.vlan.unwrap_or_default()
                );
                files.push((format!("{FILE_PREFIX}{vlan_if}.netdev"), d));
                files.push((
                    format!("{FILE_PREFIX}{vlan_if}.network"),
                    address_network(&vlan_if, &self.addressing),
                ));
            }
        }
        files.sort();
        files
    }

    /// A resolv.conf naming the static DNS servers, for images without systemd-resolved; `None`
    /// with DHCP (the lease's servers reach resolved through networkd).
    pub fn resolv_conf(&self) -> Option<String> {
        match &self.addressing {
            Addressing::Static(s) if !s.dns.is_empty() => {
                let mut out = String::from(HEADER);
                for ip in &s.dns {
                    let _ = writeln!(out, "nameserver {ip}");
                }
                Some(out)
            }
            _ => None,
        }
    }
}

fn address_network(name: &str, addressing: &Addressing) -> String {
    let mut out = String::from(HEADER);
    let _ = write!(out, "\n[Match]\nName={name}\n\n[Network]\n");
    match addressing {
        Addressing::Dhcp => out.push_str("DHCP=yes\n"),
        Addressing::Static(s) => {
            let _ = writeln!(out, "Address={}", s.address);
            if let Some(gw) = s.gateway {
                let _ = writeln!(out, "Gateway={gw}");
            }
            for ip in &s.dns {
                let _ = writeln!(out, "DNS={ip}");
            }
            // Static means static: no router advertisement adds a second address or route.
            out.push_str("IPv6AcceptRA=no\n");
        }
    }
    out
}

impl NetPlan {
    /// The plan for stored settings, validated as if typed at the console (the store is not
    /// trusted to hold only what the console wrote). `None` when no interface was chosen yet.
    pub fn from_settings(s: &NetworkSettings) -> Result<Option<NetPlan>, NetcfgError> {
        if s.interface.is_empty() {
            return Ok(None);
        }
        let interface = IfName::parse(&s.interface)?;
        let addressing = match &s.mode {
            AddressMode::Dhcp => Addressing::Dhcp,
            AddressMode::Static {
                address_cidr,
                gateway,
                dns,
            } => {
                let gateway = match gateway.as_deref() {
                    None | Some("") => None,
                    Some(g) => Some(parse_host_ip("gateway", g)?),
                };
                let mut servers = Vec::new();
                for d in dns.iter().take(MAX_DNS + 1) {
                    servers.push(parse_host_ip("DNS server", d)?);
                }
                Addressing::Static(StaticAddressing::new(
                    Cidr::parse(address_cidr)?,
                    gateway,
                    servers,
                )?)
            }
        };
        let vlan = match s.vlan {
            None => None,
            Some(v) => Some(parse_vlan(&v.to_string())?),
        };
        Ok(Some(NetPlan {
            interface,
            addressing,
            vlan,
        }))
    }

    /// The settings record for this plan.
    pub fn to_settings(&self) -> NetworkSettings {
        NetworkSettings {
            interface: self.interface.as_str().to_owned(),
            mode: match &self.addressing {
                Addressing::Dhcp => AddressMode::Dhcp,
                Addressing::Static(s) => AddressMode::Static {
                    address_cidr: s.address.to_string(),
                    gateway: s.gateway.map(|g| g.to_string()),
                    dns: s.dns.iter().map(|d| d.to_string()).collect(),
                },
            },
            vlan: self.vlan,
        }
    }
}

/// What [`apply`] did, for the console to tell the person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub written: Vec<PathBuf>,
    pub removed: Vec<PathBuf>,
    pub reload: ReloadOutcome,
}

/// Whether systemd-networkd was asked to reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadOutcome {
    Reloaded,
    /// The files went to a directory networkd does not read (a test or staging directory).
    NotNetworkdDir,
    /// systemd-networkd is not running; it reads the files when it starts.
    NotRunning,
}

/// Directories systemd-networkd reads; a reload is only useful (and only done) after writing
/// into one of them.
const NETWORKD_DIRS: [&str; 3] = [
    "/etc/systemd/network",
    "/run/systemd/network",
    "/usr/lib/systemd/network",
];

/// Writes the plan's files into `dir` atomically (each file replaced whole), removes this
/// module's files that the plan no longer has, writes `resolv_conf` when given and the plan
/// has static DNS servers, then asks systemd-networkd to reload if it reads `dir` and is running.
pub fn apply(
    plan: &NetPlan,
    dir: &Path,
    resolv_conf: Option<&Path>,
) -> Result<Applied, NetcfgError> {
    let io_err = |op: &'static str, path: &Path, e: std::io::Error| NetcfgError::Io {
        op,
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(|e| io_err("create", dir, e))?;
    let files = plan.render();
    let mut written = Vec::new();
    for (name, contents) in &files {
        let path = dir.join(name);
        fsutil::write_atomic(&path, contents.as_bytes(), 0o644)
            .map_err(|e| io_err("write", &path, e))?;
        written.push(path);
    }
    let mut removed = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| io_err("list", dir, e))?;
    // A directory of ours holds a handful of files; the cap only guards against a huge one.
    for entry in entries.take(10_000) {
        let entry = entry.map_err(|e| io_err("list", dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let ours = name.starts_with(FILE_PREFIX)
            && (name.ends_with(".network") || name.ends_with(".netdev"));
        if ours && !files.iter().any(|(n, _)| n == name) {
            let path = entry.path();
            std::fs::remove_file(&path).map_err(|e| io_err("remove", &path, e))?;
            removed.push(path);
        }
    }
    if !removed.is_empty() {
        fsutil::sync_dir(dir).map_err(|e| io_err("sync", dir, e))?;
    }
    if let (Some(path), Some(contents)) = (resolv_conf, plan.resolv_conf()) {
        fsutil::write_atomic(path, contents.as_bytes(), 0o644)
            .map_err(|e| io_err("write", path, e))?;
        written.push(path.to_path_buf());
    }
    let reload = reload_if_running(dir)?;
    Ok(Applied {
        written,
        removed,
        reload,
    })
}

fn reload_if_running(dir: &Path) -> Result<ReloadOutcome, NetcfgError> {
    let canonical = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    if !NETWORKD_DIRS.iter().any(|d| canonical == Path::new(d)) {
        return Ok(ReloadOutcome::NotNetworkdDir);
    }
    if !networkd_running() {
        return Ok(ReloadOutcome::NotRunning);
    }
    let out = Command::new("networkctl")
        .arg("reload")
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| NetcfgError::Reload {
            reason: e.to_string(),
        })?;
    if out.status.success() {
        Ok(ReloadOutcome::Reloaded)
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        Err(NetcfgError::Reload {
            reason: format!("{}: {}", out.status, err.trim()),
        })
    }
}

/// systemd-networkd is running when systemd says its unit is active. Without systemd (a
/// container, a test machine) `systemctl` fails and the answer is no.
fn networkd_running() -> bool {
    Command::new("systemctl")
        .args(["is-active", "--quiet", "systemd-networkd.service"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The machine's network interfaces, from /sys/class/net, without `lo` and without names this
/// module would refuse; sorted.
pub fn list_interfaces() -> Vec<String> {
    list_interfaces_in(Path::new("/sys/class/net"))
}

fn list_interfaces_in(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .take(4096)
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| IfName::parse(n).is_ok())
        .collect();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn plan(interface: &str, addressing: Addressing, vlan: Option<u16>) -> NetPlan {
        NetPlan {
            interface: IfName::parse(interface).unwrap_or_else(|e| panic!("{e}")),
            addressing,
            vlan,
        }
    }

    fn static_v4() -> Addressing {
        let address = Cidr::parse("198.18.0.10/24").unwrap_or_else(|e| panic!("{e}"));
        let gw = parse_host_ip("gateway", "198.18.0.1").ok();
        let dns = parse_dns_list("198.18.0.53, 198.18.1.53").unwrap_or_else(|e| panic!("{e}"));
        Addressing::Static(
            StaticAddressing::new(address, gw, dns).unwrap_or_else(|e| panic!("{e}")),
        )
    }

    #[test]
    fn dhcp_renders_one_network_file() {
        let files = plan("eth0", Addressing::Dhcp, None).render();
        assert_eq!(
            files,
            vec![(
                "10-picket-eth0.network".to_owned(),
                format!("{HEADER}\n[Match]\nName=eth0\n\n[Network]\nDHCP=yes\n")
            )]
        );
    }

    #[test]
    fn static_renders_address_gateway_and_dns() {
        let p = plan("enp1s0", static_v4(), None);
        assert_eq!(
            p.render(),
            vec![(
                "10-picket-enp1s0.network".to_owned(),
                format!(
                    "{HEADER}\n[Match]\nName=enp1s0\n\n[Network]\nAddress=198.18.0.10/24\n\
                     Gateway=198.18.0.1\nDNS=198.18.0.53\nDNS=198.18.1.53\nIPv6AcceptRA=no\n"
                )
            )]
        );
        assert_eq!(
            p.resolv_conf(),
            Some(format!(
                "{HEADER}nameserver 198.18.0.53\nnameserver 198.18.1.53\n"
            ))
        );
        assert_eq!(plan("eth0", Addressing::Dhcp, None).resolv_conf(), None);
    }

    #[test]
    fn vlan_renders_parent_netdev_and_tagged_network() {
        let files = plan("eth0", static_v4(), Some(120)).render();
        let expected = vec![
            (
                "10-picket-eth0.120.netdev".to_owned(),
                format!("{HEADER}\n[NetDev]\nName=eth0.120\nKind=vlan\n\n[VLAN]\nId=120\n"),
            ),
            (
                "10-picket-eth0.120.network".to_owned(),
                format!(
                    "{HEADER}\n[Match]\nName=eth0.120\n\n[Network]\nAddress=198.18.0.10/24\n\
                     Gateway=198.18.0.1\nDNS=198.18.0.53\nDNS=198.18.1.53\nIPv6AcceptRA=no\n"
                ),
            ),
            (
                "10-picket-eth0.network".to_owned(),
                format!(
                    "{HEADER}\n[Match]\nName=eth0\n\n[Network]\nVLAN=eth0.120\n\
                     LinkLocalAddressing=no\nIPv6AcceptRA=no\n"
                ),
            ),
        ];
        assert_eq!(files, expected);
        // A long parent name would make PARENT.ID longer than the kernel allows.
        let long = plan("enx001122334455", Addressing::Dhcp, Some(4094));
        assert_eq!(long.vlan_interface().as_deref(), Some("vlan4094"));
        assert_eq!(long.addressed_interface(), "vlan4094");
    }

    #[test]
    fn ipv6_static_is_accepted() {
        let a = Cidr::parse("2001:db8::10/64").unwrap_or_else(|e| panic!("{e}"));
        let gw = parse_host_ip("gateway", "2001:db8::1").ok();
        let s = StaticAddressing::new(a, gw, vec![]).unwrap_or_else(|e| panic!("{e}"));
        let files = plan("eth1", Addressing::Static(s), None).render();
        assert!(files[0]
            .1
            .contains("Address=2001:db8::10/64\nGateway=2001:db8::1\n"));
    }

    #[test]
    fn injection_attempts_are_rejected() {
        for name in [
            "eth0\nDHCP=yes",
            "eth0]",
            "[Match]",
            "eth0=1",
            "eth 0",
            "eth0\r",
            "",
            "lo",
            "-x",
            ".",
            "..",
            "a/b",
            "sixteen-chars-xx",
            "eth0;reboot",
            "ethé",
        ] {
            assert!(IfName::parse(name).is_err(), "interface {name:?} accepted");
        }
        for addr in [
            "198.18.0.10/24\nGateway=1.2.3.4",
            "198.18.0.10/24 ",
            " 198.18.0.10/24",
            "198.18.0.10/24]",
            "198.18.0.10=/24",
            "198.18.0.10",
            "198.18.0.10/33",
            "198.18.0.10/-1",
            "198.18.0.10/+8",
            "198.18.0.0/24",
            "198.18.0.255/24",
            "0.0.0.0/8",
            "127.0.0.1/8",
            "224.0.0.1/4",
            "255.255.255.255/32",
            "198.18.0.10/0",
            "fe80::1%eth0/64",
            "2001:db8::1/129",
            "198.018.0.10/24",
        ] {
            assert!(Cidr::parse(addr).is_err(), "address {addr:?} accepted");
        }
        for ip in [
            "198.18.0.1\n",
            "198.18.0.1 x",
            "[::1]",
            "0.0.0.0",
            "::",
            "ff02::1",
        ] {
            assert!(parse_host_ip("gateway", ip).is_err(), "ip {ip:?} accepted");
        }
        for dns in [
            "1.1.1.1\nDNS=2.2.2.2",
            "198.18.0.1;198.18.0.2",
            "198.18.0.1 198.18.0.2 198.18.0.3 198.18.0.4",
        ] {
            assert!(parse_dns_list(dns).is_err(), "dns {dns:?} accepted");
        }
        for vlan in ["0", "4095", "-1", "12a", "", " 5", "99999"] {
            assert!(parse_vlan(vlan).is_err(), "vlan {vlan:?} accepted");
        }
    }

    #[test]
    fn gateway_must_be_on_link_and_same_family() {
        let a = Cidr::parse("198.18.0.10/24").unwrap_or_else(|e| panic!("{e}"));
        let off = parse_host_ip("gateway", "198.18.1.1").ok();
        assert!(StaticAddressing::new(a, off, vec![]).is_err());
        let v6 = parse_host_ip("gateway", "2001:db8::1").ok();
        assert!(StaticAddressing::new(a, v6, vec![]).is_err());
        assert!(StaticAddressing::new(a, Some(a.addr), vec![]).is_err());
        let v6 = Cidr::parse("2001:db8::10/64").unwrap_or_else(|e| panic!("{e}"));
        let ll = parse_host_ip("gateway", "fe80::1").ok();
        assert!(StaticAddressing::new(v6, ll, vec![]).is_ok());
        let off6 = parse_host_ip("gateway", "2001:db9::1").ok();
        assert!(StaticAddressing::new(v6, off6, vec![]).is_err());
        let p31 = Cidr::parse("198.18.0.0/31").unwrap_or_else(|e| panic!("{e}"));
        assert!(StaticAddressing::new(p31, parse_host_ip("g", "198.18.0.1").ok(), vec![]).is_ok());
    }

    #[test]
    fn errors_name_the_field_and_show_a_printable_value() {
        let e = Cidr::parse("1.2.3.4/24\x1b[2J")
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("address \"1.2.3.4/24?[2J\": prefix must be 0 to 32")
        );
    }

    #[test]
    fn apply_writes_files_and_removes_stale_ones() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let foreign = dir.path().join("50-other.network");
        std::fs::write(&foreign, "[Match]\nName=x\n").unwrap_or_else(|e| panic!("{e}"));
        let resolv = dir.path().join("resolv.conf");
        let a = apply(
            &plan("eth0", static_v4(), Some(7)),
            dir.path(),
            Some(&resolv),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.written.len(), 4);
        assert_eq!(a.reload, ReloadOutcome::NotNetworkdDir);
        let b = apply(
            &plan("eth0", Addressing::Dhcp, None),
            dir.path(),
            Some(&resolv),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let mut removed: Vec<_> = b
            .removed
            .iter()
            .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
            .collect();
        removed.sort();
        assert_eq!(
            removed,
            vec!["10-picket-eth0.7.netdev", "10-picket-eth0.7.network"]
        );
        let mut left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap_or_else(|e| panic!("{e}"))
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        left.sort();
        assert_eq!(
            left,
            vec!["10-picket-eth0.network", "50-other.network", "resolv.conf"]
        );
    }

    #[test]
    fn settings_round_trip_and_stored_junk_is_refused() {
        for p in [
            plan("eth0", static_v4(), Some(7)),
            plan("eth0", Addressing::Dhcp, None),
        ] {
            assert_eq!(
                NetPlan::from_settings(&p.to_settings()),
                Ok(Some(p.clone()))
            );
        }
        assert_eq!(
            NetPlan::from_settings(&NetworkSettings::default()),
            Ok(None)
        );
        let junk = NetworkSettings {
            interface: "eth0".into(),
            mode: AddressMode::Static {
                address_cidr: "198.18.0.10/24\nDNS=1.1.1.1".into(),
                gateway: None,
                dns: vec![],
            },
            vlan: None,
        };
        assert!(NetPlan::from_settings(&junk).is_err());
        let vlan0 = NetworkSettings {
            interface: "eth0".into(),
            mode: AddressMode::Dhcp,
            vlan: Some(0),
        };
        assert!(NetPlan::from_settings(&vlan0).is_err());
    }

    #[test]
    fn interfaces_exclude_lo() {
        let names = list_interfaces();
        assert!(!names.iter().any(|n| n == "lo"));
        assert!(names.windows(2).all(|w| w[0] < w[1]));
    }

    /// A strict INI reader: sections and `Key=Value` lines only; anything else is an error.
    type Sections = Vec<(String, Vec<(String, String)>)>;

    fn parse_ini(text: &str) -> Result<Sections, String> {
        let mut sections: Sections = Vec::new();
        for line in text.lines() {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                if name.contains(['[', ']', '=']) {
                    return Err(format!("bad section {line:?}"));
                }
                sections.push((name.to_owned(), Vec::new()));
                continue;
            }
            let (k, v) = line.split_once('=').ok_or(format!("bad line {line:?}"))?;
            if v.contains(['=', '[', ']'])
                || k.is_empty()
                || !k.bytes().all(|b| b.is_ascii_alphanumeric())
            {
                return Err(format!("bad line {line:?}"));
            }
            let last = sections.last_mut().ok_or("key outside a section")?;
            last.1.push((k.to_owned(), v.to_owned()));
        }
        Ok(sections)
    }

    fn keys(sections: &Sections) -> BTreeMap<String, Vec<String>> {
        sections
            .iter()
            .map(|(s, kv)| (s.clone(), kv.iter().map(|(k, _)| k.clone()).collect()))
            .collect()
    }

    /// Builds a plan from raw strings through the public parsers, as the console does.
    fn plan_from_text(
        ifname: &str,
        address: Option<&str>,
        gateway: &str,
        dns: &str,
        vlan: &str,
    ) -> Result<NetPlan, NetcfgError> {
        let interface = IfName::parse(ifname)?;
        let addressing = match address {
            None => Addressing::Dhcp,
            Some(a) => {
                let gw = if gateway.is_empty() {
                    None
                } else {
                    Some(parse_host_ip("gateway", gateway)?)
                };
                Addressing::Static(StaticAddressing::new(
                    Cidr::parse(a)?,
                    gw,
                    parse_dns_list(dns)?,
                )?)
            }
        };
        let vlan = if vlan.is_empty() {
            None
        } else {
            Some(parse_vlan(vlan)?)
        };
        Ok(NetPlan {
            interface,
            addressing,
            vlan,
        })
    }

    fn check_rendered(p: &NetPlan) -> Result<(), TestCaseError> {
        for (name, text) in p.render() {
            prop_assert!(
                !name.contains('/') && name.starts_with(FILE_PREFIX),
                "{name}"
            );
            let ini = parse_ini(&text).map_err(TestCaseError::fail)?;
            let k = keys(&ini);
            let expected: BTreeMap<String, Vec<String>> = if name.ends_with(".netdev") {
                [("NetDev", vec!["Name", "Kind"]), ("VLAN", vec!["Id"])]
                    .into_iter()
                    .map(|(s, v)| (s.to_owned(), v.into_iter().map(str::to_owned).collect()))
                    .collect()
            } else if p.vlan.is_some()
                && name == format!("{FILE_PREFIX}{}.network", p.interface.as_str())
            {
                [
                    ("Match", vec!["Name"]),
                    (
                        "Network",
                        vec!["VLAN", "LinkLocalAddressing", "IPv6AcceptRA"],
                    ),
                ]
                .into_iter()
                .map(|(s, v)| (s.to_owned(), v.into_iter().map(str::to_owned).collect()))
                .collect()
            } else {
                let mut net = Vec::new();
                match &p.addressing {
                    Addressing::Dhcp => net.push("DHCP"),
                    Addressing::Static(s) => {
                        net.push("Address");
                        if s.gateway.is_some() {
                            net.push("Gateway");
                        }
                        net.extend(s.dns.iter().map(|_| "DNS"));
                        net.push("IPv6AcceptRA");
                    }
                }
                [("Match", vec!["Name"]), ("Network", net)]
                    .into_iter()
                    .map(|(s, v)| (s.to_owned(), v.into_iter().map(str::to_owned).collect()))
                    .collect()
            };
            prop_assert_eq!(k, expected, "{}", name);
            let name_value = ini
                .iter()
                .flat_map(|(_, kv)| kv)
                .find(|(k, _)| k == "Name")
                .map(|(_, v)| v.clone());
            prop_assert!(name_value.is_some_and(|n| IfName::parse(&n).is_ok()));
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Arbitrary text in every field: whatever is accepted renders strict INI with exactly
        /// the expected keys.
        #[test]
        fn any_accepted_text_renders_strict_ini(
            ifname in "[a-z0-9\\.\\-_\\[\\]=\n ]{0,17}",
            address in proptest::option::of("[0-9a-f:\\./\\[\\]=\n ]{0,24}"),
            gateway in "[0-9a-f:\\.\n= ]{0,16}",
            dns in "[0-9a-f:\\., \n=]{0,40}",
            vlan in "[0-9\n=\\- ]{0,5}",
        ) {
            if let Ok(p) = plan_from_text(&ifname, address.as_deref(), &gateway, &dns, &vlan) {
                check_rendered(&p)?;
            }
        }

        /// Structurally valid inputs (so the accepted branch is exercised): always accepted,
        /// always strict INI.
        #[test]
        fn valid_plans_render_strict_ini(
            ifname in "[a-z][a-z0-9_\\-\\.]{0,14}",
            host in 1u32..254,
            prefix in 8u8..=24,
            dhcp in any::<bool>(),
            gw in any::<bool>(),
            ndns in 0usize..=3,
            vlan in proptest::option::of(1u16..=4094),
        ) {
            prop_assume!(ifname != "lo");
            let base = u32::from(std::net::Ipv4Addr::new(198, 18, 0, 0));
            let addr = std::net::Ipv4Addr::from(base + host);
            let address = format!("{addr}/{prefix}");
            let gateway = if gw { std::net::Ipv4Addr::from(base + if host == 1 { 2 } else { 1 }).to_string() } else { String::new() };
            let dns: Vec<String> = (0..ndns).map(|i| format!("198.19.0.{}", i + 1)).collect();
            let p = plan_from_text(
                &ifname,
                (!dhcp).then_some(address.as_str()),
                &gateway,
                &dns.join(" "),
                &vlan.map(|v| v.to_string()).unwrap_or_default(),
            );
            let p = p.map_err(|e| TestCaseError::fail(e.to_string()))?;
            check_rendered(&p)?;
        }
    }
}
