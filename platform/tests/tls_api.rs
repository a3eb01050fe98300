//! The platform over real TLS on loopback: enrollment, mTLS refusals in both directions, expired
//! certificates, renewal, ingest idempotency, long-poll wake-up, jobs and commands.

mod common;

use common::{config, start, Enrolled, TestPlatform};
use picket_model::api::{
    ApiError, ApplianceView, Command, CommandKind, CommandResult, CreateCommand, CreateJob,
    Heartbeat, IngestResponse, JobCredentials, JobOptions, JobState, JobStatusUpdate, JobView,
    PollResponse, RenewRequest, RenewResponse, ResultChunk, StoredFinding,
};
use picket_model::{Asset, Finding, ScanKind, Severity};
use picket_platform::ca::Ca;
use picket_platform::client::{client_config, device_key, Conn};
use std::time::{Duration, Instant};

fn finding(i: usize) -> Finding {
    Finding {
        id: format!("net.open-port.198.18.0.{i}"),
        title: format!("Telnet exposed on host {i}"),
        severity: if i.is_multiple_of(2) {
            Severity::High
        } else {
            Severity::Low
        },
        cwe: vec![319],
        cve: vec![],
        asset: Asset {
            address: Some(format!("198.18.0.{}", i % 250 + 2)),
            hostname: None,
            port: Some(23),
            protocol: Some(picket_model::Protocol::Tcp),
            url: None,
        },
        evidence: "banner: Debian GNU/Linux 12".into(),
        remediation: "disable telnet".into(),
    }
}

fn chunk(scan: &str, job: Option<&str>, seq: u32, total: u32, n: usize) -> ResultChunk {
    ResultChunk {
        scan_id: scan.into(),
        job_id: job.map(String::from),
        kind: ScanKind::Net,
        seq,
        total,
        started_at: "2026-11-21T10:00:00Z".into(),
        finished_at: "2026-11-21T10:01:00Z".into(),
        targets: vec!["198.18.0.0/24".into()],
        findings: (0..n).map(|i| finding(i + seq as usize * 1000)).collect(),
        report_part: (seq == 0).then(|| "{\"hosts\":[]}".to_string()),
    }
}

async fn upload(c: &mut Conn, ch: &ResultChunk) -> (u16, Option<IngestResponse>) {
    let key = ch.key();
    let ans = c
        .post_json(
            "/api/v1/appliance/results",
            &[("idempotency-key", &key)],
            ch,
        )
        .await
        .unwrap_or_else(|e| panic!("upload: {e}"));
    let parsed = (ans.status == 200).then(|| ans.json().unwrap_or_else(|e| panic!("{e}")));
    (ans.status, parsed)
}

async fn create_job(tp: &TestPlatform, req: &CreateJob) -> JobView {
    let mut c = tp.plain().await;
    let auth = tp.auth();
    let ans = c
        .post_json("/api/v1/jobs", &[("authorization", &auth)], req)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ans.status, 200, "{}", String::from_utf8_lossy(&ans.body));
    ans.json().unwrap_or_else(|e| panic!("{e}"))
}

fn net_job(app: &str) -> CreateJob {
    CreateJob {
        appliance_id: app.into(),
        kind: ScanKind::Net,
        targets: vec!["198.18.0.0/24".into()],
        options: JobOptions::default(),
        every_secs: None,
        timeout_secs: Some(600),
        credentials: None,
    }
}

async fn admin_get<T: serde::de::DeserializeOwned>(tp: &TestPlatform, path: &str) -> T {
    let mut c = tp.plain().await;
    let auth = tp.auth();
    let ans = c
        .get(path, &[("authorization", &auth)])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        ans.status,
        200,
        "{path}: {}",
        String::from_utf8_lossy(&ans.body)
    );
    ans.json().unwrap_or_else(|e| panic!("{e}"))
}

/// An enrollment request with this code and CSR, as is; the answer's status and body.
async fn enroll_raw(tp: &TestPlatform, code: &str, csr_pem: &str) -> (u16, String) {
    let mut c = tp.plain().await;
    let ans = c
        .post_json(
            "/api/v1/enroll",
            &[],
            &picket_model::api::EnrollRequest {
                code: code.into(),
                csr_pem: csr_pem.into(),
                sealing_key: "00".repeat(32),
                hostname: "h".into(),
                picket_version: "0".into(),
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    (ans.status, String::from_utf8_lossy(&ans.body).into_owned())
}

/// Reports a job's state as the appliance connected on `c`; the answer's status code.
async fn job_status(c: &mut Conn, job: &str, update: &JobStatusUpdate) -> u16 {
    c.post_json(&format!("/api/v1/appliance/jobs/{job}/status"), &[], update)
        .await
        .unwrap_or_else(|err| panic!("{err}"))
        .status
}

async fn poll(c: &mut Conn, wait: u64) -> PollResponse {
    let ans = c
        .get(&format!("/api/v1/appliance/poll?wait={wait}"), &[])
        .await
        .unwrap_or_else(|e| panic!("poll: {e}"));
    assert_eq!(ans.status, 200, "{}", String::from_utf8_lossy(&ans.body));
    ans.json().unwrap_or_else(|e| panic!("{e}"))
}

fn api_error(body: &[u8]) -> ApiError {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(body)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrollment_and_code_rules() {
    let tp = start(config()).await;
    let code = tp.code(None).await;
    assert_eq!(code.len(), 19, "{code}");

    // Typed sloppily (lower case, spaces instead of dashes) still works.
    let typed = code.to_lowercase().replace('-', " ");
    let (status, body, e) = tp.try_enroll(&typed).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let e = e.unwrap_or_else(|| panic!("enrolled"));
    assert!(e.id.starts_with("app-"));
    assert_eq!(e.response.ca_pem, tp.ca_pem);

    // Reuse refused.
    let (status, body, _) = tp.try_enroll(&code).await;
    assert_eq!(status, 409);
    assert_eq!(api_error(&body).error, "code_used");

    // Unknown code refused.
    let (status, body, _) = tp.try_enroll("AAAA-BBBB-CCCC-DDDD").await;
    assert_eq!(status, 401);
    assert_eq!(api_error(&body).error, "unauthorized");

    // Expired code refused.
    let short = tp.code(Some(1)).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, body, _) = tp.try_enroll(&short).await;
    assert_eq!(status, 410);
    assert_eq!(api_error(&body).error, "code_expired");

    // A wrong code is refused before the CSR is even looked at (no signing work for strangers).
    let (status, body) = enroll_raw(&tp, "ZZZZ-ZZZZ-ZZZZ-ZZZZ", "junk").await;
    assert_eq!(status, 401, "{body}");

    // A broken CSR does not burn the code.
    let good = tp.code(None).await;
    let (status, body) = enroll_raw(
        &tp,
        &good,
        "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, _, _) = tp.try_enroll(&good).await;
    assert_eq!(status, 200, "the code survives a bad CSR");

    // The appliance is in the fleet, with the code's label.
    let fleet: Vec<ApplianceView> = admin_get(&tp, "/api/v1/appliances").await;
    assert_eq!(fleet.len(), 2);
    let me = fleet
        .iter()
        .find(|a| a.id == e.id)
        .unwrap_or_else(|| panic!("listed"));
    assert_eq!(me.label.as_deref(), Some("test lab"));
    assert!(me.online);

    // Operator calls need the token.
    let mut c = tp.plain().await;
    let ans = c
        .get("/api/v1/appliances", &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ans.status, 401);
    let ans = c
        .get(
            "/api/v1/appliances",
            &[("authorization", "Bearer wrong-token-wrong-token")],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ans.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_enrollments_with_one_code_have_one_winner() {
    let tp = std::sync::Arc::new(start(config()).await);
    let code = tp.code(None).await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let tp = tp.clone();
        let code = code.clone();
        tasks.push(tokio::spawn(async move { tp.try_enroll(&code).await.0 }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap_or(0));
    }
    statuses.sort_unstable();
    assert_eq!(statuses, vec![200, 409, 409, 409, 409, 409, 409, 409]);
    let fleet: Vec<ApplianceView> = admin_get(&tp, "/api/v1/appliances").await;
    assert_eq!(fleet.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_is_required_and_foreign_cas_are_refused_both_ways() {
    let tp = start(config()).await;
    let e = tp.enroll().await;

    // With its certificate the appliance gets through.
    let mut c = tp.conn_as(&e).await;
    let r = poll(&mut c, 0).await;
    assert!(r.jobs.is_empty() && r.commands.is_empty());

    // Without a certificate: the TLS handshake succeeds (enrollment needs it) but every
    // appliance call is refused.
    let mut plain = tp.plain().await;
    for path in ["/api/v1/appliance/poll?wait=0"] {
        let ans = plain
            .get(path, &[])
            .await
            .unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(ans.status, 401, "{path}");
        assert_eq!(api_error(&ans.body).error, "unauthorized");
    }
    let ans = plain
        .post_json("/api/v1/appliance/heartbeat", &[], &Heartbeat::default())
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(ans.status, 401);

    // A client certificate for the same appliance id from another CA: the handshake fails.
    let other_dir = tempfile::tempdir().unwrap_or_else(|err| panic!("{err}"));
    let other = Ca::open_or_create(other_dir.path()).unwrap_or_else(|err| panic!("{err}"));
    let key = device_key().unwrap_or_else(|err| panic!("{err}"));
    let forged = other
        .issue_client(&key.csr_pem, &e.id, 3600)
        .unwrap_or_else(|err| panic!("{err}"));
    let cfg = client_config(&tp.ca_pem, Some((&forged.pem, &key.key_pem)))
        .unwrap_or_else(|err| panic!("{err}"));
    let refused = match Conn::connect(tp.addr, "localhost", cfg).await {
        Err(_) => true,
        // TLS 1.3: the server's alert arrives after the client finished its handshake.
        Ok(mut c) => c.get("/api/v1/appliance/poll?wait=0", &[]).await.is_err(),
    };
    assert!(
        refused,
        "a client certificate from another CA must be refused"
    );

    // A client pinning another CA refuses our server.
    let cfg = client_config(other.cert_pem(), Some((&e.cert_pem, &e.key_pem)))
        .unwrap_or_else(|err| panic!("{err}"));
    let err = Conn::connect(tp.addr, "localhost", cfg)
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("UnknownIssuer") || err.contains("invalid peer certificate"),
        "{err}"
    );

    // The server certificate names only the configured server names.
    let cfg = client_config(&tp.ca_pem, None).unwrap_or_else(|err| panic!("{err}"));
    assert!(Conn::connect(tp.addr, "platform.example", cfg)
        .await
        .is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_client_certificates_are_refused_and_renewal_supersedes() {
    let mut cfg = config();
    cfg.cert_validity_secs = 2;
    cfg.renew_grace_secs = 0;
    let tp = start(cfg).await;
    let e = tp.enroll().await;
    let mut c = tp.conn_as(&e).await;
    poll(&mut c, 0).await;

    // Renewal: a new certificate (2 s again); the old one is superseded at once (grace 0).
    let key = device_key().unwrap_or_else(|err| panic!("{err}"));
    let ans = c
        .post_json(
            "/api/v1/appliance/renew",
            &[],
            &RenewRequest {
                csr_pem: key.csr_pem.clone(),
            },
        )
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(ans.status, 200, "{}", String::from_utf8_lossy(&ans.body));
    let renewed: RenewResponse = ans.json().unwrap_or_else(|err| panic!("{err}"));
    let mut old = tp.conn_as(&e).await;
    let ans = old
        .get("/api/v1/appliance/poll?wait=0", &[])
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(
        ans.status, 401,
        "the superseded certificate must be refused"
    );
    let fresh = Enrolled {
        cert_pem: renewed.certificate_pem.clone(),
        key_pem: key.key_pem.clone(),
        id: e.id.clone(),
        sealing: picket_model::sealed::SealingKey::from_bytes(e.sealing.to_bytes()),
        response: e.response.clone(),
    };
    let mut newc = tp.conn_as(&fresh).await;
    poll(&mut newc, 0).await;

    // Once expired, rustls refuses the certificate in the handshake.
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let cfg = client_config(&tp.ca_pem, Some((&fresh.cert_pem, &fresh.key_pem)))
        .unwrap_or_else(|err| panic!("{err}"));
    let refused = match Conn::connect(tp.addr, "localhost", cfg).await {
        Err(_) => true,
        Ok(mut c) => c.get("/api/v1/appliance/poll?wait=0", &[]).await.is_err(),
    };
    assert!(refused, "an expired client certificate must be refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_is_idempotent_with_exact_counts() {
    let tp = start(config()).await;
    let e = tp.enroll().await;
    let job = create_job(&tp, &net_job(&e.id)).await;
    let mut c = tp.conn_as(&e).await;
    let scan = "20261121T100000Z-0badc0de";

    let c0 = chunk(scan, Some(&job.job.id), 0, 3, 500);
    let c1 = chunk(scan, Some(&job.job.id), 1, 3, 500);
    let c2 = chunk(scan, Some(&job.job.id), 2, 3, 7);
    assert_eq!(upload(&mut c, &c0).await.1.map(|r| r.stored), Some(true));
    // The answer was "lost": the same chunk again.
    assert_eq!(upload(&mut c, &c0).await.1.map(|r| r.stored), Some(false));
    assert_eq!(upload(&mut c, &c1).await.1.map(|r| r.stored), Some(true));
    assert_eq!(upload(&mut c, &c2).await.1.map(|r| r.stored), Some(true));
    assert_eq!(upload(&mut c, &c1).await.1.map(|r| r.stored), Some(false));

    // Concurrent duplicates over separate connections: still stored once.
    let mut tasks = Vec::new();
    let c3 = chunk("20261121T100001Z-00000001", None, 0, 1, 10);
    for _ in 0..6 {
        let mut conn = tp.conn_as(&e).await;
        let ch = c3.clone();
        tasks.push(tokio::spawn(async move {
            upload(&mut conn, &ch).await.1.map(|r| r.stored)
        }));
    }
    let mut stored = 0;
    for t in tasks {
        if t.await.ok().flatten() == Some(true) {
            stored += 1;
        }
    }
    assert_eq!(stored, 1);

    let update = JobStatusUpdate {
        state: JobState::Done,
        scan_id: Some(scan.into()),
        revision: 1,
        reason: None,
        chunks: Some(3),
    };
    assert_eq!(job_status(&mut c, &job.job.id, &update).await, 200);

    let view: JobView = admin_get(&tp, &format!("/api/v1/jobs/{}", job.job.id)).await;
    assert_eq!(view.state, JobState::Done);
    assert_eq!(
        (view.chunks_received, view.chunks_expected, view.findings),
        (3, Some(3), 1007)
    );
    let found: Vec<StoredFinding> =
        admin_get(&tp, &format!("/api/v1/findings?scan={scan}&limit=100000")).await;
    assert_eq!(found.len(), 1007);
    let by_job: Vec<StoredFinding> = admin_get(
        &tp,
        &format!("/api/v1/findings?job={}&limit=100000", job.job.id),
    )
    .await;
    assert_eq!(by_job.len(), 1007);
    assert!(by_job.iter().all(|f| f.appliance_id == e.id));
    let all: Vec<StoredFinding> = admin_get(&tp, "/api/v1/findings?limit=100000").await;
    assert_eq!(all.len(), 1017);
    assert_eq!(tp.platform.store.chunk_count(), 4);

    // Refusals: key mismatch, too many findings, another appliance's job.
    let key = "other:0";
    let ans = c
        .post_json(
            "/api/v1/appliance/results",
            &[("idempotency-key", key)],
            &c0,
        )
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(ans.status, 400);
    let big = chunk(
        "s-big",
        None,
        0,
        1,
        picket_model::api::MAX_FINDINGS_PER_CHUNK + 1,
    );
    assert_eq!(upload(&mut c, &big).await.0, 400);
    let other = tp.enroll().await;
    let mut oc = tp.conn_as(&other).await;
    assert_eq!(
        upload(&mut oc, &chunk("s-x", Some(&job.job.id), 0, 1, 1))
            .await
            .0,
        404
    );
    assert_eq!(
        job_status(&mut oc, &job.job.id, &update).await,
        404,
        "an appliance cannot touch another's job"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_wakes_when_a_job_or_command_is_created() {
    let tp = std::sync::Arc::new(start(config()).await);
    let e = tp.enroll().await;
    let mut c = tp.conn_as(&e).await;

    // Nothing to do: held for the whole wait.
    let t = Instant::now();
    let r = poll(&mut c, 1).await;
    assert!(r.jobs.is_empty());
    assert!(
        t.elapsed() >= Duration::from_millis(900),
        "{:?}",
        t.elapsed()
    );

    let waiter = tokio::spawn(async move {
        let t = Instant::now();
        let r = poll(&mut c, 30).await;
        (r, Instant::now(), t, c)
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let created_at = Instant::now();
    let job = create_job(&tp, &net_job(&e.id)).await;
    let (r, answered, started, mut c) = waiter.await.unwrap_or_else(|err| panic!("{err}"));
    let latency = answered.duration_since(created_at);
    assert_eq!(r.jobs.len(), 1);
    assert_eq!(r.jobs[0].id, job.job.id);
    assert!(
        latency < Duration::from_millis(500),
        "woke after {latency:?}"
    );
    assert!(answered.duration_since(started) < Duration::from_secs(5));
    println!("long-poll wake latency: {latency:?}");

    // The job is offered until the appliance finishes it.
    assert_eq!(poll(&mut c, 0).await.jobs.len(), 1);
    let update = JobStatusUpdate {
        state: JobState::Failed,
        scan_id: None,
        revision: 1,
        reason: Some("out of scope: 10.0.0.1".into()),
        chunks: None,
    };
    assert_eq!(job_status(&mut c, &job.job.id, &update).await, 200);
    assert!(poll(&mut c, 0).await.jobs.is_empty());
    let view: JobView = admin_get(&tp, &format!("/api/v1/jobs/{}", job.job.id)).await;
    assert_eq!(view.state, JobState::Failed);
    assert_eq!(view.reason.as_deref(), Some("out of scope: 10.0.0.1"));

    // Commands wake the poll too, and leave it once answered.
    let tp2 = tp.clone();
    let id = e.id.clone();
    let waiter = tokio::spawn(async move {
        let r = poll(&mut c, 30).await;
        (r, c)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut admin = tp2.plain().await;
    let auth = tp2.auth();
    let ans = admin
        .post_json(
            &format!("/api/v1/appliances/{id}/commands"),
            &[("authorization", &auth)],
            &CreateCommand {
                kind: CommandKind::CollectDiagnostics,
            },
        )
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(ans.status, 200);
    let cmd: Command = ans.json().unwrap_or_else(|err| panic!("{err}"));
    let (r, mut c) = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .unwrap_or_else(|_| panic!("poll not woken by a command"))
        .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(r.commands, vec![cmd.clone()]);
    let ans = c
        .post_json(
            &format!("/api/v1/appliance/commands/{}/result", cmd.id),
            &[],
            &CommandResult {
                ok: true,
                message: "collected".into(),
                output: Some("uptime 5".into()),
            },
        )
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(ans.status, 200);
    assert!(poll(&mut c, 0).await.commands.is_empty());
    let views: Vec<picket_platform::store::CommandView> =
        admin_get(&tp, &format!("/api/v1/appliances/{}/commands", e.id)).await;
    assert_eq!(views.len(), 1);
    assert_eq!(
        views[0].result.as_ref().map(|r| r.message.as_str()),
        Some("collected")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_sealed_and_schedules_repeat() {
    let tp = start(config()).await;
    let e = tp.enroll().await;
    let secret = "hunter2-very-secret-password";
    let mut req = net_job(&e.id);
    req.kind = ScanKind::Host;
    req.targets = vec!["ssh://root@198.18.0.2".into()];
    req.credentials = Some(JobCredentials {
        password: Some(secret.into()),
        ..JobCredentials::default()
    });
    req.every_secs = Some(1);
    let job = create_job(&tp, &req).await;
    let sealed = job
        .job
        .credentials
        .clone()
        .unwrap_or_else(|| panic!("sealed credentials"));
    let plain = e
        .sealing
        .open(&sealed)
        .unwrap_or_else(|err| panic!("{err}"));
    let creds: JobCredentials =
        serde_json::from_slice(&plain).unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(creds.password.as_deref(), Some(secret));

    // The plain password is nowhere in the platform's files.
    tp.platform
        .store
        .flush()
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    let mut files = vec![tp.dir.path().to_path_buf()];
    let mut checked = 0;
    while let Some(p) = files.pop() {
        if p.is_dir() {
            for entry in std::fs::read_dir(&p)
                .unwrap_or_else(|err| panic!("{err}"))
                .flatten()
            {
                files.push(entry.path());
            }
        } else {
            let bytes = std::fs::read(&p).unwrap_or_default();
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "plain credentials in {}",
                p.display()
            );
            checked += 1;
        }
    }
    assert!(checked > 3);

    // Scheduled: after Done it comes back (pending) about every_secs later.
    let mut c = tp.conn_as(&e).await;
    assert_eq!(poll(&mut c, 0).await.jobs.len(), 1);
    let done = JobStatusUpdate {
        state: JobState::Done,
        scan_id: Some("20261121T100000Z-00000001".into()),
        revision: 1,
        reason: None,
        chunks: Some(0),
    };
    assert_eq!(job_status(&mut c, &job.job.id, &done).await, 200);
    let t = Instant::now();
    let r = poll(&mut c, 10).await;
    assert_eq!(r.jobs.len(), 1, "re-offered");
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    let view: JobView = admin_get(&tp, &format!("/api/v1/jobs/{}", job.job.id)).await;
    assert_eq!(view.state, JobState::Pending);
    assert_eq!(view.scan_id, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_are_capped_and_bad_json_is_a_typed_error() {
    let tp = start(config()).await;
    let e = tp.enroll().await;
    let mut c = tp.conn_as(&e).await;
    let ans = c
        .request(
            "POST",
            "/api/v1/appliance/heartbeat",
            &[],
            Some(b"{not json".to_vec()),
        )
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(ans.status, 400);
    assert_eq!(api_error(&ans.body).error, "bad_request");
    let big = vec![b' '; picket_model::api::MAX_BODY_BYTES + 1];
    let mut c = tp.conn_as(&e).await;
    // The server may also close while the client is still sending (an error here).
    if let Ok(ans) = c
        .request("POST", "/api/v1/appliance/heartbeat", &[], Some(big))
        .await
    {
        assert_eq!(ans.status, 413);
        assert_eq!(api_error(&ans.body).error, "too_large");
    }
    let mut c = tp.conn_as(&e).await;
    let hb = Heartbeat {
        picket_version: "0.1.0".into(),
        hostname: "lab-appliance-2".into(),
        uptime_secs: 42,
        outbox_chunks: 3,
        warnings: vec!["clock skew 40 s".into()],
        ..Heartbeat::default()
    };
    common::heartbeat(&mut c, &hb).await;
    let v: ApplianceView = admin_get(&tp, &format!("/api/v1/appliances/{}", e.id)).await;
    assert_eq!(v.hostname, "lab-appliance-2");
    assert_eq!(v.last_heartbeat, Some(hb));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_connection_is_closed() {
    use tokio::io::AsyncReadExt;
    let tp = start(config()).await;
    // Connected but never sending a byte (slowloris): closed by the handshake timeout.
    let mut s = tokio::net::TcpStream::connect(tp.addr)
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    let t = Instant::now();
    let mut buf = [0u8; 16];
    let r = tokio::time::timeout(Duration::from_secs(20), s.read(&mut buf)).await;
    assert!(matches!(r, Ok(Ok(0)) | Ok(Err(_))), "{r:?}");
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_secs(9) && waited < Duration::from_secs(15),
        "{waited:?}"
    );
}

/// Regression: concurrent durable writes once stalled the server (every sled I/O thread waiting in
/// `flush_async` for a log write queued behind them). 48 concurrent code creations and
/// enrollments must all finish.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_durable_writes_do_not_stall() {
    let tp = std::sync::Arc::new(start(config()).await);
    let mut tasks = Vec::new();
    for _ in 0..48 {
        let tp = tp.clone();
        tasks.push(tokio::spawn(async move {
            let code = tp.code(None).await;
            tp.try_enroll(&code).await.0
        }));
    }
    let all = async {
        let mut ok = 0;
        for t in tasks {
            if t.await.unwrap_or(0) == 200 {
                ok += 1;
            }
        }
        ok
    };
    let ok = tokio::time::timeout(Duration::from_secs(60), all)
        .await
        .unwrap_or_else(|_| panic!("concurrent enrollments stalled"));
    assert_eq!(ok, 48);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_tls_connections_are_closed_and_connections_are_capped() {
    use tokio::io::AsyncReadExt;
    let mut cfg = config();
    cfg.max_connections = 3;
    let tp = start(cfg).await;

    // After the handshake, a client that never sends a request head is closed by the header
    // timer (20 s), so idle or slow clients cannot pin connections.
    let client =
        picket_platform::client::client_config(&tp.ca_pem, None).unwrap_or_else(|e| panic!("{e}"));
    let tcp = tokio::net::TcpStream::connect(tp.addr)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let name =
        rustls_pki_types::ServerName::try_from("localhost").unwrap_or_else(|e| panic!("{e}"));
    let mut tls = tokio_rustls::TlsConnector::from(client)
        .connect(name, tcp)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let t = Instant::now();

    // Two more connections fill the cap (3); a fourth is closed at once.
    let _a = tokio::net::TcpStream::connect(tp.addr)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let _b = tokio::net::TcpStream::connect(tp.addr)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut over = tokio::net::TcpStream::connect(tp.addr)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut buf = [0u8; 8];
    let r = tokio::time::timeout(Duration::from_secs(3), over.read(&mut buf)).await;
    assert!(matches!(r, Ok(Ok(0)) | Ok(Err(_))), "over the cap: {r:?}");

    let mut buf = [0u8; 64];
    let r = tokio::time::timeout(Duration::from_secs(40), tls.read(&mut buf)).await;
    assert!(matches!(r, Ok(Ok(0)) | Ok(Err(_))), "{r:?}");
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_secs(19) && waited < Duration::from_secs(30),
        "{waited:?}"
    );
}

/// POST as the operator; the answer's status and body.
async fn admin_post<T: serde::Serialize>(
    tp: &TestPlatform,
    path: &str,
    body: &T,
) -> (u16, Vec<u8>) {
    let mut c = tp.plain().await;
    let auth = tp.auth();
    let ans = c
        .post_json(path, &[("authorization", &auth)], body)
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    (ans.status, ans.body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_appliance_is_refused_everywhere_and_its_findings_stay() {
    use picket_model::api::RevokeAppliance;
    let tp = start(config()).await;
    let e = tp.enroll().await;
    let other = tp.enroll().await;
    let mut c = tp.conn_as(&e).await;
    let scan = "20261121T110000Z-0000beef";
    assert_eq!(
        upload(&mut c, &chunk(scan, None, 0, 1, 12))
            .await
            .1
            .map(|r| r.stored),
        Some(true)
    );
    let pending = create_job(&tp, &net_job(&e.id)).await;
    let mut every = net_job(&e.id);
    every.every_secs = Some(3600);
    let scheduled = create_job(&tp, &every).await;

    // A third appliance holds a long poll open: its revocation ends the poll at once.
    let watcher = tp.enroll().await;
    let mut wc = tp.conn_as(&watcher).await;
    let waiter = tokio::spawn(async move {
        let t = Instant::now();
        let ans = wc
            .get("/api/v1/appliance/poll?wait=30", &[])
            .await
            .unwrap_or_else(|err| panic!("poll: {err}"));
        (ans.status, ans.body, t.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(500)).await;

    let reason = RevokeAppliance {
        reason: Some("stolen from rack 12".into()),
    };
    let (status, body) =
        admin_post(&tp, &format!("/api/v1/appliances/{}/revoke", e.id), &reason).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let view: ApplianceView = serde_json::from_slice(&body).unwrap_or_else(|err| panic!("{err}"));
    let revoked_at = view
        .revoked_at
        .clone()
        .unwrap_or_else(|| panic!("no revoked_at: {view:?}"));
    assert_eq!(view.revoked_reason.as_deref(), Some("stolen from rack 12"));
    assert!(!view.online);
    let (status, _) = admin_post(
        &tp,
        &format!("/api/v1/appliances/{}/revoke", watcher.id),
        &RevokeAppliance::default(),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body, waited) = waiter.await.unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
    assert_eq!(api_error(&body).error, "revoked");
    assert!(
        waited < Duration::from_secs(5),
        "the open poll ended after {waited:?}"
    );

    // Every appliance call is refused, on a new connection as on the old one.
    let mut fresh = tp.conn_as(&e).await;
    for conn in [&mut c, &mut fresh] {
        let ans = conn
            .get("/api/v1/appliance/poll?wait=0", &[])
            .await
            .unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(ans.status, 403);
        let err = api_error(&ans.body);
        assert_eq!(err.error, "revoked");
        assert!(
            err.detail.contains(&e.id) && err.detail.contains(&revoked_at),
            "{}",
            err.detail
        );
    }
    let (status, _) = upload(&mut fresh, &chunk(scan, None, 0, 1, 12)).await;
    assert_eq!(status, 403);
    let key = device_key().unwrap_or_else(|err| panic!("{err}"));
    let ans = fresh
        .post_json(
            "/api/v1/appliance/renew",
            &[],
            &RenewRequest {
                csr_pem: key.csr_pem,
            },
        )
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(ans.status, 403, "a revoked appliance must not renew");

    // Its jobs still to run failed with the reason; new jobs and commands are refused.
    for id in [&pending.job.id, &scheduled.job.id] {
        let v: JobView = admin_get(&tp, &format!("/api/v1/jobs/{id}")).await;
        assert_eq!(v.state, JobState::Failed, "{v:?}");
        assert_eq!(
            v.reason.as_deref(),
            Some("appliance revoked: stolen from rack 12")
        );
    }
    let (status, body) = admin_post(&tp, "/api/v1/jobs", &net_job(&e.id)).await;
    assert_eq!((status, api_error(&body).error.as_str()), (403, "revoked"));
    let (status, _) = admin_post(
        &tp,
        &format!("/api/v1/appliances/{}/commands", e.id),
        &CreateCommand {
            kind: CommandKind::CollectDiagnostics,
        },
    )
    .await;
    assert_eq!(status, 403);

    // Idempotent; unknown appliances are 404; the findings stay; others are untouched.
    let (status, body) = admin_post(
        &tp,
        &format!("/api/v1/appliances/{}/revoke", e.id),
        &RevokeAppliance::default(),
    )
    .await;
    assert_eq!(status, 200);
    let again: ApplianceView = serde_json::from_slice(&body).unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(again.revoked_at.as_deref(), Some(revoked_at.as_str()));
    assert_eq!(again.revoked_reason.as_deref(), Some("stolen from rack 12"));
    let (status, _) = admin_post(&tp, "/api/v1/appliances/apl-nosuch/revoke", &reason).await;
    assert_eq!(status, 404);
    let kept: Vec<StoredFinding> =
        admin_get(&tp, &format!("/api/v1/findings?appliance={}", e.id)).await;
    assert_eq!(kept.len(), 12);
    let mut oc = tp.conn_as(&other).await;
    poll(&mut oc, 0).await;
    let fleet: Vec<ApplianceView> = admin_get(&tp, "/api/v1/appliances").await;
    let revoked: Vec<&str> = fleet
        .iter()
        .filter(|v| v.revoked_at.is_some())
        .map(|v| v.id.as_str())
        .collect();
    assert_eq!(revoked.len(), 2, "{fleet:?}");
    assert!(revoked.contains(&e.id.as_str()) && revoked.contains(&watcher.id.as_str()));

    // Durable: after a restart the appliance is still refused.
    drop((c, fresh, oc));
    let dir = tp.stop().await;
    let tp = common::start_in(config(), dir).await;
    let mut c = tp.conn_as(&e).await;
    let ans = c
        .get("/api/v1/appliance/poll?wait=0", &[])
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(ans.status, 403);
    let mut oc = tp.conn_as(&other).await;
    poll(&mut oc, 0).await;
}
