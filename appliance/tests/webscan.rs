//! `picket scan web` end to end: the real binary against the project's own test web apps
//! (webscan/testapp, Python standard library, loopback only), judged by the apps' manifest and
//! by the apps' own server-side counters, never by what picket says about itself.
//!
//! * vulnapp: every planted vulnerability reported, no look-alike reported, requests counted at
//!   the server within `--max-requests` (and a small budget is obeyed exactly), re-login after the
//!   app ends sessions, the report stored and shown again, SARIF.
//! * bigapp: 200 pages crawled at `--max-rps 50`; the server's largest count of arrivals in any
//!   one-second window stays at or under 50.
//! * hostile: endless bodies, huge heads, slowloris, redirect loops, invalid UTF-8, 100k nested
//!   elements, lying lengths, gzip bombs, garbage: the scan ends in bounded time and memory, each
//!   behaviour leaves a warning or a page, and nothing panics.

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A test app on loopback; killed (by pid) when dropped.
struct App {
    child: Child,
    _stdin: Option<ChildStdin>,
    port: u16,
    admin: u16,
}

impl App {
    fn start(script: &str, args: &[&str], env: &[(&str, &str)]) -> App {
        let path = root().join("webscan/testapp").join(script);
        let mut child = Command::new("/usr/bin/python3")
            .envs(env.iter().copied())
            .arg(&path)
            .args(["--port", "0", "--admin-port", "0"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", path.display()));
        let stdin = child.stdin.take();
        let out = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
        let mut line = String::new();
        BufReader::new(out)
            .read_line(&mut line)
            .unwrap_or_else(|e| panic!("read READY: {e}"));
        let parts: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(parts.first(), Some(&"READY"), "{script} said {line:?}");
        let port = parts
            .get(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("{line}"));
        let admin = parts
            .get(2)
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("{line}"));
        App {
            child,
            _stdin: stdin,
            port,
            admin,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// A request to the admin API (a different origin the scanner never sees).
    fn admin(&self, method: &str, path: &str) -> Value {
        let mut s =
            TcpStream::connect(("127.0.0.1", self.admin)).unwrap_or_else(|e| panic!("admin: {e}"));
        s.set_read_timeout(Some(Duration::from_secs(10))).ok();
        write!(s, "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .unwrap_or_else(|e| panic!("admin write: {e}"));
        let mut buf = Vec::new();
        s.read_to_end(&mut buf)
            .unwrap_or_else(|e| panic!("admin read: {e}"));
        let text = String::from_utf8_lossy(&buf);
        let body = text.split_once("\r\n\r\n").map(|x| x.1).unwrap_or_default();
        serde_json::from_str(body).unwrap_or_else(|e| panic!("admin {path}: {e}: {body}"))
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Run {
    out: Output,
    report: Value,
    wall: Duration,
}

fn picket(state: &Path, report: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let started = Instant::now();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_picket"));
    cmd.arg("--state-dir")
        .arg(state)
        .args(["--format", "json", "--output"])
        .arg(report)
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap_or_else(|e| panic!("run picket: {e}"));
    let wall = started.elapsed();
    let report = std::fs::read(report)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    Run { out, report, wall }
}

fn stderr(r: &Run) -> String {
    String::from_utf8_lossy(&r.out.stderr).into_owned()
}

/// `*` matches any run of characters (the manifest's globs use nothing else).
fn glob(pat: &str, s: &str) -> bool {
    let parts: Vec<&str> = pat.split('*').collect();
    if parts.len() == 1 {
        return pat == s;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !s.starts_with(first) || !s[first.len()..].ends_with(last) {
        return false;
    }
    let mut rest = &s[first.len()..s.len() - last.len()];
    for p in &parts[1..parts.len() - 1] {
        match rest.find(p) {
            Some(i) => rest = &rest[i + p.len()..],
            None => return false,
        }
    }
    true
}

fn url_path(u: &str) -> String {
    let after = u.split_once("://").map(|x| x.1).unwrap_or(u);
    let path = after.find('/').map(|i| &after[i..]).unwrap_or("/");
    path.split(['?', '#']).next().unwrap_or("/").to_owned()
}

/// The manifest entry a finding is about (planted.json's "matching" rule), if any.
fn entry_of<'a>(f: &Value, entries: &'a [Value]) -> Option<&'a Value> {
    let cwes: Vec<u64> = f["cwe"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_u64)
        .collect();
    let path = url_path(f["url"].as_str().unwrap_or_default());
    let mut best: Option<(&Value, usize)> = None;
    for e in entries {
        let ecwe: Vec<u64> = e["cwe"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_u64)
            .collect();
        if !cwes.iter().any(|c| ecwe.contains(c)) {
            continue;
        }
        let mut paths = vec![e["path"].as_str().unwrap_or_default().to_owned()];
        paths.extend(
            e["also_paths"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p.as_str().map(str::to_owned)),
        );
        if !paths.iter().any(|p| glob(p, &path)) {
            continue;
        }
        if let Some(param) = e["parameter"].as_str() {
            let fp = f["parameter"]
                .as_str()
                .unwrap_or_default()
                .to_ascii_lowercase();
            let pl = param.to_ascii_lowercase();
            let loose = matches!(e["location"].as_str(), Some("cookie" | "header"))
                && (f["title"]
                    .as_str()
                    .unwrap_or_default()
                    .to_ascii_lowercase()
                    .contains(&pl)
                    || f["evidence"].to_string().to_ascii_lowercase().contains(&pl));
            if fp != pl && !loose {
                continue;
            }
        }
        let lit = e["path"]
            .as_str()
            .unwrap_or_default()
            .replace('*', "")
            .len();
        if best.is_none_or(|(_, l)| lit > l) {
            best = Some((e, lit));
        }
    }
    best.map(|(e, _)| e)
}

#[test]
fn vulnapp_every_planted_vulnerability_and_no_look_alike() {
    let app = App::start(
        "vulnapp.py",
        &["--password-env", "WEBSCAN_TEST_PW"],
        &[("WEBSCAN_TEST_PW", "s3cret-test")],
    );
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(root().join("webscan/testapp/planted.json")).unwrap_or_default(),
    )
    .unwrap_or_else(|e| panic!("planted.json: {e}"));
    let entries = manifest["entries"].as_array().cloned().unwrap_or_default();
    assert!(entries.len() > 30, "manifest too small");
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let report = dir.path().join("report.json");
    let max_requests = 6000u64;
    let run = picket(
        &dir.path().join("state"),
        &report,
        &[
            "--fail-on",
            "high",
            "scan",
            "web",
            &app.url(),
            "--login-url",
            "/login",
            "--username",
            "alice",
            "--password-env",
            "WEBSCAN_TEST_PW",
            "--max-requests",
            &max_requests.to_string(),
            "--max-rps",
            "400",
        ],
        &[("WEBSCAN_TEST_PW", "s3cret-test")],
    );
    let stats = app.admin("GET", "/stats");
    // --fail-on high with high findings: exit 1, report written.
    assert_eq!(run.out.status.code(), Some(1), "{}", stderr(&run));
    let findings = run.report["findings"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut found = std::collections::BTreeSet::new();
    let mut false_positives = Vec::new();
    for f in &findings {
        for key in [
            "id",
            "title",
            "severity",
            "cwe",
            "url",
            "method",
            "parameter",
            "evidence",
        ] {
            assert!(f.get(key).is_some(), "finding without {key}: {f}");
        }
        assert!(
            f["evidence"]["request"].is_string() && f["evidence"]["response_excerpt"].is_string(),
            "{f}"
        );
        if let Some(e) = entry_of(f, &entries) {
            if e["planted"] == Value::Bool(true) {
                found.insert(e["id"].as_str().unwrap_or_default().to_owned());
            } else {
                false_positives.push(format!("{} -> {}", f["title"], e["id"]));
            }
        }
    }
    let missed: Vec<&str> = entries
        .iter()
        .filter(|e| e["planted"] == Value::Bool(true))
        .filter_map(|e| e["id"].as_str())
        .filter(|id| !found.contains(*id))
        .collect();
    assert!(missed.is_empty(), "planted but not reported: {missed:?}");
    assert!(
        false_positives.is_empty(),
        "look-alikes reported: {false_positives:?}"
    );
    // Requests as the server counted them: within the budget, and what picket says it sent.
    let served = stats["requests"].as_u64().unwrap_or(u64::MAX);
    let sent = run.report["stats"]["requests"].as_u64().unwrap_or(0);
    assert!(
        served <= max_requests,
        "server counted {served} > --max-requests {max_requests}"
    );
    assert!(
        served <= sent,
        "server counted {served}, picket says it sent {sent}"
    );
    // The app ends a session after 300 requests: the scan must have logged in again.
    assert!(
        stats["logins"].as_u64().unwrap_or(0) >= 2,
        "logins: {stats}"
    );
    assert!(run.report["stats"]["relogins"].as_u64().unwrap_or(0) >= 1);
    assert!(
        stats["max_in_window"].as_u64().unwrap_or(u64::MAX) <= 400,
        "{stats}"
    );
    eprintln!(
        "vulnapp: {} planted found, {} findings, {served} requests at the server, {:.1} s",
        found.len(),
        findings.len(),
        run.wall.as_secs_f64()
    );

    // The stored report is the same one; SARIF names one rule per check.
    let show = Command::new(env!("CARGO_BIN_EXE_picket"))
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .args(["--format", "sarif", "scans", "show", "latest"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(show.status.code(), Some(0));
    let sarif: Value =
        serde_json::from_slice(&show.stdout).unwrap_or_else(|e| panic!("sarif: {e}"));
    let results = sarif["runs"][0]["results"].as_array().map_or(0, Vec::len);
    assert_eq!(results, findings.len());
    assert!(sarif["runs"][0]["tool"]["driver"]["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|r| r["id"] == "web/sqli"));
}

#[test]
fn a_small_request_budget_is_never_exceeded() {
    let app = App::start("vulnapp.py", &[], &[]);
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let run = picket(
        &dir.path().join("state"),
        &dir.path().join("r.json"),
        &["scan", "web", &app.url(), "--max-requests", "150"],
        &[],
    );
    assert_eq!(run.out.status.code(), Some(0), "{}", stderr(&run));
    let served = app.admin("GET", "/stats")["requests"]
        .as_u64()
        .unwrap_or(u64::MAX);
    assert!(
        served <= 150,
        "server counted {served} requests for --max-requests 150"
    );
    assert!(served >= 100, "the budget should have been used: {served}");
    let warnings = run.report["warnings"].to_string();
    assert!(warnings.contains("request budget"), "{warnings}");
}

#[test]
fn bigapp_is_crawled_at_max_rps_50_measured_at_the_server() {
    let app = App::start("bigapp.py", &[], &[]);
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let run = picket(
        &dir.path().join("state"),
        &dir.path().join("r.json"),
        &[
            "scan",
            "web",
            &app.url(),
            "--max-rps",
            "50",
            "--max-pages",
            "400",
        ],
        &[],
    );
    assert_eq!(run.out.status.code(), Some(0), "{}", stderr(&run));
    let stats = app.admin("GET", "/stats");
    let max = stats["max_in_window"].as_u64().unwrap_or(u64::MAX);
    let served = stats["requests"].as_u64().unwrap_or(0);
    assert!(
        max <= 50,
        "{max} requests in one second at --max-rps 50: {stats}"
    );
    let pages = run.report["web"]["pages"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let crawled = pages
        .iter()
        .filter_map(Value::as_str)
        .filter(|p| p.contains("/page/"))
        .count();
    assert!(crawled >= 200, "only {crawled} of the 200 pages crawled");
    // At 50 per second the scan cannot be faster than its request count allows.
    assert!(
        run.wall.as_secs_f64() >= (served as f64 - 50.0) / 50.0,
        "{served} requests in {:?}",
        run.wall
    );
    eprintln!(
        "bigapp: {served} requests, max {max} in a second, {:.1} s",
        run.wall.as_secs_f64()
    );
}

#[test]
fn hostile_server_ends_bounded_with_warnings_and_no_panic() {
    let app = App::start("hostile.py", &[], &[]);
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let report = dir.path().join("r.json");
    let mut cmd = Command::new("/usr/bin/time");
    cmd.args(["-f", "%M"]).arg(env!("CARGO_BIN_EXE_picket"));
    cmd.arg("--state-dir")
        .arg(dir.path().join("state"))
        .args(["--format", "json", "--output"])
        .arg(&report);
    cmd.args([
        "scan",
        "web",
        &app.url(),
        "--timeout",
        "3",
        "--scan-timeout",
        "90",
        "--max-requests",
        "2000",
        "--max-pages",
        "300",
    ]);
    let started = Instant::now();
    let out = cmd.output().unwrap_or_else(|e| panic!("{e}"));
    let wall = started.elapsed();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(wall < Duration::from_secs(90), "took {wall:?}");
    let rss_kb: u64 = err
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(u64::MAX);
    assert!(rss_kb < 300 * 1024, "peak RSS {rss_kb} kB");
    let r: Value =
        serde_json::from_slice(&std::fs::read(&report).unwrap_or_default()).unwrap_or(Value::Null);
    let warnings = r["warnings"].to_string();
    let pages: Vec<String> = r["web"]["pages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p.as_str().map(url_path))
        .collect();
    // Each behaviour ends as an error (a warning naming the URL) or a page handled within caps.
    for (path, expect_warning) in [
        ("/endless", true),
        ("/endless-close", true),
        ("/huge-header", true),
        ("/many-headers", true),
        ("/slowloris", true),
        ("/slow-body", true),
        ("/garbage", true),
        ("/redirect-loop", false),
        ("/redirect-self", false),
        ("/invalid-utf8", false),
        ("/nested", false),
        ("/lying-length", false),
        ("/gzip-bomb", false),
    ] {
        let warned =
            warnings.contains(&format!("{path}:")) || warnings.contains(&format!("{path}\""));
        let fetched = pages.iter().any(|p| p == path);
        assert!(
            warned || fetched,
            "{path}: neither fetched nor warned about\n{warnings}"
        );
        if expect_warning {
            assert!(warned, "{path}: no warning\n{warnings}");
        }
    }
    // Links inside the hostile pages were still found: under 100k nested divs, around bad UTF-8.
    assert!(
        pages.iter().any(|p| p == "/nested-bottom"),
        "deep link not followed: {pages:?}"
    );
    let chain = pages
        .iter()
        .filter(|p| p.starts_with("/redirect-chain/"))
        .count();
    assert!(chain <= 12, "redirect chain followed {chain} times");
    eprintln!(
        "hostile: {:.1} s, peak RSS {} MB",
        wall.as_secs_f64(),
        rss_kb / 1024
    );
}

#[test]
fn bad_input_exits_2_naming_it() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    for (args, needle) in [
        (vec!["scan", "web", "ftp://127.0.0.1/"], "ftp://127.0.0.1/"),
        (
            vec![
                "scan",
                "web",
                "http://127.0.0.1:9/",
                "--login-url",
                "/login",
                "--username",
                "a",
                "--password-env",
                "PICKET_TEST_UNSET_VAR",
            ],
            "PICKET_TEST_UNSET_VAR",
        ),
        (
            vec![
                "scan",
                "web",
                "http://127.0.0.1:9/",
                "--header",
                "bad header",
            ],
            "bad header",
        ),
        (
            vec![
                "scan",
                "web",
                "http://127.0.0.1:9/",
                "--openapi",
                "/nonexistent/openapi.json",
            ],
            "/nonexistent/openapi.json",
        ),
    ] {
        let run = picket(
            &dir.path().join("state"),
            &dir.path().join("r.json"),
            &args,
            &[],
        );
        assert_eq!(run.out.status.code(), Some(2), "{args:?}: {}", stderr(&run));
        assert!(stderr(&run).contains(needle), "{args:?}: {}", stderr(&run));
    }
    // Nothing listens on port 9 of loopback: a runtime failure.
    let run = picket(
        &dir.path().join("state"),
        &dir.path().join("r.json"),
        &["scan", "web", "http://127.0.0.1:9/"],
        &[],
    );
    assert_eq!(run.out.status.code(), Some(3), "{}", stderr(&run));
}

/// An `openssl s_server` on loopback with a self-signed certificate that still accepts TLS 1.0
/// and 1.1; killed when dropped.
struct TlsServer {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl TlsServer {
    fn start() -> TlsServer {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        let gen = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=localhost",
                "-keyout",
            ])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .unwrap_or_else(|e| panic!("openssl req: {e}"));
        assert!(
            gen.status.success(),
            "{}",
            String::from_utf8_lossy(&gen.stderr)
        );
        // A free port: bound by us, released, then taken by s_server (loopback only).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("{e}"));
        let mut child = Command::new("openssl")
            .args([
                "s_server",
                "-accept",
                &format!("127.0.0.1:{port}"),
                "-www",
                "-min_protocol",
                "TLSv1",
                "-cipher",
                "DEFAULT:@SECLEVEL=0",
                "-cert",
            ])
            .arg(&cert)
            .arg("-key")
            .arg(&key)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("openssl s_server: {e}"));
        let out = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
        let mut reader = BufReader::new(out);
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap_or(0) > 0 && !line.contains("ACCEPT") {
            line.clear();
        }
        assert!(line.contains("ACCEPT"), "s_server did not start");
        TlsServer {
            child,
            port,
            _dir: dir,
        }
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn tls_obsolete_versions_and_an_untrusted_certificate_are_reported() {
    let server = TlsServer::start();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let url = format!("https://127.0.0.1:{}/", server.port);
    // Without --insecure-tls the self-signed certificate stops the scan (exit 3, named).
    let refused = picket(
        &dir.path().join("state"),
        &dir.path().join("r0.json"),
        &["scan", "web", &url, "--passive-only"],
        &[],
    );
    assert_eq!(refused.out.status.code(), Some(3), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("TLS") || stderr(&refused).contains("certificate"),
        "{}",
        stderr(&refused)
    );
    let run = picket(
        &dir.path().join("state"),
        &dir.path().join("r.json"),
        &[
            "scan",
            "web",
            &url,
            "--insecure-tls",
            "--passive-only",
            "--max-pages",
            "3",
        ],
        &[],
    );
    assert_eq!(run.out.status.code(), Some(0), "{}", stderr(&run));
    let checks: Vec<String> = run.report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| f["title"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        checks
            .iter()
            .any(|t| t.contains("TLSv1.0") && t.contains("TLSv1.1")),
        "{checks:?}"
    );
    assert!(
        checks
            .iter()
            .any(|t| t.starts_with("TLS certificate not valid")),
        "{checks:?}"
    );
}

/// One raw HTTP/1.1 exchange with the app (for the test's own login): (head, body).
fn http(port: u16, request: &str) -> (String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap_or_else(|e| panic!("{e}"));
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    s.write_all(request.as_bytes())
        .unwrap_or_else(|e| panic!("{e}"));
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (head.to_owned(), body.to_owned())
}

#[test]
fn a_session_cookie_from_the_environment_and_an_openapi_file_are_used() {
    let app = App::start("vulnapp.py", &[], &[]);
    // Log in by hand: the form's CSRF token, then the session cookie from the answer.
    let (_, page) = http(
        app.port,
        "GET /login HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    let token = page
        .split("name=\"csrf_token\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_else(|| panic!("no csrf token in {page}"));
    let body = format!("csrf_token={token}&next=%2Faccount&username=alice&password=wonderland");
    let (head, _) = http(
        app.port,
        &format!("POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()),
    );
    let sid = head
        .lines()
        .filter_map(|l| l.strip_prefix("Set-Cookie: sid="))
        .next()
        .and_then(|v| v.split(';').next())
        .unwrap_or_else(|| panic!("no session in {head}"))
        .to_owned();
    // The API document as a file, with the app's own document as its content.
    let (_, doc) = http(
        app.port,
        "GET /openapi.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let doc_path = dir.path().join("api.json");
    std::fs::write(&doc_path, doc).unwrap_or_else(|e| panic!("{e}"));
    let run = picket(
        &dir.path().join("state"),
        &dir.path().join("r.json"),
        &[
            "scan",
            "web",
            &app.url(),
            "--cookie-env",
            "sid=WEBSCAN_TEST_SID",
            "--openapi",
            doc_path.to_str().unwrap_or_default(),
            "--passive-only",
            "--max-pages",
            "200",
        ],
        &[("WEBSCAN_TEST_SID", &sid)],
    );
    assert_eq!(run.out.status.code(), Some(0), "{}", stderr(&run));
    assert_eq!(run.report["web"]["authenticated"], Value::Bool(true));
    // Pages behind the login were crawled with the cookie, and not a single login happened.
    let pages = run.report["web"]["pages"].to_string();
    assert!(
        pages.contains("/notes") && pages.contains("/account"),
        "{pages}"
    );
    assert_eq!(
        app.admin("GET", "/stats")["logins"].as_u64(),
        Some(1),
        "only the test's own login"
    );
    let endpoints = run.report["web"]["endpoints"].to_string();
    assert!(
        endpoints.contains("/api/v2/stock") && endpoints.contains("json:sku"),
        "{endpoints}"
    );
    // The session token is not in the report (evidence shows `sid=[redacted]`).
    let report_text = std::fs::read_to_string(dir.path().join("r.json")).unwrap_or_default();
    assert!(!report_text.contains(&sid), "session cookie in the report");
    assert!(
        report_text.contains("sid=[redacted]"),
        "no redacted cookie in the evidence"
    );
}
