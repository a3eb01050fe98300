//! Harness for the end-to-end tests: the namespace test network of `netscan/testnet/testnet.sh`,
//! its ground truth, and a runner for the real `picket` binary inside the scanner namespace.
//!
//! Why this shape: Rust's test harness has no global set-up/tear-down, so the network is brought up
//! once per test binary (a `OnceLock`) and a watcher started by `testnet.sh` tears it down when this
//! process exits; `scripts/test-all.sh` may instead bring it up itself and export `PICKET_TESTNET`.
//! Scans share one network and one CPU budget, and some tests change it (packet loss, daemons in
//! the `lab` host), so every test holds [`exclusive`] while it runs.

#![allow(dead_code)]

use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// Ground truth as printed by `testnet.sh truth`.
#[derive(Debug, Clone, Deserialize)]
pub struct Truth {
    pub prefix: String,
    pub state_dir: String,
    pub scanner_ns: String,
    pub switch_ns: String,
    pub scanner: ScannerAddrs,
    pub subnet: String,
    pub wide: Option<Wide>,
    pub loss_percent: u8,
    pub hosts: Vec<TruthHost>,
    pub empty: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ScannerAddrs {
    pub ipv4: String,
    pub ipv6: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Wide {
    pub cidr: String,
    pub ns: String,
    pub gateway: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TruthHost {
    pub address: String,
    pub ns: String,
    /// Short name of the host (`ssh`, `web`, ..., `wide`).
    pub host: String,
    pub hostname: Option<String>,
    pub mac: Option<String>,
    pub tcp: Vec<u16>,
    pub udp: Vec<u16>,
    pub services: Vec<TruthService>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TruthService {
    pub port: u16,
    pub protocol: String,
    pub name: String,
    pub product: Option<String>,
    pub version: Option<String>,
    #[serde(default)]
    pub tls: bool,
    pub banner: Option<String>,
    pub package_version: Option<String>,
}

impl Truth {
    pub fn host(&self, address: &str) -> Option<&TruthHost> {
        self.hosts.iter().find(|h| h.address == address)
    }

    /// The IPv4 address of the host named `name` on the /24.
    pub fn v4_of(&self, name: &str) -> String {
        self.hosts
            .iter()
            .find(|h| h.host == name && h.address.starts_with("198.18.0."))
            .map(|h| h.address.clone())
            .unwrap_or_else(|| panic!("ground truth has no host {name}"))
    }

    /// Truth hosts whose address is on the test /24 (IPv4).
    pub fn subnet_hosts(&self) -> Vec<&TruthHost> {
        self.hosts
            .iter()
            .filter(|h| h.address.starts_with("198.18.0."))
            .collect()
    }
}

/// A test network this process may use.
#[derive(Debug)]
pub struct TestNet {
    pub state_dir: PathBuf,
    pub truth: Truth,
    pub script: PathBuf,
}

pub fn script_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../netscan/testnet/testnet.sh")
}

/// The binary under test: `PICKET_BIN` when set (e.g. a release build, or a private copy while
/// others rebuild the shared target directory), else the one cargo built for this test.
pub fn picket_bin() -> &'static str {
    static BIN: OnceLock<String> = OnceLock::new();
    BIN.get_or_init(|| match std::env::var("PICKET_BIN") {
        Ok(p) if !p.is_empty() => p,
        _ => env!("CARGO_BIN_EXE_picket").to_string(),
    })
}

static NET: OnceLock<Result<TestNet, String>> = OnceLock::new();
static EXCLUSIVE: Mutex<()> = Mutex::new(());

/// Serialises the tests: they share the network and change it.
pub fn exclusive() -> MutexGuard<'static, ()> {
    EXCLUSIVE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The test network, brought up on first use. `None` only when `PICKET_SKIP_NETNS=1`; a network that
/// cannot be built is a test failure, not a skip.
pub fn testnet() -> Option<&'static TestNet> {
    if std::env::var("PICKET_SKIP_NETNS").as_deref() == Ok("1") {
        eprintln!("PICKET_SKIP_NETNS=1: skipping a test that needs the namespace test network");
        return None;
    }
    match NET.get_or_init(bring_up) {
        Ok(net) => Some(net),
        Err(e) => {
            panic!("the test network could not be built (set PICKET_SKIP_NETNS=1 to skip): {e}")
        }
    }
}

fn bring_up() -> Result<TestNet, String> {
    let script = script_path();
    let state_dir = match std::env::var("PICKET_TESTNET") {
        Ok(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            if !dir.join("up").is_file() {
                return Err(format!(
                    "PICKET_TESTNET={} is not an up test network",
                    dir.display()
                ));
            }
            dir
        }
        _ => {
            let pid = std::process::id();
            let dir = std::env::temp_dir().join(format!("picket-testnet-{pid}"));
            let out = Command::new(&script)
                .arg("up")
                .arg(&dir)
                .env("PICKET_TESTNET_PREFIX", format!("pkt{pid}"))
                .env("PICKET_TESTNET_OWNER_PID", pid.to_string())
                .output()
                .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
            if !out.status.success() {
                return Err(format!(
                    "{} up {} failed ({}):\n{}",
                    script.display(),
                    dir.display(),
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            dir
        }
    };
    let truth = read_truth(&script, &state_dir)?;
    Ok(TestNet {
        state_dir,
        truth,
        script,
    })
}

pub fn read_truth(script: &Path, state_dir: &Path) -> Result<Truth, String> {
    let out = Command::new(script)
        .arg("truth")
        .arg(state_dir)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!(
            "truth failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("ground truth is not valid JSON: {e}"))
}

impl TestNet {
    /// Sets target-side packet loss; the guard sets it back to 0 even when the test fails.
    pub fn loss(&self, percent: u8) -> LossGuard<'_> {
        self.set_loss(percent);
        LossGuard { net: self }
    }

    fn set_loss(&self, percent: u8) {
        let out = Command::new(&self.script)
            .arg("loss")
            .arg(&self.state_dir)
            .arg(percent.to_string())
            .output()
            .unwrap_or_else(|e| panic!("cannot run testnet.sh loss: {e}"));
        assert!(
            out.status.success(),
            "testnet.sh loss {percent} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Namespace of a target host (`lab`, `hostile`...).
    pub fn ns_of(&self, host: &str) -> String {
        self.truth
            .hosts
            .iter()
            .find(|h| h.host == host)
            .map(|h| h.ns.clone())
            .unwrap_or_else(|| panic!("no host {host} in the ground truth"))
    }

    /// Runs `picket ARGS...` inside the scanner namespace.
    pub fn picket(&self, args: &[&str], timeout: Duration) -> Run {
        let mut full = vec![picket_bin()];
        full.extend_from_slice(args);
        run_in_ns(&self.truth.scanner_ns, &full, timeout)
    }

    /// `picket --state-dir DIR --format json scan net ARGS...`, which must exit 0 with a report.
    pub fn scan_net(
        &self,
        store: &Path,
        args: &[&str],
        timeout: Duration,
    ) -> (picket_model::NetReport, Run) {
        let store = store.to_string_lossy().into_owned();
        let mut full = vec![
            "--state-dir",
            store.as_str(),
            "--format",
            "json",
            "scan",
            "net",
        ];
        full.extend_from_slice(args);
        let run = self.picket(&full, timeout);
        run.assert_success(&full);
        let report: picket_model::NetReport =
            serde_json::from_str(&run.stdout).unwrap_or_else(|e| {
                panic!(
                    "picket {full:?} printed no valid net report ({e}):\nstdout: {}\nstderr: {}",
                    clip(&run.stdout),
                    clip(&run.stderr)
                )
            });
        (report, run)
    }
}

pub struct LossGuard<'a> {
    net: &'a TestNet,
}

impl Drop for LossGuard<'_> {
    fn drop(&mut self) {
        self.net.set_loss(0);
    }
}

/// What a finished process left.
#[derive(Debug)]
pub struct Run {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Run {
    pub fn assert_success(&self, args: &[&str]) {
        assert!(
            !self.stderr.contains("panicked"),
            "picket {args:?} panicked:\n{}",
            clip(&self.stderr)
        );
        assert!(
            self.status.success(),
            "picket {args:?} exited with {}:\nstdout: {}\nstderr: {}",
            self.status,
            clip(&self.stdout),
            clip(&self.stderr)
        );
    }
}

pub fn clip(s: &str) -> String {
    const MAX: usize = 4000;
    if s.len() <= MAX {
        return s.to_string();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... [{} more bytes]", &s[..end], s.len() - end)
}

/// Runs a command inside a namespace with a hard time limit: on timeout the child is killed (by
/// its PID) and the test fails, so a hung scanner cannot hang the suite.
pub fn run_in_ns(ns: &str, cmd: &[&str], timeout: Duration) -> Run {
    let started = Instant::now();
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns])
        .args(cmd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?} in {ns}: {e}"));
    let out_reader = reader_thread(child.stdout.take());
    let err_reader = reader_thread(child.stderr.take());
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > timeout => {
                kill_child(&mut child);
                let stderr = err_reader.join().unwrap_or_default();
                panic!(
                    "{cmd:?} did not finish within {timeout:?}; killed. stderr: {}",
                    clip(&stderr)
                );
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("waiting for {cmd:?}: {e}"),
        }
    };
    Run {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
        elapsed: started.elapsed(),
    }
}

fn kill_child(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Stops a child with SIGTERM (as systemd does), bounded; SIGKILL if it does not go.
pub fn terminate(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    kill_child(child);
}

fn reader_thread<R: Read + Send + 'static>(pipe: Option<R>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut buf);
        }
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// A process started in a target namespace for one test; killed by PID when dropped.
pub struct Daemon {
    child: Child,
    pub what: String,
}

impl Daemon {
    /// Starts `cmd` in `ns` and waits (bounded) until something listens on tcp/`port` there.
    pub fn start(ns: &str, cmd: &[&str], port: u16) -> Daemon {
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(cmd)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?} in {ns}: {e}"));
        let mut d = Daemon {
            child,
            what: format!("{cmd:?}"),
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while !listening(ns, "tcp", port) {
            if let Ok(Some(status)) = d.child.try_wait() {
                panic!("{} exited with {status} before listening on {port}", d.what);
            }
            assert!(
                Instant::now() < deadline,
                "{} does not listen on tcp/{port} after 15 s",
                d.what
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        d
    }

    pub fn stop(mut self) {
        kill_child(&mut self.child);
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        kill_child(&mut self.child);
    }
}

/// True when something listens on proto/port in ns.
pub fn listening(ns: &str, proto: &str, port: u16) -> bool {
    let flag = if proto == "udp" { "-Hlnu" } else { "-Hlnt" };
    Command::new("ip")
        .args(["netns", "exec", ns, "ss", flag])
        .arg(format!("sport = :{port}"))
        .output()
        .map(|o| !o.stdout.is_empty())
        .unwrap_or(false)
}

/// Waits (bounded) until nothing listens on tcp/port in ns.
pub fn wait_closed(ns: &str, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while listening(ns, "tcp", port) {
        assert!(
            Instant::now() < deadline,
            "tcp/{port} in {ns} still listening after 10 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Open ports of one protocol per up host, from a report.
pub fn open_ports(
    report: &picket_model::NetReport,
    proto: picket_model::Protocol,
) -> BTreeMap<String, BTreeSet<u16>> {
    report
        .hosts
        .iter()
        .filter(|h| h.status == picket_model::HostStatus::Up)
        .map(|h| {
            let ports = h
                .ports
                .iter()
                .filter(|p| p.protocol == proto && p.state == picket_model::PortState::Open)
                .map(|p| p.port)
                .collect();
            (h.address.clone(), ports)
        })
        .collect()
}

/// Up host addresses of a report.
pub fn up_hosts(report: &picket_model::NetReport) -> BTreeSet<String> {
    report
        .hosts
        .iter()
        .filter(|h| h.status == picket_model::HostStatus::Up)
        .map(|h| h.address.clone())
        .collect()
}

/// Compares picket's open TCP ports with the truth for the given truth hosts, and that no other host
/// was reported up (the scanner's own address excepted: reporting itself is not wrong). Returns
/// every difference, so one failure shows them all.
pub fn port_differences(
    report: &picket_model::NetReport,
    expected: &[&TruthHost],
    scanner_addrs: &[&str],
) -> Vec<String> {
    let got = open_ports(report, picket_model::Protocol::Tcp);
    let mut diffs = Vec::new();
    for h in expected {
        let want: BTreeSet<u16> = h.tcp.iter().copied().collect();
        match got.get(&h.address) {
            None => diffs.push(format!(
                "{} ({}) missing: expected up with tcp {want:?}",
                h.address, h.host
            )),
            Some(ports) if *ports != want => diffs.push(format!(
                "{} ({}): open tcp {ports:?}, expected {want:?} (missing {:?}, extra {:?})",
                h.address,
                h.host,
                want.difference(ports).collect::<Vec<_>>(),
                ports.difference(&want).collect::<Vec<_>>()
            )),
            Some(_) => {}
        }
    }
    let known: BTreeSet<&str> = expected.iter().map(|h| h.address.as_str()).collect();
    for addr in got.keys() {
        if !known.contains(addr.as_str()) && !scanner_addrs.contains(&addr.as_str()) {
            diffs.push(format!(
                "{addr} reported up, but no test host has that address"
            ));
        }
    }
    diffs
}

/// A fresh store directory for one test.
pub fn store() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("picket-e2e-store-")
        .tempdir()
        .unwrap_or_else(|e| panic!("cannot create a temporary store: {e}"))
}
