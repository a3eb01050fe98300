//! The appliance side of the API: enrollment, long-poll, heartbeat, job status, result ingest,
//! command results and certificate renewal (paths and bodies: `picket_model::api`).
//!
//! Why these rules: every call but enrollment is authenticated by the client certificate the
//! connection presented (verified by rustls against the enrollment CA; here we also require it to
//! be the appliance's current certificate, or a superseded one within its grace period), and an
//! appliance can only see and change its own jobs and commands.

use crate::error::PlatformError;
use crate::server::{Peer, Shared};
use crate::store::{self, ApplianceRec, JobRec};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use axum::Json;
use picket_model::api::{
    self, Ack, CommandResult, EnrollRequest, EnrollResponse, Heartbeat, IngestResponse, JobState,
    JobStatusUpdate, PollResponse, RenewRequest, RenewResponse, ResultChunk,
};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::time::Duration;

/// A JSON body read with the API's cap; a bad body is a typed `bad_request`, not axum's text.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = PlatformError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let body = axum::body::to_bytes(req.into_body(), api::MAX_BODY_BYTES)
            .await
            .map_err(|_| PlatformError::TooLarge {
                limit: api::MAX_BODY_BYTES,
            })?;
        serde_json::from_slice(&body)
            .map(JsonBody)
            .map_err(|e| PlatformError::BadRequest(format!("body: {e}")))
    }
}

/// The authenticated appliance of a request.
#[derive(Debug)]
pub struct Appliance(pub ApplianceRec);

impl FromRequestParts<Shared> for Appliance {
    type Rejection = PlatformError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Shared,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<Peer>()
            .and_then(|p| p.0.clone())
            .ok_or_else(|| {
                PlatformError::Unauthorized("a client certificate is required".into())
            })?;
        let rec = state.store.authorize(&peer.appliance_id, &peer.serial)?;
        state.touch(&rec.id);
        Ok(Appliance(rec))
    }
}

fn check_len(what: &str, s: &str, max: usize) -> Result<(), PlatformError> {
    if s.len() > max {
        return Err(PlatformError::BadRequest(format!(
            "{what} longer than {max} bytes"
        )));
    }
    Ok(())
}

pub async fn enroll(
    State(p): State<Shared>,
    JsonBody(req): JsonBody<EnrollRequest>,
) -> Result<Json<EnrollResponse>, PlatformError> {
    check_len("hostname", &req.hostname, 255)?;
    check_len("picket_version", &req.picket_version, 64)?;
    check_len("code", &req.code, 64)?;
    if req.sealing_key.len() != 64 || !req.sealing_key.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(PlatformError::BadRequest(
            "sealing_key: expected 32 bytes of hex".into(),
        ));
    }
    // A wrong code is refused before any signing work (unauthenticated callers get no CPU).
    p.store.check_code(&req.code)?;
    let id = format!("app-{}", crate::server::random_token(8)?);
    // The CSR is checked (and the certificate signed) before the code is consumed, so a broken
    // CSR does not burn the operator's code; the consumption itself is the atomic check.
    let issued = {
        let p = p.clone();
        let csr = req.csr_pem.clone();
        let id = id.clone();
        tokio::task::spawn_blocking(move || {
            p.ca.issue_client(&csr, &id, p.config.cert_validity_secs)
        })
        .await
        .map_err(|_| PlatformError::Unavailable("signing task failed".into()))??
    };
    let code = p.store.consume_code(&req.code, &id)?;
    let now = store::now();
    let rec = ApplianceRec {
        id: id.clone(),
        label: code.label,
        hostname: req.hostname,
        picket_version: req.picket_version,
        sealing_key: req.sealing_key.to_ascii_lowercase(),
        enrolled_at: now,
        cert_serial: issued.serial,
        cert_not_after: issued.not_after.unix_timestamp(),
        superseded: Vec::new(),
        last_seen: Some(now),
        last_heartbeat: None,
        last_heartbeat_at: None,
    };
    p.store.put_appliance(&rec)?;
    p.store.flush().await?;
    p.touch(&id);
    tracing::info!(appliance = %id, "enrolled");
    Ok(Json(EnrollResponse {
        appliance_id: id,
        certificate_pem: issued.pem,
        ca_pem: p.ca.cert_pem().to_string(),
        not_after: store::rfc3339(rec.cert_not_after),
    }))
}

#[derive(Debug, Deserialize)]
pub struct PollQuery {
    pub wait: Option<u64>,
}

/// What is due for the appliance now, and when the next scheduled run falls due.
fn work_for(p: &Shared, appliance: &str) -> Result<(PollResponse, Option<i64>), PlatformError> {
    let now = store::now();
    let mut resp = PollResponse::default();
    let mut next_due: Option<i64> = None;
    for rec in p.store.live_jobs_of(appliance)? {
        if store::is_open(rec.state) {
            resp.jobs.push(rec.job);
            continue;
        }
        let Some(due) = rec.next_run_at else { continue };
        if due <= now {
            // A scheduled job's next run: it becomes pending again, with a fresh run.
            let rec = p.store.update_job(&rec.job.id, |j| {
                if j.next_run_at.is_some_and(|d| d <= now) && !store::is_open(j.state) {
                    j.state = JobState::Pending;
                    j.reason = None;
                    j.scan_id = None;
                    j.chunks_expected = None;
                    j.next_run_at = None;
                    j.updated_at = now;
                }
                Ok(())
            })?;
            if store::is_open(rec.state) {
                resp.jobs.push(rec.job);
            }
        } else {
            next_due = Some(next_due.map_or(due, |d: i64| d.min(due)));
        }
    }
    resp.commands = p.store.open_commands(appliance)?;
    Ok((resp, next_due))
}

pub async fn poll(
    State(p): State<Shared>,
    Appliance(app): Appliance,
    Query(q): Query<PollQuery>,
) -> Result<Json<PollResponse>, PlatformError> {
    let wait = Duration::from_secs(q.wait.unwrap_or(0).min(api::MAX_POLL_WAIT_SECS));
    let deadline = tokio::time::Instant::now() + wait;
    let notify = p.notifier(&app.id);
    let _guard = p.poll_opened(&app.id);
    // Bounded: every turn either returns or waits for a wake-up, a due schedule or the deadline.
    for _ in 0..100_000 {
        let notified = notify.notified();
        tokio::pin!(notified);
        // Registered before looking, so a job created between the look and the wait still wakes us.
        notified.as_mut().enable();
        // A revocation wakes the poll: it ends refused, like the appliance's next call.
        p.store.refuse_if_revoked(&app.id)?;
        let (resp, next_due) = work_for(&p, &app.id)?;
        let now = tokio::time::Instant::now();
        if !resp.jobs.is_empty() || !resp.commands.is_empty() || now >= deadline {
            return Ok(Json(resp));
        }
        let until = match next_due {
            Some(due) => {
                let secs = u64::try_from(due - store::now()).unwrap_or(0).max(1);
                deadline.min(now + Duration::from_secs(secs))
            }
            None => deadline,
        };
        tokio::select! {
            () = &mut notified => {}
            () = tokio::time::sleep_until(until) => {}
        }
    }
    Ok(Json(PollResponse::default()))
}

pub async fn heartbeat(
    State(p): State<Shared>,
    Appliance(app): Appliance,
    JsonBody(hb): JsonBody<Heartbeat>,
) -> Result<Json<Ack>, PlatformError> {
    // The heartbeat is kept in the appliance's record, read on every call: bounded here.
    check_len("hostname", &hb.hostname, 255)?;
    check_len("picket_version", &hb.picket_version, 64)?;
    check_len("certificate_not_after", &hb.certificate_not_after, 64)?;
    if hb.warnings.len() > 64 || hb.running_jobs.len() > 1024 {
        return Err(PlatformError::BadRequest("heartbeat lists too long".into()));
    }
    for w in &hb.warnings {
        check_len("warning", w, 1024)?;
    }
    for j in &hb.running_jobs {
        check_len("running job id", j, 128)?;
    }
    let now = store::now();
    p.store.update_appliance(&app.id, |rec| {
        if !hb.hostname.is_empty() {
            rec.hostname = hb.hostname.clone();
        }
        if !hb.picket_version.is_empty() {
            rec.picket_version = hb.picket_version.clone();
        }
        rec.last_heartbeat = Some(hb.clone());
        rec.last_heartbeat_at = Some(now);
        rec.last_seen = Some(now);
        Ok(())
    })?;
    Ok(Json(Ack { ok: true }))
}

pub async fn job_status(
    State(p): State<Shared>,
    Appliance(app): Appliance,
    Path(job_id): Path<String>,
    JsonBody(up): JsonBody<JobStatusUpdate>,
) -> Result<Json<Ack>, PlatformError> {
    if let Some(r) = &up.reason {
        check_len("reason", r, 4096)?;
    }
    if let Some(s) = &up.scan_id {
        if !store::valid_scan_id(s) {
            return Err(PlatformError::BadRequest(
                "scan_id: 1-128 of [A-Za-z0-9._:-]".into(),
            ));
        }
    }
    let now = store::now();
    let mine = |j: &JobRec| j.appliance_id == app.id;
    match p.store.job(&job_id)? {
        Some(j) if mine(&j) => {}
        _ => {
            return Err(PlatformError::NotFound {
                what: "job",
                id: job_id,
            })
        }
    }
    p.store.update_job(&job_id, |j| {
        let terminal_now = !store::is_open(j.state);
        let same_run = up.scan_id.is_none() || up.scan_id == j.scan_id;
        // A late "running" retried after the run's "done" must not reopen it.
        if terminal_now && store::is_open(up.state) && same_run && j.state != JobState::Pending {
            return Ok(());
        }
        if j.state == JobState::Cancelled
            && terminal_now
            && up.state != JobState::Cancelled
            && same_run
        {
            return Ok(());
        }
        j.state = up.state;
        j.reason = match up.state {
            JobState::Failed | JobState::Cancelled => up.reason.clone(),
            _ => None,
        };
        if up.scan_id.is_some() {
            j.scan_id = up.scan_id.clone();
        }
        if up.chunks.is_some() {
            j.chunks_expected = up.chunks;
        }
        j.updated_at = now;
        match up.state {
            JobState::Done | JobState::Failed => {
                j.runs = j.runs.saturating_add(1);
                j.next_run_at = j
                    .job
                    .every_secs
                    .map(|e| now.saturating_add(i64::try_from(e).unwrap_or(i64::MAX)));
            }
            JobState::Cancelled => j.next_run_at = None,
            _ => {}
        }
        Ok(())
    })?;
    p.store.flush().await?;
    Ok(Json(Ack { ok: true }))
}

pub async fn results(
    State(p): State<Shared>,
    Appliance(app): Appliance,
    headers: HeaderMap,
    JsonBody(chunk): JsonBody<ResultChunk>,
) -> Result<Json<IngestResponse>, PlatformError> {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| PlatformError::BadRequest("Idempotency-Key header is required".into()))?;
    if key != chunk.key() {
        return Err(PlatformError::BadRequest(format!(
            "Idempotency-Key {key:?} is not scan_id:seq ({:?})",
            chunk.key()
        )));
    }
    if !store::valid_scan_id(&chunk.scan_id) {
        return Err(PlatformError::BadRequest(
            "scan_id: 1-128 of [A-Za-z0-9._:-]".into(),
        ));
    }
    if chunk.total == 0 || chunk.seq >= chunk.total {
        return Err(PlatformError::BadRequest(format!(
            "seq {} is not below total {}",
            chunk.seq, chunk.total
        )));
    }
    if chunk.targets.len() > 4096 || chunk.targets.iter().any(|t| t.len() > 2048) {
        return Err(PlatformError::BadRequest(
            "targets: at most 4096, each at most 2048 bytes".into(),
        ));
    }
    check_len("started_at", &chunk.started_at, 64)?;
    check_len("finished_at", &chunk.finished_at, 64)?;
    if chunk.findings.len() > api::MAX_FINDINGS_PER_CHUNK {
        return Err(PlatformError::BadRequest(format!(
            "{} findings in one chunk (at most {})",
            chunk.findings.len(),
            api::MAX_FINDINGS_PER_CHUNK
        )));
    }
    if let Some(job_id) = &chunk.job_id {
        match p.store.job(job_id)? {
            Some(j) if j.appliance_id == app.id => {}
            _ => {
                return Err(PlatformError::NotFound {
                    what: "job",
                    id: job_id.clone(),
                })
            }
        }
    }
    let n = chunk.findings.len() as u64;
    let chunk = std::sync::Arc::new(chunk);
    // Encoding and writing are CPU and disk work: off the reactor threads.
    let (p2, c2, id) = (p.clone(), chunk.clone(), app.id.clone());
    let body = tokio::task::spawn_blocking(move || {
        if p2.store.has_chunk(&id, &c2.scan_id, c2.seq)? {
            return Ok(None);
        }
        p2.store.append_body(&c2).map(Some)
    })
    .await
    .map_err(|_| PlatformError::Unavailable("ingest task failed".into()))??;
    let stored = match body {
        // A re-send: already stored (and durable once the flush below returns).
        None => false,
        Some(body) => {
            // The body is on disk before any record names it.
            p.store.flush().await?;
            let (p2, c2, id) = (p.clone(), chunk.clone(), app.id.clone());
            tokio::task::spawn_blocking(move || {
                let stored = p2.store.ingest(&id, &c2, body)?;
                if stored {
                    if let Some(job_id) = &c2.job_id {
                        let scan_id = c2.scan_id.clone();
                        p2.store.update_job(job_id, |j| {
                            if j.scan_id.is_none() {
                                j.scan_id = Some(scan_id.clone());
                            }
                            Ok(())
                        })?;
                    }
                }
                Ok::<bool, PlatformError>(stored)
            })
            .await
            .map_err(|_| PlatformError::Unavailable("ingest task failed".into()))??
        }
    };
    // Acknowledged only once on disk.
    p.store.flush().await?;
    Ok(Json(IngestResponse {
        stored,
        findings: n,
    }))
}

pub async fn command_result(
    State(p): State<Shared>,
    Appliance(app): Appliance,
    Path(command_id): Path<String>,
    JsonBody(result): JsonBody<CommandResult>,
) -> Result<Json<Ack>, PlatformError> {
    check_len("message", &result.message, 64 * 1024)?;
    if let Some(o) = &result.output {
        check_len("output", o, 1024 * 1024)?;
    }
    p.store.answer_command(&app.id, &command_id, result)?;
    p.store.flush().await?;
    Ok(Json(Ack { ok: true }))
}

pub async fn renew(
    State(p): State<Shared>,
    Appliance(app): Appliance,
    JsonBody(req): JsonBody<RenewRequest>,
) -> Result<Json<RenewResponse>, PlatformError> {
    let issued = {
        let p = p.clone();
        let id = app.id.clone();
        tokio::task::spawn_blocking(move || {
            p.ca.issue_client(&req.csr_pem, &id, p.config.cert_validity_secs)
        })
        .await
        .map_err(|_| PlatformError::Unavailable("signing task failed".into()))??
    };
    let now = store::now();
    let grace = i64::try_from(p.config.renew_grace_secs).unwrap_or(i64::MAX);
    p.store.update_appliance(&app.id, |rec| {
        rec.superseded.retain(|(_, until)| *until > now);
        let old = std::mem::replace(&mut rec.cert_serial, issued.serial.clone());
        rec.superseded.push((old, now.saturating_add(grace)));
        rec.cert_not_after = issued.not_after.unix_timestamp();
        Ok(())
    })?;
    p.store.flush().await?;
    tracing::info!(appliance = %app.id, "certificate renewed");
    Ok(Json(RenewResponse {
        certificate_pem: issued.pem,
        not_after: store::rfc3339(issued.not_after.unix_timestamp()),
    }))
}
