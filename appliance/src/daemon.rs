//! `picket daemon`: the appliance's link to the platform and its job scheduler.
//!
//! Why one process with a few tasks: an idle appliance must cost almost nothing (≤ 30 MB RSS,
//! ≤ 1% CPU), so everything runs on one small tokio runtime: a long-poll loop (jobs and commands
//! arrive within a second), a heartbeat, an uploader that drains the outbox in order, a scheduler,
//! the control socket (`control`) and the optional metrics listener (`metrics`).
//!
//! Durability rules (the store's: flush before acknowledging):
//! - A job from a poll is written to the store (state Accepted) before it is acknowledged to the
//!   platform; a job outside `[scan] scope` is recorded Failed with the reason naming the target.
//! - A run's result chunks and its Done record are written in ONE transaction, flushed, and only
//!   then is Done reported; the chunks are deleted one by one as the platform acknowledges them.
//! - On restart a job that was Running is re-run once with a new scan id (nothing of the
//!   interrupted run was stored, so nothing is duplicated); interrupted a second time it is
//!   marked Failed with reason "interrupted: daemon restarted".
//! - A store write that fails (disk full) fails the job with the reason; the daemon keeps running
//!   and keeps what it had stored.
//!
//! Lock order: `state` before `store`, never the reverse; neither is held across an await.

use crate::app::AppError;
use crate::config::{Config, ManagedConfig};
use crate::control::{Request, Response};
use crate::enroll::{self, Enrolled};
use crate::metrics::Metrics;
use crate::outbox::{Outbox, ScanResults};
use crate::secrets::Kek;
use crate::settings;
use crate::store::{StateBatch, StateTree, Store, StoredScan};
use crate::sync::{Backoff, CallError, PlatformClient};
use ipnet::IpNet;
use picket_model::api::{self, CommandKind, Job, JobState};
use picket_model::ScanKind;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Key of the platform-managed configuration fragment in the settings tree.
const KEY_MANAGED: &[u8] = b"managed_config";
/// Times a run interrupted by a restart is re-run before it is failed.
const MAX_RESUMES: u32 = 1;
/// Finished job and command records are kept this long (to ignore late repeats), then pruned.
const KEEP_FINISHED_SECS: i64 = 7 * 86400;
/// Most job records kept; the oldest finished ones go first.
const MAX_JOB_RECORDS: usize = 10_000;
/// Recent errors kept for `status` and diagnostics.
const MAX_RECENT_ERRORS: usize = 32;
/// Largest diagnostics bundle (the API's bound).
const MAX_DIAGNOSTICS: usize = 1024 * 1024;

/// Options of `picket daemon`.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    pub state_dir: PathBuf,
    pub config_path: PathBuf,
    /// Whether `--config` named the file (a missing named file is an error).
    pub config_explicit: bool,
}

/// One job as the daemon keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    pub job: Job,
    pub state: JobState,
    pub reason: Option<String>,
    pub scan_id: Option<String>,
    pub chunks: Option<u32>,
    /// Unix seconds of the next run; `None`: no more runs.
    pub next_run: Option<i64>,
    /// Restarts survived by the current run.
    pub resumes: u32,
    /// The latest state has not yet been acknowledged by the platform.
    pub report_pending: bool,
    /// Unix seconds of the last change.
    pub updated: i64,
}

/// A command and its answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandRecord {
    pub command: api::Command,
    pub result: Option<api::CommandResult>,
    pub reported: bool,
    pub updated: i64,
}

fn job_key(id: &str) -> Vec<u8> {
    format!("job/{id}").into_bytes()
}

fn cmd_key(id: &str) -> Vec<u8> {
    format!("cmd/{id}").into_bytes()
}

fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn is_final(s: JobState) -> bool {
    matches!(s, JobState::Done | JobState::Failed | JobState::Cancelled)
}

/// The connection to the platform of the enrolled appliance.
#[derive(Debug, Clone)]
struct Link {
    enrolled: Arc<Enrolled>,
    client: PlatformClient,
}

#[derive(Debug)]
struct State {
    jobs: BTreeMap<String, JobRecord>,
    commands: BTreeMap<String, CommandRecord>,
    outbox: Outbox,
    running: HashMap<String, CancellationToken>,
}

/// Everything the daemon's tasks share.
#[derive(Debug)]
pub struct Shared {
    state_dir: PathBuf,
    config_path: PathBuf,
    base_cfg: Config,
    cfg: RwLock<Config>,
    store: Mutex<Store>,
    kek: Kek,
    state: Mutex<State>,
    link: RwLock<Option<Link>>,
    pub metrics: Arc<Metrics>,
    wake_sync: Notify,
    wake_sched: Notify,
    /// A state change worth an early heartbeat (a run started or ended).
    wake_heartbeat: Notify,
    enrolled: Notify,
    shutdown: CancellationToken,
    started: Instant,
    errors: Mutex<VecDeque<String>>,
    last_contact: Mutex<Option<String>>,
    /// Set while store writes fail (disk full); reported in heartbeats.
    store_trouble: Mutex<Option<String>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A task that panicked while holding a lock left data that is still consistent at the record
    // level (every write goes through the store first), so keep going.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn read<T>(m: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(m: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Runs the daemon until SIGTERM/SIGINT. Returns the exit status.
pub fn run(opts: DaemonOptions, verbose: u8, quiet: bool) -> Result<u8, AppError> {
    let cfg = Config::load(&opts.config_path, opts.config_explicit)?;
    crate::logging::init(verbose, quiet, Some(&cfg.log.level));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(8)
        .thread_keep_alive(Duration::from_secs(10))
        .enable_all()
        .build()
        .map_err(AppError::Runtime)?;
    let r = runtime.block_on(run_async(opts, cfg));
    runtime.shutdown_timeout(Duration::from_secs(5));
    r
}

async fn run_async(opts: DaemonOptions, base_cfg: Config) -> Result<u8, AppError> {
    let store = Store::open_waiting(&opts.state_dir, crate::app::LOCK_WAIT)?;
    if let Some(k) = &base_cfg.secrets.kek_file {
        store.state_put(StateTree::Settings, settings::KEY_KEK_FILE, k)?;
    } else if store
        .state_get::<PathBuf>(StateTree::Settings, settings::KEY_KEK_FILE)?
        .is_some()
    {
        store.state_remove(StateTree::Settings, settings::KEY_KEK_FILE)?;
    }
    // Private keys of jobs killed mid-run.
    let _ = std::fs::remove_dir_all(opts.state_dir.join("tmp"));
    let kek = settings::kek_for(&store, &opts.state_dir)?;
    if kek.source().is_generated() {
        tracing::warn!("secrets at rest: {}", kek.source().describe());
    }
    let managed: Option<ManagedConfig> = store.state_get(StateTree::Settings, KEY_MANAGED)?;
    let cfg = match &managed {
        Some(m) => base_cfg.with_managed(m),
        None => base_cfg.clone(),
    };
    let outbox = Outbox::open(&store, cfg.outbox.quota_bytes)?;
    let (jobs, commands) = load_records(&store)?;
    let shared = Arc::new(Shared {
        state_dir: opts.state_dir.clone(),
        config_path: opts.config_path.clone(),
        base_cfg,
        cfg: RwLock::new(cfg.clone()),
        store: Mutex::new(store),
        kek,
        state: Mutex::new(State {
            jobs,
            commands,
            outbox,
            running: HashMap::new(),
        }),
        link: RwLock::new(None),
        metrics: Arc::new(Metrics::default()),
        wake_sync: Notify::new(),
        wake_sched: Notify::new(),
        wake_heartbeat: Notify::new(),
        enrolled: Notify::new(),
        shutdown: CancellationToken::new(),
        started: Instant::now(),
        errors: Mutex::new(VecDeque::new()),
        last_contact: Mutex::new(None),
        store_trouble: Mutex::new(None),
    });
    shared.resume_after_restart();
    shared.publish_outbox_metrics();
    if let Err(e) = shared.reload_link() {
        shared.record_error(&format!("cannot load the identity: {e}"));
        tracing::error!("cannot load the identity: {e}");
    }
    if read(&shared.link).is_none() {
        tracing::info!(
            "not enrolled: waiting for `picket enroll` or the console (control socket {})",
            crate::control::socket_path(&shared.state_dir).display()
        );
    }

    let mut tasks = tokio::task::JoinSet::new();
    {
        let s = shared.clone();
        let handler = move |req: Request| {
            let s = s.clone();
            async move { s.handle_control(req).await }
        };
        let dir = shared.state_dir.clone();
        let token = shared.shutdown.clone();
        let control = crate::control::serve(dir, token, handler);
        tasks.spawn(async move {
            if let Err(e) = control.await {
                tracing::error!("{e}");
            }
        });
    }
    if let Some(listen) = &cfg.metrics.listen {
        let addr =
            crate::config::parse_metrics_listen(listen).map_err(|reason| AppError::Config {
                path: opts.config_path.clone(),
                reason,
            })?;
        let listener = crate::metrics::bind(addr)
            .await
            .map_err(|e| AppError::Config {
                path: opts.config_path.clone(),
                reason: format!("metrics.listen {addr}: {e}"),
            })?;
        tasks.spawn(crate::metrics::serve(
            listener,
            shared.metrics.clone(),
            shared.shutdown.clone(),
        ));
    }
    tasks.spawn(shared.clone().poll_loop());
    tasks.spawn(shared.clone().upload_loop());
    tasks.spawn(shared.clone().heartbeat_loop());
    tasks.spawn(shared.clone().scheduler_loop());
    tracing::info!(
        "picket daemon {} started (state {})",
        picket_model::PICKET_VERSION,
        shared.state_dir.display()
    );

    wait_for_signal().await;
    tracing::info!("stopping");
    shared.shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while tasks.join_next().await.is_some() {}
        // Runs put back for the next start (their records written) before the runtime goes.
        while !lock(&shared.state).running.is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    Ok(crate::app::exit::OK)
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[allow(clippy::type_complexity)]
fn load_records(
    store: &Store,
) -> Result<(BTreeMap<String, JobRecord>, BTreeMap<String, CommandRecord>), AppError> {
    // Two record types share the tree under the prefixes `job/` and `cmd/`: each pass decodes
    // its own prefix and skips the other's keys.
    let jobs = load_prefixed(store, b"job/", "job", |r: &JobRecord| r.job.id.clone())?;
    let commands = load_prefixed(store, b"cmd/", "command", |r: &CommandRecord| {
        r.command.id.clone()
    })?;
    Ok((jobs, commands))
}

/// The records of the jobs tree under `prefix`, by id; unreadable ones are logged and skipped.
fn load_prefixed<T: serde::de::DeserializeOwned>(
    store: &Store,
    prefix: &[u8],
    what: &str,
    id: impl Fn(&T) -> String,
) -> Result<BTreeMap<String, T>, AppError> {
    let mut records = BTreeMap::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = store.state_scan::<T>(StateTree::Jobs, after.as_deref(), 512)?;
        let Some((last, _)) = page.last() else { break };
        after = Some(last.clone());
        for (k, v) in page {
            if k.starts_with(prefix) {
                match v {
                    Ok(r) => {
                        records.insert(id(&r), r);
                    }
                    Err(e) => tracing::error!("{what} record unreadable: {e}"),
                }
            }
        }
    }
    Ok(records)
}

impl Shared {
    fn cfg(&self) -> Config {
        read(&self.cfg).clone()
    }

    fn link(&self) -> Option<Link> {
        read(&self.link).clone()
    }

    /// A report (job status, command result) the platform refused for good is recorded and
    /// counts as delivered: retrying would not change the answer and would hold back everything
    /// queued behind it. Other errors are returned, to be retried.
    fn settle_report<T>(
        &self,
        r: Result<T, CallError>,
        what: impl FnOnce() -> String,
    ) -> Result<(), CallError> {
        match r {
            Ok(_) => Ok(()),
            Err(e) if is_final_refusal(&e) => {
                self.record_error(&format!("{} refused: {e}", what()));
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn record_error(&self, msg: &str) {
        let mut e = lock(&self.errors);
        if e.len() >= MAX_RECENT_ERRORS {
            e.pop_front();
        }
        let line: String = msg.chars().take(1000).collect();
        e.push_back(format!(
            "{} {line}",
            crate::report::rfc3339(crate::report::now_utc())
        ));
    }

    fn contact_ok(&self) {
        let now = crate::report::now_utc();
        self.metrics
            .last_contact
            .store(now.unix_timestamp().max(0) as u64, Ordering::Relaxed);
        *lock(&self.last_contact) = Some(crate::report::rfc3339(now));
    }

    fn publish_outbox_metrics(&self) {
        let s = lock(&self.state).outbox.stats;
        self.metrics
            .outbox_chunks
            .store(s.chunks, Ordering::Relaxed);
        self.metrics.outbox_bytes.store(s.bytes, Ordering::Relaxed);
        self.metrics
            .dropped_chunks
            .store(s.dropped_chunks, Ordering::Relaxed);
        self.metrics
            .dropped_findings
            .store(s.dropped_findings, Ordering::Relaxed);
    }

    /// (Re)builds the platform link from the stored identity, settings and config.
    fn reload_link(&self) -> Result<(), AppError> {
        let store = lock(&self.store);
        let Some(enrolled) = enroll::load(&store, &self.kek)? else {
            *write(&self.link) = None;
            self.metrics.enrolled.store(0, Ordering::Relaxed);
            return Ok(());
        };
        let s = settings::load_from(&store, &self.state_dir)?;
        drop(store);
        let proxy = enroll::effective_proxy(&self.base_cfg, &s)?;
        let client = PlatformClient::new(
            &enrolled.identity.platform_url,
            enrolled.tls()?,
            proxy.as_ref(),
        )?;
        *write(&self.link) = Some(Link {
            enrolled: Arc::new(enrolled),
            client,
        });
        self.metrics.enrolled.store(1, Ordering::Relaxed);
        self.enrolled.notify_waiters();
        self.wake_sync.notify_waiters();
        Ok(())
    }

    /// Waits until enrolled (or shutdown).
    async fn wait_link(&self) -> Option<Link> {
        loop {
            if let Some(l) = self.link() {
                return Some(l);
            }
            tokio::select! {
                () = self.shutdown.cancelled() => return None,
                () = self.enrolled.notified() => {}
                () = tokio::time::sleep(Duration::from_secs(5)) => {}
            }
        }
    }

    /// After a failed platform call: count it, keep it for `picket status`, and wait the next
    /// backoff step. False when the daemon is shutting down meanwhile.
    async fn retry_after(
        &self,
        step: &str,
        err: &CallError,
        errors: &AtomicU64,
        backoff: &mut Backoff,
    ) -> bool {
        errors.fetch_add(1, Ordering::Relaxed);
        self.record_error(&format!("{step}: {err}"));
        let w = backoff.next_wait();
        tracing::warn!("{step} failed ({err}); retrying in {} ms", w.as_millis());
        self.pause(w).await
    }

    /// Sleeps `d` unless shut down; returns false on shutdown.
    async fn pause(&self, d: Duration) -> bool {
        tokio::select! {
            () = self.shutdown.cancelled() => false,
            () = tokio::time::sleep(d) => true,
        }
    }

    /// Writes a job record; on failure keeps the change in memory and notes the trouble.
    /// Puts a job in a new state, to be reported to the platform, and persists it (a failed
    /// write is recorded by `persist_job`; the state in memory stands).
    fn settle_job(
        &self,
        rec: &mut JobRecord,
        state: JobState,
        reason: String,
        next_run: Option<i64>,
        now: i64,
    ) {
        rec.state = state;
        rec.reason = Some(reason);
        rec.next_run = next_run;
        rec.report_pending = true;
        rec.updated = now;
        let store = lock(&self.store);
        let _ = self.persist_job(&store, rec);
    }

    fn persist_job(&self, store: &Store, rec: &JobRecord) -> Result<(), AppError> {
        match store.state_put(StateTree::Jobs, &job_key(&rec.job.id), rec) {
            Ok(()) => Ok(()),
            Err(e) => {
                let msg = format!("store write failed: {e}");
                *lock(&self.store_trouble) = Some(msg.clone());
                self.record_error(&msg);
                Err(e.into())
            }
        }
    }

    /// Runs interrupted by a restart: re-run once, then fail. Commands received but not answered
    /// are answered "interrupted" (not run again: a command may not be safe to repeat).
    fn resume_after_restart(&self) {
        let mut st = lock(&self.state);
        let store = lock(&self.store);
        let now = now_unix();
        for rec in st.commands.values_mut() {
            if rec.result.is_none() {
                rec.result = Some(fail(
                    "interrupted: daemon restarted before the command completed",
                ));
                rec.reported = false;
                rec.updated = now;
                if let Err(e) = store.state_put(StateTree::Jobs, &cmd_key(&rec.command.id), &*rec) {
                    tracing::warn!("store write failed: {e}");
                }
            }
        }
        for rec in st.jobs.values_mut() {
            if rec.state != JobState::Running {
                continue;
            }
            if rec.resumes < MAX_RESUMES {
                rec.resumes += 1;
                rec.state = JobState::Accepted;
                rec.reason = Some("resumed: daemon restarted during the run".into());
                rec.next_run = Some(now);
                tracing::warn!(
                    "job {}: re-running the run interrupted by a restart",
                    rec.job.id
                );
            } else {
                rec.state = JobState::Failed;
                rec.reason = Some("interrupted: daemon restarted".into());
                rec.next_run = rec.job.every_secs.map(|e| now + e as i64);
                self.metrics.jobs_failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("job {}: interrupted by restarts, failed", rec.job.id);
            }
            rec.report_pending = true;
            rec.updated = now;
            let _ = self.persist_job(&store, rec);
        }
    }

    // ---- polling ----

    async fn poll_loop(self: Arc<Self>) {
        let mut backoff = Backoff::new(Duration::from_secs(self.cfg().daemon.max_backoff_secs));
        loop {
            let Some(link) = self.wait_link().await else {
                return;
            };
            let wait = self.cfg().daemon.poll_wait_secs;
            let r = tokio::select! {
                () = self.shutdown.cancelled() => return,
                r = link.client.poll(wait) => r,
            };
            match r {
                Ok(resp) => {
                    self.contact_ok();
                    backoff.reset();
                    self.handle_poll(resp).await;
                }
                Err(e) => {
                    let errors = &self.metrics.poll_errors;
                    if !self.retry_after("poll", &e, errors, &mut backoff).await {
                        return;
                    }
                }
            }
        }
    }

    async fn handle_poll(self: &Arc<Self>, resp: api::PollResponse) {
        let cfg = self.cfg();
        let scope = cfg.scope();
        for job in resp.jobs.into_iter().take(1000) {
            self.accept_job(job, &scope).await;
        }
        for cmd in resp.commands.into_iter().take(100) {
            let fresh = {
                let mut st = lock(&self.state);
                if st.commands.contains_key(&cmd.id) {
                    false
                } else {
                    let rec = CommandRecord {
                        command: cmd.clone(),
                        result: None,
                        reported: false,
                        updated: now_unix(),
                    };
                    let store = lock(&self.store);
                    // Recorded before it is acted on, so a repeat in the next poll is ignored.
                    if let Err(e) = store.state_put(StateTree::Jobs, &cmd_key(&cmd.id), &rec) {
                        self.record_error(&format!("store write failed: {e}"));
                    }
                    st.commands.insert(cmd.id.clone(), rec);
                    true
                }
            };
            if fresh {
                let s = self.clone();
                tokio::spawn(async move { s.run_command(cmd).await });
            }
        }
        self.wake_sched.notify_one();
        self.wake_sync.notify_one();
    }

    /// Takes a job: recorded (Accepted, or Failed when out of scope) before it is acknowledged.
    async fn accept_job(&self, job: Job, scope: &[IpNet]) {
        {
            let st = lock(&self.state);
            if let Some(rec) = st.jobs.get(&job.id) {
                if job.revision <= rec.job.revision {
                    return; // a repeat of a job we have
                }
            }
        }
        let verdict = check_scope(&job, scope).await.map(|_| ());
        let now = now_unix();
        let mut st = lock(&self.state);
        let prev = st.jobs.get(&job.id).cloned();
        let mut rec = match prev {
            // An edited job: the new definition applies from its next run.
            Some(mut r) => {
                r.job = job.clone();
                if r.state != JobState::Running && r.state != JobState::Cancelled {
                    r.next_run = Some(now);
                    r.state = JobState::Accepted;
                }
                r
            }
            None => JobRecord {
                job: job.clone(),
                state: JobState::Accepted,
                reason: None,
                scan_id: None,
                chunks: None,
                next_run: Some(now),
                resumes: 0,
                report_pending: true,
                updated: now,
            },
        };
        if let Err(reason) = verdict {
            tracing::warn!("job {} refused: {reason}", job.id);
            rec.state = JobState::Failed;
            rec.reason = Some(reason);
            rec.next_run = None;
            self.metrics.jobs_failed.fetch_add(1, Ordering::Relaxed);
        }
        rec.report_pending = true;
        rec.updated = now;
        let store = lock(&self.store);
        if let Err(e) = self.persist_job(&store, &rec) {
            // The store cannot take it (disk full): the job fails with the reason, reported to
            // the platform from memory; nothing already stored is touched.
            rec.state = JobState::Failed;
            rec.reason = Some(format!("cannot accept the job: {e}"));
            rec.next_run = None;
            self.metrics.jobs_failed.fetch_add(1, Ordering::Relaxed);
        }
        drop(store);
        st.jobs.insert(job.id.clone(), rec);
    }

    // ---- scheduling and running ----

    async fn scheduler_loop(self: Arc<Self>) {
        loop {
            tokio::select! {
                () = self.shutdown.cancelled() => return,
                () = self.wake_sched.notified() => {}
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            let max = self.cfg().scan.max_concurrent_jobs as usize;
            let now = now_unix();
            let due: Vec<String> = {
                let st = lock(&self.state);
                let free = max.saturating_sub(st.running.len());
                let mut due: Vec<(i64, String)> = st
                    .jobs
                    .values()
                    .filter(|r| !st.running.contains_key(&r.job.id))
                    .filter(|r| r.state != JobState::Running && r.state != JobState::Cancelled)
                    .filter_map(|r| {
                        r.next_run
                            .filter(|t| *t <= now)
                            .map(|t| (t, r.job.id.clone()))
                    })
                    .collect();
                due.sort();
                due.into_iter().take(free).map(|(_, id)| id).collect()
            };
            for id in due {
                self.clone().start_run(id);
            }
        }
    }

    fn start_run(self: Arc<Self>, job_id: String) {
        let token = CancellationToken::new();
        let (job, scan_id) = {
            let mut st = lock(&self.state);
            let Some(rec) = st.jobs.get(&job_id).cloned() else {
                return;
            };
            let scan_id = crate::report::scan_id(crate::report::now_utc());
            let mut rec = rec;
            rec.state = JobState::Running;
            rec.scan_id = Some(scan_id.clone());
            rec.chunks = None;
            rec.next_run = None;
            rec.report_pending = true;
            rec.updated = now_unix();
            let store = lock(&self.store);
            if self.persist_job(&store, &rec).is_err() {
                drop(store);
                self.finish_failed(&mut st, &job_id, "store write failed before the run".into());
                return;
            }
            drop(store);
            let job = rec.job.clone();
            st.jobs.insert(job_id.clone(), rec);
            st.running.insert(job_id.clone(), token.clone());
            self.metrics
                .jobs_running
                .store(st.running.len() as u64, Ordering::Relaxed);
            (job, scan_id)
        };
        self.wake_sync.notify_one();
        self.wake_heartbeat.notify_one();
        tokio::spawn(async move {
            let default_timeout = self.cfg().scan.default_timeout_secs;
            let timeout = Duration::from_secs(if job.timeout_secs == 0 {
                default_timeout
            } else {
                job.timeout_secs
            });
            let outcome = tokio::select! {
                // Stopping the daemon is not the job's fault: the run is put back to run again
                // at the next start (not counted as an interruption).
                () = self.shutdown.cancelled() => RunOutcome::Stopped,
                () = token.cancelled() => RunOutcome::Cancelled,
                r = tokio::time::timeout(timeout, self.execute(&job, &scan_id)) => match r {
                    Ok(Ok(results)) => RunOutcome::Done(Box::new(results)),
                    Ok(Err(reason)) => RunOutcome::Failed(reason),
                    Err(_) => RunOutcome::Failed(format!("timeout after {} s", timeout.as_secs())),
                },
            };
            self.finish_run(&job.id, outcome);
        });
    }

    /// Runs the scan of a job; the results, or why it failed.
    async fn execute(
        &self,
        job: &Job,
        scan_id: &str,
    ) -> Result<(ScanResults, Option<StoredScan>), String> {
        // The scope may have changed since the job was accepted.
        let pinned = check_scope(job, &self.cfg().scope()).await?;
        match job.kind {
            ScanKind::Net => {
                let o = &job.options;
                let cfg = picket_netscan::NetScanConfig {
                    targets: pinned,
                    exclude: o.exclude.clone(),
                    tcp_ports: o.ports.clone().unwrap_or_else(|| "top1000".into()),
                    udp_ports: o.udp_ports.clone().unwrap_or_else(|| "none".into()),
                    max_rate: o.max_rps,
                    no_service: o.no_service,
                    ..picket_netscan::NetScanConfig::default()
                };
                let (mut report, warnings) =
                    crate::app::net_scan_report(&cfg, Arc::new(picket_netscan::scan::NoProgress))
                        .await
                        .map_err(|e| e.to_string())?;
                for w in warnings.iter().take(5) {
                    tracing::info!("job {}: {w}", job.id);
                }
                report.scan.id = scan_id.to_owned();
                report.scan.targets.clone_from(&job.targets);
                let hosts = crate::report::json::net_report_value(&report)
                    .map(|v| v.get("hosts").cloned().unwrap_or_default())
                    .map_err(|e| e.to_string())?;
                let results = job_results(
                    scan_id,
                    job,
                    ScanKind::Net,
                    &report.scan,
                    report.findings.clone(),
                    serde_json::json!({ "hosts": hosts }),
                );
                Ok((results, Some(StoredScan::Net(report))))
            }
            ScanKind::Host => self.execute_host(job, scan_id).await,
            ScanKind::Web => self.execute_web(job, scan_id).await,
            other => Err(format!(
                "{} jobs are not supported by this daemon yet",
                other.as_str()
            )),
        }
    }

    /// A job's credentials, opened with this appliance's sealing key (they were sealed to it).
    fn open_credentials(&self, sealed: &api::SealedSecret) -> Result<api::JobCredentials, String> {
        let link = self.link().ok_or("not enrolled")?;
        let plain = link
            .enrolled
            .sealing_key
            .open(sealed)
            .map_err(|e| format!("job credentials: {e}"))?;
        serde_json::from_slice(&plain)
            .map_err(|e| format!("job credentials: not the expected JSON: {e}"))
    }

    /// A web job: one start URL; the login form's password (if any) from the sealed credentials.
    async fn execute_web(
        &self,
        job: &Job,
        scan_id: &str,
    ) -> Result<(ScanResults, Option<StoredScan>), String> {
        let [target] = job.targets.as_slice() else {
            return Err(format!(
                "web jobs take exactly one start URL ({} given)",
                job.targets.len()
            ));
        };
        let password = match &job.credentials {
            Some(sealed) => self.open_credentials(sealed)?.password,
            None => None,
        };
        let o = &job.options;
        let login = match (&o.login_url, &o.username, password) {
            (Some(url), Some(user), Some(pw)) => Some(picket_webscan::LoginConfig {
                url: url.clone(),
                username: user.clone(),
                password: pw,
            }),
            (Some(_), _, _) => {
                return Err("login_url needs username and a sealed password".into());
            }
            _ => None,
        };
        let defaults = picket_webscan::WebScanConfig::default();
        let cfg = picket_webscan::WebScanConfig {
            target: target.clone(),
            login,
            max_rps: o.max_rps,
            max_requests: o.max_requests.unwrap_or(defaults.max_requests),
            // The scope guard checked the start host's addresses; every connection is checked
            // again on the address it uses (redirects, a second DNS answer).
            allowed_nets: self.cfg().scope(),
            scan_timeout: defaults.scan_timeout.min(Duration::from_secs(
                if job.timeout_secs == 0 {
                    self.cfg().scan.default_timeout_secs
                } else {
                    job.timeout_secs
                },
            )),
            ..defaults
        };
        let started = crate::report::now_utc();
        // The web scanner's future is not Send (a thread-local RNG across awaits): it runs on a
        // blocking thread with a runtime of its own. This future is dropped when the job is
        // cancelled, times out or the daemon stops; the guard then cancels `stop`, and the scan
        // is dropped on its thread at its next await, so no request is sent after a cancel.
        let stop = tokio_util::sync::CancellationToken::new();
        let _stop_on_drop = stop.clone().drop_guard();
        let handle = tokio::task::spawn_blocking(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            let r = rt.block_on(async {
                tokio::select! {
                    r = picket_webscan::run(&cfg) => r.map_err(|e| e.to_string()),
                    () = stop.cancelled() => Err("web scan stopped".to_owned()),
                }
            });
            rt.shutdown_timeout(Duration::from_millis(200));
            r
        });
        let outcome = handle.await.map_err(|e| format!("web scan task: {e}"))??;
        let finished = crate::report::now_utc();
        let report = picket_model::WebReport {
            picket_version: picket_model::PICKET_VERSION.to_owned(),
            scan: picket_model::ScanMeta {
                id: scan_id.to_owned(),
                kind: ScanKind::Web,
                started_at: crate::report::rfc3339(started),
                finished_at: crate::report::rfc3339(finished),
                targets: vec![target.clone()],
            },
            web: outcome.site,
            findings: outcome.findings,
            stats: outcome.stats,
            warnings: outcome.warnings,
        };
        let results = job_results(
            scan_id,
            job,
            ScanKind::Web,
            &report.scan,
            report.findings.iter().map(|f| f.to_finding()).collect(),
            serde_json::json!({ "web": serde_json::to_value(&report.web).unwrap_or_default() }),
        );
        Ok((results, Some(StoredScan::Web(report))))
    }

    /// A host job: credentials opened with the sealing key, the fleet inventoried, matched
    /// against the knowledge base in the store. Host keys: the job's `host_key` (one target),
    /// else the key pinned in the store, else trust on first use — the key is then pinned, and a
    /// later change is refused.
    async fn execute_host(
        &self,
        job: &Job,
        scan_id: &str,
    ) -> Result<(ScanResults, Option<StoredScan>), String> {
        use picket_netscan::host::{self, HostKeyCheck, SshAuth, SshOptions, SshTarget, Sudo};
        let sealed = job
            .credentials
            .as_ref()
            .ok_or("host jobs need credentials (a password or a private key)")?;
        let creds = self.open_credentials(sealed)?;
        let targets = job
            .targets
            .iter()
            .map(|t| SshTarget::parse(t).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        // A private key goes to a file of its own (0600) for the SSH client, removed after.
        let key_file = match &creds.private_key {
            Some(k) => {
                let dir = self.state_dir.join("tmp");
                std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
                let path = dir.join(format!("job-{scan_id}.key"));
                crate::fsutil::write_atomic(&path, k.as_bytes(), 0o600)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                Some(RemoveOnDrop(path))
            }
            None => None,
        };
        let auth = match (&key_file, &creds.password) {
            (Some(f), _) => SshAuth::Key {
                path: f.0.clone(),
                passphrase: creds.passphrase.clone(),
            },
            (None, Some(p)) => SshAuth::Password(p.clone()),
            (None, None) => return Err("host jobs need a password or a private key".into()),
        };
        let sudo = job.options.sudo.then(|| match &creds.password {
            Some(p) => Sudo::Password(p.clone()),
            None => Sudo::NoPassword,
        });
        let checks = {
            let store = lock(&self.store);
            let mut checks = Vec::with_capacity(targets.len());
            for t in &targets {
                let pinned = store
                    .host_key(&crate::hostscan::host_port(t))
                    .map_err(|e| e.to_string())?;
                checks.push(match (&creds.host_key, pinned) {
                    (Some(k), _) if targets.len() == 1 => HostKeyCheck::Known(k.clone()),
                    (_, Some(k)) => HostKeyCheck::Known(k),
                    _ => HostKeyCheck::TrustOnFirstUse,
                });
            }
            checks
        };
        let base = SshOptions {
            auth,
            sudo,
            host_key: HostKeyCheck::Refuse,
            connect_timeout: Duration::from_secs(10),
            host_timeout: Duration::from_secs(120),
            max_output_bytes: host::DEFAULT_MAX_OUTPUT_BYTES,
            // Checked again on the addresses the connection uses (a second DNS answer).
            allowed_nets: self.cfg().scope(),
        };
        let started = crate::report::now_utc();
        let clock = Instant::now();
        let results = crate::hostscan::run_fleet(
            &targets,
            checks,
            creds.host_key.is_some() && targets.len() == 1,
            base,
            32,
        )
        .await;
        drop(key_file);
        let job_id = job.id.clone();
        let (report, pins) = {
            let mut store = lock(&self.store);
            let built = crate::hostscan::build_host_report(
                &store,
                &targets,
                results,
                (scan_id.to_owned(), started, clock),
                &mut |m| tracing::info!("job {job_id}: {m}"),
            )
            .map_err(|e| e.to_string())?;
            for (hp, key) in &built.1 {
                if let Err(e) = store.set_host_key(hp, key) {
                    tracing::warn!("job {job_id}: cannot pin the host key of {hp}: {e}");
                }
            }
            built
        };
        drop(pins);
        if report.stats.succeeded == 0 {
            let first = report
                .hosts
                .iter()
                .find_map(|h| h.error.clone())
                .unwrap_or_default();
            return Err(format!(
                "all {} host(s) failed (first: {first})",
                report.hosts.len()
            ));
        }
        // The hosts without their package lists (thousands each): the findings carry what
        // matters, and the part stays far below the platform's body cap.
        let hosts: Vec<Value> = report
            .hosts
            .iter()
            .map(|h| {
                let mut v = serde_json::to_value(h).unwrap_or_default();
                if let Some(o) = v.as_object_mut() {
                    o.insert("packages".into(), Value::from(h.packages.len()));
                }
                v
            })
            .collect();
        let results = job_results(
            scan_id,
            job,
            ScanKind::Host,
            &report.scan,
            report.findings.iter().map(|f| f.to_finding()).collect(),
            serde_json::json!({ "hosts": hosts }),
        );
        Ok((results, Some(StoredScan::Host(report))))
    }

    fn finish_failed(&self, st: &mut State, job_id: &str, reason: String) {
        let now = now_unix();
        if let Some(rec) = st.jobs.get_mut(job_id) {
            rec.resumes = 0;
            let next_run = rec.job.every_secs.map(|e| now + e as i64);
            self.settle_job(rec, JobState::Failed, reason, next_run, now);
        }
        self.metrics.jobs_failed.fetch_add(1, Ordering::Relaxed);
    }

    fn finish_run(&self, job_id: &str, outcome: RunOutcome) {
        let mut st = lock(&self.state);
        st.running.remove(job_id);
        self.metrics
            .jobs_running
            .store(st.running.len() as u64, Ordering::Relaxed);
        let now = now_unix();
        match outcome {
            RunOutcome::Done(boxed) => {
                let (results, stored) = *boxed;
                let chunks = crate::outbox::chunk(results);
                let store = lock(&self.store);
                let planned = st.outbox.plan(&store, &chunks);
                let Some(rec) = st.jobs.get(job_id).cloned() else {
                    return;
                };
                let mut rec = rec;
                rec.state = JobState::Done;
                rec.reason = None;
                rec.chunks = Some(u32::try_from(chunks.len()).unwrap_or(u32::MAX));
                rec.next_run = rec.job.every_secs.map(|e| now + e as i64);
                rec.resumes = 0;
                rec.report_pending = true;
                rec.updated = now;
                let written = planned.map_err(AppError::from).and_then(|mut p| {
                    let mut jb = StateBatch::new();
                    jb.put(&job_key(job_id), &rec)?;
                    let batch = std::mem::take(&mut p.batch);
                    let counters = std::mem::take(&mut p.counters);
                    store.state_apply_all(vec![
                        (StateTree::Outbox, batch),
                        (StateTree::Jobs, jb),
                        (StateTree::Counters, counters),
                    ])?;
                    Ok(p)
                });
                match written {
                    Ok(p) => {
                        st.outbox.committed(p);
                        st.jobs.insert(job_id.to_owned(), rec);
                        self.metrics.jobs_completed.fetch_add(1, Ordering::Relaxed);
                        *lock(&self.store_trouble) = None;
                        drop(store);
                        // The local history too; its failure does not touch the outbox.
                        if let Some(scan) = stored {
                            let mut store = lock(&self.store);
                            if let Err(e) = store.save(&scan) {
                                tracing::warn!("job {job_id}: not kept in the local history: {e}");
                            }
                        }
                    }
                    Err(e) => {
                        drop(store);
                        let msg = format!("results could not be stored: {e}");
                        *lock(&self.store_trouble) = Some(msg.clone());
                        self.record_error(&format!("job {job_id}: {msg}"));
                        tracing::error!("job {job_id}: {msg}");
                        self.finish_failed(&mut st, job_id, msg);
                    }
                }
            }
            RunOutcome::Failed(reason) => {
                tracing::warn!("job {job_id} failed: {reason}");
                self.record_error(&format!("job {job_id}: {reason}"));
                self.finish_failed(&mut st, job_id, reason);
            }
            RunOutcome::Stopped => {
                if let Some(rec) = st.jobs.get_mut(job_id) {
                    let reason = "daemon stopped during the run; runs again at start".into();
                    self.settle_job(rec, JobState::Accepted, reason, Some(now), now);
                }
            }
            RunOutcome::Cancelled => {
                if let Some(rec) = st.jobs.get_mut(job_id) {
                    let reason = "cancelled by the platform".into();
                    self.settle_job(rec, JobState::Cancelled, reason, None, now);
                }
                self.metrics.jobs_failed.fetch_add(1, Ordering::Relaxed);
            }
        }
        drop(st);
        self.publish_outbox_metrics();
        self.wake_sync.notify_one();
        self.wake_sched.notify_one();
        self.wake_heartbeat.notify_one();
    }

    // ---- uploading ----

    async fn upload_loop(self: Arc<Self>) {
        let mut backoff = Backoff::new(Duration::from_secs(self.cfg().daemon.max_backoff_secs));
        loop {
            let Some(link) = self.wait_link().await else {
                return;
            };
            match self.upload_some(&link).await {
                Ok(true) => {
                    backoff.reset();
                    continue;
                }
                Ok(false) => {
                    backoff.reset();
                    tokio::select! {
                        () = self.shutdown.cancelled() => return,
                        () = self.wake_sync.notified() => {}
                        () = tokio::time::sleep(Duration::from_secs(30)) => {}
                    }
                }
                Err(e) => {
                    let errors = &self.metrics.upload_errors;
                    if !self.retry_after("upload", &e, errors, &mut backoff).await {
                        return;
                    }
                }
            }
        }
    }

    /// Sends one pending report or chunk; Ok(true) if something was sent.
    async fn upload_some(&self, link: &Link) -> Result<bool, CallError> {
        // Job states first: small, and the platform shows them.
        let pending_job = {
            let st = lock(&self.state);
            st.jobs.values().find(|r| r.report_pending).cloned()
        };
        if let Some(rec) = pending_job {
            let update = api::JobStatusUpdate {
                state: rec.state,
                scan_id: rec.scan_id.clone(),
                revision: rec.job.revision,
                reason: rec.reason.clone(),
                chunks: rec.chunks,
            };
            // Refused for good: unknown job, stale state.
            let r = link.client.job_status(&rec.job.id, &update).await;
            self.settle_report(r, || format!("job {} status", rec.job.id))?;
            self.contact_ok();
            let mut st = lock(&self.state);
            if let Some(cur) = st.jobs.get_mut(&rec.job.id) {
                // Only if nothing changed meanwhile (else the newer state is still pending).
                if cur.state == rec.state
                    && cur.scan_id == rec.scan_id
                    && cur.updated == rec.updated
                {
                    cur.report_pending = false;
                    let cur = cur.clone();
                    let store = lock(&self.store);
                    let _ = self.persist_job(&store, &cur);
                }
            }
            return Ok(true);
        }
        let pending_cmd = {
            let st = lock(&self.state);
            st.commands
                .values()
                .find(|c| !c.reported && c.result.is_some())
                .cloned()
        };
        if let Some(c) = pending_cmd {
            if let Some(result) = &c.result {
                let r = link.client.command_result(&c.command.id, result).await;
                self.settle_report(r, || format!("command {} result", c.command.id))?;
            }
            self.contact_ok();
            let mut st = lock(&self.state);
            if let Some(cur) = st.commands.get_mut(&c.command.id) {
                cur.reported = true;
                cur.updated = now_unix();
                let cur = cur.clone();
                let store = lock(&self.store);
                if let Err(e) = store.state_put(StateTree::Jobs, &cmd_key(&cur.command.id), &cur) {
                    self.record_error(&format!("store write failed: {e}"));
                }
            }
            return Ok(true);
        }
        let next = {
            let st = lock(&self.state);
            let store = lock(&self.store);
            st.outbox.first(&store)
        };
        let (key, entry) = match next {
            Ok(Some(n)) => n,
            Ok(None) => return Ok(false),
            Err(e) => {
                self.record_error(&format!("outbox read failed: {e}"));
                return Ok(false);
            }
        };
        let chunk: api::ResultChunk = match serde_json::from_slice(&entry.chunk_json) {
            Ok(c) => c,
            Err(e) => {
                // Cannot happen for what we wrote; keep it, say so, and do not spin on it.
                self.record_error(&format!("outbox chunk {} undecodable: {e}", entry.key()));
                return Ok(false);
            }
        };
        let r = link.client.upload(&chunk).await;
        let drop_it = match r {
            Ok(_) | Err(CallError::Status { status: 409, .. }) => false,
            Err(CallError::Status {
                status, ref error, ..
            }) if (400..500).contains(&status) && !matches!(status, 401 | 403 | 408 | 429) => {
                // Refused for good (malformed for this platform): retrying forever would stop
                // every later chunk, so it is dropped and counted like a quota drop.
                self.record_error(&format!(
                    "chunk {} refused by the platform: {} {}",
                    entry.key(),
                    error.error,
                    error.detail
                ));
                true
            }
            Err(e) => return Err(e),
        };
        self.contact_ok();
        {
            let mut st = lock(&self.state);
            let store = lock(&self.store);
            if drop_it {
                st.outbox.stats.dropped_chunks += 1;
                st.outbox.stats.dropped_findings += u64::from(entry.findings);
                let (dc, df) = (
                    st.outbox.stats.dropped_chunks,
                    st.outbox.stats.dropped_findings,
                );
                let mut b = StateBatch::new();
                let _ = b.put(crate::outbox::DROPPED_CHUNKS, &dc);
                let _ = b.put(crate::outbox::DROPPED_FINDINGS, &df);
                let _ = store.state_apply(StateTree::Counters, b);
            }
            if let Err(e) = st.outbox.acknowledged(&store, &key) {
                self.record_error(&format!("outbox delete failed: {e}"));
            }
        }
        self.publish_outbox_metrics();
        Ok(true)
    }

    // ---- heartbeat, renewal, pruning ----

    async fn heartbeat_loop(self: Arc<Self>) {
        loop {
            let Some(link) = self.wait_link().await else {
                return;
            };
            let hb = self.heartbeat(&link);
            match tokio::select! {
                () = self.shutdown.cancelled() => return,
                r = link.client.heartbeat(&hb) => r,
            } {
                Ok(_) => self.contact_ok(),
                Err(e) => {
                    self.record_error(&format!("heartbeat: {e}"));
                    tracing::warn!("heartbeat failed: {e}");
                }
            }
            if link
                .enrolled
                .identity
                .renew_at()
                .is_some_and(|t| t <= time::OffsetDateTime::now_utc())
            {
                if let Err(e) = self.renew(&link).await {
                    self.record_error(&format!("certificate renewal: {e}"));
                    tracing::warn!("certificate renewal failed: {e}");
                }
            }
            self.prune();
            let every = Duration::from_secs(self.cfg().daemon.heartbeat_secs);
            tokio::select! {
                () = self.shutdown.cancelled() => return,
                () = tokio::time::sleep(every) => {}
                // State changes are told at once, but at most once every 2 s.
                () = async {
                    self.wake_heartbeat.notified().await;
                    tokio::time::sleep(Duration::from_secs(2)).await;
                } => {}
            }
        }
    }

    fn heartbeat(&self, link: &Link) -> api::Heartbeat {
        let (running, stats) = {
            let st = lock(&self.state);
            (
                st.running.keys().cloned().collect::<Vec<_>>(),
                st.outbox.stats,
            )
        };
        let free = lock(&self.store).free_bytes().unwrap_or(0);
        let warnings = self.warnings();
        api::Heartbeat {
            picket_version: picket_model::PICKET_VERSION.to_owned(),
            hostname: enroll::hostname(),
            uptime_secs: self.started.elapsed().as_secs(),
            running_jobs: running,
            outbox_chunks: stats.chunks,
            outbox_bytes: stats.bytes,
            dropped_chunks: stats.dropped_chunks,
            dropped_findings: stats.dropped_findings,
            store_free_bytes: free,
            certificate_not_after: link.enrolled.identity.not_after.clone(),
            warnings,
        }
    }

    /// New key, CSR, `/appliance/renew`, stored, link rebuilt.
    async fn renew(&self, link: &Link) -> Result<(), AppError> {
        let (key, csr) = enroll::new_device_key(&enroll::hostname())?;
        let resp = link
            .client
            .renew(&api::RenewRequest { csr_pem: csr })
            .await?;
        {
            let store = lock(&self.store);
            enroll::store_renewal(
                &store,
                &self.kek,
                link.enrolled.identity.clone(),
                &key,
                &resp,
            )?;
        }
        tracing::info!("certificate renewed, valid until {}", resp.not_after);
        self.reload_link()
    }

    fn prune(&self) {
        let now = now_unix();
        let mut st = lock(&self.state);
        let mut old: Vec<(i64, String)> = st
            .jobs
            .values()
            .filter(|r| is_final(r.state) && r.next_run.is_none() && !r.report_pending)
            .map(|r| (r.updated, r.job.id.clone()))
            .collect();
        old.sort();
        let excess = st.jobs.len().saturating_sub(MAX_JOB_RECORDS);
        let doomed: Vec<String> = old
            .iter()
            .enumerate()
            .filter(|(i, (t, _))| *i < excess || now - t > KEEP_FINISHED_SECS)
            .map(|(_, (_, id))| id.clone())
            .collect();
        let cmds: Vec<String> = st
            .commands
            .values()
            .filter(|c| c.reported && now - c.updated > KEEP_FINISHED_SECS)
            .map(|c| c.command.id.clone())
            .collect();
        if doomed.is_empty() && cmds.is_empty() {
            return;
        }
        let mut b = StateBatch::new();
        for id in &doomed {
            b.remove(&job_key(id));
        }
        for id in &cmds {
            b.remove(&cmd_key(id));
        }
        let store = lock(&self.store);
        if store.state_apply(StateTree::Jobs, b).is_ok() {
            for id in doomed {
                st.jobs.remove(&id);
            }
            for id in cmds {
                st.commands.remove(&id);
            }
        }
    }

    // ---- commands ----

    async fn run_command(self: Arc<Self>, cmd: api::Command) {
        let result = match &cmd.kind {
            CommandKind::CancelJob { job_id } => self.cancel_job(job_id),
            CommandKind::UpdateConfig { toml } => self.update_config(toml),
            CommandKind::RotateCertificate => match self.link() {
                Some(l) => match self.renew(&l).await {
                    Ok(()) => ok("certificate rotated"),
                    Err(e) => fail(&format!("rotation failed: {e}")),
                },
                None => fail("not enrolled"),
            },
            CommandKind::CollectDiagnostics => api::CommandResult {
                ok: true,
                message: "diagnostics collected".into(),
                output: Some(self.diagnostics()),
            },
            CommandKind::UpdateNow => {
                fail("no updater installed yet: this build cannot update itself")
            }
            CommandKind::Reboot => self.reboot(),
        };
        tracing::info!("command {} ({:?}): {}", cmd.id, cmd.kind, result.message);
        let reboot = matches!(cmd.kind, CommandKind::Reboot) && result.ok;
        self.set_command_result(&cmd.id, result);
        if reboot {
            self.reboot_now(&cmd.id).await;
        }
    }

    fn cancel_job(&self, job_id: &str) -> api::CommandResult {
        let mut st = lock(&self.state);
        if let Some(token) = st.running.get(job_id) {
            token.cancel();
            return ok(&format!("job {job_id}: cancelling the running scan"));
        }
        let now = now_unix();
        match st.jobs.get_mut(job_id) {
            Some(rec) if rec.state != JobState::Cancelled => {
                let reason = "cancelled by the platform".into();
                self.settle_job(rec, JobState::Cancelled, reason, None, now);
                ok(&format!("job {job_id}: cancelled"))
            }
            Some(_) => ok(&format!("job {job_id}: already cancelled")),
            None => fail(&format!("job {job_id}: unknown to this appliance")),
        }
    }

    fn update_config(&self, toml: &str) -> api::CommandResult {
        let store = lock(&self.store);
        let current: ManagedConfig = match store.state_get(StateTree::Settings, KEY_MANAGED) {
            Ok(c) => c.unwrap_or_default(),
            Err(e) => return fail(&format!("cannot read the managed configuration: {e}")),
        };
        let fragment = match ManagedConfig::parse(toml, &self.base_cfg.with_managed(&current)) {
            Ok(f) => f,
            Err(e) => return fail(&format!("configuration refused: {e}")),
        };
        let merged = current.merge(&fragment);
        if let Err(e) = store.state_put(StateTree::Settings, KEY_MANAGED, &merged) {
            return fail(&format!("cannot store the configuration: {e}"));
        }
        drop(store);
        let eff = self.base_cfg.with_managed(&merged);
        lock(&self.state).outbox.quota_bytes = eff.outbox.quota_bytes;
        let level_changed = eff.log.level != self.cfg().log.level;
        *write(&self.cfg) = eff;
        self.wake_sched.notify_one();
        ok(if level_changed {
            "configuration applied (log level takes effect at the next start)"
        } else {
            "configuration applied"
        })
    }

    fn reboot(&self) -> api::CommandResult {
        // Only the appliance service may reboot the box: under systemd (INVOCATION_ID) as root.
        let under_systemd = std::env::var_os("INVOCATION_ID").is_some();
        let root = {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
        };
        if !(under_systemd && root) {
            return fail("not supported: picket is not running as the appliance service");
        }
        // The answer is stored (and given a moment to be sent) before the reboot, so that the
        // command is not found unanswered — and run again — after the box comes back.
        ok("rebooting")
    }

    /// Runs `systemctl reboot` (argument list, no shell); on failure the stored answer is
    /// corrected and sent again.
    async fn reboot_now(&self, command_id: &str) {
        let _ = self.pause(Duration::from_secs(3)).await;
        let r = tokio::process::Command::new("systemctl")
            .arg("reboot")
            .status()
            .await;
        let failure = match r {
            Ok(s) if s.success() => return,
            Ok(s) => format!("systemctl reboot exited with {s}"),
            Err(e) => format!("cannot run systemctl: {e}"),
        };
        tracing::error!("{failure}");
        self.set_command_result(command_id, fail(&failure));
    }

    fn set_command_result(&self, command_id: &str, result: api::CommandResult) {
        let mut st = lock(&self.state);
        if let Some(rec) = st.commands.get_mut(command_id) {
            rec.result = Some(result);
            rec.reported = false;
            rec.updated = now_unix();
            let rec = rec.clone();
            let store = lock(&self.store);
            if let Err(e) = store.state_put(StateTree::Jobs, &cmd_key(command_id), &rec) {
                self.record_error(&format!("store write failed: {e}"));
            }
        }
        drop(st);
        self.wake_sync.notify_one();
    }

    fn diagnostics(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let _ = writeln!(out, "picket {}", picket_model::PICKET_VERSION);
        let _ = writeln!(out, "uptime_secs {}", self.started.elapsed().as_secs());
        let _ = writeln!(out, "config_file {}", self.config_path.display());
        let mut cfg = self.cfg();
        // Secrets never leave the box: only the names of where they come from.
        if let Some(p) = cfg.proxy.as_mut() {
            p.username = p.username.as_ref().map(|_| "<set>".into());
        }
        let _ = writeln!(
            out,
            "--- effective config (secrets removed) ---\n{}",
            toml::to_string(&cfg).unwrap_or_default()
        );
        let _ = writeln!(out, "secrets: {}", self.kek.source().describe());
        let st = lock(&self.state);
        let _ = writeln!(out, "--- outbox ---\n{:?}", st.outbox.stats);
        let _ = writeln!(out, "--- jobs ({}) ---", st.jobs.len());
        for r in st.jobs.values().rev().take(50) {
            let _ = writeln!(
                out,
                "{} {:?} {:?} {}",
                r.job.id,
                r.state,
                r.scan_id,
                r.reason.as_deref().unwrap_or("")
            );
        }
        drop(st);
        let _ = writeln!(out, "--- recent errors ---");
        for e in lock(&self.errors).iter() {
            let _ = writeln!(out, "{e}");
        }
        if out.len() > MAX_DIAGNOSTICS {
            let mut cut = MAX_DIAGNOSTICS;
            while !out.is_char_boundary(cut) {
                cut -= 1;
            }
            out.truncate(cut);
        }
        out
    }

    // ---- control socket ----

    async fn handle_control(self: Arc<Self>, req: Request) -> Response {
        match req {
            Request::GetSettings => {
                let store = lock(&self.store);
                match settings::load_from(&store, &self.state_dir) {
                    Ok(s) => Response::Settings(crate::control::WireSettings::from(&s)),
                    Err(e) => crate::control::error_response(&e),
                }
            }
            Request::SaveSettings(w) => {
                let s = w.into_settings();
                let r = {
                    let store = lock(&self.store);
                    settings::save_to(&store, &self.state_dir, &s)
                };
                match r.and_then(|()| self.reload_link()) {
                    Ok(()) => Response::Ok,
                    Err(e) => crate::control::error_response(&e),
                }
            }
            Request::Enroll {
                platform_url,
                code,
                ca,
            } => {
                let plan = {
                    let store = lock(&self.store);
                    enroll::EnrollPlan::prepare(
                        &store,
                        &self.state_dir,
                        &self.base_cfg,
                        &platform_url,
                        &code,
                        &ca,
                    )
                };
                let answer = match plan {
                    Ok(p) => p.execute().await,
                    Err(e) => Err(e),
                };
                let outcome = answer.and_then(|a| {
                    let store = lock(&self.store);
                    a.commit(&store, &self.state_dir)
                });
                match outcome.and_then(|o| self.reload_link().map(|()| o)) {
                    Ok(o) => {
                        tracing::info!("enrolled as {} with {}", o.appliance_id, o.platform_url);
                        Response::Enrolled(o)
                    }
                    Err(e) => crate::control::error_response(&e),
                }
            }
            Request::Status => Response::Status(Box::new(self.status())),
            Request::Check => {
                let input = crate::status::CheckInput::from_link(
                    self.link().map(|l| l.enrolled),
                    &self.base_cfg,
                    {
                        let store = lock(&self.store);
                        settings::load_from(&store, &self.state_dir).unwrap_or_default()
                    },
                );
                match input {
                    Ok(i) => Response::Check(crate::status::run_check(i).await),
                    Err(e) => crate::control::error_response(&e),
                }
            }
        }
    }

    /// What the heartbeat and `status` warn about: store trouble, generated secrets.
    fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if let Some(t) = lock(&self.store_trouble).clone() {
            warnings.push(t);
        }
        if self.kek.source().is_generated() {
            warnings.push(format!("secrets at rest: {}", self.kek.source().describe()));
        }
        warnings
    }

    fn status(&self) -> crate::status::StatusReport {
        let link = self.link();
        let st = lock(&self.state);
        let mut jobs: Vec<&JobRecord> = st.jobs.values().collect();
        jobs.sort_by_key(|r| std::cmp::Reverse(r.updated));
        let warnings = self.warnings();
        crate::status::StatusReport {
            enrolled: link.is_some(),
            appliance_id: link
                .as_ref()
                .map(|l| l.enrolled.identity.appliance_id.clone()),
            platform_url: link
                .as_ref()
                .map(|l| l.enrolled.identity.platform_url.clone()),
            certificate_not_after: link.as_ref().map(|l| l.enrolled.identity.not_after.clone()),
            daemon_running: true,
            last_contact: lock(&self.last_contact).clone(),
            last_error: lock(&self.errors).back().cloned(),
            outbox_chunks: st.outbox.stats.chunks,
            outbox_bytes: st.outbox.stats.bytes,
            dropped_chunks: st.outbox.stats.dropped_chunks,
            dropped_findings: st.outbox.stats.dropped_findings,
            running_jobs: st.running.keys().cloned().collect(),
            jobs: jobs.into_iter().take(20).map(job_line).collect(),
            secrets: self.kek.source().describe(),
            warnings,
        }
    }
}

fn job_line(r: &JobRecord) -> crate::status::JobLine {
    crate::status::JobLine {
        id: r.job.id.clone(),
        kind: r.job.kind.as_str().to_owned(),
        state: format!("{:?}", r.state).to_lowercase(),
        reason: r.reason.clone(),
        scan_id: r.scan_id.clone(),
    }
}

/// The 20 most recently changed jobs of a store no daemon holds (for `picket status`).
pub(crate) fn recent_jobs(store: &Store) -> Result<Vec<crate::status::JobLine>, AppError> {
    let (jobs, _) = load_records(store)?;
    let mut v: Vec<&JobRecord> = jobs.values().collect();
    v.sort_by_key(|r| std::cmp::Reverse(r.updated));
    Ok(v.into_iter().take(20).map(job_line).collect())
}

/// Largest report part sent with chunk 0; a bigger one (a huge network) is replaced by a note, so
/// the chunk stays under the platform's body cap. The findings are never cut.
const MAX_REPORT_PART: usize = 4 * 1024 * 1024;

/// What a job's scan uploads: the scan as its report describes it, its findings, and the
/// kind-specific part (bounded).
fn job_results(
    scan_id: &str,
    job: &Job,
    kind: ScanKind,
    meta: &picket_model::ScanMeta,
    findings: Vec<picket_model::Finding>,
    part: Value,
) -> ScanResults {
    ScanResults {
        scan_id: scan_id.to_owned(),
        job_id: Some(job.id.clone()),
        kind,
        started_at: meta.started_at.clone(),
        finished_at: meta.finished_at.clone(),
        targets: meta.targets.clone(),
        findings,
        report_part: Some(bounded_part(part)),
    }
}

fn bounded_part(v: Value) -> String {
    let text = v.to_string();
    if text.len() <= MAX_REPORT_PART {
        return text;
    }
    let hosts = v["hosts"].as_array().map_or(0, Vec::len);
    serde_json::json!({ "truncated": true, "hosts_count": hosts, "bytes": text.len() }).to_string()
}

/// A file removed when dropped (a job's private key).
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A 4xx answer other than authentication, timeout or rate limiting: the platform will give the
/// same answer to a retry.
fn is_final_refusal(e: &CallError) -> bool {
    e.status()
        .is_some_and(|s| (400..500).contains(&s) && !matches!(s, 401 | 403 | 408 | 429))
}

enum RunOutcome {
    Done(Box<(ScanResults, Option<StoredScan>)>),
    Failed(String),
    Cancelled,
    Stopped,
}

fn ok(msg: &str) -> api::CommandResult {
    api::CommandResult {
        ok: true,
        message: msg.to_owned(),
        output: None,
    }
}

fn fail(msg: &str) -> api::CommandResult {
    api::CommandResult {
        ok: false,
        message: msg.to_owned(),
        output: None,
    }
}

/// The host part of a job target: a bare address/CIDR/range/name, or the host of an
/// `ssh://`/`https://` URL.
fn target_host(t: &str) -> Result<String, String> {
    if t.contains("://") {
        let u = url::Url::parse(t).map_err(|e| format!("bad target {t:?}: {e}"))?;
        let h = u
            .host_str()
            .ok_or_else(|| format!("bad target {t:?}: no host"))?;
        Ok(h.trim_start_matches('[').trim_end_matches(']').to_owned())
    } else {
        Ok(t.to_owned())
    }
}

/// The scope guard: every target (after resolving host names) must lie inside `scope`. The
/// error names the first target that does not. Returns the targets with each bare host name
/// replaced by the addresses it was checked with, so a net scan cannot be pointed elsewhere by a
/// second, different DNS answer.
pub async fn check_scope(job: &Job, scope: &[IpNet]) -> Result<Vec<String>, String> {
    use picket_netscan::targets::{parse_target, resolve_targets, TargetSpec};
    if scope.is_empty() {
        return Err("out of scope: no scan scope is configured ([scan] scope)".into());
    }
    if job.targets.is_empty() {
        return Err("no targets".into());
    }
    let inside = |a: std::net::IpAddr| scope.iter().any(|n| n.contains(&a));
    let mut pinned = Vec::with_capacity(job.targets.len());
    for t in job.targets.iter().take(100_000) {
        if t.starts_with('@') {
            return Err(format!(
                "out of scope: {t} (file targets are not accepted from the platform)"
            ));
        }
        let host = target_host(t)?;
        let ok = match parse_target(&host).map_err(|e| format!("bad target {t:?}: {e}"))? {
            TargetSpec::Addr(a) => inside(a),
            TargetSpec::Net(n) => scope.iter().any(|s| s.contains(&n)),
            // A range lies inside one network exactly when both of its ends do.
            TargetSpec::Range { start, end } => {
                scope.iter().any(|s| s.contains(&start) && s.contains(&end))
            }
            TargetSpec::Host(h) => {
                let set = resolve_targets(std::slice::from_ref(&h), &[])
                    .await
                    .map_err(|e| format!("out of scope: {t} (cannot resolve: {e})"))?;
                if let Some(a) = set.addrs.iter().find(|a| !inside(**a)) {
                    return Err(format!("out of scope: {t} (resolves to {a})"));
                }
                if host == *t {
                    pinned.extend(set.addrs.iter().map(|a| a.to_string()));
                } else {
                    pinned.push(t.clone());
                }
                if set.addrs.is_empty() {
                    return Err(format!("out of scope: {t} (resolves to no address)"));
                }
                continue;
            }
        };
        if !ok {
            return Err(format!("out of scope: {t}"));
        }
        pinned.push(t.clone());
    }
    Ok(pinned)
}

/// `picket daemon` entry from the CLI.
pub fn daemon_command(
    state_dir: &Path,
    config: Option<&Path>,
    verbose: u8,
    quiet: bool,
) -> Result<u8, AppError> {
    run(
        DaemonOptions {
            state_dir: state_dir.to_path_buf(),
            config_path: config
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from(crate::config::DEFAULT_CONFIG)),
            config_explicit: config.is_some(),
        },
        verbose,
        quiet,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(targets: &[&str]) -> Job {
        Job {
            id: "j".into(),
            kind: ScanKind::Net,
            targets: targets.iter().map(|s| s.to_string()).collect(),
            options: api::JobOptions::default(),
            every_secs: None,
            timeout_secs: 60,
            credentials: None,
            revision: 1,
            created_at: String::new(),
        }
    }

    #[tokio::test]
    async fn scope_guard_names_the_target_outside() {
        let scope: Vec<IpNet> = vec![
            "198.18.0.0/15".parse().unwrap_or_else(|e| panic!("{e}")),
            "2001:db8::/32".parse().unwrap_or_else(|e| panic!("{e}")),
        ];
        for ok in [
            vec!["198.18.0.1"],
            vec!["198.18.0.0/24", "198.19.255.255"],
            vec!["198.18.0.1-20"],
            vec!["ssh://root@198.18.0.30:22"],
            vec!["2001:db8::1"],
            vec!["localhost.picket-test-does-not-exist.invalid"][..0].to_vec(),
        ] {
            if ok.is_empty() {
                continue;
            }
            assert!(check_scope(&job(&ok), &scope).await.is_ok(), "{ok:?}");
        }
        for (bad, named) in [
            (vec!["198.18.0.1", "10.0.0.1"], "10.0.0.1"),
            (vec!["198.16.0.0/12"], "198.16.0.0/12"),
            (
                vec!["198.19.255.250-198.20.0.5"],
                "198.19.255.250-198.20.0.5",
            ),
            (vec!["https://127.0.0.1/"], "https://127.0.0.1/"),
            (vec!["localhost"], "localhost"),
            (vec!["@/etc/passwd"], "@/etc/passwd"),
        ] {
            let e = check_scope(&job(&bad), &scope).await;
            assert!(
                e.as_ref()
                    .is_err_and(|e| e.contains(named) && e.starts_with("out of scope")),
                "{bad:?}: {e:?}"
            );
        }
        assert!(check_scope(&job(&["198.18.0.1"]), &[]).await.is_err());
        // A host name is replaced by the addresses it was checked with.
        let lo: Vec<IpNet> = vec![
            "127.0.0.0/8".parse().unwrap_or_else(|e| panic!("{e}")),
            "::1/128".parse().unwrap_or_else(|e| panic!("{e}")),
        ];
        let pinned = check_scope(&job(&["localhost", "127.0.0.2"]), &lo)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(pinned.contains(&"127.0.0.1".to_string()), "{pinned:?}");
        assert!(!pinned.contains(&"localhost".to_string()), "{pinned:?}");
        assert_eq!(pinned.last().map(String::as_str), Some("127.0.0.2"));
    }
}
