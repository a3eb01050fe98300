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
}

/// Result alias of this crate.
pub type Result<T, E = NetscanError> = std::result::Result<T, E>;
