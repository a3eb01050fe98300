//! `picket-platform-load`: simulated appliances against one running platform (bench/platform.sh).
//!
//! Phases: enroll N appliances (each with its own device key and client certificate); open one
//! TLS connection per appliance, each holding a long-poll loop; while they poll, upload result
//! chunks over a few more connections for a fixed time, re-sending some to check idempotency, and
//! create a job every so often, timing how long until the target appliance's open poll returns it.
//! Prints one JSON object with the figures. The platform's own RSS and CPU are measured from
//! outside by the script (this process shares the machine's cores and says how much it used).

use anyhow::{bail, Context};
use clap::Parser;
use picket_model::api::{
    CreateCode, CreateJob, EnrollRequest, EnrollResponse, EnrollmentCode, IngestResponse,
    JobOptions, JobState, JobStatusUpdate, PollResponse,
};
use picket_model::{Asset, Finding, ScanKind, Severity};
use picket_platform::client::{client_config, device_key, Conn};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Parser)]
#[command(name = "picket-platform-load")]
struct Args {
    /// Platform address.
    #[arg(long)]
    addr: SocketAddr,
    /// Name the server certificate is checked against.
    #[arg(long, default_value = "localhost")]
    server_name: String,
    /// The platform's CA certificate (STATE_DIR/ca/ca.pem).
    #[arg(long)]
    ca: std::path::PathBuf,
    /// File with the admin token (STATE_DIR/admin-token).
    #[arg(long)]
    token_file: std::path::PathBuf,
    #[arg(long, default_value_t = 1000)]
    appliances: usize,
    /// Seconds of ingest (with all pollers connected).
    #[arg(long, default_value_t = 30)]
    ingest_secs: u64,
    /// Connections uploading chunks at once.
    #[arg(long, default_value_t = 4)]
    ingest_conns: usize,
    #[arg(long, default_value_t = 500)]
    findings_per_chunk: usize,
    /// A job is created every this many milliseconds during ingest (latency probes).
    #[arg(long, default_value_t = 1000)]
    job_every_ms: u64,
    /// Long-poll wait the simulated appliances ask for.
    #[arg(long, default_value_t = 50)]
    poll_wait: u64,
    /// Concurrent enrollments.
    #[arg(long, default_value_t = 16)]
    enroll_conns: usize,
    /// Seconds with every appliance polling and nothing else happening (idle cost).
    #[arg(long, default_value_t = 10)]
    idle_secs: u64,
}

/// Wall clock, for lining phases up with the script's samples of the platform process.
fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[derive(Debug, Clone)]
struct Identity {
    id: String,
    cert_pem: String,
    key_pem: String,
}

#[derive(Debug, Default)]
struct Counters {
    polls: AtomicU64,
    poll_errors: AtomicU64,
    reconnects: AtomicU64,
    connected: AtomicU64,
    jobs_received: AtomicU64,
}

fn finding_json(i: usize) -> Result<String, serde_json::Error> {
    serde_json::to_string(&Finding {
        id: format!(
            "net.service.openssh-cve.198.18.{}.{}:22",
            i / 250,
            i % 250 + 1
        ),
        title: "OpenSSH before 9.3p2 allows remote code execution via the ssh-agent".into(),
        severity: if i.is_multiple_of(7) {
            Severity::Critical
        } else {
            Severity::High
        },
        cwe: vec![428],
        cve: vec!["CVE-2023-38408".into()],
        asset: Asset {
            address: Some(format!("198.18.{}.{}", i / 250, i % 250 + 1)),
            hostname: Some(format!("host-{i}.lab.example")),
            port: Some(22),
            protocol: Some(picket_model::Protocol::Tcp),
            url: None,
        },
        evidence: "banner SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.1".into(),
        remediation: "Upgrade OpenSSH to 9.3p2 or later.".into(),
    })
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or(0.0)
}

fn cpu_secs() -> f64 {
    use nix::sys::resource::{getrusage, UsageWho};
    match getrusage(UsageWho::RUSAGE_SELF) {
        Ok(u) => {
            let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
            t(u.user_time()) + t(u.system_time())
        }
        Err(_) => 0.0,
    }
}

async fn enroll_all(args: &Args, ca_pem: &str, token: &str) -> anyhow::Result<Vec<Identity>> {
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..args.enroll_conns.max(1) {
        let next = next.clone();
        let ca = ca_pem.to_string();
        let auth = format!("Bearer {token}");
        let (addr, name, n) = (args.addr, args.server_name.clone(), args.appliances as u64);
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            let mut conn = Conn::connect(addr, &name, client_config(&ca, None)?).await?;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let ans = conn
                    .post_json(
                        "/api/v1/enrollment-codes",
                        &[("authorization", &auth)],
                        &CreateCode {
                            ttl_secs: Some(600),
                            label: Some(format!("load-{i}")),
                        },
                    )
                    .await?;
                let code: EnrollmentCode = ans.json()?;
                let key = device_key()?;
                let sealing = picket_model::sealed::SealingKey::generate()
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                let ans = conn
                    .post_json(
                        "/api/v1/enroll",
                        &[],
                        &EnrollRequest {
                            code: code.code,
                            csr_pem: key.csr_pem,
                            sealing_key: sealing.public_hex(),
                            hostname: format!("sim-{i}"),
                            picket_version: "load".into(),
                        },
                    )
                    .await?;
                if ans.status != 200 {
                    bail!("enroll {i}: {}", String::from_utf8_lossy(&ans.body));
                }
                let r: EnrollResponse = ans.json()?;
                out.push(Identity {
                    id: r.appliance_id,
                    cert_pem: r.certificate_pem,
                    key_pem: key.key_pem,
                });
            }
            Ok::<_, anyhow::Error>(out)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    Ok(all)
}

type Pending = Arc<Mutex<HashMap<String, Instant>>>;

/// What every simulated appliance shares.
#[derive(Debug)]
struct PollCtx {
    args: Arc<Args>,
    ca: String,
    counters: Counters,
    /// Appliance id → when a job was created for it (latency probes).
    pending: Pending,
    latencies: Mutex<Vec<f64>>,
    stopped: std::sync::atomic::AtomicBool,
}

/// One simulated appliance: a long-poll loop on its own connection until stopped (aborted).
async fn poller(ctx: Arc<PollCtx>, me: Identity) {
    let (args, counters, pending) = (&ctx.args, &ctx.counters, &ctx.pending);
    let Ok(cfg) = client_config(&ctx.ca, Some((&me.cert_pem, &me.key_pem))) else {
        counters.poll_errors.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let mut seen: HashSet<String> = HashSet::new();
    let mut first = true;
    // Bounded by the stop signal; each turn is one poll (≤ poll_wait s) or one reconnect.
    for _ in 0..1_000_000u32 {
        if ctx.stopped.load(Ordering::Relaxed) {
            return;
        }
        let mut conn = match Conn::connect(args.addr, &args.server_name, cfg.clone()).await {
            Ok(c) => c,
            Err(_) => {
                counters.reconnects.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        if first {
            counters.connected.fetch_add(1, Ordering::Relaxed);
            first = false;
        }
        loop {
            let path = format!("/api/v1/appliance/poll?wait={}", args.poll_wait);
            let Ok(ans) = conn.get(&path, &[]).await else {
                counters.poll_errors.fetch_add(1, Ordering::Relaxed);
                break;
            };
            counters.polls.fetch_add(1, Ordering::Relaxed);
            let Ok(resp) = ans.json::<PollResponse>() else {
                counters.poll_errors.fetch_add(1, Ordering::Relaxed);
                break;
            };
            for job in resp.jobs {
                if !seen.insert(job.id.clone()) {
                    continue;
                }
                let now = Instant::now();
                counters.jobs_received.fetch_add(1, Ordering::Relaxed);
                if let Some(t0) = pending.lock().ok().and_then(|mut p| p.remove(&me.id)) {
                    if let Ok(mut l) = ctx.latencies.lock() {
                        l.push(now.duration_since(t0).as_secs_f64() * 1000.0);
                    }
                }
                let done = JobStatusUpdate {
                    state: JobState::Done,
                    scan_id: None,
                    revision: job.revision,
                    reason: None,
                    chunks: Some(0),
                };
                let _ = conn
                    .post_json(
                        &format!("/api/v1/appliance/jobs/{}/status", job.id),
                        &[],
                        &done,
                    )
                    .await;
            }
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct IngestTotals {
    chunks: u64,
    findings: u64,
    resent: u64,
    resent_refused: u64,
    errors: u64,
}

async fn ingester(
    args: Arc<Args>,
    ca: String,
    me: Identity,
    worker: usize,
    findings_json: Arc<String>,
    until: Instant,
) -> anyhow::Result<IngestTotals> {
    let cfg = client_config(&ca, Some((&me.cert_pem, &me.key_pem)))?;
    let mut conn = Conn::connect(args.addr, &args.server_name, cfg).await?;
    let mut t = IngestTotals::default();
    let total = 10u32;
    let mut scan_no = 0u64;
    let n = args.findings_per_chunk as u64;
    'outer: loop {
        let scan = format!("20261121T120000Z-w{worker}s{scan_no}");
        scan_no += 1;
        for seq in 0..total {
            if Instant::now() >= until {
                break 'outer;
            }
            let body = format!(
                "{{\"scan_id\":\"{scan}\",\"job_id\":null,\"kind\":\"net\",\"seq\":{seq},\"total\":{total},\
                 \"started_at\":\"2026-11-21T12:00:00Z\",\"finished_at\":\"2026-11-21T12:05:00Z\",\
                 \"targets\":[\"198.18.0.0/16\"],\"findings\":{findings_json},\"report_part\":null}}"
            );
            let key = format!("{scan}:{seq}");
            // Every 20th chunk is sent twice, as after a lost answer.
            let times = if seq == 3 && scan_no.is_multiple_of(2) {
                2
            } else {
                1
            };
            for attempt in 0..times {
                let ans = conn
                    .request(
                        "POST",
                        "/api/v1/appliance/results",
                        &[("idempotency-key", &key)],
                        Some(body.clone().into_bytes()),
                    )
                    .await;
                let r: IngestResponse = match ans.and_then(|a| a.json()) {
                    Ok(r) => r,
                    Err(_) => {
                        t.errors += 1;
                        continue;
                    }
                };
                if attempt == 0 {
                    if r.stored {
                        t.chunks += 1;
                        t.findings += n;
                    }
                } else {
                    t.resent += 1;
                    if !r.stored {
                        t.resent_refused += 1;
                    }
                }
            }
        }
    }
    Ok(t)
}

async fn run(args: Args) -> anyhow::Result<serde_json::Value> {
    let args = Arc::new(args);
    let ca = std::fs::read_to_string(&args.ca)
        .with_context(|| format!("reading {}", args.ca.display()))?;
    let token = std::fs::read_to_string(&args.token_file)
        .with_context(|| format!("reading {}", args.token_file.display()))?
        .trim()
        .to_string();
    let cpu0 = cpu_secs();
    let mut phases = serde_json::Map::new();
    phases.insert("start".into(), unix_now().into());

    let t = Instant::now();
    let ids = enroll_all(&args, &ca, &token).await?;
    let enroll_secs = t.elapsed().as_secs_f64();
    eprintln!("enrolled {} appliances in {enroll_secs:.1} s", ids.len());
    phases.insert("enrolled".into(), unix_now().into());

    let ctx = Arc::new(PollCtx {
        args: args.clone(),
        ca: ca.clone(),
        counters: Counters::default(),
        pending: Arc::new(Mutex::new(HashMap::new())),
        latencies: Mutex::new(Vec::new()),
        stopped: std::sync::atomic::AtomicBool::new(false),
    });
    let (counters, pending, latencies) = (&ctx.counters, &ctx.pending, &ctx.latencies);
    let t = Instant::now();
    let mut pollers = Vec::new();
    for me in ids.iter().cloned() {
        pollers.push(tokio::spawn(poller(ctx.clone(), me)));
    }
    // Wait (bounded) until every appliance is connected and has a poll open.
    for _ in 0..1200 {
        if counters.connected.load(Ordering::Relaxed) >= ids.len() as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let connect_secs = t.elapsed().as_secs_f64();
    let connected = counters.connected.load(Ordering::Relaxed);
    eprintln!("{connected} pollers connected in {connect_secs:.1} s");
    phases.insert("connected".into(), unix_now().into());
    let polls_before_idle = counters.polls.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(args.idle_secs)).await;
    phases.insert("idle_end".into(), unix_now().into());
    let idle_polls = counters.polls.load(Ordering::Relaxed) - polls_before_idle;

    // Idle latency probes first (pollers only), then the same during ingest.
    let mut admin = Conn::connect(args.addr, &args.server_name, client_config(&ca, None)?).await?;
    let auth = format!("Bearer {token}");
    let probe = |i: usize| {
        let me = ids
            .get(i % ids.len())
            .map(|m| m.id.clone())
            .unwrap_or_default();
        let req = CreateJob {
            appliance_id: me.clone(),
            kind: ScanKind::Net,
            targets: vec!["198.18.0.0/24".into()],
            options: JobOptions::default(),
            every_secs: None,
            timeout_secs: Some(600),
            credentials: None,
        };
        (me, req)
    };
    let mut probes = 0usize;
    for _ in 0..10 {
        let (me, req) = probe(probes * 97 + 13);
        probes += 1;
        if let Ok(mut p) = pending.lock() {
            p.insert(me, Instant::now());
        }
        admin
            .post_json("/api/v1/jobs", &[("authorization", &auth)], &req)
            .await?;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle_latencies: Vec<f64> = latencies
        .lock()
        .map(|mut l| std::mem::take(&mut *l))
        .unwrap_or_default();

    let findings: Vec<String> = (0..args.findings_per_chunk)
        .map(finding_json)
        .collect::<Result<_, _>>()?;
    let findings_json = Arc::new(format!("[{}]", findings.join(",")));
    let chunk_bytes = findings_json.len();
    let t = Instant::now();
    let until = t + Duration::from_secs(args.ingest_secs);
    let mut ingesters = Vec::new();
    for w in 0..args.ingest_conns {
        let me = ids.get(w % ids.len()).cloned().context("no appliance")?;
        ingesters.push(tokio::spawn(ingester(
            args.clone(),
            ca.clone(),
            me,
            w,
            findings_json.clone(),
            until,
        )));
    }
    let cpu_ingest0 = cpu_secs();
    phases.insert("ingest_start".into(), unix_now().into());
    while Instant::now() < until {
        let (me, req) = probe(probes * 97 + 13);
        probes += 1;
        if let Ok(mut p) = pending.lock() {
            p.insert(me, Instant::now());
        }
        admin
            .post_json("/api/v1/jobs", &[("authorization", &auth)], &req)
            .await?;
        tokio::time::sleep(Duration::from_millis(args.job_every_ms)).await;
    }
    let mut totals = IngestTotals::default();
    for i in ingesters {
        let r = i.await??;
        totals.chunks += r.chunks;
        totals.findings += r.findings;
        totals.resent += r.resent;
        totals.resent_refused += r.resent_refused;
        totals.errors += r.errors;
    }
    let ingest_secs = t.elapsed().as_secs_f64();
    // Exact counts read back: each worker's first scan is complete (10 chunks, one re-sent).
    let mut verified = Vec::new();
    for w in 0..args.ingest_conns {
        let me = ids
            .get(w % ids.len())
            .map(|m| m.id.clone())
            .unwrap_or_default();
        let scan = format!("20261121T120000Z-w{w}s0");
        let ans = admin
            .get(
                &format!("/api/v1/findings?appliance={me}&scan={scan}&limit=200000"),
                &[("authorization", &auth)],
            )
            .await?;
        let found: Vec<picket_model::api::StoredFinding> = ans.json()?;
        verified.push(serde_json::json!({
            "scan": scan,
            "findings_read_back": found.len(),
            "expected": 10 * args.findings_per_chunk,
        }));
    }
    phases.insert("ingest_end".into(), unix_now().into());
    let cpu_ingest = cpu_secs() - cpu_ingest0;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut busy: Vec<f64> = latencies.lock().map(|l| l.clone()).unwrap_or_default();
    busy.sort_by(|a, b| a.total_cmp(b));
    let mut idle = idle_latencies;
    idle.sort_by(|a, b| a.total_cmp(b));

    ctx.stopped.store(true, Ordering::Relaxed);
    for p in pollers {
        p.abort();
    }

    let lat = |v: &[f64]| {
        serde_json::json!({
            "probes": v.len(),
            "p50_ms": percentile(v, 0.5),
            "p95_ms": percentile(v, 0.95),
            "max_ms": v.last().copied().unwrap_or(0.0),
        })
    };
    Ok(serde_json::json!({
        "appliances": ids.len(),
        "enroll_secs": enroll_secs,
        "pollers_connected": connected,
        "connect_secs": connect_secs,
        "polls_answered": counters.polls.load(Ordering::Relaxed),
        "idle_secs": args.idle_secs,
        "polls_answered_while_idle": idle_polls,
        "phases": phases,
        "poll_errors": counters.poll_errors.load(Ordering::Relaxed),
        "reconnects": counters.reconnects.load(Ordering::Relaxed),
        "jobs_created": probes,
        "jobs_received": counters.jobs_received.load(Ordering::Relaxed),
        "job_latency_idle": lat(&idle),
        "job_latency_during_ingest": lat(&busy),
        "ingest": {
            "connections": args.ingest_conns,
            "findings_per_chunk": args.findings_per_chunk,
            "chunk_json_bytes": chunk_bytes,
            "secs": ingest_secs,
            "chunks_stored": totals.chunks,
            "findings_stored": totals.findings,
            "findings_per_sec": totals.findings as f64 / ingest_secs,
            "resent": totals.resent,
            "resent_refused_as_duplicate": totals.resent_refused,
            "errors": totals.errors,
            "generator_cpu_secs": cpu_ingest,
            "read_back": verified,
        },
        "generator_cpu_secs_total": cpu_secs() - cpu0,
    }))
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    {
        use nix::sys::resource::{getrlimit, setrlimit, Resource};
        if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
            if soft < hard {
                let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
            }
        }
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("picket-platform-load: {e}");
            return std::process::ExitCode::from(3);
        }
    };
    match rt.block_on(run(args)) {
        Ok(v) => {
            println!("{v}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("picket-platform-load: {e:#}");
            std::process::ExitCode::from(3)
        }
    }
}
