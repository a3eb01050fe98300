//! End-to-end tests of `picket enroll`, `picket daemon` and `picket status` against the real
//! `picket-platform serve` binary, with real TLS on loopback (or on the loopback of a namespace
//! that the test network or the test itself built).
//!
//! Every count asserted is exact: the findings the platform holds for a scan are compared with the
//! findings of the report the daemon kept in its local history, and with what the targets were
//! built to produce.

mod common;

use picket_model::api::{CreateJob, JobOptions};
use picket_model::ScanKind;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn platform_bin() -> PathBuf {
    if let Ok(p) = std::env::var("PICKET_PLATFORM_BIN") {
        return PathBuf::from(p);
    }
    let sibling = Path::new(common::picket_bin())
        .parent()
        .map(|d| d.join("picket-platform"))
        .unwrap_or_default();
    if !sibling.exists() {
        let st = Command::new(env!("CARGO"))
            .args(["build", "-p", "picket-platform", "--bin", "picket-platform"])
            .status()
            .unwrap_or_else(|e| panic!("cannot build picket-platform: {e}"));
        assert!(st.success(), "building picket-platform failed");
    }
    sibling
}

/// `prog args` in `ns` (or here).
fn command(ns: Option<&str>, prog: &Path, args: &[&str]) -> Command {
    match ns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns]).arg(prog).args(args);
            c
        }
        None => {
            let mut c = Command::new(prog);
            c.args(args);
            c
        }
    }
}

fn output(mut c: Command, what: &str) -> Output {
    c.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e}"))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A `picket-platform serve` process.
struct Platform {
    child: Option<Child>,
    dir: PathBuf,
    ns: Option<String>,
    /// `127.0.0.1:PORT`
    addr: String,
    token: String,
    ca: PathBuf,
    fingerprint: String,
}

impl Platform {
    fn start(dir: &Path, ns: Option<&str>) -> Platform {
        Platform::start_on(dir, ns, "127.0.0.1:0", None)
    }

    /// On `listen`, with a platform config file's text when given.
    fn start_on(dir: &Path, ns: Option<&str>, listen: &str, config: Option<&str>) -> Platform {
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{e}"));
        if let Some(c) = config {
            std::fs::write(dir.join("platform.toml"), c).unwrap_or_else(|e| panic!("{e}"));
        }
        let mut p = Platform {
            child: None,
            dir: dir.to_path_buf(),
            ns: ns.map(str::to_owned),
            addr: listen.into(),
            token: String::new(),
            ca: dir.join("ca.pem"),
            fingerprint: String::new(),
        };
        p.spawn();
        let out = output(
            command(ns, &platform_bin(), &["ca", "--state-dir", &p.state()]),
            "picket-platform ca",
        );
        let t = text(&out.stdout);
        std::fs::write(&p.ca, &t).unwrap_or_else(|e| panic!("{e}"));
        p.fingerprint = t
            .lines()
            .find_map(|l| l.strip_prefix("SHA256 Fingerprint="))
            .unwrap_or_default()
            .to_owned();
        let out = output(
            command(
                ns,
                &platform_bin(),
                &["admin-token", "--state-dir", &p.state()],
            ),
            "picket-platform admin-token",
        );
        p.token = text(&out.stdout).trim().to_owned();
        assert!(!p.token.is_empty() && !p.fingerprint.is_empty());
        p
    }

    fn state(&self) -> String {
        self.dir.join("state").to_string_lossy().into_owned()
    }

    fn spawn(&mut self) {
        let addr_file = self.dir.join("addr");
        let _ = std::fs::remove_file(&addr_file);
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(self.dir.join("platform.log"))
            .unwrap_or_else(|e| panic!("{e}"));
        let conf = self.dir.join("platform.toml");
        let conf_s = conf.to_string_lossy().into_owned();
        let addr_s = addr_file.to_string_lossy().into_owned();
        let state = self.state();
        let mut args = vec![
            "serve",
            "--state-dir",
            state.as_str(),
            "--listen",
            self.addr.as_str(),
            "--addr-file",
            addr_s.as_str(),
        ];
        if conf.exists() {
            args.extend(["--config", conf_s.as_str()]);
        }
        let child = command(self.ns.as_deref(), &platform_bin(), &args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start picket-platform: {e}"));
        self.child = Some(child);
        wait_until("the platform to listen", Duration::from_secs(30), || {
            std::fs::read_to_string(&addr_file).is_ok_and(|s| s.trim().contains(':'))
        });
        self.addr = std::fs::read_to_string(&addr_file)
            .unwrap_or_default()
            .trim()
            .to_owned();
    }

    fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Killed (SIGKILL) and started again on the same port with the same state.
    fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    fn code(&self) -> String {
        let out = output(
            command(
                self.ns.as_deref(),
                &platform_bin(),
                &["code", "--state-dir", &self.state(), "--url", &self.url()],
            ),
            "picket-platform code",
        );
        assert!(out.status.success(), "code: {}", text(&out.stderr));
        text(&out.stdout).trim().to_owned()
    }

    /// An operator API call through curl (which runs in the platform's namespace).
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let url = format!("{}{path}", self.url());
        let auth = format!("Authorization: Bearer {}", self.token);
        let ca = self.ca.to_string_lossy().into_owned();
        let mut args = vec![
            "-sS",
            "--max-time",
            "30",
            "--cacert",
            &ca,
            "-H",
            &auth,
            "-X",
            method,
        ];
        let data;
        if let Some(b) = body {
            data = b.to_string();
            args.extend([
                "-H",
                "content-type: application/json",
                "--data-binary",
                &data,
            ]);
        }
        args.push(&url);
        let out = output(
            command(self.ns.as_deref(), Path::new("curl"), &args),
            "curl",
        );
        assert!(out.status.success(), "curl {path}: {}", text(&out.stderr));
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{path}: {e}: {}", text(&out.stdout)))
    }

    /// A page of the platform's console, as an operator sees it: logged in with the admin token
    /// (session cookie kept in a jar beside the platform's state), then `path` fetched.
    fn console_page(&self, path: &str) -> String {
        let ca = self.ca.to_string_lossy().into_owned();
        let jar = self
            .dir
            .join("console-cookies")
            .to_string_lossy()
            .into_owned();
        let token = format!("token={}", self.token);
        let login = format!("{}/console/login", self.url());
        let out = output(
            command(
                self.ns.as_deref(),
                Path::new("curl"),
                &[
                    "-sS",
                    "--max-time",
                    "30",
                    "--cacert",
                    &ca,
                    "-c",
                    &jar,
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code}",
                    "--data-urlencode",
                    &token,
                    &login,
                ],
            ),
            "curl console login",
        );
        assert_eq!(
            text(&out.stdout).trim(),
            "303",
            "console login: {}",
            text(&out.stderr)
        );
        let url = format!("{}{path}", self.url());
        let out = output(
            command(
                self.ns.as_deref(),
                Path::new("curl"),
                &[
                    "-sS",
                    "--fail",
                    "--max-time",
                    "30",
                    "--cacert",
                    &ca,
                    "-b",
                    &jar,
                    &url,
                ],
            ),
            "curl console page",
        );
        assert!(
            out.status.success(),
            "console {path}: {}",
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    fn appliances(&self) -> Vec<Value> {
        self.call("GET", "/api/v1/appliances", None)
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    fn create_job(&self, appliance: &str, targets: &[&str], options: JobOptions) -> String {
        let job = CreateJob {
            appliance_id: appliance.into(),
            kind: ScanKind::Net,
            targets: targets.iter().map(|s| s.to_string()).collect(),
            options,
            every_secs: None,
            timeout_secs: Some(600),
            credentials: None,
        };
        let v = self.call(
            "POST",
            "/api/v1/jobs",
            Some(&serde_json::to_value(&job).unwrap_or_default()),
        );
        v["job"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no job id in {v}"))
            .to_owned()
    }

    fn job(&self, id: &str) -> Value {
        self.call("GET", &format!("/api/v1/jobs/{id}"), None)
    }

    /// Waits until the job is finished and, when done, all its chunks arrived.
    fn wait_job(&self, id: &str, timeout: Duration) -> Value {
        let mut last = Value::Null;
        wait_until(&format!("job {id} to finish"), timeout, || {
            last = self.job(id);
            let state = last["state"].as_str().unwrap_or("");
            match state {
                "done" => {
                    last["chunks_expected"].as_u64().is_some()
                        && last["chunks_received"].as_u64() == last["chunks_expected"].as_u64()
                }
                "failed" | "cancelled" => true,
                _ => false,
            }
        });
        last
    }

    fn findings(&self, scan: &str) -> Vec<Value> {
        self.call("GET", &format!("/api/v1/findings?scan={scan}"), None)
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

impl Drop for Platform {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An appliance: a state directory, a config file, and the daemon when started.
struct Appliance {
    dir: PathBuf,
    ns: Option<String>,
    daemon: Option<Child>,
    env: Vec<(String, String)>,
}

impl Appliance {
    fn new(dir: &Path, ns: Option<&str>, config: &str) -> Appliance {
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.join("picket.toml"), config).unwrap_or_else(|e| panic!("{e}"));
        Appliance {
            dir: dir.to_path_buf(),
            ns: ns.map(str::to_owned),
            daemon: None,
            env: Vec::new(),
        }
    }

    fn state(&self) -> String {
        self.dir.join("state").to_string_lossy().into_owned()
    }

    fn config(&self) -> String {
        self.dir.join("picket.toml").to_string_lossy().into_owned()
    }

    fn picket(&self, args: &[&str]) -> Output {
        let state = self.state();
        let mut full = vec!["--state-dir", state.as_str()];
        full.extend_from_slice(args);
        let mut c = command(self.ns.as_deref(), Path::new(common::picket_bin()), &full);
        for (k, v) in &self.env {
            c.env(k, v);
        }
        output(c, "picket")
    }

    fn enroll(&self, p: &Platform, extra: &[&str]) -> Output {
        let code = p.code();
        let url = p.url();
        let config = self.config();
        let mut args = vec![
            "enroll",
            "--platform",
            url.as_str(),
            "--code",
            code.as_str(),
            "--config",
            config.as_str(),
        ];
        args.extend_from_slice(extra);
        self.picket(&args)
    }

    /// Enrolls with `p` (trusting its CA file), starts the daemon; the appliance's id.
    #[track_caller]
    fn enroll_and_start(&mut self, p: &Platform) -> String {
        let out = self.enroll(p, &["--ca-file", &p.ca.to_string_lossy()]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        self.start();
        appliance_id(p)
    }

    fn start(&mut self) {
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(self.dir.join("daemon.log"))
            .unwrap_or_else(|e| panic!("{e}"));
        let state = self.state();
        let config = self.config();
        let mut c = command(
            self.ns.as_deref(),
            Path::new(common::picket_bin()),
            &["--state-dir", &state, "-v", "daemon", "--config", &config],
        );
        for (k, v) in &self.env {
            c.env(k, v);
        }
        let child = c
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the daemon: {e}"));
        self.daemon = Some(child);
        let sock = self.dir.join("state/daemon.sock");
        wait_until(
            "the daemon's control socket",
            Duration::from_secs(20),
            || sock.exists(),
        );
    }

    fn kill9(&mut self) {
        if let Some(mut c) = self.daemon.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.daemon.take() {
            common::terminate(&mut c);
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("daemon.log")).unwrap_or_default()
    }

    /// Status as JSON (through the daemon when it runs).
    fn status(&self) -> Value {
        let out = self.picket(&["--format", "json", "status"]);
        assert!(out.status.success(), "status: {}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap_or_default()
    }

    /// The findings of a scan in the local history (daemon stopped).
    fn local_findings(&self, scan: &str) -> Vec<Value> {
        let out = self.picket(&["--format", "json", "scans", "show", scan]);
        assert!(out.status.success(), "scans show: {}", text(&out.stderr));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        v["findings"].as_array().cloned().unwrap_or_default()
    }
}

impl Drop for Appliance {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn tuning() -> &'static str {
    "[daemon]\npoll_wait_secs = 5\nheartbeat_secs = 2\nmax_backoff_secs = 2\n"
}

fn appliance_id(p: &Platform) -> String {
    p.appliances()
        .first()
        .and_then(|a| a["id"].as_str())
        .unwrap_or_else(|| panic!("no appliance enrolled"))
        .to_owned()
}

/// TLS listeners on loopback ports, each presenting a self-signed certificate that has expired:
/// every open port yields exactly two findings (expired, self-signed).
struct TlsFarm {
    child: Child,
    pub first: u16,
    pub count: u16,
}

const TLS_FARM: &str = r#"
import asyncio, resource, ssl, sys
cert, key, first, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
async def handle(r, w):
    try:
        await asyncio.wait_for(r.read(1024), 5)
    except Exception:
        pass
    w.close()
async def main():
    servers = [await asyncio.start_server(handle, "127.0.0.1", p, ssl=ctx, ssl_handshake_timeout=5)
               for p in range(first, first + count)]
    print("ready", flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"#;

impl TlsFarm {
    fn start(dir: &Path, ns: Option<&str>, first: u16, count: u16) -> TlsFarm {
        let mut params = rcgen::CertificateParams::new(vec!["farm.test".to_string()])
            .unwrap_or_else(|e| panic!("{e}"));
        params.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(60);
        params.not_after = time::OffsetDateTime::now_utc() - time::Duration::days(30);
        let key = rcgen::KeyPair::generate().unwrap_or_else(|e| panic!("{e}"));
        let cert = params.self_signed(&key).unwrap_or_else(|e| panic!("{e}"));
        let (c, k, s) = (
            dir.join("farm.crt"),
            dir.join("farm.key"),
            dir.join("farm.py"),
        );
        std::fs::write(&c, cert.pem()).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(&k, key.serialize_pem()).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(&s, TLS_FARM).unwrap_or_else(|e| panic!("{e}"));
        let mut child = command(
            ns,
            Path::new("python3"),
            &[
                &s.to_string_lossy(),
                &c.to_string_lossy(),
                &k.to_string_lossy(),
                &first.to_string(),
                &count.to_string(),
            ],
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start the TLS farm: {e}"));
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            use std::io::BufRead;
            let _ = std::io::BufReader::new(out).read_line(&mut line);
        }
        assert_eq!(line.trim(), "ready", "the TLS farm did not start");
        TlsFarm {
            child,
            first,
            count,
        }
    }

    fn ports(&self) -> String {
        format!("{}-{}", self.first, self.first + self.count - 1)
    }
}

impl Drop for TlsFarm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn farm_options(farm: &TlsFarm) -> JobOptions {
    JobOptions {
        ports: Some(farm.ports()),
        ..JobOptions::default()
    }
}

fn ids(findings: &[Value], key: &str) -> Vec<String> {
    let mut v: Vec<String> = findings
        .iter()
        .map(|f| {
            let f = if key.is_empty() { f } else { &f[key] };
            f["id"].as_str().unwrap_or_default().to_owned()
        })
        .collect();
    v.sort();
    v
}

/// A namespace of our own with only loopback up: the daemon, the platform, the proxy and the
/// targets of a test all live on its 127.0.0.1, and nothing can leave it.
struct Netns(String);

impl Netns {
    fn new(tag: &str) -> Netns {
        let name = format!("pkd{}{tag}", std::process::id());
        let st = Command::new("ip").args(["netns", "add", &name]).status();
        assert!(st.is_ok_and(|s| s.success()), "ip netns add {name}");
        let st = Command::new("ip")
            .args(["-n", &name, "link", "set", "lo", "up"])
            .status();
        assert!(st.is_ok_and(|s| s.success()), "lo up in {name}");
        Netns(name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// Tests that run a TLS farm of hundreds of ports take turns: on two cores, two farms and two
/// scans at once starve the Python handshakes and the scanner misses ports.
fn heavy() -> std::sync::MutexGuard<'static, ()> {
    static HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());
    HEAVY
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn skip_netns() -> bool {
    std::env::var("PICKET_SKIP_NETNS").as_deref() == Ok("1")
}

// ---------------------------------------------------------------------------------------------

#[test]
fn enrollment_uses_a_code_once_and_trusts_only_the_right_ca() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let p = Platform::start(&dir.path().join("pf"), None);
    let other = Platform::start(&dir.path().join("other"), None);

    // A CA file of another platform: the TLS handshake fails, nothing is stored.
    let a = Appliance::new(&dir.path().join("a"), None, tuning());
    let out = a.enroll(&p, &["--ca-file", &other.ca.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("certificate"),
        "{}",
        text(&out.stderr)
    );
    // A fingerprint of another CA: refused too.
    let out = a.enroll(&p, &["--ca-fingerprint", &other.fingerprint]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("fingerprint"),
        "{}",
        text(&out.stderr)
    );
    // No trust given: the system roots do not know a private platform CA.
    let out = a.enroll(&p, &[]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert_eq!(a.status()["enrolled"], false);

    // The right fingerprint: enrolled; the CA returned is pinned.
    let code = p.code();
    let out = a.picket(&[
        "enroll",
        "--platform",
        &p.url(),
        "--code",
        &code,
        "--ca-fingerprint",
        &p.fingerprint,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let st = a.status();
    assert_eq!(st["enrolled"], true);
    assert_eq!(st["appliance_id"].as_str(), Some(appliance_id(&p).as_str()));

    // The same code again, from another box: refused (exit 2, the platform's reason).
    let b = Appliance::new(&dir.path().join("b"), None, tuning());
    let out = b.picket(&[
        "enroll",
        "--platform",
        &p.url(),
        "--code",
        &code,
        "--ca-file",
        &p.ca.to_string_lossy(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("code_used"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(b.status()["enrolled"], false);

    // The check passes every step, with the pinned CA and the client certificate.
    let out = a.picket(&["status", "--check"]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    for step in ["dns", "tcp", "proxy", "tls", "api"] {
        assert!(text(&out.stdout).contains(step), "{}", text(&out.stdout));
    }
}

#[test]
fn a_job_scans_the_test_network_and_its_results_reach_the_platform_exactly() {
    let Some(net) = common::testnet() else { return };
    let _g = common::exclusive();
    let ns = net.truth.scanner_ns.clone();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let p = Platform::start(&dir.path().join("pf"), Some(&ns));
    let config = format!(
        "[scan]\nscope = [\"198.18.0.0/15\"]\nmax_concurrent_jobs = 2\n{}",
        tuning()
    );
    let mut a = Appliance::new(&dir.path().join("a"), Some(&ns), &config);
    let app = a.enroll_and_start(&p);

    let subnet = net.truth.subnet.clone();
    let job = p.create_job(&app, &[&subnet], JobOptions::default());
    let outside = p.create_job(&app, &["198.18.0.1", "10.0.0.1"], JobOptions::default());
    let view = p.wait_job(&job, Duration::from_secs(300));
    assert_eq!(view["state"], "done", "{view}");
    let refused = p.wait_job(&outside, Duration::from_secs(60));
    assert_eq!(refused["state"], "failed", "{refused}");
    assert!(
        refused["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("out of scope") && r.contains("10.0.0.1")),
        "{refused}"
    );
    let scan = view["scan_id"].as_str().unwrap_or_default().to_owned();
    let remote = p.findings(&scan);
    a.stop();
    let local = a.local_findings(&scan);
    // The IPv4 subnet's TLS services are self-signed: one finding each, and nothing else.
    let tls_services = net
        .truth
        .subnet_hosts()
        .into_iter()
        .flat_map(|h| &h.services)
        .filter(|s| s.tls)
        .count();
    assert!(tls_services > 0);
    assert_eq!(local.len(), tls_services, "local report findings");
    assert_eq!(
        ids(&remote, "finding"),
        ids(&local, ""),
        "platform == local report"
    );
    assert_eq!(view["findings"].as_u64(), Some(local.len() as u64));
    // And an operator sees them on the console page: one row per finding, each asset listed.
    let page = p.console_page(&format!("/console/findings?scan={scan}"));
    assert!(
        page.contains(&format!("<p>{} findings shown", local.len())),
        "{page}"
    );
    for f in &remote {
        let a = &f["finding"]["asset"];
        let asset = format!(
            "{}:{}/tcp",
            a["address"].as_str().unwrap_or_default(),
            a["port"].as_u64().unwrap_or_default()
        );
        assert!(page.contains(&asset), "{asset} not on the console page");
    }
}

/// tinyproxy on loopback with Basic auth; `port`: where it listens.
struct Proxy {
    child: Child,
    log: PathBuf,
}

impl Proxy {
    fn start(dir: &Path, ns: Option<&str>, port: u16, user: &str, pass: &str) -> Proxy {
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{e}"));
        let log = dir.join("tinyproxy.log");
        let conf = dir.join("tinyproxy.conf");
        std::fs::write(
            &conf,
            format!(
                "Port {port}\nListen 127.0.0.1\nTimeout 120\nLogFile \"{}\"\nLogLevel Info\n\
                 MaxClients 20\nAllow 127.0.0.1\nBasicAuth {user} {pass}\n",
                log.display()
            ),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let child = command(
            ns,
            Path::new("tinyproxy"),
            &["-d", "-c", &conf.to_string_lossy()],
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start tinyproxy: {e}"));
        let nsname = ns.map(str::to_owned);
        wait_until(
            "tinyproxy to listen",
            Duration::from_secs(10),
            || match &nsname {
                Some(n) => common::listening(n, "tcp", port),
                None => std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
            },
        );
        Proxy { child, log }
    }

    fn connects(&self) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .matches("CONNECT")
            .count()
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop();
    }
}

#[test]
fn everything_works_through_a_proxy_with_basic_auth_and_the_check_names_a_dead_proxy() {
    if skip_netns() {
        return;
    }
    let ns = Netns::new("px");
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let p = Platform::start(&dir.path().join("pf"), Some(&ns.0));
    let mut proxy = Proxy::start(
        &dir.path().join("proxy"),
        Some(&ns.0),
        3128,
        "picket",
        "s3cret-pw",
    );
    let farm = TlsFarm::start(dir.path(), Some(&ns.0), 20000, 3);
    let config = format!(
        "[scan]\nscope = [\"127.0.0.0/8\"]\n[proxy]\nurl = \"http://127.0.0.1:3128\"\nusername = \"picket\"\npassword_env = \"PICKET_TEST_PROXY_PW\"\n{}",
        tuning()
    );
    let mut a = Appliance::new(&dir.path().join("a"), Some(&ns.0), &config);
    a.env
        .push(("PICKET_TEST_PROXY_PW".into(), "s3cret-pw".into()));

    let out = a.enroll(&p, &["--ca-file", &p.ca.to_string_lossy()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        proxy.connects() >= 1,
        "the enrollment did not go through the proxy"
    );
    a.start();
    let app = appliance_id(&p);
    let job = p.create_job(&app, &["127.0.0.1"], farm_options(&farm));
    let view = p.wait_job(&job, Duration::from_secs(180));
    assert_eq!(view["state"], "done", "{view}\n{}", a.log());
    assert_eq!(
        view["findings"].as_u64(),
        Some(2 * u64::from(farm.count)),
        "{view}"
    );

    let out = a.picket(&["status", "--check"]);
    assert!(out.status.success(), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("CONNECT 127.0.0.1"),
        "{}",
        text(&out.stdout)
    );
    let through = proxy.connects();
    assert!(through >= 3, "only {through} CONNECTs in the proxy log");

    // A wrong password is named at the proxy step.
    let wrong_config = format!(
        "{config}[platform]\nurl = \"{}\"\nca_file = \"{}\"\n",
        p.url(),
        p.ca.display()
    );
    let mut wrong = Appliance::new(&dir.path().join("w"), Some(&ns.0), &wrong_config);
    wrong
        .env
        .push(("PICKET_TEST_PROXY_PW".into(), "wrong".into()));
    let out = wrong.picket(&["status", "--config", &wrong.config(), "--check"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stdout));
    drop(wrong);

    // The proxy stopped: the check (through the running daemon) names the proxy step, exit 3.
    proxy.stop();
    let out = a.picket(&["status", "--check"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("failed at step: proxy"),
        "{}",
        text(&out.stdout)
    );
    a.stop();
    drop(p);
}

/// Checks a finished job on the platform: done, all chunks, and its findings; returns the scan id
/// and the sorted finding ids the platform holds (compared with the local report later).
fn finished(p: &Platform, job: &str, a: &Appliance) -> (String, Vec<String>) {
    let view = p.wait_job(job, Duration::from_secs(300));
    assert_eq!(view["state"], "done", "{view}\n{}", a.log());
    let scan = view["scan_id"].as_str().unwrap_or_default().to_owned();
    let remote = ids(&p.findings(&scan), "finding");
    assert_eq!(
        view["findings"].as_u64(),
        Some(remote.len() as u64),
        "{view}"
    );
    let chunks = remote.len().div_ceil(500).max(1) as u64;
    assert_eq!(view["chunks_expected"].as_u64(), Some(chunks), "{view}");
    let mut dedup = remote.clone();
    dedup.dedup();
    assert_eq!(
        dedup.len(),
        remote.len(),
        "duplicate findings on the platform"
    );
    (scan, remote)
}

#[test]
fn results_survive_daemon_and_platform_kills_exactly_once() {
    if skip_netns() {
        return;
    }
    let _heavy = heavy();
    let ns = Netns::new("fk");
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut p = Platform::start(&dir.path().join("pf"), Some(&ns.0));
    // 1,300 TLS ports, two findings each: about 2,600 findings, 6 chunks of at most 500. (The
    // scanner may miss a few handshakes of the Python farm under load; what is checked exactly is
    // that the platform holds what the scan found, each finding once.)
    let farm = TlsFarm::start(dir.path(), Some(&ns.0), 21000, 1300);
    let config = format!("[scan]\nscope = [\"127.0.0.0/8\"]\n{}", tuning());
    let mut a = Appliance::new(&dir.path().join("a"), Some(&ns.0), &config);
    let app = a.enroll_and_start(&p);
    let mut runs = Vec::new();

    // 1. The daemon SIGKILLed mid-scan: the run is re-run after the restart.
    let job = p.create_job(&app, &["127.0.0.1"], farm_options(&farm));
    wait_until("the scan to start", Duration::from_secs(60), || {
        p.job(&job)["state"] == "running"
    });
    std::thread::sleep(Duration::from_millis(500));
    a.kill9();
    a.start();
    runs.push(finished(&p, &job, &a));
    assert!(a
        .log()
        .contains("re-running the run interrupted by a restart"));

    // 2. The platform down while the scan ends (results wait in the outbox), then the daemon
    //    SIGKILLed with a full outbox, then both back: every chunk once.
    let job2 = p.create_job(&app, &["127.0.0.1"], farm_options(&farm));
    wait_until("the second scan to start", Duration::from_secs(60), || {
        p.job(&job2)["state"] == "running"
    });
    p.kill();
    wait_until(
        "the results in the outbox",
        Duration::from_secs(300),
        || a.status()["outbox_chunks"].as_u64().unwrap_or(0) >= 5,
    );
    a.kill9();
    p.restart();
    a.start();
    runs.push(finished(&p, &job2, &a));

    // From here on the platform's port takes at most 400 kB/s (MTU 1500, excess dropped), so
    // uploading the six chunks takes seconds and a kill lands between two of them.
    let port = p.addr.rsplit(':').next().unwrap_or_default().to_owned();
    let rules = dir.path().join("slow.nft");
    std::fs::write(
        &rules,
        format!(
            "table inet picket_slow {{\n  chain input {{\n    type filter hook input priority 0; policy accept;\n    tcp dport {port} limit rate over 400 kbytes/second drop\n  }}\n}}\n"
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    for args in [
        vec!["ip", "-n", &ns.0, "link", "set", "lo", "mtu", "1500"],
        vec![
            "ip",
            "netns",
            "exec",
            &ns.0,
            "nft",
            "-f",
            &rules.to_string_lossy(),
        ],
    ] {
        let st = Command::new(args[0]).args(&args[1..]).status();
        assert!(st.is_ok_and(|s| s.success()), "{args:?}");
    }
    let partly = |p: &Platform, job: &str| {
        let v = p.job(job);
        let got = v["chunks_received"].as_u64().unwrap_or(0);
        got >= 1 && v["chunks_expected"].as_u64().is_none_or(|e| got < e)
    };

    // 3. The platform SIGKILLed mid-upload (some chunks stored, not all), restarted.
    let job3 = p.create_job(&app, &["127.0.0.1"], farm_options(&farm));
    wait_until(
        "the third upload under way",
        Duration::from_secs(300),
        || partly(&p, &job3),
    );
    p.restart();
    runs.push(finished(&p, &job3, &a));

    // 4. The daemon SIGKILLed mid-upload, restarted: the rest is sent, nothing twice.
    let job4 = p.create_job(&app, &["127.0.0.1"], farm_options(&farm));
    wait_until(
        "the fourth upload under way",
        Duration::from_secs(300),
        || partly(&p, &job4),
    );
    a.kill9();
    a.start();
    runs.push(finished(&p, &job4, &a));
    let st = a.status();
    assert_eq!(st["outbox_chunks"].as_u64(), Some(0), "{st}");
    assert_eq!(st["dropped_chunks"].as_u64(), Some(0), "{st}");
    a.stop();
    // The platform holds exactly the findings of each run's report in the local history.
    assert_eq!(runs.len(), 4);
    for (scan, remote) in &runs {
        let local = ids(&a.local_findings(scan), "");
        assert!(local.len() > 1000, "{scan}: only {} findings", local.len());
        assert_eq!(&local, remote, "{scan}: platform != local report");
    }
}

#[test]
fn a_full_disk_fails_the_job_with_a_reason_and_loses_nothing_stored() {
    if skip_netns() {
        return;
    }
    let _heavy = heavy();
    let ns = Netns::new("df");
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let p = Platform::start(&dir.path().join("pf"), Some(&ns.0));
    let farm = TlsFarm::start(dir.path(), Some(&ns.0), 23000, 300);
    let adir = dir.path().join("a");
    std::fs::create_dir_all(&adir).unwrap_or_else(|e| panic!("{e}"));
    // The appliance's state on a small tmpfs of its own.
    let mnt = adir.join("state");
    std::fs::create_dir_all(&mnt).unwrap_or_else(|e| panic!("{e}"));
    let st = Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            "size=24m",
            "tmpfs",
            &mnt.to_string_lossy(),
        ])
        .status();
    assert!(st.is_ok_and(|s| s.success()), "mount tmpfs");
    struct Umount(PathBuf);
    impl Drop for Umount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _umount = Umount(mnt.clone());
    let config = format!("[scan]\nscope = [\"127.0.0.0/8\"]\n{}", tuning());
    let mut a = Appliance::new(&adir, Some(&ns.0), &config);
    let app = a.enroll_and_start(&p);
    let ok = p.create_job(&app, &["127.0.0.1"], farm_options(&farm));
    let (_, first_findings) = finished(&p, &ok, &a);
    assert!(!first_findings.is_empty());

    // Fill the file system, leaving a little: the next run's results cannot be stored.
    let filler = mnt.join("filler");
    let _ = Command::new("dd")
        .args([
            "if=/dev/zero",
            &format!("of={}", filler.display()),
            "bs=64k",
        ])
        .stderr(Stdio::null())
        .status();
    let full = p.create_job(&app, &["127.0.0.1"], farm_options(&farm));
    let v = p.wait_job(&full, Duration::from_secs(180));
    assert_eq!(v["state"], "failed", "{v}\n{}", a.log());
    assert!(
        v["reason"].as_str().is_some_and(|r| r.contains("store")),
        "{v}"
    );
    // The daemon is still there, and after space comes back the next job is whole.
    let _ = std::fs::remove_file(&filler);
    let again = p.create_job(&app, &["127.0.0.1"], farm_options(&farm));
    let (scan, remote) = finished(&p, &again, &a);
    let first = p.job(&ok);
    assert_eq!(
        first["findings"].as_u64(),
        Some(first_findings.len() as u64)
    );
    a.stop();
    assert_eq!(ids(&a.local_findings(&scan), ""), remote);
}

impl Platform {
    fn command(&self, appliance: &str, kind: Value) -> String {
        let v = self.call(
            "POST",
            &format!("/api/v1/appliances/{appliance}/commands"),
            Some(&serde_json::json!({ "kind": kind })),
        );
        v["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no command id in {v}"))
            .to_owned()
    }

    /// Waits for the appliance's answer to a command.
    fn command_result(&self, appliance: &str, id: &str) -> Value {
        let mut found = Value::Null;
        wait_until(
            &format!("the answer to command {id}"),
            Duration::from_secs(60),
            || {
                let list = self.call(
                    "GET",
                    &format!("/api/v1/appliances/{appliance}/commands"),
                    None,
                );
                found = list
                    .as_array()
                    .and_then(|l| l.iter().find(|c| c["command"]["id"] == id).cloned())
                    .unwrap_or(Value::Null);
                !found["result"].is_null()
            },
        );
        found["result"].clone()
    }
}

#[test]
fn remote_commands_are_answered() {
    if skip_netns() {
        return;
    }
    let _heavy = heavy();
    let ns = Netns::new("cm");
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let p = Platform::start(&dir.path().join("pf"), Some(&ns.0));
    let farm = TlsFarm::start(dir.path(), Some(&ns.0), 24000, 1300);
    let config = format!(
        "[scan]\nscope = [\"127.0.0.0/8\"]\n[metrics]\nlisten = \"127.0.0.1:19187\"\n{}",
        tuning()
    );
    let mut a = Appliance::new(&dir.path().join("a"), Some(&ns.0), &config);
    let app = a.enroll_and_start(&p);

    // Cancel a running scan.
    let job = p.create_job(&app, &["127.0.0.1"], farm_options(&farm));
    wait_until("the scan to start", Duration::from_secs(60), || {
        p.job(&job)["state"] == "running"
    });
    let c = p.command(
        &app,
        serde_json::json!({"type": "cancel_job", "job_id": job}),
    );
    assert_eq!(p.command_result(&app, &c)["ok"], true);
    let v = p.wait_job(&job, Duration::from_secs(60));
    assert_eq!(v["state"], "cancelled", "{v}");

    // A configuration fragment: managed keys applied, others refused with their name.
    let c = p.command(
        &app,
        serde_json::json!({"type": "update_config", "toml": "[scan]\nmax_concurrent_jobs = 3\n"}),
    );
    assert_eq!(p.command_result(&app, &c)["ok"], true);
    let c = p.command(
        &app,
        serde_json::json!({"type": "update_config", "toml": "[proxy]\nurl = \"http://evil:3128\"\n"}),
    );
    let r = p.command_result(&app, &c);
    assert_eq!(r["ok"], false, "{r}");
    assert!(
        r["message"].as_str().is_some_and(|m| m.contains("proxy")),
        "{r}"
    );

    // Diagnostics: bounded text with the version and the effective config.
    let c = p.command(&app, serde_json::json!({"type": "collect_diagnostics"}));
    let r = p.command_result(&app, &c);
    let out = r["output"].as_str().unwrap_or_default();
    assert!(
        out.contains("picket 0.") && out.contains("max_concurrent_jobs = 3"),
        "{r}"
    );
    assert!(out.len() <= 1024 * 1024);

    // Certificate rotation: a new certificate, and the link keeps working with it.
    let c = p.command(&app, serde_json::json!({"type": "rotate_certificate"}));
    assert_eq!(p.command_result(&app, &c)["ok"], true, "{}", a.log());
    let out = a.picket(&["status", "--check"]);
    assert!(out.status.success(), "{}", text(&out.stdout));
    assert!(a.log().contains("certificate renewed"), "{}", a.log());

    // Honest refusals.
    let c = p.command(&app, serde_json::json!({"type": "update_now"}));
    let r = p.command_result(&app, &c);
    assert_eq!(r["ok"], false);
    assert!(
        r["message"]
            .as_str()
            .is_some_and(|m| m.contains("no updater")),
        "{r}"
    );
    let c = p.command(&app, serde_json::json!({"type": "reboot"}));
    let r = p.command_result(&app, &c);
    assert_eq!(r["ok"], false);
    assert!(
        r["message"]
            .as_str()
            .is_some_and(|m| m.contains("not supported")),
        "{r}"
    );

    // The metrics on loopback.
    let m = output(
        command(
            Some(&ns.0),
            Path::new("curl"),
            &["-sS", "http://127.0.0.1:19187/metrics"],
        ),
        "curl metrics",
    );
    let m = text(&m.stdout);
    assert!(m.contains("\npicket_enrolled 1\n"), "{m}");
    assert!(
        m.contains("\npicket_jobs_failed_total 1\n"),
        "the cancelled run: {m}"
    );
    assert!(m.contains("picket_last_contact_timestamp_seconds 1"), "{m}");

    // A job after all that still runs and lands whole.
    let job = p.create_job(
        &app,
        &["127.0.0.1"],
        JobOptions {
            ports: Some("24000-24009".into()),
            ..JobOptions::default()
        },
    );
    let (_, remote) = finished(&p, &job, &a);
    assert!(!remote.is_empty());
    a.stop();
}

#[test]
fn a_link_cut_for_a_minute_loses_and_duplicates_nothing() {
    if skip_netns() {
        return;
    }
    let _heavy = heavy();
    let cut_secs: u64 = std::env::var("PICKET_LINKCUT_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    // Two namespaces joined by a veth pair on 198.18.200.0/30: the platform's and the appliance's.
    let pns = Netns::new("lp");
    let ans = Netns::new("la");
    let (pv, av) = (
        format!("pkp{}", std::process::id()),
        format!("pka{}", std::process::id()),
    );
    let ip = |args: &[&str]| {
        let st = Command::new("ip").args(args).status();
        assert!(st.is_ok_and(|s| s.success()), "ip {args:?}");
    };
    ip(&[
        "link", "add", &pv, "netns", &pns.0, "type", "veth", "peer", "name", &av, "netns", &ans.0,
    ]);
    ip(&["-n", &pns.0, "addr", "add", "198.18.200.1/30", "dev", &pv]);
    ip(&["-n", &ans.0, "addr", "add", "198.18.200.2/30", "dev", &av]);
    ip(&["-n", &pns.0, "link", "set", &pv, "up"]);
    ip(&["-n", &ans.0, "link", "set", &av, "up"]);
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let p = Platform::start_on(
        &dir.path().join("pf"),
        Some(&pns.0),
        "198.18.200.1:8443",
        Some("server_names = [\"198.18.200.1\"]\n"),
    );
    let farm = TlsFarm::start(dir.path(), Some(&ans.0), 25000, 1000);
    let config = format!("[scan]\nscope = [\"127.0.0.0/8\"]\n{}", tuning());
    let mut a = Appliance::new(&dir.path().join("a"), Some(&ans.0), &config);
    let app = a.enroll_and_start(&p);
    let job = p.create_job(&app, &["127.0.0.1"], farm_options(&farm));
    wait_until("the scan to start", Duration::from_secs(60), || {
        p.job(&job)["state"] == "running"
    });
    // The link goes down while the scan runs, for a minute; the results wait in the outbox.
    ip(&["-n", &ans.0, "link", "set", &av, "down"]);
    let cut = Instant::now();
    wait_until(
        "the results in the outbox",
        Duration::from_secs(300),
        || a.status()["outbox_chunks"].as_u64().unwrap_or(0) >= 1,
    );
    let during = a.status();
    assert_eq!(
        during["running_jobs"].as_array().map(Vec::len),
        Some(0),
        "{during}"
    );
    let left = Duration::from_secs(cut_secs).saturating_sub(cut.elapsed());
    std::thread::sleep(left);
    assert!(p.job(&job)["chunks_received"].as_u64() == Some(0));
    ip(&["-n", &ans.0, "link", "set", &av, "up"]);
    let (scan, remote) = finished(&p, &job, &a);
    let st = a.status();
    assert_eq!(st["outbox_chunks"].as_u64(), Some(0), "{st}");
    assert_eq!(st["dropped_chunks"].as_u64(), Some(0), "{st}");
    a.stop();
    assert_eq!(ids(&a.local_findings(&scan), ""), remote);
    assert!(remote.len() > 1000, "{}", remote.len());
}

#[test]
fn a_host_job_with_sealed_credentials_inventories_the_lab_exactly() {
    let Some(net) = common::testnet() else { return };
    let _g = common::exclusive();
    let ns = net.truth.scanner_ns.clone();
    // The lab (netscan/testnet/sshlab.sh), as the host-scan tests use it.
    let info = Command::new(net.script.with_file_name("sshlab.sh"))
        .arg("info")
        .arg(&net.state_dir)
        .output()
        .unwrap_or_else(|e| panic!("sshlab.sh info: {e}"));
    assert!(info.status.success(), "{}", text(&info.stderr));
    let lab: Value = serde_json::from_slice(&info.stdout).unwrap_or_default();
    let deb = lab["hosts"]["deb"]["address"]
        .as_str()
        .unwrap_or_else(|| panic!("no deb host in {lab}"))
        .to_owned();
    let key_path = lab["client_keys"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|k| k["type"].as_str().is_some_and(|t| t.contains("ed25519")))
        .and_then(|k| k["path"].as_str())
        .unwrap_or_else(|| panic!("no ed25519 client key in {lab}"))
        .to_owned();
    let private_key = std::fs::read_to_string(&key_path).unwrap_or_else(|e| panic!("{e}"));

    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    // The knowledge base: advisories around this machine's installed versions (kb's corpus).
    let list = dir.path().join("dpkg.txt");
    let out = output(
        {
            let mut c = Command::new("dpkg-query");
            c.args([
                "-W",
                "-f",
                "${Package}\t${Version}\t${Architecture}\t${source:Package}\t${source:Version}\t${db:Status-Abbrev}\n",
            ]);
            c
        },
        "dpkg-query",
    );
    std::fs::write(&list, &out.stdout).unwrap_or_else(|e| panic!("{e}"));
    let gen = Path::new(env!("CARGO_MANIFEST_DIR")).join("../kb/testdata/host-corpus/gen.py");
    let corpus = dir.path().join("corpus");
    let g = output(
        {
            let mut c = Command::new("/usr/bin/python3");
            c.arg(&gen).arg(&list).arg(&corpus);
            c
        },
        "gen.py",
    );
    assert!(g.status.success(), "{}", text(&g.stderr));
    let expected: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(corpus.join("expected.json")).unwrap_or_default(),
    )
    .unwrap_or_else(|e| panic!("expected.json: {e}"));

    let p = Platform::start(&dir.path().join("pf"), Some(&ns));
    let config = format!("[scan]\nscope = [\"198.18.0.0/15\"]\n{}", tuning());
    let mut a = Appliance::new(&dir.path().join("a"), Some(&ns), &config);
    let corpus_adv = corpus.join("advisories");
    let imp = a.picket(&["-q", "kb", "import", &corpus_adv.to_string_lossy()]);
    assert!(imp.status.success(), "{}", text(&imp.stderr));
    let app = a.enroll_and_start(&p);

    let job = serde_json::json!({
        "appliance_id": app,
        "kind": "host",
        "targets": [format!("ssh://root@{deb}")],
        "options": serde_json::to_value(JobOptions::default()).unwrap_or_default(),
        "every_secs": null,
        "timeout_secs": 600,
        "credentials": { "password": null, "private_key": private_key, "passphrase": null, "host_key": null },
    });
    let v = p.call("POST", "/api/v1/jobs", Some(&job));
    let id = v["job"]["id"].as_str().unwrap_or_default().to_owned();
    // The platform keeps only the sealed form.
    assert!(!v.to_string().contains("PRIVATE KEY"), "{v}");
    let (scan, remote) = finished(&p, &id, &a);
    a.stop();
    let local = a.local_findings(&scan);
    assert_eq!(ids(&local, ""), remote, "platform == local report");
    let advisory_findings = local.iter().filter(|f| f["advisory"].is_string()).count();
    assert_eq!(
        advisory_findings,
        expected.len(),
        "findings the corpus decides"
    );
    // The job's key file is gone.
    let tmp = a.dir.join("state/tmp");
    assert!(
        std::fs::read_dir(&tmp).map_or(true, |d| d.count() == 0),
        "a job key file was left in {}",
        tmp.display()
    );
}

#[test]
fn the_outbox_quota_drops_oldest_first_and_the_platform_is_told_how_much() {
    if skip_netns() {
        return;
    }
    let _heavy = heavy();
    let ns = Netns::new("qt");
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut p = Platform::start(&dir.path().join("pf"), Some(&ns.0));
    let farm = TlsFarm::start(dir.path(), Some(&ns.0), 26000, 1300);
    // Room for about one scan's results: a second scan while offline pushes the first out.
    let config = format!(
        "[scan]\nscope = [\"127.0.0.0/8\"]\n[outbox]\nquota_bytes = 400000\n{}",
        tuning()
    );
    let mut a = Appliance::new(&dir.path().join("a"), Some(&ns.0), &config);
    let app = a.enroll_and_start(&p);
    let jobs: Vec<String> = (0..2)
        .map(|_| p.create_job(&app, &["127.0.0.1"], farm_options(&farm)))
        .collect();
    wait_until("both jobs accepted", Duration::from_secs(60), || {
        jobs.iter().all(|j| p.job(j)["state"] != "pending")
    });
    p.kill();
    wait_until(
        "both runs finished offline",
        Duration::from_secs(300),
        || {
            let st = a.status();
            st["running_jobs"].as_array().is_some_and(Vec::is_empty)
                && st["jobs"]
                    .as_array()
                    .is_some_and(|js| js.iter().filter(|j| j["state"] == "done").count() == 2)
        },
    );
    let offline = a.status();
    let dropped = offline["dropped_findings"].as_u64().unwrap_or(0);
    assert!(
        offline["dropped_chunks"].as_u64().unwrap_or(0) > 0,
        "{offline}"
    );
    p.restart();
    wait_until(
        "the heartbeat with the drops",
        Duration::from_secs(60),
        || {
            p.appliances()
                .first()
                .is_some_and(|a| a["last_heartbeat"]["dropped_findings"].as_u64() == Some(dropped))
        },
    );
    wait_until("the outbox drained", Duration::from_secs(120), || {
        a.status()["outbox_chunks"].as_u64() == Some(0)
    });
    let scans: Vec<String> = offline["jobs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|j| j["scan_id"].as_str().map(str::to_owned))
        .collect();
    let received: usize = scans.iter().map(|s| p.findings(s).len()).sum();
    a.stop();
    let produced: usize = scans.iter().map(|s| a.local_findings(s).len()).sum();
    // Every finding either reached the platform or was counted as dropped; none twice.
    assert_eq!(received as u64 + dropped, produced as u64);
    assert!(received > 0 && dropped > 0);
}

#[test]
fn certificates_are_renewed_before_they_expire() {
    if skip_netns() {
        return;
    }
    let ns = Netns::new("rn");
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    // Certificates valid 30 s: renewed at 20 s, again at ~40 s.
    let p = Platform::start_on(
        &dir.path().join("pf"),
        Some(&ns.0),
        "127.0.0.1:0",
        Some("cert_validity_secs = 30\n"),
    );
    let config = format!("[scan]\nscope = [\"127.0.0.0/8\"]\n{}", tuning());
    let mut a = Appliance::new(&dir.path().join("a"), Some(&ns.0), &config);
    let out = a.enroll(&p, &["--ca-file", &p.ca.to_string_lossy()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let first = a.status()["certificate_not_after"].clone();
    a.start();
    // Past the first certificate's expiry, the link still works.
    std::thread::sleep(Duration::from_secs(45));
    let out = a.picket(&["status", "--check"]);
    assert!(out.status.success(), "{}\n{}", text(&out.stdout), a.log());
    assert!(
        a.log().matches("certificate renewed").count() >= 2,
        "{}",
        a.log()
    );
    assert_ne!(a.status()["certificate_not_after"], first);
    a.stop();
}

#[test]
fn a_web_job_logs_in_with_its_sealed_password_and_lands_whole() {
    if skip_netns() {
        return;
    }
    let ns = Netns::new("wb");
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let p = Platform::start(&dir.path().join("pf"), Some(&ns.0));
    let app_py = Path::new(env!("CARGO_MANIFEST_DIR")).join("../webscan/testapp/vulnapp.py");
    let mut vuln = command(
        Some(&ns.0),
        Path::new("/usr/bin/python3"),
        &[
            &app_py.to_string_lossy(),
            "--port",
            "0",
            "--admin-port",
            "0",
        ],
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap_or_else(|e| panic!("vulnapp: {e}"));
    let mut line = String::new();
    if let Some(out) = vuln.stdout.take() {
        use std::io::BufRead;
        let _ = std::io::BufReader::new(out).read_line(&mut line);
    }
    let parts: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(parts.first(), Some(&"READY"), "vulnapp said {line:?}");
    let (port, admin) = (parts[1].to_owned(), parts[2].to_owned());
    struct KillOnDrop(Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _vuln = KillOnDrop(vuln);

    let config = format!("[scan]\nscope = [\"127.0.0.0/8\"]\n{}", tuning());
    let mut a = Appliance::new(&dir.path().join("a"), Some(&ns.0), &config);
    let app = a.enroll_and_start(&p);
    let base = format!("http://127.0.0.1:{port}/");
    let job = serde_json::json!({
        "appliance_id": app,
        "kind": "web",
        "targets": [base],
        "options": {
            "ports": null, "udp_ports": null, "exclude": [], "no_service": false, "sudo": false,
            "max_rps": null, "max_requests": 3000,
            "login_url": format!("http://127.0.0.1:{port}/login"), "username": "alice",
        },
        "every_secs": null,
        "timeout_secs": 600,
        "credentials": { "password": "wonderland", "private_key": null, "passphrase": null, "host_key": null },
    });
    let v = p.call("POST", "/api/v1/jobs", Some(&job));
    assert!(!v.to_string().contains("wonderland"), "{v}");
    let id = v["job"]["id"].as_str().unwrap_or_default().to_owned();
    let (scan, remote) = finished(&p, &id, &a);
    assert!(!remote.is_empty());
    // What the app counted (logins, requests), from its admin port.
    let app_stats = || -> Value {
        let out = output(
            command(
                Some(&ns.0),
                Path::new("curl"),
                &["-sS", &format!("http://127.0.0.1:{admin}/stats")],
            ),
            "curl stats",
        );
        serde_json::from_slice(&out.stdout).unwrap_or_default()
    };
    // The app saw a successful login: the sealed password was opened on the appliance.
    let stats = app_stats();
    assert!(stats["logins"].as_u64().unwrap_or(0) >= 1, "{stats}");

    // A cancelled web job stops sending requests at once (the scanner runs on a thread of its
    // own; dropping the job must stop it there too, not at the job's timeout).
    let requests = || app_stats()["requests"].as_u64().unwrap_or(0);
    let slow = serde_json::json!({
        "appliance_id": app,
        "kind": "web",
        "targets": [base],
        "options": {
            "ports": null, "udp_ports": null, "exclude": [], "no_service": false, "sudo": false,
            "max_rps": 5, "max_requests": 3000,
        },
        "every_secs": null,
        "timeout_secs": 600,
        "credentials": null,
    });
    let v = p.call("POST", "/api/v1/jobs", Some(&slow));
    let slow_id = v["job"]["id"].as_str().unwrap_or_default().to_owned();
    let before = requests();
    wait_until(
        "the slow web scan to send requests",
        Duration::from_secs(60),
        || requests() >= before + 10,
    );
    let c = p.command(
        &app,
        serde_json::json!({"type": "cancel_job", "job_id": slow_id}),
    );
    assert_eq!(p.command_result(&app, &c)["ok"], true);
    let v = p.wait_job(&slow_id, Duration::from_secs(60));
    assert_eq!(v["state"], "cancelled", "{v}");
    let at_cancel = requests();
    std::thread::sleep(Duration::from_secs(3));
    let later = requests();
    // At 5 requests/s a scan left running would send ~15 more in these 3 s.
    assert!(
        later <= at_cancel + 2,
        "the cancelled web scan went on: {at_cancel} requests at the cancel, {later} 3 s later"
    );

    a.stop();
    assert_eq!(ids(&a.local_findings(&scan), ""), remote);
}

#[test]
fn a_scheduled_job_repeats_until_cancelled() {
    if skip_netns() {
        return;
    }
    let ns = Netns::new("sc");
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let p = Platform::start(&dir.path().join("pf"), Some(&ns.0));
    let farm = TlsFarm::start(dir.path(), Some(&ns.0), 27000, 3);
    let config = format!("[scan]\nscope = [\"127.0.0.0/8\"]\n{}", tuning());
    let mut a = Appliance::new(&dir.path().join("a"), Some(&ns.0), &config);
    let app = a.enroll_and_start(&p);
    let job = CreateJob {
        appliance_id: app.clone(),
        kind: ScanKind::Net,
        targets: vec!["127.0.0.1".into()],
        options: farm_options(&farm),
        every_secs: Some(2),
        timeout_secs: Some(120),
        credentials: None,
    };
    let v = p.call(
        "POST",
        "/api/v1/jobs",
        Some(&serde_json::to_value(&job).unwrap_or_default()),
    );
    let id = v["job"]["id"].as_str().unwrap_or_default().to_owned();
    let mut scans = std::collections::BTreeSet::new();
    wait_until("three runs", Duration::from_secs(120), || {
        if let Some(s) = p.job(&id)["scan_id"].as_str() {
            scans.insert(s.to_owned());
        }
        scans.len() >= 3
    });
    let c = p.command(
        &app,
        serde_json::json!({"type": "cancel_job", "job_id": id}),
    );
    assert_eq!(p.command_result(&app, &c)["ok"], true);
    wait_until("the cancellation", Duration::from_secs(60), || {
        p.job(&id)["state"] == "cancelled"
    });
    let after = a.status();
    std::thread::sleep(Duration::from_secs(5));
    let line = |st: &Value| {
        st["jobs"]
            .as_array()
            .and_then(|js| js.iter().find(|j| j["id"] == id.as_str()).cloned())
            .unwrap_or_default()
    };
    assert_eq!(
        line(&a.status())["scan_id"],
        line(&after)["scan_id"],
        "ran after cancel"
    );
    assert_eq!(line(&after)["state"], "cancelled");
    a.stop();
    // Every finished run is on the platform exactly as in the local history (a run seen while
    // running may have been the one cancelled).
    let out = a.picket(&["--format", "json", "scans", "list"]);
    let list: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let finished: Vec<String> = list["scans"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["id"].as_str().map(str::to_owned))
        .collect();
    assert!(finished.len() >= 2, "{list}");
    for s in &finished {
        let local = a.local_findings(s);
        assert_eq!(local.len(), 6, "{s}");
        assert_eq!(ids(&p.findings(s), "finding"), ids(&local, ""), "{s}");
    }
}

#[test]
fn a_run_stopped_with_the_daemon_runs_again_at_the_next_start() {
    if skip_netns() {
        return;
    }
    let _heavy = heavy();
    let ns = Netns::new("st");
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let p = Platform::start(&dir.path().join("pf"), Some(&ns.0));
    let farm = TlsFarm::start(dir.path(), Some(&ns.0), 28000, 1300);
    let config = format!("[scan]\nscope = [\"127.0.0.0/8\"]\n{}", tuning());
    let mut a = Appliance::new(&dir.path().join("a"), Some(&ns.0), &config);
    let app = a.enroll_and_start(&p);
    let job = p.create_job(&app, &["127.0.0.1"], farm_options(&farm));
    wait_until("the scan to start", Duration::from_secs(60), || {
        p.job(&job)["state"] == "running"
    });
    let t = Instant::now();
    a.stop();
    assert!(
        t.elapsed() < Duration::from_secs(15),
        "SIGTERM took {:?}",
        t.elapsed()
    );
    let st = a.status();
    let line = st["jobs"]
        .as_array()
        .and_then(|js| js.iter().find(|j| j["id"] == job.as_str()).cloned())
        .unwrap_or_default();
    assert_eq!(line["state"], "accepted", "{st}");
    a.start();
    let (scan, remote) = finished(&p, &job, &a);
    assert!(!a.log().contains("interrupted by a restart"), "{}", a.log());
    a.stop();
    assert_eq!(ids(&a.local_findings(&scan), ""), remote);
}
