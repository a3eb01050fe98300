//! The console page: in headless Chromium (Debian's chromium + chromedriver, driven by
//! `console_browser.py` through Debian's Selenium) against a platform with one enrolled appliance
//! and ingested findings; and its protections (session, CSRF, CSP, escaping) over raw HTTPS.
//!
//! The browser test fails, rather than skips, when Chromium is missing, unless
//! `PICKET_SKIP_BROWSER=1`. Screenshots go to `platform/tests/out/` (ignored by git).

mod common;

use common::{config, start, Enrolled, TestPlatform};
use picket_model::api::{Heartbeat, JobView, ResultChunk};
use picket_model::{Asset, Finding, ScanKind, Severity};
use picket_platform::client::Conn;
use std::path::Path;
use std::process::Command;

const TITLE: &str = "OpenSSH 8.4 user enumeration";

async fn seed(tp: &TestPlatform, e: &Enrolled) {
    let mut c = tp.conn_as(e).await;
    let hb = Heartbeat {
        picket_version: "0.1.0".into(),
        hostname: "lab-appliance".into(),
        uptime_secs: 3600,
        ..Heartbeat::default()
    };
    common::heartbeat(&mut c, &hb).await;
    let findings = (0..20)
        .map(|i| Finding {
            id: format!("f{i}"),
            title: if i == 0 {
                TITLE.into()
            } else {
                format!("Finding number {i}")
            },
            severity: if i == 0 {
                Severity::High
            } else {
                Severity::Medium
            },
            cwe: vec![],
            cve: vec!["CVE-2016-6210".into()],
            asset: Asset {
                address: Some(format!("198.18.0.{}", i + 2)),
                port: Some(22),
                protocol: Some(picket_model::Protocol::Tcp),
                ..Asset::default()
            },
            evidence: "SSH-2.0-OpenSSH_8.4".into(),
            remediation: "upgrade".into(),
        })
        .collect();
    let chunk = ResultChunk {
        scan_id: "20261121T110000Z-c0ffee00".into(),
        job_id: None,
        kind: ScanKind::Net,
        seq: 0,
        total: 1,
        started_at: "2026-11-21T11:00:00Z".into(),
        finished_at: "2026-11-21T11:00:30Z".into(),
        targets: vec!["198.18.0.0/24".into()],
        findings,
        report_part: None,
    };
    let key = chunk.key();
    let ans = c
        .post_json(
            "/api/v1/appliance/results",
            &[("idempotency-key", &key)],
            &chunk,
        )
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(ans.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_in_headless_chromium() {
    if std::env::var("PICKET_SKIP_BROWSER").as_deref() == Ok("1") {
        eprintln!("PICKET_SKIP_BROWSER=1: browser test skipped");
        return;
    }
    for tool in ["/usr/bin/chromium", "/usr/bin/chromedriver"] {
        assert!(
            Path::new(tool).exists(),
            "{tool} missing: run scripts/install-deps.sh (or PICKET_SKIP_BROWSER=1)"
        );
    }
    let tp = start(config()).await;
    let e = tp.enroll().await;
    seed(&tp, &e).await;

    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/out");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console_browser.py");
    let url = format!("https://localhost:{}", tp.addr.port());
    let args = vec![
        script.display().to_string(),
        url,
        tp.token.clone(),
        e.id.clone(),
        TITLE.to_string(),
        out.display().to_string(),
    ];
    let output = tokio::task::spawn_blocking(move || {
        Command::new("/usr/bin/python3")
            .args(&args)
            .output()
            .unwrap_or_else(|err| panic!("running /usr/bin/python3: {err}"))
    })
    .await
    .unwrap_or_else(|err| panic!("{err}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "browser driver failed:\n{stdout}\n{stderr}"
    );
    let job_id = stdout
        .lines()
        .find_map(|l| l.strip_prefix("JOB_ID="))
        .unwrap_or_else(|| panic!("no JOB_ID in {stdout}"))
        .trim()
        .to_string();

    // The job created on the page is in the API, for that appliance, pending.
    let mut c = tp.plain().await;
    let auth = tp.auth();
    let ans = c
        .get(
            &format!("/api/v1/jobs/{job_id}"),
            &[("authorization", &auth)],
        )
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(ans.status, 200, "{}", String::from_utf8_lossy(&ans.body));
    let job: JobView = ans.json().unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(job.appliance_id, e.id);
    assert_eq!(job.job.targets, vec!["198.18.0.0/24".to_string()]);
    assert_eq!(job.job.options.ports.as_deref(), Some("22,80,443"));
    assert_eq!(job.job.kind, ScanKind::Net);

    for shot in [
        "console-fleet.png",
        "console-findings.png",
        "console-jobs.png",
    ] {
        let meta = std::fs::metadata(out.join(shot)).unwrap_or_else(|err| panic!("{shot}: {err}"));
        assert!(meta.len() > 5_000, "{shot} is only {} bytes", meta.len());
    }
}

fn header<'a>(ans: &'a picket_platform::client::Answer, name: &str) -> &'a str {
    ans.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// Posts an urlencoded form, with the session cookie when given.
async fn post_form(
    c: &mut Conn,
    path: &str,
    cookie: Option<&str>,
    body: String,
) -> picket_platform::client::Answer {
    let mut headers = vec![("content-type", "application/x-www-form-urlencoded")];
    if let Some(cookie) = cookie {
        headers.push(("cookie", cookie));
    }
    c.request("POST", path, &headers, Some(body.into_bytes()))
        .await
        .unwrap_or_else(|err| panic!("{err}"))
}

async fn login(c: &mut Conn, token: &str) -> String {
    let body = format!("token={token}");
    let ans = post_form(c, "/console/login", None, body).await;
    assert_eq!(ans.status, 303);
    let cookie = header(&ans, "set-cookie").to_string();
    for flag in ["HttpOnly", "Secure", "SameSite=Strict"] {
        assert!(cookie.contains(flag), "{cookie}");
    }
    cookie.split(';').next().unwrap_or_default().to_string()
}

fn csrf_of(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let i = html.find(marker).unwrap_or_else(|| panic!("no csrf field")) + marker.len();
    html[i..].split('"').next().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_sessions_csrf_csp_and_escaping() {
    let tp = start(config()).await;
    let e = tp.enroll().await;
    // A hostile hostname reported by an appliance must be shown as text.
    let mut ac = tp.conn_as(&e).await;
    let hb = Heartbeat {
        hostname: "<script>alert(1)</script>".into(),
        ..Heartbeat::default()
    };
    common::heartbeat(&mut ac, &hb).await;

    let mut c = tp.plain().await;
    // No session: to the login form.
    let ans = c
        .get("/console", &[])
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(ans.status, 303);
    assert_eq!(header(&ans, "location"), "/console/login");
    // Wrong token: no cookie.
    let ans = post_form(&mut c, "/console/login", None, "token=nope".to_string()).await;
    assert_eq!(ans.status, 401);
    assert!(header(&ans, "set-cookie").is_empty());

    let cookie = login(&mut c, &tp.token).await;
    let ans = c
        .get("/console", &[("cookie", &cookie)])
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(ans.status, 200);
    let csp = header(&ans, "content-security-policy");
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("script-src"),
        "{csp}"
    );
    assert_eq!(header(&ans, "x-content-type-options"), "nosniff");
    let html = String::from_utf8_lossy(&ans.body).to_string();
    assert!(
        !html.contains("<script>alert(1)</script>"),
        "unescaped hostname"
    );
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    let csrf = csrf_of(&html);

    // A form without the CSRF token (or with another) is refused and creates nothing.
    let form = format!(
        "csrf=wrong&appliance_id={}&kind=net&targets=198.18.0.2",
        e.id
    );
    let ans = post_form(&mut c, "/console/jobs", Some(&cookie), form).await;
    assert_eq!(ans.status, 403);
    assert!(tp.platform.store.jobs().unwrap_or_default().is_empty());

    // With it: created.
    let form = format!("csrf={csrf}&appliance_id={}&kind=net&targets=198.18.0.2%0A198.18.0.3&every_secs=&timeout_secs=60", e.id);
    let ans = post_form(&mut c, "/console/jobs", Some(&cookie), form).await;
    assert_eq!(ans.status, 303, "{}", String::from_utf8_lossy(&ans.body));
    let jobs = tp.platform.store.jobs().unwrap_or_default();
    assert_eq!(jobs.len(), 1);
    assert_eq!(
        jobs[0].job.targets,
        vec!["198.18.0.2".to_string(), "198.18.0.3".to_string()]
    );
    assert_eq!(jobs[0].job.timeout_secs, 60);

    // Enrollment code from the page works for enrollment.
    let ans = post_form(
        &mut c,
        "/console/codes",
        Some(&cookie),
        format!("csrf={csrf}&label=rack+4"),
    )
    .await;
    assert_eq!(ans.status, 200);
    let html = String::from_utf8_lossy(&ans.body).to_string();
    let i = html
        .find("id=\"code\">")
        .unwrap_or_else(|| panic!("no code"))
        + 10;
    let code = html[i..].split('<').next().unwrap_or_default().to_string();
    let (status, _, _) = tp.try_enroll(&code).await;
    assert_eq!(status, 200);

    // Revocation from the appliance page: refused without the form token, done with it; the
    // page and the fleet then say so, and the appliance is refused.
    let path = format!("/console/appliances/{}/revoke", e.id);
    let ans = post_form(
        &mut c,
        &path,
        Some(&cookie),
        "csrf=wrong&reason=x".to_string(),
    )
    .await;
    assert_eq!(ans.status, 403);
    assert!(tp
        .platform
        .store
        .revocation(&e.id)
        .unwrap_or_default()
        .is_none());
    let detail = format!("/console/appliances/{}", e.id);
    let ans = c
        .get(&detail, &[("cookie", &cookie)])
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    assert!(String::from_utf8_lossy(&ans.body).contains("id=\"revoke\""));
    let form = format!("csrf={csrf}&reason=%3Cb%3Edecommissioned%3C%2Fb%3E");
    let ans = post_form(&mut c, &path, Some(&cookie), form).await;
    assert_eq!(ans.status, 303, "{}", String::from_utf8_lossy(&ans.body));
    assert_eq!(header(&ans, "location"), detail);
    let ans = c
        .get(&detail, &[("cookie", &cookie)])
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    let html = String::from_utf8_lossy(&ans.body).to_string();
    assert!(html.contains("id=\"revoked\""), "{html}");
    assert!(
        html.contains("&lt;b&gt;decommissioned&lt;/b&gt;"),
        "reason not escaped"
    );
    assert!(
        !html.contains("id=\"revoke\""),
        "the form is gone once revoked"
    );
    let ans = c
        .get("/console", &[("cookie", &cookie)])
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    assert!(String::from_utf8_lossy(&ans.body).contains("<td class=\"revoked\">revoked</td>"));
    let ans = ac
        .get("/api/v1/appliance/poll?wait=0", &[])
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(ans.status, 403);

    // Logged out: the cookie no longer opens the console.
    let ans = post_form(
        &mut c,
        "/console/logout",
        Some(&cookie),
        format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(ans.status, 303);
    let ans = c
        .get("/console/jobs", &[("cookie", &cookie)])
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(ans.status, 303);
}
