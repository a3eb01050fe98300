//! The one error type of `picket-netscan`.
//!
//! Every variant names the input or peer it is about, so that a message printed at the binary edge
//! tells the user which target, port, file or host failed, without a backtrace.

use std::io;
use std::net::IpAddr;
use std::path::PathBuf;

/// Errors of network discovery, port scanning and service detection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetscanError {
    /// A target the user gave is not an address, CIDR, range, hostname or `@file`.
    #[error("malformed target {target:?}: {reason}")]
    BadTarget { target: String, reason: String },

    /// An `@file` of targets could not be read.
    #[error("cannot read target file {}: {source}", path.display())]
    TargetFile { path: PathBuf, source: io::Error },

    /// A hostname target did not resolve.
    #[error("cannot resolve hostname {host:?}: {reason}")]
    Resolve { host: String, reason: String },

    /// A port specification is malformed.
    #[error("malformed port specification {spec:?}: {reason}")]
    BadPorts { spec: String, reason: String },

    /// The targets expand to more addresses than one scan may hold.
    #[error("targets expand to {count} addresses, more than the limit of {limit}")]
    TooManyTargets { count: u128, limit: u64 },

    /// A raw or packet socket could not be opened or configured.
    #[error("cannot open {kind} socket: {source}")]
    RawSocket {
        kind: &'static str,
        source: io::Error,
    },

    /// Network I/O failed; `op` says what was being done and `peer` with whom.
    #[error("{op} failed for {peer}: {source}")]
    Io {
        op: &'static str,
        peer: String,
        source: io::Error,
    },

    /// The kernel has no route or source address towards a target.
    #[error("no route to {addr}: {reason}")]
    NoRoute { addr: IpAddr, reason: String },

    /// A peer sent bytes that do not parse as the protocol expected.
    #[error("malformed {protocol} data from {peer}: {reason}")]
    Malformed {
        protocol: &'static str,
        peer: String,
        reason: String,
    },

    /// A peer did not answer in time.
    #[error("{op} with {peer} timed out after {elapsed_ms} ms")]
    Timeout {
        op: &'static str,
        peer: String,
        elapsed_ms: u64,
    },

    /// The scan configuration is inconsistent (e.g. a rate of zero).
    #[error("invalid scan configuration: {0}")]
    Config(String),

    /// A name resolved to an address outside the networks the scan may reach (the appliance's
    /// scope): nothing was sent to it.
    #[error("{host} resolves to {addr}, outside the scan scope; refusing to connect")]
    OutOfScope { host: String, addr: IpAddr },

    /// A host-scan target is not `ssh://USER@HOST[:PORT]`.
    #[error("malformed SSH target {target:?}: {reason} (expected ssh://USER@HOST[:PORT])")]
    BadSshTarget { target: String, reason: String },

    /// The SSH server presented a host key other than the pinned one: possibly a
    /// man-in-the-middle, possibly a reinstalled host. The scan refuses to log in.
    #[error(
        "host key of {host}:{port} changed: pinned {expected_fingerprint}, presented \
         {found_fingerprint}; refusing to connect. If the host was legitimately re-keyed, \
         verify the new fingerprint out of band, then pin the new key with --host-key 'LINE' \
         (the server's public key line)"
    )]
    HostKeyChanged {
        host: String,
        port: u16,
        expected_fingerprint: String,
        found_fingerprint: String,
    },

    /// No host key is pinned for this host and trust on first use was not allowed.
    #[error(
        "host key of {host}:{port} is unknown (presented {fingerprint}); refusing to connect. \
         Verify the fingerprint, then pass --trust-on-first-use or pin the key with --host-key 'LINE'"
    )]
    HostKeyUnknown {
        host: String,
        port: u16,
        fingerprint: String,
    },

    /// The SSH server rejected the credentials.
    #[error("SSH authentication as {user:?} on {host} failed ({method})")]
    SshAuthFailed {
        host: String,
        user: String,
        method: String,
    },

    /// An SSH private key file could not be used.
    #[error("cannot use SSH key {}: {reason}", path.display())]
    SshKey { path: PathBuf, reason: String },

    /// The SSH session failed below the command level (key exchange, disconnect, channel).
    #[error("SSH session with {host}:{port} failed: {reason}")]
    Ssh {
        host: String,
        port: u16,
        reason: String,
    },

    /// A remote command printed more than the per-command limit; reading stopped there.
    #[error("output of `{command}` on {host} exceeds the limit of {limit} bytes; reading stopped")]
    SshOutputTooLarge {
        host: String,
        command: String,
        limit: usize,
    },

    /// A remote command's output is not what that command prints.
    #[error("unexpected output of `{command}` on {host}: {reason}")]
    SshBadOutput {
        host: String,
        command: String,
        reason: String,
    },

    /// A remote command the inventory cannot do without failed.
    #[error("`{command}` failed on {host} (exit status {status}): {stderr}")]
    SshCommandFailed {
        host: String,
        command: String,
        status: u32,
        stderr: String,
    },

    /// sudo was requested but refused to run commands for this user.
    #[error("sudo refused on {host}: {reason}")]
    SshSudoRefused { host: String, reason: String },

    /// The scanned host runs a distribution whose package database the host scan cannot read.
    #[error("{host} runs an unsupported distribution (ID={id:?}, ID_LIKE={id_like:?}); supported: Debian/Ubuntu (dpkg), RHEL family (rpm), Alpine (apk)")]
    SshUnsupportedOs {
        host: String,
        id: String,
        id_like: String,
    },
}

/// Result alias of this crate.
pub type Result<T, E = NetscanError> = std::result::Result<T, E>;
