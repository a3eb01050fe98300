//! The platform's one error type.
//!
//! Why one enum: every failure — a bad config file, a damaged store record, a refused enrollment —
//! must reach either the operator (with the file, tree or key it concerns) or an appliance (as an
//! [`ApiError`] with a stable code and an HTTP status). Keeping the variants here makes both
//! mappings exhaustive, and lets tests assert the exact error.

use picket_model::api::ApiError;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlatformError {
    /// The config file is missing, unreadable or invalid (unknown keys included).
    #[error("config {path}: {detail}")]
    Config { path: PathBuf, detail: String },

    /// A command-line or request input that cannot be used.
    #[error("invalid {what}: {detail}")]
    Invalid { what: &'static str, detail: String },

    #[error("{context} {path}: {source}")]
    Io {
        context: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("store: {context}: {source}")]
    Store {
        context: &'static str,
        #[source]
        source: sled::Error,
    },

    /// A stored record that cannot be decoded (or was written by a newer platform).
    #[error("store: record {key} in tree {tree} is unreadable: {detail}")]
    Corrupt {
        tree: &'static str,
        key: String,
        detail: String,
    },

    #[error("certificate authority: {context}: {detail}")]
    Ca {
        context: &'static str,
        detail: String,
    },

    #[error("tls: {context}: {detail}")]
    Tls {
        context: &'static str,
        detail: String,
    },

    /// The request body is not what the call takes.
    #[error("bad request: {0}")]
    BadRequest(String),

    /// No valid client certificate, admin token or session.
    #[error("unauthorized: {0}")]
    Unauthorized(String),

    #[error("forbidden: {0}")]
    Forbidden(String),

    /// The appliance's certificate is valid but an operator revoked the appliance.
    #[error("appliance {appliance} was revoked at {at}; enroll it again with a new code")]
    Revoked { appliance: String, at: String },

    #[error("enrollment code already used")]
    CodeUsed,

    #[error("enrollment code expired")]
    CodeExpired,

    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },

    #[error("request body larger than {limit} bytes")]
    TooLarge { limit: usize },

    #[error("conflict: {0}")]
    Conflict(String),

    /// Temporarily unable (shutting down, too many connections, timeout reading the body).
    #[error("unavailable: {0}")]
    Unavailable(String),

    #[error("sealing job credentials for appliance {appliance}: {source}")]
    Seal {
        appliance: String,
        #[source]
        source: picket_model::sealed::SealError,
    },
}

/// Exit codes of `picket-platform`, as `picket` documents its own.
pub const EXIT_OK: u8 = 0;
/// Usage or input error (bad config, bad argument): the message names the input.
pub const EXIT_USAGE: u8 = 2;
/// Runtime failure: store locked or damaged, address in use, I/O.
pub const EXIT_RUNTIME: u8 = 3;

impl PlatformError {
    pub fn exit_code(&self) -> u8 {
        match self {
            PlatformError::Config { .. } | PlatformError::Invalid { .. } => EXIT_USAGE,
            _ => EXIT_RUNTIME,
        }
    }

    /// HTTP status and stable machine-readable code of the answer (see [`ApiError`]).
    pub fn status_and_code(&self) -> (u16, &'static str) {
        match self {
            PlatformError::BadRequest(_) | PlatformError::Invalid { .. } => (400, "bad_request"),
            PlatformError::Unauthorized(_) => (401, "unauthorized"),
            PlatformError::Forbidden(_) => (403, "forbidden"),
            PlatformError::Revoked { .. } => (403, "revoked"),
            PlatformError::CodeUsed => (409, "code_used"),
            PlatformError::CodeExpired => (410, "code_expired"),
            PlatformError::NotFound { .. } => (404, "not_found"),
            PlatformError::TooLarge { .. } => (413, "too_large"),
            PlatformError::Conflict(_) => (409, "conflict"),
            PlatformError::Unavailable(_) => (503, "unavailable"),
            _ => (500, "internal"),
        }
    }

    /// The body sent to the client. Internal errors are logged in full but answered vaguely: a
    /// store path or key is nothing an appliance needs to know.
    pub fn to_api(&self) -> ApiError {
        let (status, code) = self.status_and_code();
        let detail = if status == 500 {
            "internal error (see the platform log)".to_string()
        } else {
            self.to_string()
        };
        ApiError {
            error: code.to_string(),
            detail,
        }
    }

    pub fn io(context: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        PlatformError::Io {
            context,
            path: path.into(),
            source,
        }
    }

    pub fn store(context: &'static str) -> impl FnOnce(sled::Error) -> PlatformError {
        move |source| PlatformError::Store { context, source }
    }

    pub fn ca(context: &'static str) -> impl FnOnce(rcgen::Error) -> PlatformError {
        move |e| PlatformError::Ca {
            context,
            detail: e.to_string(),
        }
    }
}

impl axum::response::IntoResponse for PlatformError {
    fn into_response(self) -> axum::response::Response {
        let (status, _) = self.status_and_code();
        if status == 500 {
            tracing::error!(error = %self, "request failed");
        } else {
            tracing::debug!(error = %self, "request refused");
        }
        let status = axum::http::StatusCode::from_u16(status)
            .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
        (status, axum::Json(self.to_api())).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_the_api() {
        assert_eq!(PlatformError::CodeUsed.to_api().error, "code_used");
        assert_eq!(
            PlatformError::CodeExpired.status_and_code(),
            (410, "code_expired")
        );
        let internal = PlatformError::Corrupt {
            tree: "jobs",
            key: "j1".into(),
            detail: "x".into(),
        };
        assert_eq!(internal.to_api().error, "internal");
        assert!(!internal.to_api().detail.contains("jobs"));
        assert_eq!(
            PlatformError::Config {
                path: "x.toml".into(),
                detail: "unknown field".into()
            }
            .exit_code(),
            EXIT_USAGE
        );
    }
}
