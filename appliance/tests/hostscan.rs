//! End-to-end tests of `picket scan host` against the SSH lab of the namespace test network
//! (`netscan/testnet/sshlab.sh`): real OpenSSH servers in private mount namespaces — `deb` is
//! this machine's own root, `rocky` sees an RPM database made by the real `rpm`, `alpine` an apk
//! installed database, `hostile-ssh` has users whose shells print 100 MB or binary junk.
//!
//! Needs root; skipped with `PICKET_SKIP_NETNS=1` like the other network tests.

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const SCAN_TIMEOUT: Duration = Duration::from_secs(180);

/// What `sshlab.sh info` says about the lab.
fn lab(net: &TestNet) -> Value {
    let script = net.script.with_file_name("sshlab.sh");
    let out = Command::new(&script)
        .arg("info")
        .arg(&net.state_dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "sshlab.sh info failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("sshlab info is not JSON: {e}"))
}

fn client_key(lab: &Value, kind: &str) -> String {
    lab["client_keys"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|k| k["type"].as_str().is_some_and(|t| t.contains(kind)))
        .and_then(|k| k["path"].as_str())
        .unwrap_or_else(|| panic!("no {kind} client key in the lab"))
        .to_owned()
}

fn addr(lab: &Value, host: &str) -> String {
    lab["hosts"][host]["address"]
        .as_str()
        .unwrap_or_else(|| panic!("no address for lab host {host}"))
        .to_owned()
}

/// A fresh state directory the scanner namespace can use.
fn state() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"))
}

/// `picket --state-dir S --format json scan host ARGS...` in the scanner namespace, with `env`
/// variables set; returns the run and the report (if it printed one).
fn scan_host(net: &TestNet, state: &Path, env: &[(&str, &str)], args: &[&str]) -> (Run, Value) {
    let mut cmd: Vec<String> = vec!["env".into()];
    cmd.extend(env.iter().map(|(k, v)| format!("{k}={v}")));
    cmd.push(picket_bin().into());
    cmd.extend(
        [
            "--state-dir",
            &state.display().to_string(),
            "--format",
            "json",
            "scan",
            "host",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    cmd.extend(args.iter().map(|s| s.to_string()));
    let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
    let run = run_in_ns(&net.truth.scanner_ns, &cmd, SCAN_TIMEOUT);
    assert!(
        !run.stderr.contains("panicked"),
        "picket panicked: {}",
        clip(&run.stderr)
    );
    let report = serde_json::from_str(&run.stdout).unwrap_or(Value::Null);
    (run, report)
}

fn host_of<'a>(report: &'a Value, target: &str) -> &'a Value {
    report["hosts"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|h| h["target"] == target)
        .unwrap_or_else(|| panic!("no host {target} in the report"))
}

fn local_dpkg() -> BTreeSet<(String, String, String)> {
    let out = Command::new("dpkg-query")
        .args([
            "-W",
            "-f",
            "${Package}\t${Version}\t${Architecture}\t${db:Status-Abbrev}\n",
        ])
        .output()
        .unwrap_or_else(|e| panic!("dpkg-query: {e}"));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            // Installed (or held) packages: what a host runs.
            (f.len() == 4 && f[3].get(1..2) == Some("i"))
                .then(|| (f[0].to_owned(), f[1].to_owned(), f[2].to_owned()))
        })
        .collect()
}

fn packages(host: &Value) -> BTreeSet<(String, String, String)> {
    host["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let s = |k: &str| p[k].as_str().unwrap_or_default().to_owned();
            (s("name"), s("version"), s("arch"))
        })
        .collect()
}

/// (advisory, binary package, installed version, fixed version): what identifies a package
/// finding, in the report and in the corpus's expectations alike.
type FindingKey = (String, String, String, Option<String>);

fn finding_key(f: &Value) -> FindingKey {
    let s = |k: &str| f[k].as_str().unwrap_or_default().to_owned();
    (
        s("advisory"),
        s("package"),
        s("installed_version"),
        f["fixed_version"].as_str().map(str::to_owned),
    )
}

/// The machine's own root over SSH: the inventory equals `dpkg-query -W`, and with the corpus
/// generated around the installed versions, exactly the expected findings are reported.
#[test]
fn deb_host_inventory_and_findings_are_exact() {
    let Some(net) = testnet() else { return };
    let _x = exclusive();
    let lab = lab(net);
    let target = format!("ssh://root@{}", addr(&lab, "deb"));
    let key = client_key(&lab, "ed25519");
    let st = state();

    // The corpus: advisories fixed above, at and below installed versions, unfixed, other
    // releases, binary-vs-source names, epochs; expected findings decided by dpkg itself.
    let corpus = state();
    let list = corpus.path().join("dpkg.txt");
    let out = Command::new("dpkg-query")
        .args([
            "-W",
            "-f",
            "${Package}\t${Version}\t${Architecture}\t${source:Package}\t${source:Version}\t${db:Status-Abbrev}\n",
        ])
        .output()
        .unwrap_or_else(|e| panic!("dpkg-query: {e}"));
    std::fs::write(&list, &out.stdout).unwrap_or_else(|e| panic!("{e}"));
    let gen = Path::new(env!("CARGO_MANIFEST_DIR")).join("../kb/testdata/host-corpus/gen.py");
    let outdir = corpus.path().join("out");
    let g = Command::new("/usr/bin/python3")
        .arg(&gen)
        .arg(&list)
        .arg(&outdir)
        .output()
        .unwrap_or_else(|e| panic!("gen.py: {e}"));
    assert!(
        g.status.success(),
        "gen.py failed: {}",
        String::from_utf8_lossy(&g.stderr)
    );
    let imp = Command::new(picket_bin())
        .arg("--state-dir")
        .arg(st.path())
        .args(["-q", "kb", "import"])
        .arg(outdir.join("advisories"))
        .output()
        .unwrap_or_else(|e| panic!("kb import: {e}"));
    assert!(
        imp.status.success(),
        "{}",
        String::from_utf8_lossy(&imp.stderr)
    );

    let (run, report) = scan_host(
        net,
        st.path(),
        &[],
        &[&target, "--identity", &key, "--trust-on-first-use"],
    );
    run.assert_success(&["scan", "host", &target]);
    let host = &report["host"];
    assert_eq!(host["status"], "ok", "{}", clip(&run.stderr));
    assert_eq!(host["package_manager"], "dpkg");
    assert_eq!(
        packages(host),
        local_dpkg(),
        "inventory differs from dpkg-query -W"
    );
    let os = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    assert!(os.contains(&format!(
        "VERSION_ID=\"{}\"",
        host["os"]["version_id"].as_str().unwrap_or("?")
    )));
    let uname = Command::new("uname")
        .arg("-r")
        .output()
        .map(|o| o.stdout)
        .unwrap_or_default();
    assert_eq!(
        host["kernel"].as_str(),
        Some(String::from_utf8_lossy(&uname).trim())
    );
    assert!(host["packages"][0]["ecosystem"]
        .as_str()
        .is_some_and(|e| e.starts_with("Debian:")));

    let expected: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(outdir.join("expected.json")).unwrap_or_default(),
    )
    .unwrap_or_else(|e| panic!("expected.json: {e}"));
    let want: BTreeSet<FindingKey> = expected.iter().map(finding_key).collect();
    let got: BTreeSet<FindingKey> = report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["advisory"].is_string())
        .map(finding_key)
        .collect();
    let missing: Vec<_> = want.difference(&got).collect();
    let extra: Vec<_> = got.difference(&want).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "findings differ from the corpus's expectations: missing {missing:?}, extra {extra:?}"
    );
    assert!(
        want.len() > 20,
        "the corpus should affect this host ({} findings)",
        want.len()
    );
    // Every package finding carries the advisory's CVE alias and a severity.
    for f in report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["advisory"].is_string())
    {
        assert!(
            f["aliases"].as_array().is_some_and(|a| !a.is_empty()),
            "{f}"
        );
        assert!(f["cve"].as_array().is_some_and(|a| !a.is_empty()), "{f}");
        assert!(
            f.get("fixed_version").is_some(),
            "fixed_version is always present: {f}"
        );
    }
    // Configuration checks have stable ids and no package keys.
    let config: Vec<&Value> = report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| {
            f["id"]
                .as_str()
                .is_some_and(|i| i.starts_with("host.config."))
        })
        .collect();
    assert!(config.iter().all(|f| f.get("package").is_none()));

    // The scan is in the history, shown exactly as printed.
    let id = report["scan"]["id"].as_str().unwrap_or_default().to_owned();
    let show = Command::new(picket_bin())
        .arg("--state-dir")
        .arg(st.path())
        .args(["--format", "json", "scans", "show", &id])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(String::from_utf8_lossy(&show.stdout), run.stdout);
}

/// RPM and APK databases made by the real tools (rpm) or in apk's format are read.
#[test]
fn rocky_rpm_and_alpine_apk_inventories_are_read() {
    let Some(net) = testnet() else { return };
    let _x = exclusive();
    let lab = lab(net);
    let key = client_key(&lab, "ecdsa");
    let st = state();
    let rocky = format!("ssh://root@{}", addr(&lab, "rocky"));
    let alpine = format!("ssh://root@{}", addr(&lab, "alpine"));
    let (run, report) = scan_host(
        net,
        st.path(),
        &[],
        &[&rocky, &alpine, "--identity", &key, "--trust-on-first-use"],
    );
    run.assert_success(&["scan", "host", &rocky, &alpine]);
    assert!(
        report.get("host").is_none(),
        "two targets: no single `host` object"
    );

    let r = host_of(&report, &rocky);
    assert_eq!(r["package_manager"], "rpm");
    assert_eq!(r["os"]["id"], "rocky");
    let want: BTreeSet<(String, String, String)> = lab["hosts"]["rocky"]["rpm_packages"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let epoch = p["epoch"].as_u64().unwrap_or(0);
            let evr = format!(
                "{}{}-{}",
                if epoch > 0 {
                    format!("{epoch}:")
                } else {
                    String::new()
                },
                p["version"].as_str().unwrap_or_default(),
                p["release"].as_str().unwrap_or_default()
            );
            (
                p["name"].as_str().unwrap_or_default().to_owned(),
                evr,
                p["arch"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(packages(r), want);
    assert!(r["packages"][0]["ecosystem"] == "Rocky Linux:9");

    let a = host_of(&report, &alpine);
    assert_eq!(a["package_manager"], "apk");
    let want: BTreeSet<(String, String, String)> = lab["hosts"]["alpine"]["apk_packages"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let s = |k: &str| p[k].as_str().unwrap_or_default().to_owned();
            (s("name"), s("version"), s("arch"))
        })
        .collect();
    assert_eq!(packages(a), want);
    let ssl = a["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == "libssl3")
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(
        ssl["source_name"], "openssl",
        "apk origin is the source name"
    );
    assert_eq!(ssl["ecosystem"], "Alpine:v3.20");
}

/// Fifty hosts in one command, password login with sudo; then the failures, each on its own
/// host while the others succeed: wrong password, refused connection, changed host key, output
/// that is too large or binary. Nothing of a failed host is stored, and its key is not pinned.
#[test]
fn a_fleet_scans_in_parallel_and_one_hosts_failure_never_stops_the_others() {
    let Some(net) = testnet() else { return };
    let _x = exclusive();
    let lab = lab(net);
    let st = state();
    let fleet: Vec<String> = lab["fleet"]["addresses"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str())
        .map(|a| format!("ssh://picket@{a}"))
        .collect();
    assert_eq!(fleet.len(), 50);
    let inventory = st.path().join("fleet.txt");
    std::fs::write(
        &inventory,
        format!("# the lab fleet\n{}\n", fleet.join("\n")),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let at = format!("@{}", inventory.display());
    let (run, report) = scan_host(
        net,
        st.path(),
        &[("PW", "picket-test-password")],
        &[
            &at,
            "--password-env",
            "PW",
            "--sudo",
            "--trust-on-first-use",
            "--parallel",
            "32",
        ],
    );
    run.assert_success(&["scan", "host", "@fleet"]);
    assert_eq!(report["stats"]["succeeded"], 50, "{}", clip(&run.stderr));
    let one = packages(host_of(&report, &fleet[0]));
    assert!(one.len() > 100);
    for t in &fleet {
        assert_eq!(packages(host_of(&report, t)), one, "{t}");
    }

    // The failures, together with good hosts.
    let deb = addr(&lab, "deb");
    let hostile = addr(&lab, "hostile-ssh");
    let quiet = net.truth.v4_of("quiet");
    let good = format!("ssh://picket@{deb}");
    let flood = format!("ssh://hostile@{hostile}");
    let junk = format!("ssh://junk@{hostile}");
    let refused = format!("ssh://picket@{quiet}");
    let wrong_pw = format!("ssh://picketpw@{deb}");
    let st2 = state();
    // Password login: a good host, a wrong password, a refused connection.
    let (run, report) = scan_host(
        net,
        st2.path(),
        &[("PW", "picket-test-password")],
        &[
            &good,
            &refused,
            &wrong_pw,
            "--password-env",
            "PW",
            "--trust-on-first-use",
            "--connect-timeout",
            "5",
        ],
    );
    assert_eq!(
        run.status.code(),
        Some(0),
        "some hosts succeeded: {}",
        clip(&run.stderr)
    );
    let err = |r: &Value, t: &str| {
        host_of(r, t)["error"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(host_of(&report, &good)["status"], "ok");
    assert!(
        err(&report, &refused).to_lowercase().contains("refused"),
        "{}",
        err(&report, &refused)
    );
    assert!(
        err(&report, &wrong_pw).contains("authentication"),
        "{}",
        err(&report, &wrong_pw)
    );
    let mut failed = vec![
        (report.clone(), run.stderr.clone(), refused.clone()),
        (report, run.stderr, wrong_pw.clone()),
    ];

    // Key login: a good host, and a host whose shell floods 100 MB or prints binary junk.
    let key = client_key(&lab, "ed25519");
    let root_good = format!("ssh://root@{deb}");
    let (run, report) = scan_host(
        net,
        st2.path(),
        &[],
        &[
            &root_good,
            &flood,
            &junk,
            "--identity",
            &key,
            "--trust-on-first-use",
        ],
    );
    assert_eq!(
        run.status.code(),
        Some(0),
        "some hosts succeeded: {}",
        clip(&run.stderr)
    );
    assert_eq!(host_of(&report, &root_good)["status"], "ok");
    let e = err(&report, &flood);
    assert!(e.contains("limit") || e.contains("output"), "{e}");
    assert!(!err(&report, &junk).is_empty());
    failed.push((report.clone(), run.stderr.clone(), flood.clone()));
    failed.push((report, run.stderr, junk.clone()));
    for (report, stderr, t) in &failed {
        let h = host_of(report, t);
        assert_eq!(h["status"], "failed", "{t}");
        assert_eq!(
            h["packages"],
            Value::Array(vec![]),
            "nothing half-written for {t}"
        );
        assert!(
            stderr.contains(t.as_str()),
            "stderr names {t}: {}",
            clip(stderr)
        );
    }

    // Only the good host's key was pinned: a rescan without --trust-on-first-use accepts deb
    // and refuses the hostile host as unknown.
    let (_, again) = scan_host(
        net,
        st2.path(),
        &[],
        &[&root_good, &junk, "--identity", &key],
    );
    assert_eq!(host_of(&again, &root_good)["status"], "ok");
    assert!(
        host_of(&again, &junk)["error"]
            .as_str()
            .is_some_and(|e| e.contains("unknown")),
        "{again}"
    );

    // A changed host key is refused, whatever the credentials, and says how to re-pin.
    let sshlab = net.script.with_file_name("sshlab.sh");
    let rekey = |cmd: &str| {
        let out = Command::new(&sshlab)
            .arg(cmd)
            .arg(&net.state_dir)
            .output()
            .unwrap_or_else(|e| panic!("sshlab {cmd}: {e}"));
        assert!(
            out.status.success(),
            "sshlab {cmd}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    rekey("rekey");
    let (run, changed) = scan_host(
        net,
        st2.path(),
        &[("PW", "picket-test-password")],
        &[&good, "--password-env", "PW", "--trust-on-first-use"],
    );
    rekey("restore");
    assert_eq!(
        run.status.code(),
        Some(3),
        "the only host failed: {}",
        clip(&run.stderr)
    );
    let e = changed["hosts"][0]["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(e.contains("changed") && e.contains("--host-key"), "{e}");
}
