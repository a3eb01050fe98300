//! The `picket-platform` binary: exit codes, config errors naming the key and file, the helper
//! subcommands, and durability: SIGKILL in the middle of uploads, restart on the same state
//! directory, every chunk re-sent — each acknowledged chunk is still there, none is stored twice.

use picket_model::api::{
    CreateCode, EnrollRequest, EnrollResponse, EnrollmentCode, IngestResponse, ResultChunk,
    StoredFinding,
};
use picket_model::{Asset, Finding, ScanKind, Severity};
use picket_platform::client::{client_config, device_key, Conn};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_picket-platform");

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{BIN}: {e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn config_errors_exit_2_naming_key_and_file() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let cfg = dir.path().join("platform.toml");
    std::fs::write(&cfg, "listen = \"127.0.0.1:0\"\ncert_validty_secs = 60\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let state = dir.path().join("state");
    let (code, _, err) = run(&[
        "serve",
        "--config",
        cfg.to_str().unwrap_or_default(),
        "--state-dir",
        state.to_str().unwrap_or_default(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("cert_validty_secs") && err.contains("platform.toml"),
        "{err}"
    );
    let (code, _, err) = run(&["serve", "--config", "/nonexistent/platform.toml"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, _) = run(&["serve", "--bogus-flag"]);
    assert_eq!(code, 2);
}

#[test]
fn helpers_print_code_ca_and_token() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let state = dir.path().to_str().unwrap_or_default();
    let (code, fp, err) = run(&["init", "--state-dir", state]);
    assert_eq!(code, 0, "{err}");
    let (code, ca, _) = run(&["ca", "--state-dir", state]);
    assert_eq!(code, 0);
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(
        ca.contains(&format!("SHA256 Fingerprint={}", fp.trim())),
        "{ca}\n{fp}"
    );
    let (code, c, err) = run(&["code", "--state-dir", state, "--label", "rack 4"]);
    assert_eq!(code, 0, "{err}");
    let c = c.trim();
    assert_eq!(c.len(), 19, "{c}");
    let (code, token, _) = run(&["admin-token", "--state-dir", state]);
    assert_eq!(code, 0);
    assert_eq!(token.trim().len(), 64);
}

struct Running {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn serve(state: &Path) -> Running {
    let addr_file = state.with_extension("addr");
    let _ = std::fs::remove_file(&addr_file);
    let mut running = Running {
        child: Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--state-dir"])
            .arg(state)
            .arg("--addr-file")
            .arg(&addr_file)
            .env("PICKET_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("{BIN}: {e}")),
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
    };
    for _ in 0..200 {
        if let Ok(text) = std::fs::read_to_string(&addr_file) {
            if let Ok(addr) = text.trim().parse() {
                running.addr = addr;
                return running;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the platform did not start");
}

/// Chunks per scan in the kill test: enough that the upload outlasts the wait for the first
/// acknowledgements however fast the machine is.
const CHUNKS_PER_SCAN: u32 = 100;
const ALL_CHUNKS: usize = 4 * CHUNKS_PER_SCAN as usize;

fn chunk(scan: &str, seq: u32) -> ResultChunk {
    ResultChunk {
        scan_id: scan.into(),
        job_id: None,
        kind: ScanKind::Net,
        seq,
        total: CHUNKS_PER_SCAN,
        started_at: "2026-11-21T10:00:00Z".into(),
        finished_at: "2026-11-21T10:10:00Z".into(),
        targets: vec!["198.18.0.0/16".into()],
        findings: (0..200)
            .map(|i| Finding {
                id: format!("f-{seq}-{i}"),
                title: format!("finding {i} of chunk {seq}"),
                severity: Severity::Medium,
                cwe: vec![],
                cve: vec![],
                asset: Asset {
                    address: Some(format!("198.18.{seq}.{}", i % 250)),
                    ..Asset::default()
                },
                evidence: "x".repeat(200),
                remediation: String::new(),
            })
            .collect(),
        report_part: None,
    }
}

/// A connection as the operator (server-authenticated TLS, no client certificate).
async fn admin_conn(addr: SocketAddr, ca_pem: &str) -> Conn {
    Conn::connect(
        addr,
        "localhost",
        client_config(ca_pem, None).unwrap_or_else(|e| panic!("{e}")),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

async fn upload(conn: &mut Conn, c: &ResultChunk) -> Option<bool> {
    let key = c.key();
    let ans = conn
        .post_json("/api/v1/appliance/results", &[("idempotency-key", &key)], c)
        .await
        .ok()?;
    (ans.status == 200).then(|| ans.json::<IngestResponse>().ok().map(|r| r.stored))?
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_upload_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let state = dir.path().join("state");
    let mut p = serve(&state).await;
    // The store is the running platform's: a second process is told so (exit 3), and the
    // helper can ask the running platform instead.
    let (code, _, err) = run(&["code", "--state-dir", state.to_str().unwrap_or_default()]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("in use by another process"), "{err}");
    let url = format!("https://127.0.0.1:{}", p.addr.port());
    let (code, out, err) = run(&[
        "code",
        "--state-dir",
        state.to_str().unwrap_or_default(),
        "--url",
        &url,
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim().len(), 19, "{out}");
    let ca_pem = std::fs::read_to_string(state.join("ca/ca.pem")).unwrap_or_else(|e| panic!("{e}"));
    let token = std::fs::read_to_string(state.join("admin-token")).unwrap_or_default();
    let auth = format!("Bearer {}", token.trim());

    let mut admin = admin_conn(p.addr, &ca_pem).await;
    let code: EnrollmentCode = admin
        .post_json(
            "/api/v1/enrollment-codes",
            &[("authorization", &auth)],
            &CreateCode::default(),
        )
        .await
        .and_then(|a| a.json())
        .unwrap_or_else(|e| panic!("{e}"));
    let key = device_key().unwrap_or_else(|e| panic!("{e}"));
    let sealing = picket_model::sealed::SealingKey::generate().unwrap_or_else(|e| panic!("{e}"));
    let enrolled: EnrollResponse = admin
        .post_json(
            "/api/v1/enroll",
            &[],
            &EnrollRequest {
                code: code.code,
                csr_pem: key.csr_pem.clone(),
                sealing_key: sealing.public_hex(),
                hostname: "h".into(),
                picket_version: "0".into(),
            },
        )
        .await
        .and_then(|a| a.json())
        .unwrap_or_else(|e| panic!("{e}"));
    let cfg = client_config(&ca_pem, Some((&enrolled.certificate_pem, &key.key_pem)))
        .unwrap_or_else(|e| panic!("{e}"));

    // Four uploaders, CHUNKS_PER_SCAN chunks each (4 scans); the platform is killed while they run.
    let acked = Arc::new(std::sync::Mutex::new(Vec::<(String, u32)>::new()));
    let mut tasks = Vec::new();
    for w in 0..4 {
        let (cfg, addr, acked) = (cfg.clone(), p.addr, acked.clone());
        tasks.push(tokio::spawn(async move {
            let Ok(mut conn) = Conn::connect(addr, "localhost", cfg).await else {
                return;
            };
            let scan = format!("20261121T100000Z-kill{w}");
            for seq in 0..CHUNKS_PER_SCAN {
                match upload(&mut conn, &chunk(&scan, seq)).await {
                    Some(true) => {
                        if let Ok(mut a) = acked.lock() {
                            a.push((scan.clone(), seq));
                        }
                    }
                    Some(false) => panic!("a first upload answered stored=false"),
                    None => return,
                }
            }
        }));
    }
    // Kill as soon as a few chunks are acknowledged (a fixed sleep missed the upload on a fast
    // machine: all chunks were in before it ended).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while acked.lock().map(|a| a.len()).unwrap_or(0) < 8 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let pid = p.child.id();
    let _ = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status();
    let _ = p.child.wait();
    for t in tasks {
        let _ = t.await;
    }
    let acked_before: Vec<(String, u32)> = acked.lock().map(|a| a.clone()).unwrap_or_default();
    assert!(
        !acked_before.is_empty() && acked_before.len() < ALL_CHUNKS,
        "the kill must land mid-upload ({} acknowledged)",
        acked_before.len()
    );
    drop(p);

    // Restart on the same state: the pinned CA and the client certificate still work.
    let p = serve(&state).await;
    let mut conn = Conn::connect(p.addr, "localhost", cfg.clone())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut stored_now = 0;
    for w in 0..4 {
        let scan = format!("20261121T100000Z-kill{w}");
        for seq in 0..CHUNKS_PER_SCAN {
            let stored = upload(&mut conn, &chunk(&scan, seq))
                .await
                .unwrap_or_else(|| panic!("re-send of {scan}:{seq} failed"));
            let was_acked = acked_before.iter().any(|(s, q)| *s == scan && *q == seq);
            if was_acked {
                assert!(
                    !stored,
                    "{scan}:{seq} was acknowledged before the kill but is gone"
                );
            }
            if stored {
                stored_now += 1;
            }
        }
    }
    assert!(stored_now <= ALL_CHUNKS - acked_before.len());
    // Exactly one copy of every chunk.
    let mut admin = admin_conn(p.addr, &ca_pem).await;
    let found: Vec<StoredFinding> = admin
        .get("/api/v1/findings?limit=200000", &[("authorization", &auth)])
        .await
        .and_then(|a| a.json())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(found.len(), ALL_CHUNKS * 200);
    let mut ids: Vec<(&str, &str)> = found
        .iter()
        .map(|f| (f.scan_id.as_str(), f.finding.id.as_str()))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), ALL_CHUNKS * 200, "duplicated findings");
    println!(
        "acknowledged before SIGKILL: {}, stored by the re-send: {stored_now}",
        acked_before.len()
    );
}
