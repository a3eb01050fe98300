//! The SSH layer of the host scan: connect, check the host key, authenticate, run the fixed
//! commands on channels of one connection with bounded output.
//!
//! Everything about the remote host is untrusted here: the host key is checked before any
//! credential is sent, output is capped per command (the channel is closed and the host abandoned
//! past the cap), and every wait is under the caller's deadlines.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use russh::client::{self, AuthResult, Handle, KeyboardInteractiveAuthResponse};
use russh::keys::{
    Algorithm, HashAlg, PrivateKey, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate,
};
use russh::{ChannelMsg, Disconnect, MethodKind};

use super::commands::{join_quoted, CommandSpec, Privilege, SUDO_NOPASSWORD, SUDO_STDIN};
use super::{CommandRecord, HostKeyCheck, SshAuth, SshOptions, SshTarget, Sudo};
use crate::error::NetscanError;

/// Largest private key file read.
const MAX_KEY_FILE: u64 = 1 << 20;
/// stderr kept per command (for error messages); the rest is read and dropped.
const MAX_STDERR: usize = 16 << 10;
/// Rounds of keyboard-interactive prompts answered with the password.
const MAX_KBD_ROUNDS: usize = 4;

/// What the handler saw of the server's host key and whether it accepted it.
#[derive(Debug, Default)]
struct KeySeen {
    presented: Option<PublicKey>,
    accepted: bool,
}

#[derive(Debug)]
struct Client {
    /// The pinned key (`Known`), or `None` for `TrustOnFirstUse` (accept) / `Refuse` (reject).
    pinned: Option<PublicKey>,
    tofu: bool,
    seen: Arc<Mutex<KeySeen>>,
}

impl client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let presented = match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => key.clone(),
            PublicKeyOrCertificate::Certificate(c) => PublicKey::new(c.public_key().clone(), ""),
        };
        let accepted = match &self.pinned {
            Some(pinned) => pinned.key_data() == presented.key_data(),
            None => self.tofu,
        };
        if let Ok(mut seen) = self.seen.lock() {
            seen.presented = Some(presented);
            seen.accepted = accepted;
        }
        Ok(accepted)
    }

    // We never ask for forwarding, agents or X11, so a server opening channels towards us is
    // hostile or broken: every such request is refused (dropping the handle rejects it) instead
    // of russh's default of accepting and keeping per-channel state.

    async fn server_channel_open_forwarded_tcpip(
        &mut self,
        _channel: russh::Channel<client::Msg>,
        _connected_address: &str,
        _connected_port: u32,
        _originator_address: &str,
        _originator_port: u32,
        _reply: client::ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        Ok(())
    }

    async fn server_channel_open_forwarded_streamlocal(
        &mut self,
        _channel: russh::Channel<client::Msg>,
        _socket_path: &str,
        _reply: client::ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        Ok(())
    }

    async fn server_channel_open_agent_forward(
        &mut self,
        _channel: russh::Channel<client::Msg>,
        _reply: client::ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        Ok(())
    }

    async fn server_channel_open_session(
        &mut self,
        _channel: russh::Channel<client::Msg>,
        _reply: client::ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        Ok(())
    }

    async fn server_channel_open_direct_tcpip(
        &mut self,
        _channel: russh::Channel<client::Msg>,
        _host_to_connect: &str,
        _port_to_connect: u32,
        _originator_address: &str,
        _originator_port: u32,
        _reply: client::ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        Ok(())
    }

    async fn server_channel_open_direct_streamlocal(
        &mut self,
        _channel: russh::Channel<client::Msg>,
        _socket_path: &str,
        _reply: client::ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        Ok(())
    }

    async fn server_channel_open_x11(
        &mut self,
        _channel: russh::Channel<client::Msg>,
        _originator_address: &str,
        _originator_port: u32,
        _reply: client::ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// `SHA256:...` as OpenSSH prints it.
pub(crate) fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// The `algorithm base64` line of a key, without comment.
pub(crate) fn key_line(key: &PublicKey) -> String {
    let mut k = key.clone();
    k.set_comment("");
    k.to_openssh()
        .map(|s| s.trim_end().to_owned())
        .unwrap_or_default()
}

/// Host-key algorithms to offer. SHA-1 `ssh-rsa` signatures are never accepted (as since
/// OpenSSH 8.8). With a pinned key its algorithm goes first, as OpenSSH does with known_hosts, so that
/// a server with several host keys presents the one we know instead of looking re-keyed.
fn host_key_preferences(pinned: Option<&PublicKey>) -> Vec<Algorithm> {
    let safe: Vec<Algorithm> = client::Config::default()
        .preferred
        .key
        .iter()
        .filter(|a| **a != Algorithm::Rsa { hash: None })
        .cloned()
        .collect();
    let Some(p) = pinned else {
        return safe;
    };
    let first = |a: &Algorithm| match p.algorithm() {
        Algorithm::Rsa { .. } => matches!(a, Algorithm::Rsa { .. }),
        other => *a == other,
    };
    let (mut prefs, rest): (Vec<_>, Vec<_>) = safe.into_iter().partition(first);
    prefs.extend(rest);
    prefs
}

/// Loads an OpenSSH private key file, naming the file in every error.
pub(crate) fn load_key(path: &Path, passphrase: Option<&str>) -> Result<PrivateKey, NetscanError> {
    let err = |reason: String| NetscanError::SshKey {
        path: path.to_owned(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|e| err(e.to_string()))?;
    if meta.len() > MAX_KEY_FILE {
        return Err(err(format!("larger than {MAX_KEY_FILE} bytes")));
    }
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    russh::keys::decode_secret_key(&text, passphrase).map_err(|e| match e {
        russh::keys::Error::KeyIsEncrypted => {
            err("the key is encrypted and no passphrase was given".to_owned())
        }
        other if passphrase.is_some() => err(format!("{other} (wrong passphrase?)")),
        other => err(other.to_string()),
    })
}

/// An authenticated connection plus the bookkeeping of what ran on it.
pub(crate) struct Session {
    handle: Handle<Client>,
    pub host: String,
    pub address: SocketAddr,
    pub host_key: PublicKey,
    sudo: Option<Sudo>,
    /// The login user is root: root-only commands run without sudo.
    is_root: bool,
    max_output: usize,
    records: Mutex<Vec<(usize, CommandRecord)>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("host", &self.host)
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

/// The output of one command.
#[derive(Debug)]
pub(crate) struct Output {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// `None` when the command ended without an exit status (killed by a signal).
    pub status: Option<u32>,
    pub command: String,
}

impl Output {
    pub fn ok(&self) -> bool {
        self.status == Some(0)
    }
    /// The first line of stderr, for messages.
    pub fn stderr_line(&self) -> String {
        let s = String::from_utf8_lossy(&self.stderr);
        s.lines().next().unwrap_or("").chars().take(300).collect()
    }
}

/// Resolves, connects, checks the host key and authenticates, within `opts.connect_timeout`.
pub(crate) async fn connect(
    target: &SshTarget,
    opts: &SshOptions,
) -> Result<Session, NetscanError> {
    let peer = format!("{}:{}", target.host, target.port);
    // The key is read before any packet is sent: a bad key file is the user's error, not the
    // host's, and must not depend on the network.
    let key = match &opts.auth {
        SshAuth::Key { path, passphrase } => Some(Arc::new(load_key(path, passphrase.as_deref())?)),
        SshAuth::Password(_) => None,
    };
    let (pinned, tofu) = match &opts.host_key {
        HostKeyCheck::Known(line) => {
            let k = PublicKey::from_openssh(line.trim()).map_err(|e| {
                NetscanError::Config(format!(
                    "the pinned host key of {peer} is not an OpenSSH public key line: {e}"
                ))
            })?;
            (Some(k), false)
        }
        HostKeyCheck::TrustOnFirstUse => (None, true),
        HostKeyCheck::Refuse => (None, false),
    };
    let started = Instant::now();
    let fut = connect_inner(target, opts, key, pinned, tofu);
    match tokio::time::timeout(opts.connect_timeout, fut).await {
        Ok(r) => r,
        Err(_) => Err(NetscanError::Timeout {
            op: "ssh connect and login",
            peer,
            elapsed_ms: elapsed_ms(started),
        }),
    }
}

async fn connect_inner(
    target: &SshTarget,
    opts: &SshOptions,
    key: Option<Arc<PrivateKey>>,
    pinned: Option<PublicKey>,
    tofu: bool,
) -> Result<Session, NetscanError> {
    let peer = format!("{}:{}", target.host, target.port);
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((target.host.as_str(), target.port))
        .await
        .map_err(|e| NetscanError::Resolve {
            host: target.host.clone(),
            reason: e.to_string(),
        })?
        .take(16)
        .collect();
    if !opts.allowed_nets.is_empty() {
        if let Some(a) = addrs
            .iter()
            .find(|a| !opts.allowed_nets.iter().any(|n| n.contains(&a.ip())))
        {
            return Err(NetscanError::OutOfScope {
                host: target.host.clone(),
                addr: a.ip(),
            });
        }
    }
    let mut last_err = None;
    let mut stream = None;
    for addr in &addrs {
        match tokio::net::TcpStream::connect(addr).await {
            Ok(s) => {
                stream = Some((s, *addr));
                break;
            }
            Err(e) => last_err = Some(e),
        }
    }
    let Some((stream, address)) = stream else {
        return Err(NetscanError::Io {
            op: "ssh connect",
            peer,
            source: last_err.unwrap_or_else(|| std::io::Error::other("no address")),
        });
    };
    let _ = stream.set_nodelay(true);

    let mut config = client::Config {
        nodelay: true,
        ..client::Config::default()
    };
    config.preferred.key = host_key_preferences(pinned.as_ref()).into();
    let seen = Arc::new(Mutex::new(KeySeen::default()));
    let handler = Client {
        pinned: pinned.clone(),
        tofu,
        seen: seen.clone(),
    };
    let connected = client::connect_stream(Arc::new(config), stream, handler).await;
    let (presented, accepted) = match seen.lock() {
        Ok(s) => (s.presented.clone(), s.accepted),
        Err(_) => (None, false),
    };
    let ssh_err = |e: russh::Error| NetscanError::Ssh {
        host: target.host.clone(),
        port: target.port,
        reason: e.to_string(),
    };
    let (mut handle, host_key) = match (connected, presented) {
        (Ok(h), Some(k)) if accepted => (h, k),
        (_, Some(k)) if !accepted => {
            let found_fingerprint = fingerprint(&k);
            return Err(match pinned {
                Some(p) => NetscanError::HostKeyChanged {
                    host: target.host.clone(),
                    port: target.port,
                    expected_fingerprint: fingerprint(&p),
                    found_fingerprint,
                },
                None => NetscanError::HostKeyUnknown {
                    host: target.host.clone(),
                    port: target.port,
                    fingerprint: found_fingerprint,
                },
            });
        }
        (Err(e), _) => return Err(ssh_err(e)),
        (Ok(_), _) => {
            return Err(NetscanError::Ssh {
                host: target.host.clone(),
                port: target.port,
                reason: "key exchange finished without a host key".to_owned(),
            })
        }
    };
    let h = &mut handle;

    let user = target.user.clone();
    let fail = |method: String| NetscanError::SshAuthFailed {
        host: target.host.clone(),
        user: user.clone(),
        method,
    };
    match (&opts.auth, key) {
        (SshAuth::Key { .. }, Some(key)) => {
            let hash = if matches!(key.algorithm(), russh::keys::Algorithm::Rsa { .. }) {
                // OpenSSH >= 8.8 refuses SHA-1 signatures; without server-sig-algs assume SHA-256.
                match h.best_supported_rsa_hash().await.map_err(ssh_err)? {
                    Some(Some(alg)) => Some(alg),
                    _ => Some(HashAlg::Sha256),
                }
            } else {
                None
            };
            let method = format!(
                "publickey {} {}",
                key.algorithm(),
                fingerprint(key.public_key())
            );
            let kh = PrivateKeyWithHashAlg::new(key, hash);
            let r = h.authenticate_publickey(&user, kh).await.map_err(ssh_err)?;
            if !r.success() {
                return Err(fail(method));
            }
        }
        (SshAuth::Password(pw), _) => {
            // Ask which methods the server takes first, so that a wrong password is tried
            // once, not once per method (failed attempts count towards lockouts).
            let methods = match h.authenticate_none(&user).await.map_err(ssh_err)? {
                AuthResult::Success => None,
                AuthResult::Failure {
                    remaining_methods, ..
                } => Some(remaining_methods),
            };
            if let Some(methods) = methods {
                let (ok, method) = if methods.contains(&MethodKind::Password) {
                    let r = h
                        .authenticate_password(&user, pw.as_str())
                        .await
                        .map_err(ssh_err)?;
                    (r.success(), "password")
                } else if methods.contains(&MethodKind::KeyboardInteractive) {
                    let ok = keyboard_interactive(h, &user, pw).await.map_err(ssh_err)?;
                    (ok, "keyboard-interactive")
                } else {
                    (false, "password (not offered by the server)")
                };
                if !ok {
                    return Err(fail(method.to_owned()));
                }
            }
        }
        (SshAuth::Key { path, .. }, None) => {
            return Err(NetscanError::SshKey {
                path: path.clone(),
                reason: "not loaded".to_owned(),
            })
        }
    }
    let is_root = target.user == "root";
    Ok(Session {
        handle,
        host: target.host.clone(),
        address,
        host_key,
        sudo: opts.sudo.clone(),
        is_root,
        max_output: opts.max_output_bytes,
        records: Mutex::new(Vec::new()),
    })
}

/// Answers keyboard-interactive prompts with the password (servers with PasswordAuthentication
/// off but PAM challenge-response on). `Ok(false)` when refused.
async fn keyboard_interactive(
    h: &mut Handle<Client>,
    user: &str,
    password: &str,
) -> Result<bool, russh::Error> {
    let mut r = h
        .authenticate_keyboard_interactive_start(user, None::<String>)
        .await?;
    for _ in 0..MAX_KBD_ROUNDS {
        match r {
            KeyboardInteractiveAuthResponse::Success => return Ok(true),
            KeyboardInteractiveAuthResponse::Failure { .. } => return Ok(false),
            KeyboardInteractiveAuthResponse::InfoRequest { prompts, .. } => {
                // Only a single hidden prompt is a password prompt; anything else (OTP, questions)
                // is not ours to answer.
                let answers = match prompts.as_slice() {
                    [] => vec![],
                    [p] if !p.echo => vec![password.to_owned()],
                    _ => return Ok(false),
                };
                r = h.authenticate_keyboard_interactive_respond(answers).await?;
            }
        }
    }
    Ok(false)
}

/// The exact command line for `spec` and whether the sudo password goes to its stdin. The
/// password itself never appears here: only constants do.
fn line_for(spec: &CommandSpec, is_root: bool, sudo: Option<&Sudo>) -> (String, bool) {
    let via_sudo = !is_root
        && matches!(
            spec.privilege,
            Privilege::RootOnly | Privilege::SudoIfAvailable
        );
    match (sudo, via_sudo) {
        (Some(Sudo::NoPassword), true) => (
            format!("{} {}", join_quoted(SUDO_NOPASSWORD), spec.command_line()),
            false,
        ),
        (Some(Sudo::Password(_)), true) => (
            format!("{} {}", join_quoted(SUDO_STDIN), spec.command_line()),
            true,
        ),
        _ => (spec.command_line(), false),
    }
}

fn elapsed_ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

impl Session {
    /// Whether root-only commands can run (as root or through sudo).
    pub fn privileged(&self) -> bool {
        self.is_root || self.sudo.is_some()
    }

    /// Whether sudo was requested and is needed (the login user is not root).
    pub fn needs_sudo(&self) -> bool {
        !self.is_root && self.sudo.is_some()
    }

    /// Runs one command on its own channel; stdout is capped at `max_output_bytes`.
    pub async fn run(&self, spec: &CommandSpec) -> Result<Output, NetscanError> {
        let (command, password_on_stdin) = line_for(spec, self.is_root, self.sudo.as_ref());
        let started = Instant::now();
        let ssh_err = |e: russh::Error| NetscanError::Ssh {
            host: self.host.clone(),
            port: self.address.port(),
            reason: format!("`{command}`: {e}"),
        };
        let mut ch = self.handle.channel_open_session().await.map_err(ssh_err)?;
        ch.exec(true, command.as_bytes()).await.map_err(ssh_err)?;
        if password_on_stdin {
            if let Some(Sudo::Password(pw)) = &self.sudo {
                let mut line = pw.clone().into_bytes();
                line.push(b'\n');
                ch.data(&line[..]).await.map_err(ssh_err)?;
            }
        }
        ch.eof().await.map_err(ssh_err)?;

        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        let mut stderr_total = 0usize;
        let mut status = None;
        while let Some(msg) = ch.wait().await {
            match msg {
                ChannelMsg::Data { data } => {
                    if stdout.len().saturating_add(data.len()) > self.max_output {
                        let _ = ch.close().await;
                        self.record(spec, &command, None, stdout.len() + data.len(), started);
                        return Err(NetscanError::SshOutputTooLarge {
                            host: self.host.clone(),
                            command,
                            limit: self.max_output,
                        });
                    }
                    let needed = stdout.len() + data.len();
                    if needed > stdout.capacity() {
                        // Grow by doubling, but never past the limit (a plain Vec could reach
                        // twice the limit in capacity).
                        let target = stdout
                            .capacity()
                            .saturating_mul(2)
                            .max(needed)
                            .min(self.max_output);
                        stdout.reserve_exact(target.saturating_sub(stdout.len()));
                    }
                    stdout.extend_from_slice(&data);
                }
                ChannelMsg::ExtendedData { data, .. } => {
                    stderr_total = stderr_total.saturating_add(data.len());
                    let room = MAX_STDERR.saturating_sub(stderr.len());
                    stderr.extend_from_slice(data.get(..room.min(data.len())).unwrap_or(&[]));
                }
                ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
                ChannelMsg::Close => break,
                _ => {}
            }
        }
        self.record(spec, &command, status, stdout.len() + stderr_total, started);
        Ok(Output {
            stdout,
            stderr,
            status,
            command,
        })
    }

    fn record(
        &self,
        spec: &CommandSpec,
        command: &str,
        status: Option<u32>,
        bytes: usize,
        started: Instant,
    ) {
        let order = super::COMMANDS
            .iter()
            .position(|c| c.id == spec.id)
            .unwrap_or(usize::MAX);
        if let Ok(mut r) = self.records.lock() {
            r.push((
                order,
                CommandRecord {
                    command: command.to_owned(),
                    exit_status: status,
                    output_bytes: u64::try_from(bytes).unwrap_or(u64::MAX),
                    duration_ms: elapsed_ms(started),
                },
            ));
        }
    }

    /// What ran, in the order of [`super::COMMANDS`].
    pub fn records(&self) -> Vec<CommandRecord> {
        let mut r = match self.records.lock() {
            Ok(mut r) => std::mem::take(&mut *r),
            Err(_) => Vec::new(),
        };
        r.sort_by_key(|(order, _)| *order);
        r.into_iter().map(|(_, c)| c).collect()
    }

    /// Says goodbye; errors are irrelevant at this point.
    pub async fn close(self) {
        let _ = self
            .handle
            .disconnect(Disconnect::ByApplication, "", "en")
            .await;
    }

    pub fn bad_output(&self, out: &Output, reason: impl std::fmt::Display) -> NetscanError {
        NetscanError::SshBadOutput {
            host: self.host.clone(),
            command: out.command.clone(),
            reason: reason.to_string(),
        }
    }

    pub fn failed(&self, out: &Output) -> NetscanError {
        NetscanError::SshCommandFailed {
            host: self.host.clone(),
            command: out.command.clone(),
            status: out.status.unwrap_or(u32::MAX),
            stderr: out.stderr_line(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED25519: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ";

    #[test]
    fn never_offers_sha1_rsa_and_puts_the_pinned_algorithm_first() {
        let none = host_key_preferences(None);
        assert!(!none.contains(&Algorithm::Rsa { hash: None }));
        assert_eq!(none.first(), Some(&Algorithm::Ed25519));
        let Ok(k) = PublicKey::from_openssh(ED25519) else {
            panic!("test key parses");
        };
        assert_eq!(
            host_key_preferences(Some(&k)).first(),
            Some(&Algorithm::Ed25519)
        );
        assert_eq!(host_key_preferences(Some(&k)).len(), none.len());
    }

    #[test]
    fn sudo_prefixes_and_no_password_on_command_lines() {
        use crate::host::commands::{SHADOW_STAT, SSHD_T, WORLD_WRITABLE};
        let pw = Sudo::Password("hunter2 'x".into());
        assert_eq!(
            line_for(&SSHD_T, false, Some(&pw)),
            ("sudo -S -p '' -- /usr/sbin/sshd -T".to_owned(), true)
        );
        assert_eq!(
            line_for(&WORLD_WRITABLE, false, Some(&Sudo::NoPassword)).0,
            "sudo -n -- find /etc -xdev -type f -perm -0002 -print0"
        );
        // User-level commands, root logins and no sudo: no prefix.
        assert_eq!(
            line_for(&SHADOW_STAT, false, Some(&pw)),
            (SHADOW_STAT.command_line(), false)
        );
        assert_eq!(
            line_for(&SSHD_T, true, Some(&pw)),
            (SSHD_T.command_line(), false)
        );
        assert_eq!(
            line_for(&SSHD_T, false, None),
            (SSHD_T.command_line(), false)
        );
        for spec in crate::host::COMMANDS {
            for is_root in [false, true] {
                assert!(!line_for(spec, is_root, Some(&pw)).0.contains("hunter2"));
            }
        }
    }

    #[test]
    fn key_line_and_fingerprint() {
        let Ok(k) = PublicKey::from_openssh(&format!("{ED25519} user@host")) else {
            panic!("test key parses");
        };
        assert_eq!(key_line(&k), ED25519);
        assert!(fingerprint(&k).starts_with("SHA256:"));
    }

    #[test]
    fn key_file_errors_name_the_file() {
        let dir = std::env::temp_dir().join(format!("picket-key-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let junk = dir.join("junk");
        let _ = std::fs::write(&junk, "not a key");
        for p in [dir.join("missing"), junk] {
            match load_key(&p, None) {
                Err(NetscanError::SshKey { path, .. }) => assert_eq!(path, p),
                other => panic!("{}: {other:?}", p.display()),
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
