//! The real `picket` binary, run as users and scripts run it: exit codes, messages, JSON on
//! standard output, the store under a temporary `--state-dir`.
//!
//! Network safety: the only scans here target 127.0.0.1, on ports of listeners this test opens.

use picket_appliance::store::{Store, StoredScan};
use picket_model::{
    Asset, Finding, HostStatus, NetHost, NetReport, PortSummary, ScanKind, ScanMeta, ScanStats,
    Severity, PICKET_VERSION,
};
use serde_json::Value;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn picket(state: &Path, args: &[&str]) -> Run {
    let out: Output = Command::new(env!("CARGO_BIN_EXE_picket"))
        .arg("--state-dir")
        .arg(state)
        .args(args)
        .env_remove("PICKET_LOG")
        .output()
        .unwrap_or_else(|e| panic!("cannot run picket: {e}"));
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn json(run: &Run) -> Value {
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}\n{}", run.stdout, run.stderr))
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"))
}

/// A loopback listener on a free port; connections complete in the kernel's backlog.
fn listener() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
    let port = l.local_addr().map(|a| a.port()).unwrap_or(0);
    (l, port)
}

fn scan_loopback(state: &Path, ports: &str, extra: &[&str]) -> Run {
    let mut args = vec![
        "--format",
        "json",
        "scan",
        "net",
        "127.0.0.1",
        "--connect",
        "--no-ping",
        "--no-rdns",
        "--no-service",
        "--ports",
        ports,
    ];
    args.extend_from_slice(extra);
    picket(state, &args)
}

fn open_ports(report: &Value) -> Vec<u64> {
    report["hosts"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|h| h["ports"].as_array().cloned().unwrap_or_default())
        .filter(|p| p["state"] == "open")
        .filter_map(|p| p["port"].as_u64())
        .collect()
}

fn stored_ids(state: &Path) -> Vec<String> {
    let run = picket(state, &["--format", "json", "scans", "list"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    json(&run)["scans"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["id"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn help_documents_the_exit_codes() {
    let dir = tempdir();
    let run = picket(dir.path(), &["--help"]);
    assert_eq!(run.code, 0);
    for needle in [
        "Exit codes:",
        "  1  --fail-on",
        "  2  usage",
        "  3  runtime",
    ] {
        assert!(run.stdout.contains(needle), "{needle:?} in {}", run.stdout);
    }
    let run = picket(dir.path(), &["scan", "net", "--help"]);
    for flag in [
        "--ports",
        "--udp-ports",
        "--rate",
        "--exclude",
        "--no-ping",
        "--no-service",
        "--all-hosts",
        "--all-ports",
        "--no-rdns",
        "--connect",
        "--retries",
    ] {
        assert!(run.stdout.contains(flag), "{flag} in scan net --help");
    }
}

#[test]
fn bad_arguments_exit_2_and_name_the_argument() {
    let dir = tempdir();
    for (args, named) in [
        (&["scan", "net", "127.0.0.1", "--bogus"][..], "--bogus"),
        (&["scan", "net", "127.0.0.1", "--rate", "0"][..], "--rate"),
        (&["--fail-on", "severe", "scans", "list"][..], "severe"),
        (&["--format", "xml", "scans", "list"][..], "xml"),
        (&["scan", "net"][..], "TARGET"),
        (&["--format", "sarif", "scans", "list"][..], "sarif"),
        (&["scans", "show", "20991231"][..], "20991231"),
        (
            &["--output", "/nonexistent-dir/r.json", "scans", "list"][..],
            "/nonexistent-dir/r.json",
        ),
    ] {
        let run = picket(dir.path(), args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains(named),
            "{args:?}: {named:?} in {}",
            run.stderr
        );
    }
}

#[test]
fn malformed_targets_and_ports_exit_2_before_scanning() {
    let dir = tempdir();
    let missing = dir.path().join("no-such-targets.txt");
    let at_missing = format!("@{}", missing.display());
    for (target, ports, named) in [
        ("10.0.0.300", "22", "10.0.0.300"),
        ("198.18.0.0/33", "22", "198.18.0.0/33"),
        (at_missing.as_str(), "22", "no-such-targets.txt"),
        ("127.0.0.1", "70000", "70000"),
    ] {
        let run = picket(
            dir.path(),
            &[
                "scan",
                "net",
                target,
                "--connect",
                "--no-ping",
                "--ports",
                ports,
            ],
        );
        assert_eq!(run.code, 2, "{target} {ports}: {}", run.stderr);
        assert!(run.stderr.contains(named), "{named:?} in {}", run.stderr);
    }
    assert!(
        stored_ids(dir.path()).is_empty(),
        "nothing was scanned or saved"
    );
}

#[test]
fn connect_scan_of_loopback_finds_the_open_port_and_saves_it() {
    let dir = tempdir();
    let (l, port) = listener();
    let (closed_l, closed) = listener();
    drop(closed_l);
    let ports = format!("{port},{closed}");
    let run = scan_loopback(dir.path(), &ports, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = json(&run);
    assert_eq!(open_ports(&report), vec![u64::from(port)], "{}", run.stdout);
    assert_eq!(report["picket_version"], PICKET_VERSION);
    assert_eq!(report["scan"]["kind"], "net");
    assert_eq!(report["scan"]["targets"], serde_json::json!(["127.0.0.1"]));
    let id = report["scan"]["id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(id.len(), 25, "{id}");
    assert!(id.as_bytes()[8] == b'T' && &id[15..17] == "Z-", "{id}");
    for key in ["started_at", "finished_at"] {
        let t = report["scan"][key].as_str().unwrap_or_default();
        assert!(t.len() == 20 && t.ends_with('Z'), "{key}: {t}");
    }
    assert_eq!(report["stats"]["technique"], "connect");
    let host = &report["hosts"][0];
    assert_eq!(host["address"], "127.0.0.1");
    assert_eq!(host["status"], "up");
    assert!(host.get("mac").is_none(), "null optional keys are pruned");
    assert_eq!(host["port_summary"]["closed"], 1);
    assert!(
        run.stderr.contains(&format!("saved scan {id}")),
        "{}",
        run.stderr
    );
    assert_eq!(stored_ids(dir.path()), vec![id.clone()]);

    // The stored report is the one that was printed.
    let shown = picket(dir.path(), &["--format", "json", "scans", "show", &id]);
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    assert_eq!(json(&shown), report);

    // -q: nothing on stderr; --output: the report goes to the file, not stdout.
    let out = dir.path().join("report.json");
    let out_s = out.to_string_lossy().into_owned();
    let quiet = scan_loopback(dir.path(), &port.to_string(), &["-q", "--output", &out_s]);
    assert_eq!(quiet.code, 0, "{}", quiet.stderr);
    assert_eq!(quiet.stderr, "");
    assert_eq!(quiet.stdout, "");
    let written: Value = std::fs::read(&out)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    assert_eq!(open_ports(&written), vec![u64::from(port)]);
    drop(l);
}

#[test]
fn stored_scans_are_listed_shown_and_diffed() {
    let dir = tempdir();
    let (l, port) = listener();
    let first = scan_loopback(dir.path(), &port.to_string(), &[]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    drop(l);
    let second = scan_loopback(dir.path(), &port.to_string(), &[]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    let (a, b) = (json(&first), json(&second));
    let (id_a, id_b) = (
        a["scan"]["id"].as_str().unwrap_or_default(),
        b["scan"]["id"].as_str().unwrap_or_default(),
    );
    assert_eq!(stored_ids(dir.path()), vec![id_a, id_b]);

    let list = json(&picket(dir.path(), &["--format", "json", "scans", "list"]));
    let s = &list["scans"][0];
    assert_eq!(s["kind"], "net");
    assert_eq!(s["hosts_up"], 1);
    assert_eq!(s["open_ports"], 1);
    assert_eq!(s["findings"]["info"], 0);
    assert_eq!(list["errors"], serde_json::json!([]));

    let table = picket(dir.path(), &["scans", "list"]);
    assert_eq!(table.code, 0);
    assert!(table.stdout.contains(id_a) && table.stdout.contains("OPEN PORTS"));

    // latest / previous / unique prefix.
    let latest = json(&picket(
        dir.path(),
        &["--format", "json", "scans", "show", "latest"],
    ));
    assert_eq!(latest, b);
    let prefix = &id_a[..id_a.len() - 4];
    let by_prefix = picket(dir.path(), &["--format", "json", "scans", "show", prefix]);
    if by_prefix.code == 0 {
        assert_eq!(json(&by_prefix), a);
    } else {
        // Both scans started in the same second and share more than the prefix.
        assert_eq!(by_prefix.code, 2, "{}", by_prefix.stderr);
        assert!(
            by_prefix.stderr.contains("matches several"),
            "{}",
            by_prefix.stderr
        );
    }

    let diff = picket(
        dir.path(),
        &["--format", "json", "scans", "diff", "previous", "latest"],
    );
    assert_eq!(diff.code, 0, "{}", diff.stderr);
    assert_eq!(
        json(&diff),
        serde_json::json!({
            "old": id_a, "new": id_b,
            "new_hosts": [], "gone_hosts": [], "opened_ports": [],
            "closed_ports": [{"address": "127.0.0.1", "port": port, "protocol": "tcp", "service": null}],
            "changed_services": []
        })
    );
    let diff_table = picket(dir.path(), &["scans", "diff", id_a, id_b]);
    assert_eq!(diff_table.code, 0);
    assert!(
        diff_table
            .stdout
            .contains(&format!("127.0.0.1  {port}/tcp")),
        "{}",
        diff_table.stdout
    );
    let reverse = json(&picket(
        dir.path(),
        &["--format", "json", "scans", "diff", id_b, id_a],
    ));
    assert_eq!(reverse["opened_ports"][0]["port"], port);

    let sarif = picket(dir.path(), &["--format", "sarif", "scans", "show", id_a]);
    assert_eq!(sarif.code, 0);
    let sarif = json(&sarif);
    assert_eq!(sarif["version"], "2.1.0");
    assert_eq!(sarif["runs"][0]["tool"]["driver"]["name"], "picket");
}

fn report_with_finding(id: &str, severity: Severity) -> StoredScan {
    StoredScan::Net(NetReport {
        picket_version: PICKET_VERSION.into(),
        scan: ScanMeta {
            id: id.into(),
            kind: ScanKind::Net,
            started_at: "2026-11-21T07:00:00Z".into(),
            finished_at: "2026-11-21T07:00:01Z".into(),
            targets: vec!["127.0.0.1".into()],
        },
        hosts: vec![NetHost {
            address: "127.0.0.1".into(),
            status: HostStatus::Up,
            reason: "user-set".into(),
            hostnames: vec![],
            mac: None,
            os: None,
            ports: vec![],
            port_summary: PortSummary::default(),
            rtt_us: None,
        }],
        findings: vec![Finding {
            id: "net.tls.cert-self-signed:127.0.0.1:443/tcp".into(),
            title: "TLS certificate self-signed".into(),
            severity,
            cwe: vec![295],
            cve: vec![],
            asset: Asset {
                address: Some("127.0.0.1".into()),
                port: Some(443),
                protocol: Some(picket_model::Protocol::Tcp),
                ..Asset::default()
            },
            evidence: "self-signed".into(),
            remediation: "replace it".into(),
        }],
        stats: ScanStats::default(),
    })
}

#[test]
fn fail_on_exits_1_at_or_above_the_threshold() {
    let dir = tempdir();
    {
        let mut store = Store::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let saved = store.save(&report_with_finding(
            "20261121T070000Z-0000000a",
            Severity::Medium,
        ));
        assert!(saved.is_ok(), "{saved:?}");
    }
    for (threshold, code) in [("info", 1), ("medium", 1), ("high", 0), ("critical", 0)] {
        let run = picket(
            dir.path(),
            &["--fail-on", threshold, "scans", "show", "latest"],
        );
        assert_eq!(run.code, code, "--fail-on {threshold}: {}", run.stderr);
    }
    let run = picket(dir.path(), &["scans", "show", "latest"]);
    assert_eq!(run.code, 0);
    assert!(
        run.stdout.contains("TLS certificate self-signed"),
        "{}",
        run.stdout
    );
    let sarif = json(&picket(
        dir.path(),
        &["--format", "sarif", "scans", "show", "latest"],
    ));
    let result = &sarif["runs"][0]["results"][0];
    assert_eq!(result["level"], "warning");
    assert_eq!(
        result["locations"][0]["logicalLocations"][0]["name"],
        "127.0.0.1:443/tcp"
    );
}

#[test]
fn a_locked_store_exits_3() {
    let dir = tempdir();
    let holder = Store::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    let run = picket(dir.path(), &["scans", "list"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("in use by another picket process"),
        "{}",
        run.stderr
    );
    // A scan fails before sending anything, for the same reason.
    let run = scan_loopback(dir.path(), "1", &[]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert_eq!(run.stdout, "");
    drop(holder);
    assert_eq!(picket(dir.path(), &["scans", "list"]).code, 0);
}

#[test]
fn a_damaged_store_exits_3_and_is_not_destroyed() {
    let dir = tempdir();
    let mut ids = Vec::new();
    {
        let mut store = Store::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        for i in 0..20 {
            let id = format!("20261121T0700{i:02}Z-0000000a");
            let saved = store.save(&report_with_finding(&id, Severity::Info));
            assert!(saved.is_ok(), "{saved:?}");
            ids.push(id);
        }
    }
    let gen = dir.path().join("store/gen-1");

    // One record that does not decode: the others stay readable, listing says so and exits 3.
    {
        let db = sled::open(&gen).unwrap_or_else(|e| panic!("sled: {e}"));
        for tree in ["scans", "summaries"] {
            let t = db.open_tree(tree).unwrap_or_else(|e| panic!("{e}"));
            let _ = t.insert("20261121T070000Z-0000000b", &[1u8, 0xff][..]);
        }
        let _ = db.flush();
    }
    let list = picket(dir.path(), &["--format", "json", "scans", "list"]);
    assert_eq!(list.code, 3, "{}", list.stderr);
    assert!(
        list.stderr.contains("20261121T070000Z-0000000b"),
        "{}",
        list.stderr
    );
    assert_eq!(json(&list)["scans"].as_array().map(Vec::len), Some(20));
    let bad = picket(dir.path(), &["scans", "show", "20261121T070000Z-0000000b"]);
    assert_eq!(bad.code, 3);
    assert!(bad.stderr.contains("corrupted"), "{}", bad.stderr);
    let good = picket(dir.path(), &["scans", "show", &ids[3]]);
    assert_eq!(good.code, 0, "{}", good.stderr);

    // A truncated database file: refused with exit 3, the file left exactly as it was.
    let db = gen.join("db");
    let original = std::fs::read(&db).unwrap_or_default();
    // Cut the file just before the last scan's key: at least that scan is lost.
    let last_key = ids[19].as_bytes();
    let cut = original
        .windows(last_key.len())
        .rposition(|w| w == last_key)
        .unwrap_or_else(|| panic!("{} not found in the database file", ids[19]));
    let truncated = original[..cut].to_vec();
    assert!(std::fs::write(&db, &truncated).is_ok());
    for args in [&["scans", "list"][..], &["scans", "show", "latest"][..]] {
        let run = picket(dir.path(), args);
        assert_eq!(run.code, 3, "{args:?}: {}", run.stderr);
        // sled notices some damage itself; the rest shows as acknowledged scans gone missing.
        assert!(run.stderr.contains("error: the store "), "{}", run.stderr);
        assert!(run.stderr.contains("is corrupted"), "{}", run.stderr);
        let now = std::fs::read(&db).unwrap_or_default();
        assert!(
            now == truncated,
            "file changed: {} -> {} bytes; {}",
            truncated.len(),
            now.len(),
            run.stderr
        );
    }
    // Restoring the file (as from a backup) brings every record back.
    assert!(std::fs::write(&db, &original).is_ok());
    let list = picket(dir.path(), &["--format", "json", "scans", "list"]);
    assert_eq!(json(&list)["scans"].as_array().map(Vec::len), Some(20));
}

/// A self-signed TLS service on loopback (`openssl s_server`), killed when dropped.
struct TlsServer {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tls_server() -> TlsServer {
    let dir = tempdir();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", "/CN=picket-test.invalid", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status();
    assert!(
        made.is_ok_and(|s| s.success()),
        "openssl (Debian package openssl) is needed to make a test certificate"
    );
    let (l, port) = listener();
    drop(l);
    let child = Command::new("openssl")
        .args(["s_server", "-quiet", "-www", "-accept"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("-cert")
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("openssl s_server: {e}"));
    let server = TlsServer {
        child,
        port,
        _dir: dir,
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "s_server did not listen"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    server
}

#[test]
fn a_self_signed_certificate_is_a_finding_that_trips_fail_on() {
    let dir = tempdir();
    let server = tls_server();
    let port = server.port.to_string();
    let args = [
        "--format",
        "json",
        "--fail-on",
        "info",
        "scan",
        "net",
        "127.0.0.1",
        "--connect",
        "--no-ping",
        "--no-rdns",
        "--ports",
        &port,
    ];
    let run = picket(dir.path(), &args);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let report = json(&run);
    let ids: Vec<&str> = report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["id"].as_str())
        .collect();
    assert_eq!(
        ids,
        vec![format!("net.tls.cert-self-signed:127.0.0.1:{port}/tcp")]
    );
    assert_eq!(report["findings"][0]["asset"]["port"], server.port);
    let tls = &report["hosts"][0]["ports"][0]["tls"];
    assert_eq!(tls["self_signed"], true, "{}", run.stdout);
    // The threshold above the finding's severity passes.
    let run = picket(dir.path(), &["--fail-on", "low", "scans", "show", "latest"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}
