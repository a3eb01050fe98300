//! The operator side of the API (bearer admin token): enrollment codes, the fleet, jobs, remote
//! commands and findings. The console page calls the same functions (`create_code`,
//! `create_job`, ...), so the page and the API cannot disagree.

use crate::appliance::JsonBody;
use crate::error::PlatformError;
use crate::server::Shared;
use crate::store::{self, CodeRec, CommandRec, CommandView, JobRec};
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::Json;
use picket_model::api::{
    ApplianceView, Command, CreateCode, CreateCommand, CreateJob, EnrollmentCode, Job, JobState,
    JobView, RevokeAppliance, StoredFinding,
};
use serde::Deserialize;

/// Characters of enrollment codes: base32 without `0`, `1`, `I` and `O`, which are easily
/// confused when read off one screen and typed on another.
const CODE_ALPHABET: &[u8; 32] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
/// 16 characters of 5 bits: 80 bits, typed as four groups of four.
const CODE_CHARS: usize = 16;

/// An authenticated operator (bearer token).
#[derive(Debug)]
pub struct Operator;

impl FromRequestParts<Shared> for Operator {
    type Rejection = PlatformError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Shared,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| PlatformError::Unauthorized("bearer admin token required".into()))?;
        if state.admin_token_ok(token.trim()) {
            Ok(Operator)
        } else {
            Err(PlatformError::Unauthorized("wrong admin token".into()))
        }
    }
}

/// A fresh code, `XXXX-XXXX-XXXX-XXXX`.
pub fn generate_code() -> Result<String, PlatformError> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 10];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| PlatformError::Unavailable("system random generator failed".into()))?;
    // 80 bits read 5 at a time.
    let mut out = String::with_capacity(CODE_CHARS + 3);
    let mut acc: u32 = 0;
    let mut bits = 0;
    let mut n = 0;
    for b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            let i = ((acc >> bits) & 31) as usize;
            if n > 0 && n % 4 == 0 {
                out.push('-');
            }
            out.push(char::from(CODE_ALPHABET.get(i).copied().unwrap_or(b'Z')));
            n += 1;
        }
    }
    Ok(out)
}

/// Stores a new code (not yet flushed: callers flush, see [`create_code_durable`]).
pub fn create_code(p: &Shared, req: &CreateCode) -> Result<EnrollmentCode, PlatformError> {
    if let Some(l) = &req.label {
        if l.len() > 200 {
            return Err(PlatformError::BadRequest(
                "label longer than 200 bytes".into(),
            ));
        }
    }
    let ttl = req
        .ttl_secs
        .unwrap_or(p.config.code_ttl_secs)
        .clamp(1, p.config.code_ttl_secs);
    let code = generate_code()?;
    let now = store::now();
    let expires_at = now.saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX));
    p.store.add_code(
        &code,
        &CodeRec {
            label: req.label.clone().filter(|l| !l.is_empty()),
            created_at: now,
            expires_at,
            used_by: None,
        },
    )?;
    Ok(EnrollmentCode {
        code,
        expires_at: store::rfc3339(expires_at),
    })
}

pub async fn post_code(
    State(p): State<Shared>,
    _: Operator,
    JsonBody(req): JsonBody<CreateCode>,
) -> Result<Json<EnrollmentCode>, PlatformError> {
    Ok(Json(create_code_durable(&p, &req).await?))
}

/// Creates a code and returns once it is on disk. Flushes go through sled's own thread pool
/// (`flush_async`): a blocking flush on the runtime's worker threads stalled the whole server
/// under concurrent calls.
pub async fn create_code_durable(
    p: &Shared,
    req: &CreateCode,
) -> Result<EnrollmentCode, PlatformError> {
    let code = create_code(p, req)?;
    p.store.flush().await?;
    Ok(code)
}

pub fn appliance_views(p: &Shared) -> Result<Vec<ApplianceView>, PlatformError> {
    p.store
        .appliances()?
        .iter()
        .map(|rec| {
            let (online, seen) = p.liveness(&rec.id);
            let revoked = p.store.revocation(&rec.id)?;
            Ok(store::appliance_view(rec, revoked.as_ref(), online, seen))
        })
        .collect()
}

pub fn appliance_view(p: &Shared, id: &str) -> Result<ApplianceView, PlatformError> {
    let rec = p
        .store
        .appliance(id)?
        .ok_or_else(|| PlatformError::NotFound {
            what: "appliance",
            id: id.to_string(),
        })?;
    let (online, seen) = p.liveness(id);
    let revoked = p.store.revocation(id)?;
    Ok(store::appliance_view(&rec, revoked.as_ref(), online, seen))
}

/// Revokes an appliance (a stolen or decommissioned box): from the answer on, every call it makes
/// is refused whatever certificate it presents, its open long-poll ends, its jobs still to run
/// are failed with the reason, and its findings stay. Final: the box can only enroll again, with a
/// new code, as a new appliance.
pub async fn revoke_appliance_durable(
    p: &Shared,
    id: &str,
    req: RevokeAppliance,
) -> Result<ApplianceView, PlatformError> {
    let reason = req
        .reason
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty());
    if reason.as_ref().is_some_and(|r| r.len() > 200) {
        return Err(PlatformError::BadRequest(
            "reason longer than 200 bytes".into(),
        ));
    }
    let rec = p.store.revoke(id, reason)?;
    let why = format!(
        "appliance revoked{}",
        rec.reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default()
    );
    for job in p.store.live_jobs_of(id)? {
        p.store.update_job(&job.job.id, |j| {
            if store::is_live(j) {
                j.state = JobState::Failed;
                j.reason = Some(why.clone());
                j.next_run_at = None;
                j.updated_at = store::now();
            }
            Ok(())
        })?;
    }
    p.store.flush().await?;
    // The open poll (if any) returns now; the next call is refused.
    p.wake(id);
    appliance_view(p, id)
}

pub async fn revoke_appliance(
    State(p): State<Shared>,
    _: Operator,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<RevokeAppliance>,
) -> Result<Json<ApplianceView>, PlatformError> {
    Ok(Json(revoke_appliance_durable(&p, &id, req).await?))
}

pub async fn list_appliances(
    State(p): State<Shared>,
    _: Operator,
) -> Result<Json<Vec<ApplianceView>>, PlatformError> {
    Ok(Json(appliance_views(&p)?))
}

pub async fn get_appliance(
    State(p): State<Shared>,
    _: Operator,
    Path(id): Path<String>,
) -> Result<Json<ApplianceView>, PlatformError> {
    Ok(Json(appliance_view(&p, &id)?))
}

pub fn create_command(
    p: &Shared,
    appliance_id: &str,
    req: CreateCommand,
) -> Result<Command, PlatformError> {
    if p.store.appliance(appliance_id)?.is_none() {
        return Err(PlatformError::NotFound {
            what: "appliance",
            id: appliance_id.to_string(),
        });
    }
    p.store.refuse_if_revoked(appliance_id)?;
    if let picket_model::api::CommandKind::UpdateConfig { toml } = &req.kind {
        if toml.len() > 64 * 1024 {
            return Err(PlatformError::BadRequest("toml longer than 64 KiB".into()));
        }
    }
    let command = Command {
        id: store::new_id("cmd")?,
        kind: req.kind,
        created_at: store::rfc3339(store::now()),
    };
    p.store.put_command(&CommandRec {
        appliance_id: appliance_id.to_string(),
        command: command.clone(),
        result: None,
        answered_at: None,
    })?;
    Ok(command)
}

/// Creates a command, flushes it, then wakes the appliance's poll (so it never receives a
/// command the platform could still lose).
pub async fn create_command_durable(
    p: &Shared,
    appliance_id: &str,
    req: CreateCommand,
) -> Result<Command, PlatformError> {
    let command = create_command(p, appliance_id, req)?;
    p.store.flush().await?;
    p.wake(appliance_id);
    Ok(command)
}

pub async fn post_command(
    State(p): State<Shared>,
    _: Operator,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<CreateCommand>,
) -> Result<Json<Command>, PlatformError> {
    Ok(Json(create_command_durable(&p, &id, req).await?))
}

pub async fn list_commands(
    State(p): State<Shared>,
    _: Operator,
    Path(id): Path<String>,
) -> Result<Json<Vec<CommandView>>, PlatformError> {
    if p.store.appliance(&id)?.is_none() {
        return Err(PlatformError::NotFound {
            what: "appliance",
            id,
        });
    }
    Ok(Json(p.store.commands_of(&id)?))
}

/// Stores a job (not yet flushed nor announced: see [`create_job_durable`]). Credentials are sealed to the appliance's key here and the plain ones dropped.
pub fn create_job(p: &Shared, req: CreateJob) -> Result<JobView, PlatformError> {
    let app = p
        .store
        .appliance(&req.appliance_id)?
        .ok_or_else(|| PlatformError::NotFound {
            what: "appliance",
            id: req.appliance_id.clone(),
        })?;
    // A revoked appliance would never collect it.
    p.store.refuse_if_revoked(&req.appliance_id)?;
    if req.targets.is_empty() {
        return Err(PlatformError::BadRequest(
            "targets: at least one target".into(),
        ));
    }
    if req.targets.len() > 4096 || req.targets.iter().any(|t| t.is_empty() || t.len() > 2048) {
        return Err(PlatformError::BadRequest(
            "targets: at most 4096, each 1-2048 bytes".into(),
        ));
    }
    if req.every_secs == Some(0) {
        return Err(PlatformError::BadRequest(
            "every_secs: must be at least 1".into(),
        ));
    }
    let credentials = match &req.credentials {
        Some(c) => {
            let plain = serde_json::to_vec(c)
                .map_err(|e| PlatformError::BadRequest(format!("credentials: {e}")))?;
            Some(
                picket_model::sealed::seal(&app.sealing_key, &plain).map_err(|source| {
                    PlatformError::Seal {
                        appliance: app.id.clone(),
                        source,
                    }
                })?,
            )
        }
        None => None,
    };
    let now = store::now();
    let job = Job {
        id: store::new_id("job")?,
        kind: req.kind,
        targets: req.targets,
        options: req.options,
        every_secs: req.every_secs,
        timeout_secs: req.timeout_secs.unwrap_or(3600).max(1),
        credentials,
        revision: 1,
        created_at: store::rfc3339(now),
    };
    let rec = JobRec {
        job,
        appliance_id: app.id.clone(),
        state: JobState::Pending,
        reason: None,
        scan_id: None,
        chunks_expected: None,
        updated_at: now,
        next_run_at: None,
        runs: 0,
    };
    p.store.put_job(&rec)?;
    p.store.job_view(&rec)
}

/// Creates a job, flushes it, then wakes the appliance's poll.
pub async fn create_job_durable(p: &Shared, req: CreateJob) -> Result<JobView, PlatformError> {
    let view = create_job(p, req)?;
    p.store.flush().await?;
    p.wake(&view.appliance_id);
    Ok(view)
}

pub async fn post_job(
    State(p): State<Shared>,
    _: Operator,
    JsonBody(req): JsonBody<CreateJob>,
) -> Result<Json<JobView>, PlatformError> {
    Ok(Json(create_job_durable(&p, req).await?))
}

#[derive(Debug, Deserialize)]
pub struct JobsQuery {
    pub appliance: Option<String>,
}

pub fn job_views(p: &Shared, appliance: Option<&str>) -> Result<Vec<JobView>, PlatformError> {
    let recs = match appliance {
        Some(a) => p.store.jobs_of(a)?,
        None => p.store.jobs()?,
    };
    recs.iter().map(|r| p.store.job_view(r)).collect()
}

pub async fn list_jobs(
    State(p): State<Shared>,
    _: Operator,
    Query(q): Query<JobsQuery>,
) -> Result<Json<Vec<JobView>>, PlatformError> {
    Ok(Json(job_views(&p, q.appliance.as_deref())?))
}

pub async fn get_job(
    State(p): State<Shared>,
    _: Operator,
    Path(id): Path<String>,
) -> Result<Json<JobView>, PlatformError> {
    let rec = p
        .store
        .job(&id)?
        .ok_or(PlatformError::NotFound { what: "job", id })?;
    Ok(Json(p.store.job_view(&rec)?))
}

#[derive(Debug, Default, Deserialize)]
pub struct FindingsQuery {
    pub appliance: Option<String>,
    pub job: Option<String>,
    pub scan: Option<String>,
    pub limit: Option<usize>,
}

pub fn findings(p: &Shared, q: &FindingsQuery) -> Result<Vec<StoredFinding>, PlatformError> {
    let limit = q
        .limit
        .unwrap_or(store::DEFAULT_FINDINGS_LIMIT)
        .min(store::MAX_FINDINGS_LIMIT);
    // A job filter alone still reads only that job's appliance.
    let appliance = match (&q.appliance, &q.job) {
        (Some(a), _) => Some(a.clone()),
        (None, Some(j)) => p.store.job(j)?.map(|r| r.appliance_id),
        (None, None) => None,
    };
    if q.job.is_some() && appliance.is_none() {
        return Ok(Vec::new());
    }
    p.store.findings(
        appliance.as_deref(),
        q.job.as_deref(),
        q.scan.as_deref(),
        limit,
    )
}

pub async fn list_findings(
    State(p): State<Shared>,
    _: Operator,
    Query(q): Query<FindingsQuery>,
) -> Result<Json<Vec<StoredFinding>>, PlatformError> {
    let p2 = p.clone();
    let out = tokio::task::spawn_blocking(move || findings(&p2, &q))
        .await
        .map_err(|_| PlatformError::Unavailable("query task failed".into()))??;
    Ok(Json(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_have_four_groups_of_unambiguous_characters() {
        let a = generate_code().unwrap_or_default();
        let b = generate_code().unwrap_or_default();
        assert_ne!(a, b);
        assert_eq!(a.len(), 19, "{a}");
        let groups: Vec<&str> = a.split('-').collect();
        assert_eq!(groups.len(), 4);
        assert!(a.bytes().all(|c| c == b'-' || CODE_ALPHABET.contains(&c)));
        assert!(!a.contains('0') && !a.contains('O') && !a.contains('1') && !a.contains('I'));
    }
}
