//! `picket status` and `picket status --check`.
//!
//! Why: the appliance is managed from the cloud, so when the cloud does not see it the person at
//! the box needs one command that says what is wrong. `status` shows enrollment, platform, last
//! contact, outbox and jobs; `--check` tests the path to the platform hop by hop — DNS, TCP, proxy,
//! TLS, API — and names the first that fails (exit 3).

use serde::{Deserialize, Serialize};

/// What `picket status` shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    pub enrolled: bool,
    pub appliance_id: Option<String>,
    pub platform_url: Option<String>,
    pub certificate_not_after: Option<String>,
    /// Whether a daemon holds the store (the report then comes from it).
    pub daemon_running: bool,
    /// RFC 3339 of the last successful call to the platform.
    pub last_contact: Option<String>,
    pub last_error: Option<String>,
    pub outbox_chunks: u64,
    pub outbox_bytes: u64,
    pub dropped_chunks: u64,
    pub dropped_findings: u64,
    pub running_jobs: Vec<String>,
    pub jobs: Vec<JobLine>,
    /// Where the key-encryption key comes from, and what it protects against.
    pub secrets: String,
    pub warnings: Vec<String>,
}

/// One job as `status` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobLine {
    pub id: String,
    pub kind: String,
    pub state: String,
    pub reason: Option<String>,
    pub scan_id: Option<String>,
}

/// One hop of `status --check`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckStep {
    /// `dns`, `tcp`, `proxy`, `tls`, `api`.
    pub step: String,
    pub ok: bool,
    pub detail: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckReport {
    pub steps: Vec<CheckStep>,
    /// The first failing step, if any.
    pub failed: Option<String>,
}
