//! SSH-authenticated host inventory: what a Linux host runs, from the inside.
//!
//! A host scan logs in over SSH (host key checked before any credential is sent), runs a fixed,
//! audited list of read-only commands ([`COMMANDS`]) concurrently on channels of one connection,
//! and parses their output into an [`Inventory`]: operating system, kernel, installed packages,
//! listening sockets and a few configuration findings. Matching packages against advisories is
//! not done here; the knowledge base does that with the inventory as input.
//!
//! Layers, bottom up: [`parse`] (pure parsers of command output), [`findings`] (pure
//! configuration rules), [`commands`] (the command list and its quoting), `session` (SSH I/O),
//! and [`inventory`] (the order of commands and the policy).

pub mod commands;
pub mod findings;
pub mod parse;
mod session;
mod target;

use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use picket_model::{HostFinding, ListeningSocket, OsRelease, Package};

pub use commands::{CommandSpec, Privilege, COMMANDS};
pub use target::SshTarget;

use crate::error::NetscanError;
use commands as cmd;
use session::Session;

/// Per-command output limit used when the caller has no better idea.
pub const DEFAULT_MAX_OUTPUT_BYTES: usize = 64 << 20;

/// How to log in.
#[derive(Clone)]
pub enum SshAuth {
    Password(String),
    /// An OpenSSH private key file: ed25519, ECDSA or RSA (signed with rsa-sha2-256/512).
    Key {
        path: PathBuf,
        passphrase: Option<String>,
    },
}

impl fmt::Debug for SshAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SshAuth::Password(_) => f.write_str("Password(<redacted>)"),
            SshAuth::Key { path, passphrase } => f
                .debug_struct("Key")
                .field("path", path)
                .field("passphrase", &passphrase.as_ref().map(|_| "<redacted>"))
                .finish(),
        }
    }
}

/// How to become root for the commands that need it (when the login user is not root).
#[derive(Clone)]
pub enum Sudo {
    /// `sudo -n`: fail rather than prompt.
    NoPassword,
    /// `sudo -S -p ''` with the password written to the command's stdin, never on a command line.
    Password(String),
}

impl fmt::Debug for Sudo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Sudo::NoPassword => f.write_str("NoPassword"),
            Sudo::Password(_) => f.write_str("Password(<redacted>)"),
        }
    }
}

/// What to do with the server's host key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyCheck {
    /// The pinned key, as an OpenSSH public key line (`ssh-ed25519 AAAA... [comment]`); any
    /// other key is refused with [`NetscanError::HostKeyChanged`].
    Known(String),
    /// Accept whatever key is presented; the caller stores [`Inventory::host_key`].
    TrustOnFirstUse,
    /// No pinned key and no trust on first use: refuse with [`NetscanError::HostKeyUnknown`].
    Refuse,
}

/// Options of one host scan.
#[derive(Debug, Clone)]
pub struct SshOptions {
    pub auth: SshAuth,
    pub sudo: Option<Sudo>,
    pub host_key: HostKeyCheck,
    /// TCP connect, key exchange and authentication together.
    pub connect_timeout: Duration,
    /// The whole host, connect to last command.
    pub host_timeout: Duration,
    /// Most stdout bytes read from one command; past it the host fails with
    /// [`NetscanError::SshOutputTooLarge`].
    pub max_output_bytes: usize,
    /// When not empty, the host's resolved addresses must all lie in these networks (checked at
    /// connect time, so a second DNS answer cannot move the scan outside the daemon's scope).
    pub allowed_nets: Vec<ipnet::IpNet>,
}

impl SshOptions {
    /// Options with the defaults: 10 s to log in, 120 s per host, 64 MiB per command.
    pub fn new(auth: SshAuth, host_key: HostKeyCheck) -> SshOptions {
        SshOptions {
            auth,
            sudo: None,
            host_key,
            connect_timeout: Duration::from_secs(10),
            host_timeout: Duration::from_secs(120),
            max_output_bytes: DEFAULT_MAX_OUTPUT_BYTES,
            allowed_nets: Vec::new(),
        }
    }
}

/// One command that ran, for the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandRecord {
    /// The command line exactly as sent (with its sudo prefix, if any).
    pub command: String,
    /// `None` when it ended without one (signal, or stopped by us at the output limit).
    pub exit_status: Option<u32>,
    /// stdout plus stderr bytes received.
    pub output_bytes: u64,
    pub duration_ms: u64,
}

/// What a host scan found on one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inventory {
    /// The peer address connected to.
    pub address: String,
    /// The host key presented, as an OpenSSH public key line without comment (to pin on first
    /// use).
    pub host_key: String,
    /// `SHA256:...` as OpenSSH prints it.
    pub host_key_fingerprint: String,
    pub os: OsRelease,
    /// `uname -r`.
    pub kernel: String,
    /// `dpkg`, `rpm` or `apk`.
    pub package_manager: String,
    /// Installed packages, sorted; `ecosystem` is left empty for the knowledge base to fill.
    pub packages: Vec<Package>,
    pub listening: Vec<ListeningSocket>,
    pub config_findings: Vec<HostFinding>,
    /// What ran, in the order of [`COMMANDS`].
    pub commands: Vec<CommandRecord>,
    /// Whether root-only commands ran (login as root, or sudo).
    pub privileged: bool,
    /// TCP connect, key exchange and authentication.
    pub connect_ms: u64,
    /// Connect to last command.
    pub duration_ms: u64,
}

/// The package manager of a distribution, from `ID` then `ID_LIKE`.
pub fn package_manager(os: &OsRelease) -> Option<&'static str> {
    std::iter::once(&os.id)
        .chain(os.id_like.iter())
        .find_map(|id| match id.as_str() {
            "debian" | "ubuntu" => Some("dpkg"),
            "rhel" | "fedora" | "centos" | "rocky" | "almalinux" => Some("rpm"),
            "alpine" => Some("apk"),
            _ => None,
        })
}

/// Logs in to `target` and inventories it. Every failure is typed and names the host; the whole
/// host is bounded by `opts.host_timeout`.
pub async fn inventory(target: &SshTarget, opts: &SshOptions) -> Result<Inventory, NetscanError> {
    let started = Instant::now();
    match tokio::time::timeout(opts.host_timeout, inventory_inner(target, opts, started)).await {
        Ok(r) => r,
        Err(_) => Err(NetscanError::Timeout {
            op: "host inventory",
            peer: format!("{}:{}", target.host, target.port),
            elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        }),
    }
}

async fn inventory_inner(
    target: &SshTarget,
    opts: &SshOptions,
    started: Instant,
) -> Result<Inventory, NetscanError> {
    let s = session::connect(target, opts).await?;
    let connect_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let result = collect(&s).await;
    let commands = s.records();
    let address = s.address.ip().to_string();
    let host_key = session::key_line(&s.host_key);
    let host_key_fingerprint = session::fingerprint(&s.host_key);
    let privileged = s.privileged();
    s.close().await;
    let c = result?;
    let mut inv = Inventory {
        address,
        host_key,
        host_key_fingerprint,
        os: c.os,
        kernel: c.kernel,
        package_manager: c.package_manager.to_owned(),
        packages: c.packages,
        listening: c.listening,
        config_findings: vec![],
        commands,
        privileged,
        connect_ms,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    };
    inv.config_findings = config_findings(&inv.address, &c.config, &inv.packages);
    if target.host.parse::<std::net::IpAddr>().is_err() {
        for f in &mut inv.config_findings {
            f.asset.hostname = Some(target.host.clone());
        }
    }
    Ok(inv)
}

/// Parsed results of the configuration commands, before they become findings.
#[derive(Debug, Default)]
struct ConfigFacts {
    sshd: Option<parse::SshdSettings>,
    world_writable: (Vec<String>, usize),
    shadow: Option<parse::FileStat>,
    apt_unattended: Option<Option<String>>,
    dnf_automatic: Option<(bool, String)>,
}

#[derive(Debug)]
struct Collected {
    os: OsRelease,
    kernel: String,
    package_manager: &'static str,
    packages: Vec<Package>,
    listening: Vec<ListeningSocket>,
    config: ConfigFacts,
}

/// What decides the rest: the distribution, the kernel, whether sudo works.
#[derive(Debug)]
struct Base {
    os: OsRelease,
    kernel: String,
    package_manager: &'static str,
}

async fn collect(s: &Session) -> Result<Collected, NetscanError> {
    let (base, packages, updates, listening, sshd, world_writable, shadow) = if s.needs_sudo() {
        // sudo must be known to work before anything runs through it: concurrent sudo calls
        // with a wrong password would each count as a failed attempt (and may lock the account).
        let b = base(s).await?;
        let pm = b.package_manager;
        let (p, u, l, d, w, sh) = tokio::try_join!(
            packages(s, pm),
            updates(s, pm),
            listening(s),
            sshd(s),
            world_writable(s),
            shadow(s)
        )?;
        (b, p, u, l, d, w, sh)
    } else {
        // Without sudo, everything that does not depend on the distribution starts at once.
        let os_dependent = async {
            let b = base(s).await?;
            let pm = b.package_manager;
            let (p, u) = tokio::try_join!(packages(s, pm), updates(s, pm))?;
            Ok::<_, NetscanError>((b, p, u))
        };
        let ((b, p, u), l, d, w, sh) = tokio::try_join!(
            os_dependent,
            listening(s),
            sshd(s),
            world_writable(s),
            shadow(s)
        )?;
        (b, p, u, l, d, w, sh)
    };
    let (apt_unattended, dnf_automatic) = updates;
    Ok(Collected {
        os: base.os,
        kernel: base.kernel,
        package_manager: base.package_manager,
        packages,
        listening,
        config: ConfigFacts {
            sshd,
            world_writable,
            shadow,
            apt_unattended,
            dnf_automatic,
        },
    })
}

async fn base(s: &Session) -> Result<Base, NetscanError> {
    let sudo_check = async {
        if s.needs_sudo() {
            Some(s.run(&cmd::SUDO_CHECK).await).transpose()
        } else {
            Ok(None)
        }
    };
    let (os_out, uname_out, sudo_out) =
        tokio::try_join!(s.run(&cmd::OS_RELEASE), s.run(&cmd::UNAME), sudo_check)?;
    if let Some(out) = sudo_out {
        if !out.ok() {
            let line = out.stderr_line();
            return Err(NetscanError::SshSudoRefused {
                host: s.host.clone(),
                reason: if line.is_empty() {
                    format!("exit status {:?}", out.status)
                } else {
                    line
                },
            });
        }
    }
    let os_out = if os_out.ok() {
        os_out
    } else {
        let fallback = s.run(&cmd::OS_RELEASE_USR).await?;
        if !fallback.ok() {
            return Err(s.failed(&os_out));
        }
        fallback
    };
    let os = parse::os_release(&os_out.stdout).map_err(|e| s.bad_output(&os_out, e))?;
    if !uname_out.ok() {
        return Err(s.failed(&uname_out));
    }
    let kernel = kernel_release(&uname_out.stdout).map_err(|e| s.bad_output(&uname_out, e))?;
    let package_manager = package_manager(&os).ok_or_else(|| NetscanError::SshUnsupportedOs {
        host: s.host.clone(),
        id: os.id.clone(),
        id_like: os.id_like.join(" "),
    })?;
    Ok(Base {
        os,
        kernel,
        package_manager,
    })
}

async fn packages(s: &Session, pm: &str) -> Result<Vec<Package>, NetscanError> {
    let spec = match pm {
        "dpkg" => &cmd::DPKG,
        "rpm" => &cmd::RPM,
        _ => &cmd::APK,
    };
    let out = s.run(spec).await?;
    if !out.ok() {
        return Err(s.failed(&out));
    }
    let mut p = match pm {
        "dpkg" => parse::dpkg_packages(&out.stdout),
        "rpm" => parse::rpm_packages(&out.stdout),
        _ => parse::apk_packages(&out.stdout),
    }
    .map_err(|e| s.bad_output(&out, e))?;
    p.sort();
    p.dedup();
    Ok(p)
}

async fn listening(s: &Session) -> Result<Vec<ListeningSocket>, NetscanError> {
    let spec = if s.privileged() {
        &cmd::SS_PROCESSES
    } else {
        &cmd::SS
    };
    let out = s.run(spec).await?;
    if out.ok() {
        return parse::ss_listening(&out.stdout).map_err(|e| s.bad_output(&out, e));
    }
    let out = s.run(&cmd::NETSTAT).await?;
    if !out.ok() {
        // Neither tool (minimal images): the rest of the inventory is still worth having.
        return Ok(Vec::new());
    }
    parse::netstat_listening(&out.stdout).map_err(|e| s.bad_output(&out, e))
}

async fn sshd(s: &Session) -> Result<Option<parse::SshdSettings>, NetscanError> {
    if s.privileged() {
        let out = s.run(&cmd::SSHD_T).await?;
        if out.ok() {
            return parse::sshd_effective(&out.stdout)
                .map(Some)
                .map_err(|e| s.bad_output(&out, e));
        }
    }
    let out = s.run(&cmd::SSHD_CONFIG).await?;
    if out.stdout.is_empty() {
        // Not installed, or not readable by this user: nothing to judge.
        return Ok(None);
    }
    parse::sshd_config_files(&out.stdout)
        .map(Some)
        .map_err(|e| s.bad_output(&out, e))
}

async fn world_writable(s: &Session) -> Result<(Vec<String>, usize), NetscanError> {
    // find exits non-zero on unreadable directories; what it printed is still true.
    let out = s.run(&cmd::WORLD_WRITABLE).await?;
    Ok(parse::nul_paths(&out.stdout, findings::MAX_EVIDENCE_PATHS))
}

async fn shadow(s: &Session) -> Result<Option<parse::FileStat>, NetscanError> {
    let out = s.run(&cmd::SHADOW_STAT).await?;
    if !out.ok() {
        return Ok(None);
    }
    parse::stat_line(&out.stdout)
        .map(Some)
        .map_err(|e| s.bad_output(&out, e))
}

type UpdateFacts = (Option<Option<String>>, Option<(bool, String)>);

async fn updates(s: &Session, pm: &str) -> Result<UpdateFacts, NetscanError> {
    match pm {
        "dpkg" => {
            let out = s.run(&cmd::APT_UNATTENDED).await?;
            if !out.ok() {
                return Ok((None, None));
            }
            let v =
                parse::apt_unattended_upgrade(&out.stdout).map_err(|e| s.bad_output(&out, e))?;
            Ok((Some(v), None))
        }
        "rpm" => {
            let out = s.run(&cmd::DNF_AUTOMATIC).await?;
            if matches!(out.status, None | Some(126 | 127)) {
                // No systemctl to ask: cannot tell.
                return Ok((None, None));
            }
            let enabled =
                parse::systemctl_any_enabled(&out.stdout).map_err(|e| s.bad_output(&out, e))?;
            // One state per existing unit on stdout; missing units only complain on stderr
            // ("Failed to get unit file state ...: No such file or directory").
            let states = String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(", ");
            let states = if states.is_empty() {
                match out.stderr_line() {
                    l if l.is_empty() => "no such units".to_owned(),
                    l => l,
                }
            } else {
                states
            };
            Ok((None, Some((enabled, states))))
        }
        _ => Ok((None, None)),
    }
}

/// `uname -r` output: one short line of printable ASCII.
fn kernel_release(bytes: &[u8]) -> Result<String, parse::OutputError> {
    let s = parse::text(bytes)?;
    let line = s.strip_suffix('\n').unwrap_or(s);
    if line.is_empty() || line.len() > 256 || !line.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(parse::OutputError::BadLine {
            line: 1,
            reason: "expected one line with a kernel release",
        });
    }
    Ok(line.to_owned())
}

fn config_findings(address: &str, c: &ConfigFacts, packages: &[Package]) -> Vec<HostFinding> {
    let mut out = Vec::new();
    if let Some(st) = &c.sshd {
        out.extend(findings::sshd_permit_root_login(address, st));
        out.extend(findings::sshd_password_authentication(address, st));
    }
    let (paths, total) = &c.world_writable;
    out.extend(findings::world_writable_etc(address, paths, *total));
    if let Some(st) = &c.shadow {
        out.extend(findings::shadow_permissions(address, st));
    }
    if let Some(setting) = &c.apt_unattended {
        let installed = packages.iter().any(|p| p.name == "unattended-upgrades");
        let on = setting
            .as_deref()
            .is_some_and(|v| v.parse::<u32>().is_ok_and(|n| n > 0));
        if !(installed && on) {
            let mut why = Vec::new();
            if !installed {
                why.push("the unattended-upgrades package is not installed".to_owned());
            }
            match setting {
                None => why.push("APT::Periodic::Unattended-Upgrade is not set".to_owned()),
                Some(v) if !on => why.push(format!("APT::Periodic::Unattended-Upgrade is \"{v}\"")),
                Some(_) => {}
            }
            out.push(findings::no_automatic_updates(
                address,
                why.join("; "),
                findings::APT_REMEDIATION,
            ));
        }
    }
    if let Some((false, states)) = &c.dnf_automatic {
        out.push(findings::no_automatic_updates(
            address,
            format!(
                "no dnf-automatic timer is enabled (systemctl is-enabled \
                 dnf-automatic.timer dnf-automatic-install.timer dnf5-automatic.timer: {states})"
            ),
            findings::DNF_REMEDIATION,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(id: &str, like: &[&str]) -> OsRelease {
        OsRelease {
            id: id.into(),
            id_like: like.iter().map(|s| (*s).to_owned()).collect(),
            ..OsRelease::default()
        }
    }

    #[test]
    fn package_manager_by_id_and_id_like() {
        assert_eq!(package_manager(&os("debian", &[])), Some("dpkg"));
        assert_eq!(package_manager(&os("ubuntu", &["debian"])), Some("dpkg"));
        assert_eq!(
            package_manager(&os("linuxmint", &["ubuntu", "debian"])),
            Some("dpkg")
        );
        assert_eq!(
            package_manager(&os("rocky", &["rhel", "centos", "fedora"])),
            Some("rpm")
        );
        assert_eq!(package_manager(&os("ol", &["fedora"])), Some("rpm"));
        assert_eq!(package_manager(&os("alpine", &[])), Some("apk"));
        assert_eq!(package_manager(&os("arch", &[])), None);
    }

    #[test]
    fn kernel_release_line() {
        assert_eq!(
            kernel_release(b"6.1.0-18-amd64\n"),
            Ok("6.1.0-18-amd64".into())
        );
        assert!(kernel_release(b"").is_err());
        assert!(kernel_release(b"6.1\n6.2\n").is_err());
        assert!(kernel_release(b"\xff\n").is_err());
    }

    #[test]
    fn automatic_update_rules() {
        let pkgs = vec![Package {
            name: "unattended-upgrades".into(),
            ..Package::default()
        }];
        let facts = |v: Option<&str>| ConfigFacts {
            apt_unattended: Some(v.map(str::to_owned)),
            ..ConfigFacts::default()
        };
        let ids = |c: &ConfigFacts, p: &[Package]| -> Vec<String> {
            config_findings("a", c, p)
                .into_iter()
                .map(|f| f.id)
                .collect()
        };
        assert!(ids(&facts(Some("1")), &pkgs).is_empty());
        assert_eq!(
            ids(&facts(Some("0")), &pkgs),
            vec!["host.config.no-automatic-security-updates:a".to_owned()]
        );
        assert_eq!(ids(&facts(Some("1")), &[]).len(), 1);
        assert_eq!(ids(&facts(None), &pkgs).len(), 1);
        let dnf = ConfigFacts {
            dnf_automatic: Some((false, "disabled".into())),
            ..ConfigFacts::default()
        };
        assert_eq!(ids(&dnf, &[]).len(), 1);
        let dnf_on = ConfigFacts {
            dnf_automatic: Some((true, "enabled".into())),
            ..ConfigFacts::default()
        };
        assert!(ids(&dnf_on, &[]).is_empty());
    }

    #[tokio::test]
    async fn a_host_outside_the_allowed_networks_is_not_contacted() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.set_nonblocking(true).expect("nonblocking");
        let port = l.local_addr().expect("addr").port();
        let target = SshTarget::parse(&format!("ssh://scan@127.0.0.1:{port}")).expect("target");
        let o = SshOptions {
            allowed_nets: vec!["198.18.0.0/15".parse().expect("net")],
            ..SshOptions::new(SshAuth::Password("x".into()), HostKeyCheck::TrustOnFirstUse)
        };
        match inventory(&target, &o).await {
            Err(NetscanError::OutOfScope { host, addr }) => {
                assert_eq!(host, "127.0.0.1");
                assert_eq!(addr.to_string(), "127.0.0.1");
            }
            other => panic!("expected OutOfScope, got {other:?}"),
        }
        // Nothing connected: the listener has no connection waiting.
        assert!(l.accept().is_err(), "a connection was made");
    }

    #[test]
    fn secrets_are_not_in_debug_output() {
        let o = SshOptions {
            sudo: Some(Sudo::Password("hunter2".into())),
            ..SshOptions::new(
                SshAuth::Password("s3cret".into()),
                HostKeyCheck::TrustOnFirstUse,
            )
        };
        let d = format!("{o:?}");
        assert!(!d.contains("hunter2") && !d.contains("s3cret"), "{d}");
    }
}
