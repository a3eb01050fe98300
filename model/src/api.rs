//! The wire protocol between an appliance (`picket daemon`) and the platform (`picket-platform`).
//!
//! Why here: both sides must agree byte for byte, and neither should depend on the other. These are
//! JSON bodies over HTTPS; every appliance call after enrollment is mutually authenticated (the
//! appliance's client certificate, issued by the platform's enrollment CA, names it: its subject
//! common name is the appliance id). The OpenAPI document `platform/openapi.yaml` describes the same
//! shapes for other clients; a platform test checks that every path here is documented there.
//!
//! Versioning: every path is under `/api/v1`. A breaking change gets `/api/v2`; fields may be added
//! (both sides ignore unknown fields, so an older appliance keeps working with a newer platform).
//!
//! Appliance → platform (mTLS required except `enroll`):
//!
//! | method, path | body → answer |
//! |---|---|
//! | `POST /api/v1/enroll` (no client certificate) | [`EnrollRequest`] → [`EnrollResponse`] |
//! | `GET /api/v1/appliance/poll?wait=SECS` | → [`PollResponse`]; held open up to `wait` (≤ 60) seconds until there is work |
//! | `POST /api/v1/appliance/heartbeat` | [`Heartbeat`] → [`Ack`] |
//! | `POST /api/v1/appliance/jobs/{job_id}/status` | [`JobStatusUpdate`] → [`Ack`] |
//! | `POST /api/v1/appliance/results` (header `Idempotency-Key: {scan_id}:{seq}`) | [`ResultChunk`] → [`IngestResponse`] |
//! | `POST /api/v1/appliance/commands/{command_id}/result` | [`CommandResult`] → [`Ack`] |
//! | `POST /api/v1/appliance/renew` | [`RenewRequest`] → [`RenewResponse`] |
//!
//! Operators (bearer token from the platform's config; the console page uses the same API):
//!
//! | method, path | body → answer |
//! |---|---|
//! | `POST /api/v1/enrollment-codes` | [`CreateCode`] → [`EnrollmentCode`] |
//! | `GET /api/v1/appliances` · `GET /api/v1/appliances/{id}` | → `[ApplianceView]` · [`ApplianceView`] |
//! | `POST /api/v1/appliances/{id}/commands` | [`CreateCommand`] → [`Command`] |
//! | `POST /api/v1/jobs` · `GET /api/v1/jobs` · `GET /api/v1/jobs/{id}` | [`CreateJob`] → [`JobView`] · `[JobView]` · [`JobView`] |
//! | `GET /api/v1/findings?appliance=ID&job=ID&scan=ID` | → `[StoredFinding]` |
//!
//! Errors from either side are [`ApiError`] bodies with an HTTP status.

use crate::{Finding, ScanKind, Severity};
use serde::{Deserialize, Serialize};

/// Path prefix of every call.
pub const API_PREFIX: &str = "/api/v1";

/// Longest long-poll the platform holds open, in seconds. The appliance asks for less so that a
/// proxy's idle timeout (often 60 s) never cuts a poll.
pub const MAX_POLL_WAIT_SECS: u64 = 60;

/// Largest number of findings in one [`ResultChunk`]. Chunks stay well under a megabyte so that a
/// cut link loses little progress and the platform's per-request body cap stays small.
pub const MAX_FINDINGS_PER_CHUNK: usize = 500;

/// Largest request body either side accepts, in bytes.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// `POST /api/v1/enroll`: the one call made without a client certificate. The code is the secret
/// that proves the operator wants this box; the CSR carries the public half of a device key that was
/// generated on the box and never leaves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollRequest {
    /// The one-time code, as typed (the platform ignores case, spaces and dashes).
    pub code: String,
    /// PKCS#10 certificate signing request, PEM.
    pub csr_pem: String,
    /// X25519 public key (32 bytes, lowercase hex) to which the platform encrypts job credentials.
    pub sealing_key: String,
    pub hostname: String,
    pub picket_version: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollResponse {
    pub appliance_id: String,
    /// The appliance's client certificate, PEM, issued from the CSR.
    pub certificate_pem: String,
    /// The enrollment CA, PEM. The appliance pins it: from now on the platform's server certificate
    /// must chain to it, whatever the system trust store says.
    pub ca_pem: String,
    /// RFC 3339: when the certificate expires; the appliance renews well before.
    pub not_after: String,
}

/// `GET /api/v1/appliance/poll`: what the platform wants done. An empty answer after `wait`
/// seconds means "nothing yet, ask again".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PollResponse {
    /// Jobs assigned to this appliance that it has not yet acknowledged as finished.
    pub jobs: Vec<Job>,
    /// Remote commands not yet answered.
    pub commands: Vec<Command>,
}

/// `POST /api/v1/appliance/heartbeat`, every minute and after every state change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub picket_version: String,
    pub hostname: String,
    pub uptime_secs: u64,
    /// Jobs running now.
    pub running_jobs: Vec<String>,
    /// Result chunks written to the outbox but not yet acknowledged by the platform.
    pub outbox_chunks: u64,
    pub outbox_bytes: u64,
    /// Result chunks dropped (oldest first) because the outbox quota was reached while offline,
    /// since enrollment. The platform shows it; it never silently disappears.
    pub dropped_chunks: u64,
    pub dropped_findings: u64,
    /// Free bytes on the store's filesystem.
    pub store_free_bytes: u64,
    /// RFC 3339 expiry of the current client certificate.
    pub certificate_not_after: String,
    /// Free-form warnings (e.g. "store disk full", "clock skew 40 s").
    pub warnings: Vec<String>,
}

/// A scan job. The platform assigns it to one appliance; schedules repeat it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub id: String,
    pub kind: ScanKind,
    /// Targets as `picket scan <kind>` takes them (addresses, CIDRs, ranges, hostnames, `ssh://`
    /// URLs, web URLs).
    pub targets: Vec<String>,
    pub options: JobOptions,
    /// Repeat every N seconds after the previous run finished (`None`: run once).
    pub every_secs: Option<u64>,
    /// The job fails with reason "timeout" after this long.
    pub timeout_secs: u64,
    /// Credentials for host and web scans, sealed to the appliance's X25519 key (see `sealed`).
    pub credentials: Option<SealedSecret>,
    /// Bumped by the platform when the job is edited; a run reports the revision it ran.
    pub revision: u64,
    pub created_at: String,
}

/// Scan options; each maps to the `picket scan` flag of the same name. Unset means the default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobOptions {
    pub ports: Option<String>,
    pub udp_ports: Option<String>,
    pub exclude: Vec<String>,
    pub no_service: bool,
    pub sudo: bool,
    pub max_rps: Option<u32>,
    pub max_requests: Option<u64>,
    /// Web scans: the login form.
    pub login_url: Option<String>,
    pub username: Option<String>,
}

/// A secret encrypted to one appliance: X25519 (ephemeral sender key) + HKDF-SHA256 +
/// ChaCha20-Poly1305. Only the appliance holding the X25519 private key can open it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedSecret {
    /// Sender's ephemeral public key, lowercase hex.
    pub ephemeral: String,
    /// Nonce (12 bytes) followed by ciphertext and tag, lowercase hex.
    pub ciphertext: String,
}

/// What is inside a [`SealedSecret`] of a job, as JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobCredentials {
    /// SSH or web login password.
    pub password: Option<String>,
    /// SSH private key, OpenSSH PEM.
    pub private_key: Option<String>,
    pub passphrase: Option<String>,
    /// Pinned SSH host key (`ssh-ed25519 AAAA...`), when the operator knows it.
    pub host_key: Option<String>,
}

/// Lifecycle of one run of a job, as the appliance reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Created, not yet taken by the appliance.
    Pending,
    /// Taken by the appliance (it will run when a slot is free).
    Accepted,
    Running,
    /// Finished; all its result chunks are in the outbox.
    Done,
    Failed,
    Cancelled,
}

/// `POST /api/v1/appliance/jobs/{job_id}/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobStatusUpdate {
    pub state: JobState,
    /// Which run (a scheduled job runs many times); the scan id of the run once it has one.
    pub scan_id: Option<String>,
    pub revision: u64,
    /// Why it failed or was cancelled ("out of scope: 10.0.0.1", "timeout after 600 s",
    /// "interrupted: daemon restarted").
    pub reason: Option<String>,
    /// Number of result chunks the run produced (set with `Done`), so the platform knows when it
    /// holds all of them.
    pub chunks: Option<u32>,
}

/// `POST /api/v1/appliance/results`: part of one scan's results. Chunk `seq` of `total`; the
/// platform stores a chunk once, whatever the number of times it is sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultChunk {
    pub scan_id: String,
    /// The job that asked for the scan (`None`: a scan run locally, uploaded for the record).
    pub job_id: Option<String>,
    pub kind: ScanKind,
    pub seq: u32,
    pub total: u32,
    pub started_at: String,
    pub finished_at: String,
    pub targets: Vec<String>,
    /// At most [`MAX_FINDINGS_PER_CHUNK`].
    pub findings: Vec<Finding>,
    /// Chunk 0 only: the kind-specific part of the JSON report (e.g. `{"hosts": [...]}`), as JSON
    /// text, so the platform can show assets without understanding every scanner's types.
    pub report_part: Option<String>,
}

impl ResultChunk {
    /// The idempotency key: one per chunk of one scan.
    pub fn key(&self) -> String {
        format!("{}:{}", self.scan_id, self.seq)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestResponse {
    /// False when the platform already had this chunk (a retry after a lost answer).
    pub stored: bool,
    pub findings: u64,
}

/// A remote command; the appliance answers each with a [`CommandResult`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    pub id: String,
    pub kind: CommandKind,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CommandKind {
    CancelJob {
        job_id: String,
    },
    /// A new daemon configuration fragment (TOML text), merged over the local file's settings
    /// that the platform may manage (scope, concurrency, quotas, log level).
    UpdateConfig {
        toml: String,
    },
    RotateCertificate,
    CollectDiagnostics,
    UpdateNow,
    Reboot,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandResult {
    pub ok: bool,
    pub message: String,
    /// `CollectDiagnostics`: the bundle as text (bounded to 1 MiB).
    pub output: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenewRequest {
    pub csr_pem: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenewResponse {
    pub certificate_pem: String,
    pub not_after: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    pub ok: bool,
}

/// Every error answer: `{"error": "...", "detail": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// Stable machine-readable code: `bad_request`, `unauthorized`, `code_used`, `code_expired`,
    /// `not_found`, `too_large`, `conflict`, `unavailable`, `internal`.
    pub error: String,
    pub detail: String,
}

// ---- operator side ----

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateCode {
    /// Validity; the platform's default (and maximum) applies when unset.
    pub ttl_secs: Option<u64>,
    /// Operator's label for the appliance that will use it.
    pub label: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollmentCode {
    /// Shown once; the platform stores only its hash.
    pub code: String,
    pub expires_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplianceView {
    pub id: String,
    pub label: Option<String>,
    pub hostname: String,
    pub enrolled_at: String,
    /// RFC 3339 of the last call the appliance made.
    pub last_seen: Option<String>,
    /// True while it has a poll open or called within the last two minutes.
    pub online: bool,
    pub certificate_not_after: String,
    pub last_heartbeat: Option<Heartbeat>,
    /// RFC 3339 of the operator's revocation: every call of the appliance is then refused
    /// (absent while it is trusted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_reason: Option<String>,
}

/// Body of `POST /api/v1/appliances/{id}/revoke`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokeAppliance {
    /// Why (a stolen box, a decommissioned site); shown in the fleet.
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateJob {
    pub appliance_id: String,
    pub kind: ScanKind,
    pub targets: Vec<String>,
    pub options: JobOptions,
    pub every_secs: Option<u64>,
    pub timeout_secs: Option<u64>,
    /// Plain credentials; the platform seals them to the appliance at once and never stores them
    /// in the clear.
    pub credentials: Option<JobCredentials>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateCommand {
    pub kind: CommandKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobView {
    pub job: Job,
    pub appliance_id: String,
    pub state: JobState,
    pub reason: Option<String>,
    /// Scan id of the latest run.
    pub scan_id: Option<String>,
    /// Result chunks received for the latest run / announced by the appliance.
    pub chunks_received: u32,
    pub chunks_expected: Option<u32>,
    pub findings: u64,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredFinding {
    pub appliance_id: String,
    pub scan_id: String,
    pub job_id: Option<String>,
    pub kind: ScanKind,
    pub severity: Severity,
    pub finding: Finding,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_kinds_are_tagged() {
        let c = CommandKind::CancelJob {
            job_id: "j1".into(),
        };
        let json = serde_json::to_string(&c).unwrap_or_default();
        assert_eq!(json, r#"{"type":"cancel_job","job_id":"j1"}"#);
        let back: CommandKind = serde_json::from_str(&json).unwrap_or(CommandKind::Reboot);
        assert_eq!(back, c);
    }

    #[test]
    fn chunk_key_names_scan_and_seq() {
        let c = ResultChunk {
            scan_id: "20261121T101010Z-abcd".into(),
            job_id: None,
            kind: ScanKind::Net,
            seq: 3,
            total: 4,
            started_at: String::new(),
            finished_at: String::new(),
            targets: vec![],
            findings: vec![],
            report_part: None,
        };
        assert_eq!(c.key(), "20261121T101010Z-abcd:3");
    }
}
