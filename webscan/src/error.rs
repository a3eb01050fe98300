//! The web scanner's typed errors.
//!
//! Why one enum with context in every variant: the binary maps input errors (a bad URL, an
//! unreadable OpenAPI file, a missing secret) to exit 2 and the rest to exit 3, and every message
//! must name the URL or file it is about so a user can act on it. Variants hold plain data (no
//! `io::Error`) so tests can compare errors exactly.

use std::path::PathBuf;

/// Errors of `picket-webscan`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebscanError {
    /// A URL given by the user (target, login URL, --include, --openapi) is not usable.
    #[error("bad URL {url:?}: {reason}")]
    BadUrl { url: String, reason: String },

    /// A file given by the user could not be read or is too large.
    #[error("cannot read {}: {reason}", path.display())]
    File { path: PathBuf, reason: String },

    /// An OpenAPI/Swagger document that could not be understood.
    #[error("OpenAPI document {source_name}: {reason}")]
    OpenApi { source_name: String, reason: String },

    /// A command-line option with a value that cannot work (header syntax, regex, ...).
    #[error("bad {option} value {value:?}: {reason}")]
    BadOption {
        option: &'static str,
        value: String,
        reason: String,
    },

    /// An environment variable named by an option is not set.
    #[error("environment variable {var} (named by {option}) is not set or not UTF-8")]
    MissingSecret { var: String, option: &'static str },

    /// Network I/O failed.
    #[error("{op} {url}: {reason}")]
    Io {
        op: &'static str,
        url: String,
        kind: std::io::ErrorKind,
        reason: String,
    },

    /// A request did not complete in time (connect, TLS handshake, response head or body).
    #[error("{url}: no complete response within {ms} ms ({phase})")]
    Timeout {
        url: String,
        phase: &'static str,
        ms: u64,
    },

    /// The TLS handshake failed (certificate not trusted, protocol mismatch).
    #[error("TLS with {url}: {reason}")]
    Tls { url: String, reason: String },

    /// The server answered with something that is not HTTP/1.x.
    #[error("{url}: malformed HTTP response: {reason}")]
    Protocol { url: String, reason: String },

    /// The response head exceeded the cap.
    #[error("{url}: response head larger than {limit} bytes")]
    HeadTooLarge { url: String, limit: usize },

    /// `--max-requests` is spent.
    #[error("request budget of {limit} requests spent")]
    RequestBudget { limit: u64 },

    /// The scan's overall time limit passed.
    #[error("scan time limit of {secs} s reached")]
    Deadline { secs: u64 },

    /// Form login did not produce a session.
    #[error("login at {url} failed: {reason}")]
    Login { url: String, reason: String },

    /// The callback listener could not be started.
    #[error("callback listener on {addr}: {reason}")]
    Callback { addr: String, reason: String },

    /// The start URL could not be fetched at all.
    #[error("target {url} unreachable: {reason}")]
    Unreachable { url: String, reason: String },
}

impl WebscanError {
    /// Whether the error comes from what the user gave (exit 2) rather than from the work (3).
    pub fn is_input_error(&self) -> bool {
        matches!(
            self,
            WebscanError::BadUrl { .. }
                | WebscanError::File { .. }
                | WebscanError::OpenApi { .. }
                | WebscanError::BadOption { .. }
                | WebscanError::MissingSecret { .. }
        )
    }

    pub(crate) fn io(op: &'static str, url: &str, e: &std::io::Error) -> WebscanError {
        WebscanError::Io {
            op,
            url: url.to_owned(),
            kind: e.kind(),
            reason: e.to_string(),
        }
    }
}

/// Result alias of the crate.
pub type Result<T, E = WebscanError> = std::result::Result<T, E>;
