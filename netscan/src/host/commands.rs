//! The fixed list of read-only commands a host scan runs, for the code and for auditors.
//!
//! SSH `exec` hands a command line to the user's login shell, so argv arrays are joined into one
//! string here with strict quoting. Every word is a constant of this file: nothing from the target,
//! the user or the scanned host ever becomes part of a command line, and the sudo password only
//! travels on stdin. docs/host-scan-commands.md lists the same commands (a test keeps it in sync).

use super::parse::{DPKG_FORMAT, RPM_FORMAT};

/// Whether a command runs through sudo when the login user is not root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Privilege {
    /// Runs as the login user.
    User,
    /// Runs through sudo when sudo was requested, else as the login user (partial results).
    SudoIfAvailable,
    /// Runs only as root or through sudo; skipped otherwise.
    RootOnly,
}

/// One command of the inventory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandSpec {
    /// Short stable name (`dpkg-query`, `ss-privileged`...).
    pub id: &'static str,
    /// The program and its arguments, all constants.
    pub argv: &'static [&'static str],
    pub privilege: Privilege,
    /// On which hosts it runs.
    pub when: &'static str,
    /// What it is for.
    pub why: &'static str,
}

impl CommandSpec {
    /// The command line sent to the server (without any sudo prefix).
    pub fn command_line(&self) -> String {
        join_quoted(self.argv)
    }
}

pub(crate) const OS_RELEASE: CommandSpec = CommandSpec {
    id: "os-release",
    argv: &["cat", "/etc/os-release"],
    privilege: Privilege::User,
    when: "every host",
    why: "operating system and release, which select the package manager and advisories",
};
pub(crate) const OS_RELEASE_USR: CommandSpec = CommandSpec {
    id: "os-release-usr",
    argv: &["cat", "/usr/lib/os-release"],
    privilege: Privilege::User,
    when: "when /etc/os-release cannot be read",
    why: "os-release(5) fallback location",
};
pub(crate) const UNAME: CommandSpec = CommandSpec {
    id: "uname",
    argv: &["uname", "-r"],
    privilege: Privilege::User,
    when: "every host",
    why: "running kernel release (may differ from the installed kernel package)",
};
pub(crate) const SUDO_CHECK: CommandSpec = CommandSpec {
    id: "sudo-check",
    argv: &["true"],
    privilege: Privilege::RootOnly,
    when: "when sudo is requested and the login user is not root",
    why: "finds out up front whether sudo works, so a refusal is reported as such",
};
pub(crate) const DPKG: CommandSpec = CommandSpec {
    id: "dpkg-query",
    argv: &["dpkg-query", "-W", "-f", DPKG_FORMAT],
    privilege: Privilege::User,
    when: "ID or ID_LIKE debian/ubuntu",
    why: "installed packages with version, architecture, source package and status",
};
pub(crate) const RPM: CommandSpec = CommandSpec {
    id: "rpm",
    argv: &["rpm", "-qa", "--qf", RPM_FORMAT],
    privilege: Privilege::User,
    when: "ID or ID_LIKE rhel/fedora/centos/rocky/almalinux",
    why: "installed packages with epoch, version, release, architecture and source rpm",
};
pub(crate) const APK: CommandSpec = CommandSpec {
    id: "apk-installed",
    argv: &["cat", "/lib/apk/db/installed"],
    privilege: Privilege::User,
    when: "ID alpine",
    why: "installed packages (P:, V:, A:, o: records of apk's database)",
};
pub(crate) const SS: CommandSpec = CommandSpec {
    id: "ss",
    argv: &["ss", "-Hltnu"],
    privilege: Privilege::User,
    when: "when the scan runs without root",
    why: "listening TCP and UDP sockets",
};
pub(crate) const SS_PROCESSES: CommandSpec = CommandSpec {
    id: "ss-processes",
    argv: &["ss", "-Hltnup"],
    privilege: Privilege::RootOnly,
    when: "as root or with sudo",
    why: "listening TCP and UDP sockets with the owning process names",
};
pub(crate) const NETSTAT: CommandSpec = CommandSpec {
    id: "netstat",
    argv: &["netstat", "-ltnu"],
    privilege: Privilege::User,
    when: "when ss is missing (busybox systems)",
    why: "listening TCP and UDP sockets, without process names",
};
pub(crate) const SSHD_T: CommandSpec = CommandSpec {
    id: "sshd-T",
    argv: &["/usr/sbin/sshd", "-T"],
    privilege: Privilege::RootOnly,
    when: "as root or with sudo",
    why: "effective sshd configuration (PermitRootLogin, PasswordAuthentication)",
};
pub(crate) const SSHD_CONFIG: CommandSpec = CommandSpec {
    id: "sshd-config",
    argv: &[
        "grep",
        "-rHZa",
        "-e",
        "",
        "/etc/ssh/sshd_config",
        "/etc/ssh/sshd_config.d",
    ],
    privilege: Privilege::User,
    when: "when sshd -T is not permitted or fails",
    why: "sshd configuration files, each line prefixed with its file name, to evaluate Include",
};
pub(crate) const WORLD_WRITABLE: CommandSpec = CommandSpec {
    id: "world-writable-etc",
    argv: &[
        "find", "/etc", "-xdev", "-type", "f", "-perm", "-0002", "-print0",
    ],
    privilege: Privilege::SudoIfAvailable,
    when: "every host (through sudo when available; stderr ignored)",
    why: "world-writable regular files under /etc",
};
pub(crate) const SHADOW_STAT: CommandSpec = CommandSpec {
    id: "shadow-stat",
    argv: &["stat", "-c", "%a %U %G", "/etc/shadow"],
    privilege: Privilege::User,
    when: "every host",
    why: "mode and ownership of /etc/shadow",
};
pub(crate) const APT_UNATTENDED: CommandSpec = CommandSpec {
    id: "apt-unattended-upgrade",
    argv: &["apt-config", "dump", "APT::Periodic::Unattended-Upgrade"],
    privilege: Privilege::User,
    when: "dpkg hosts",
    why: "whether unattended-upgrades is switched on (the package must also be installed)",
};
pub(crate) const DNF_AUTOMATIC: CommandSpec = CommandSpec {
    id: "dnf-automatic",
    argv: &[
        "systemctl",
        "is-enabled",
        "dnf-automatic.timer",
        "dnf-automatic-install.timer",
        "dnf5-automatic.timer",
    ],
    privilege: Privilege::User,
    when: "rpm hosts",
    why: "whether automatic updates are scheduled",
};

/// Every command a host scan may run. Nothing else is ever executed.
pub const COMMANDS: &[CommandSpec] = &[
    OS_RELEASE,
    OS_RELEASE_USR,
    UNAME,
    SUDO_CHECK,
    DPKG,
    RPM,
    APK,
    SS,
    SS_PROCESSES,
    NETSTAT,
    SSHD_T,
    SSHD_CONFIG,
    WORLD_WRITABLE,
    SHADOW_STAT,
    APT_UNATTENDED,
    DNF_AUTOMATIC,
];

/// The sudo prefix without a password: fail instead of prompting.
pub(crate) const SUDO_NOPASSWORD: &[&str] = &["sudo", "-n", "--"];
/// The sudo prefix reading the password from stdin, with an empty prompt.
pub(crate) const SUDO_STDIN: &[&str] = &["sudo", "-S", "-p", "", "--"];

/// Joins words into a POSIX shell command line, single-quoting every word that is not made of
/// characters the shell leaves alone.
pub fn join_quoted(words: &[&str]) -> String {
    words
        .iter()
        .map(|w| quote_word(w))
        .collect::<Vec<_>>()
        .join(" ")
}

fn quote_word(w: &str) -> String {
    let plain = !w.is_empty()
        && w.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_@%+=:,./-".contains(&b));
    if plain {
        w.to_owned()
    } else {
        format!("'{}'", w.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(join_quoted(&["uname", "-r"]), "uname -r");
        assert_eq!(
            join_quoted(&["stat", "-c", "%a %U %G", "/etc/shadow"]),
            "stat -c '%a %U %G' /etc/shadow"
        );
        assert_eq!(join_quoted(&["grep", "-e", ""]), "grep -e ''");
        assert_eq!(join_quoted(&["echo", "it's"]), r"echo 'it'\''s'");
        assert_eq!(
            DPKG.command_line(),
            r"dpkg-query -W -f '${Package}\t${Version}\t${Architecture}\t${source:Package}\t${source:Version}\t${db:Status-Abbrev}\n'"
        );
    }

    #[test]
    fn quoted_lines_round_trip_through_a_real_shell() {
        // The shell must hand every constant word back unchanged (no globbing, no expansion).
        for spec in COMMANDS {
            let line = format!("printf '%s\\0' {}", spec.command_line());
            let out = std::process::Command::new("/bin/sh")
                .arg("-c")
                .arg(&line)
                .output();
            let Ok(out) = out else {
                panic!("cannot run /bin/sh");
            };
            let words: Vec<&[u8]> = out.stdout.split(|b| *b == 0).collect();
            let want: Vec<&[u8]> = spec
                .argv
                .iter()
                .map(|w| w.as_bytes())
                .chain(std::iter::once(&b""[..]))
                .collect();
            assert_eq!(words, want, "{}", spec.id);
        }
    }

    #[test]
    fn ids_are_unique_and_every_command_is_documented() {
        let doc = include_str!("../../../docs/host-scan-commands.md");
        let mut ids: Vec<&str> = COMMANDS.iter().map(|c| c.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), COMMANDS.len());
        for spec in COMMANDS {
            let line = spec.command_line();
            assert!(
                doc.contains(&format!("`{line}`")),
                "docs/host-scan-commands.md does not list `{line}`"
            );
        }
    }
}
