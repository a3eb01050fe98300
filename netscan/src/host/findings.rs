//! Configuration checks of a host scan: parsed command output in, [`HostFinding`]s out.
//!
//! Kept apart from the session so that each rule (and its severity, which docs/host-scan-commands.md
//! explains) is a pure function with its own tests.

use picket_model::{Asset, HostFinding, Severity};

use super::parse::{FileStat, SshdSettings};

/// World-writable paths named in the evidence of one finding.
pub const MAX_EVIDENCE_PATHS: usize = 20;

fn finding(
    check: &str,
    address: &str,
    title: String,
    severity: Severity,
    cwe: &[u32],
    evidence: String,
    remediation: &str,
) -> HostFinding {
    HostFinding {
        id: format!("host.config.{check}:{address}"),
        title,
        severity,
        cwe: cwe.to_vec(),
        cve: vec![],
        asset: Asset {
            address: Some(address.to_owned()),
            ..Asset::default()
        },
        evidence,
        remediation: remediation.to_owned(),
        package: None,
        installed_version: None,
        fixed_version: None,
        advisory: None,
        aliases: vec![],
    }
}

fn source(st: &SshdSettings) -> &'static str {
    if st.effective {
        "sshd -T"
    } else {
        "/etc/ssh/sshd_config (and included files)"
    }
}

/// `PermitRootLogin`: `yes` lets anyone who guesses or steals root's password in (high);
/// `prohibit-password` (the OpenSSH default) still allows root logins with a key, worth knowing
/// but not a weakness (info); `no` and `forced-commands-only` raise nothing.
pub fn sshd_permit_root_login(address: &str, st: &SshdSettings) -> Option<HostFinding> {
    let (value, defaulted) = match &st.permit_root_login {
        Some(v) => (v.as_str(), false),
        None => ("prohibit-password", true),
    };
    let evidence = format!(
        "PermitRootLogin {value}{} (from {})",
        if defaulted {
            " (OpenSSH default, not set)"
        } else {
            ""
        },
        source(st)
    );
    let (severity, title, remediation) = match value {
        "yes" => (
            Severity::High,
            "sshd allows root to log in with a password",
            "Set `PermitRootLogin no` (or `prohibit-password` if root needs key-based access) \
             in /etc/ssh/sshd_config and reload sshd; log in as a named user and use sudo.",
        ),
        "prohibit-password" | "without-password" => (
            Severity::Info,
            "sshd allows root to log in with a key",
            "Consider `PermitRootLogin no` and named accounts with sudo, so that actions are \
             attributable; keep root's authorized_keys minimal.",
        ),
        _ => return None,
    };
    Some(finding(
        "sshd-permit-root-login",
        address,
        title.to_owned(),
        severity,
        &[250],
        evidence,
        remediation,
    ))
}

/// `PasswordAuthentication yes` (also the OpenSSH default) exposes every account to password
/// guessing (medium).
pub fn sshd_password_authentication(address: &str, st: &SshdSettings) -> Option<HostFinding> {
    let (value, defaulted) = match &st.password_authentication {
        Some(v) => (v.as_str(), false),
        None => ("yes", true),
    };
    if value != "yes" {
        return None;
    }
    Some(finding(
        "sshd-password-authentication",
        address,
        "sshd accepts password authentication".to_owned(),
        Severity::Medium,
        &[309],
        format!(
            "PasswordAuthentication yes{} (from {})",
            if defaulted {
                " (OpenSSH default, not set)"
            } else {
                ""
            },
            source(st)
        ),
        "Use key-based authentication and set `PasswordAuthentication no` (and \
         `KbdInteractiveAuthentication no`) in /etc/ssh/sshd_config, then reload sshd.",
    ))
}

/// World-writable regular files under /etc (medium): anyone on the host can change
/// configuration that root trusts.
pub fn world_writable_etc(address: &str, paths: &[String], total: usize) -> Option<HostFinding> {
    if total == 0 {
        return None;
    }
    let mut evidence = format!("{total} world-writable file(s) under /etc: ");
    evidence.push_str(
        &paths
            .iter()
            .take(MAX_EVIDENCE_PATHS)
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(", "),
    );
    if total > MAX_EVIDENCE_PATHS.min(paths.len()) {
        evidence.push_str(", ...");
    }
    Some(finding(
        "world-writable-etc",
        address,
        "World-writable files under /etc".to_owned(),
        Severity::Medium,
        &[732],
        evidence,
        "Remove write permission for others (`chmod o-w FILE`) and check the files for tampering.",
    ))
}

/// /etc/shadow readable by others, writable by group or others, group-readable by a group other
/// than `root` or `shadow` (the Debian convention), or not owned by root: high.
pub fn shadow_permissions(address: &str, st: &FileStat) -> Option<HostFinding> {
    let mut problems = Vec::new();
    if st.owner != "root" {
        problems.push(format!("owned by {} instead of root", st.owner));
    }
    if st.mode & 0o007 != 0 {
        problems.push("accessible by others".to_owned());
    }
    if st.mode & 0o020 != 0 {
        problems.push("writable by its group".to_owned());
    }
    if st.mode & 0o040 != 0 && st.group != "root" && st.group != "shadow" {
        problems.push(format!("readable by group {}", st.group));
    }
    if problems.is_empty() {
        return None;
    }
    Some(finding(
        "shadow-permissions",
        address,
        "/etc/shadow has unsafe permissions".to_owned(),
        Severity::High,
        &[732],
        format!(
            "/etc/shadow mode {:o} owner {} group {}: {}",
            st.mode,
            st.owner,
            st.group,
            problems.join(", ")
        ),
        "Restore ownership and mode: `chown root:shadow /etc/shadow && chmod 640 /etc/shadow` \
         (Debian/Ubuntu/Alpine) or `chown root:root /etc/shadow && chmod 000 /etc/shadow` \
         (RHEL family); then consider the password hashes exposed and rotate them.",
    ))
}

/// No automatic security updates (low): fixes wait for a person to apply them.
pub fn no_automatic_updates(address: &str, evidence: String, remediation: &str) -> HostFinding {
    finding(
        "no-automatic-security-updates",
        address,
        "Automatic security updates are not enabled".to_owned(),
        Severity::Low,
        &[],
        evidence,
        remediation,
    )
}

pub(crate) const APT_REMEDIATION: &str = "Install and enable unattended-upgrades: \
    `apt-get install unattended-upgrades && dpkg-reconfigure -plow unattended-upgrades` \
    (sets APT::Periodic::Unattended-Upgrade \"1\").";
pub(crate) const DNF_REMEDIATION: &str = "Install dnf-automatic, set `apply_updates = yes` and \
    `upgrade_type = security` in /etc/dnf/automatic.conf, and \
    `systemctl enable --now dnf-automatic.timer`.";

#[cfg(test)]
mod tests {
    use super::*;

    fn sshd(root: Option<&str>, pw: Option<&str>) -> SshdSettings {
        SshdSettings {
            permit_root_login: root.map(str::to_owned),
            password_authentication: pw.map(str::to_owned),
            effective: true,
        }
    }

    #[test]
    fn permit_root_login_severities() {
        let sev = |v| sshd_permit_root_login("198.18.0.10", &sshd(v, None)).map(|f| f.severity);
        assert_eq!(sev(Some("yes")), Some(Severity::High));
        assert_eq!(sev(Some("without-password")), Some(Severity::Info));
        assert_eq!(sev(None), Some(Severity::Info));
        assert_eq!(sev(Some("no")), None);
        assert_eq!(sev(Some("forced-commands-only")), None);
        let f = sshd_permit_root_login("198.18.0.10", &sshd(Some("yes"), None));
        assert_eq!(
            f.map(|f| (f.id, f.cwe, f.package)),
            Some((
                "host.config.sshd-permit-root-login:198.18.0.10".to_owned(),
                vec![250],
                None
            ))
        );
    }

    #[test]
    fn password_authentication_defaults_to_yes() {
        let f = sshd_password_authentication("a", &sshd(None, None));
        assert_eq!(f.as_ref().map(|f| f.severity), Some(Severity::Medium));
        assert!(f.is_some_and(|f| f.evidence.contains("OpenSSH default")));
        assert!(sshd_password_authentication("a", &sshd(None, Some("no"))).is_none());
    }

    #[test]
    fn world_writable_evidence_is_bounded() {
        let paths: Vec<String> = (0..MAX_EVIDENCE_PATHS)
            .map(|i| format!("/etc/f{i}"))
            .collect();
        let f = world_writable_etc("a", &paths, 500);
        let ev = f.map(|f| f.evidence).unwrap_or_default();
        assert!(ev.starts_with("500 world-writable"));
        assert!(ev.contains("/etc/f19") && ev.ends_with(", ..."));
        assert!(world_writable_etc("a", &[], 0).is_none());
    }

    #[test]
    fn shadow_rules() {
        let st = |mode, owner: &str, group: &str| FileStat {
            mode,
            owner: owner.into(),
            group: group.into(),
        };
        assert!(shadow_permissions("a", &st(0o640, "root", "shadow")).is_none());
        assert!(shadow_permissions("a", &st(0o000, "root", "root")).is_none());
        assert!(shadow_permissions("a", &st(0o600, "root", "root")).is_none());
        for bad in [
            st(0o644, "root", "shadow"),
            st(0o640, "root", "users"),
            st(0o660, "root", "shadow"),
            st(0o600, "nobody", "root"),
        ] {
            let f = shadow_permissions("a", &bad);
            assert_eq!(f.map(|f| f.severity), Some(Severity::High), "{bad:?}");
        }
    }
}
