//! `picket kb import` and `picket kb status`, through the binary: idempotence, what a malformed
//! record, a missing path and a damaged archive do, and that an import killed at any moment
//! leaves the previous knowledge base whole.

use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Instant;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../kb/testdata/osv")
}

fn picket(state: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_picket"))
        .arg("--state-dir")
        .arg(state)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run picket: {e}"))
}

fn json_of(out: &Output, what: &str) -> Value {
    assert!(
        out.status.success(),
        "{what} exited {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{what} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn import(state: &Path, paths: &[&Path]) -> Value {
    let mut args = vec![
        "--format".to_owned(),
        "json".to_owned(),
        "kb".to_owned(),
        "import".to_owned(),
    ];
    args.extend(paths.iter().map(|p| p.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    json_of(&picket(state, &args), "kb import")
}

fn status(state: &Path) -> Value {
    json_of(
        &picket(state, &["--format", "json", "kb", "status"]),
        "kb status",
    )
}

/// (ecosystem, advisories) pairs of `kb status`.
fn counts(status: &Value) -> Vec<(String, u64)> {
    status["ecosystems"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            (
                e["ecosystem"].as_str().unwrap_or_default().to_owned(),
                e["advisories"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"))
}

fn record(id: &str, eco: &str, name: &str, fixed: &str, modified: &str) -> String {
    format!(
        r#"{{"id":"{id}","modified":"{modified}","aliases":["CVE-2099-{n}"],"summary":"synthetic {id}",
        "affected":[{{"package":{{"ecosystem":"{eco}","name":"{name}"}},
        "ranges":[{{"type":"ECOSYSTEM","events":[{{"introduced":"0"}},{{"fixed":"{fixed}"}}]}}]}}]}}"#,
        n = id.len()
    )
}

#[test]
fn import_is_idempotent_and_reports_what_changed() {
    let state = tempdir();
    let first = import(state.path(), &[&fixtures()]);
    assert_eq!(first["added"], 15, "{first}");
    assert_eq!(first["withdrawn"], 1);
    assert_eq!(first["malformed"], 0);
    assert_eq!(
        first["advisories"], 14,
        "withdrawn records are kept but not counted"
    );
    let again = import(state.path(), &[&fixtures()]);
    assert_eq!(
        (
            again["added"].as_u64(),
            again["updated"].as_u64(),
            again["unchanged"].as_u64()
        ),
        (Some(0), Some(0), Some(15)),
        "{again}"
    );
    let st = status(state.path());
    assert_eq!(st["advisories"], 14);
    let c = counts(&st);
    assert!(c.contains(&("Debian:12".to_owned(), 2)), "{c:?}");
    assert!(c.contains(&("PyPI".to_owned(), 3)), "{c:?}");
    assert!(c.contains(&("Rocky Linux:9".to_owned(), 1)), "{c:?}");
    // Every listed ecosystem says how old its newest record is.
    for e in st["ecosystems"].as_array().into_iter().flatten() {
        assert!(e["age_days"].as_i64().is_some_and(|d| d > 300), "{e}");
    }
}

#[test]
fn an_updated_record_moves_between_ecosystems_and_counts_follow() {
    let state = tempdir();
    let dir = tempdir();
    let f = dir.path().join("T-1.json");
    std::fs::write(
        &f,
        record("T-1", "Debian:12", "zlib", "1:1.3", "2099-01-01T00:00:00Z"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    import(state.path(), &[dir.path()]);
    assert_eq!(
        counts(&status(state.path())),
        vec![("Debian:12".to_owned(), 1)]
    );
    std::fs::write(
        &f,
        record("T-1", "Debian:11", "zlib", "1:1.3", "2099-02-01T00:00:00Z"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let r = import(state.path(), &[dir.path()]);
    assert_eq!(
        (r["added"].as_u64(), r["updated"].as_u64()),
        (Some(0), Some(1)),
        "{r}"
    );
    let c = counts(&status(state.path()));
    assert!(c.contains(&("Debian:11".to_owned(), 1)), "{c:?}");
    assert!(c.contains(&("Debian:12".to_owned(), 0)), "{c:?}");
}

#[test]
fn a_malformed_record_is_reported_and_skipped() {
    let state = tempdir();
    let dir = tempdir();
    std::fs::write(
        dir.path().join("good.json"),
        record("T-1", "Debian:12", "zlib", "1:1.3", "2099-01-01T00:00:00Z"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("bad.json"), br#"{"id":"T-BAD","modified":"x","affected":[{"ranges":[{"type":"ECOSYSTEM","events":[{"fixed":"1","introduced":"0"}]}]}]}"#)
        .unwrap_or_else(|e| panic!("{e}"));
    let out = picket(
        state.path(),
        &[
            "--format",
            "json",
            "kb",
            "import",
            &dir.path().display().to_string(),
        ],
    );
    let r = json_of(&out, "kb import");
    assert_eq!(
        (r["added"].as_u64(), r["malformed"].as_u64()),
        (Some(1), Some(1)),
        "{r}"
    );
    let err = &r["errors"][0];
    assert_eq!(err["id"], "T-BAD");
    assert!(
        err["path"]
            .as_str()
            .is_some_and(|p| p.ends_with("bad.json")),
        "{err}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.json"),
        "stderr names the file: {stderr}"
    );
}

#[test]
fn an_unreadable_source_exits_2_and_imports_nothing() {
    let state = tempdir();
    import(state.path(), &[&fixtures()]);
    let before = status(state.path());

    let out = picket(state.path(), &["kb", "import", "/nonexistent/osv/all.zip"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/osv/all.zip"));

    // A damaged archive after a good source: neither is imported.
    let dir = tempdir();
    let good = dir.path().join("good.json");
    std::fs::write(
        &good,
        record("T-9", "PyPI", "requests", "2.99", "2099-01-01T00:00:00Z"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let zip_path = dir.path().join("all.zip");
    write_zip(&zip_path, 50, "Debian:12");
    let bytes = std::fs::read(&zip_path).unwrap_or_default();
    std::fs::write(&zip_path, &bytes[..bytes.len() - 40]).unwrap_or_else(|e| panic!("{e}"));
    let out = picket(
        state.path(),
        &[
            "kb",
            "import",
            &good.display().to_string(),
            &zip_path.display().to_string(),
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("all.zip"));
    let after = status(state.path());
    assert_eq!(before["ecosystems"], after["ecosystems"]);
    assert_eq!(before["advisories"], after["advisories"]);
}

fn write_zip(path: &Path, n: usize, eco: &str) {
    let file = std::fs::File::create(path).unwrap_or_else(|e| panic!("{e}"));
    let mut zip = zip::ZipWriter::new(std::io::BufWriter::new(file));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for i in 0..n {
        let id = format!("BIG-{i:06}");
        zip.start_file(format!("{id}.json"), opts)
            .unwrap_or_else(|e| panic!("{e}"));
        let body = record(
            &id,
            eco,
            &format!("pkg{}", i % 5000),
            "1.0-1",
            "2099-01-01T00:00:00Z",
        );
        zip.write_all(body.as_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
    }
    zip.finish().unwrap_or_else(|e| panic!("{e}"));
}

/// An import killed with SIGKILL at several moments: afterwards the knowledge base is either
/// exactly the previous one or exactly the previous one plus the whole archive, never a part.
#[test]
fn an_import_killed_at_any_moment_leaves_the_previous_knowledge_base() {
    let dir = tempdir();
    let big = dir.path().join("all.zip");
    write_zip(&big, 20_000, "Debian:12");
    // How long a whole import takes here, to spread the kills over it.
    let probe = tempdir();
    let t0 = Instant::now();
    import(probe.path(), &[&big]);
    let full = t0.elapsed();

    let mut outcomes = Vec::new();
    for step in 1..=4u32 {
        let state = tempdir();
        import(state.path(), &[&fixtures()]);
        let before = counts(&status(state.path()));
        let mut child = Command::new(env!("CARGO_BIN_EXE_picket"))
            .arg("--state-dir")
            .arg(state.path())
            .args(["-q", "kb", "import"])
            .arg(&big)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn: {e}"));
        std::thread::sleep(full * step / 5);
        let _ = child.kill();
        let _ = child.wait();
        let after = counts(&status(state.path()));
        let debian12 = |c: &[(String, u64)]| {
            c.iter()
                .find(|(e, _)| e == "Debian:12")
                .map_or(0, |(_, n)| *n)
        };
        let (b, a) = (debian12(&before), debian12(&after));
        assert!(
            a == b || a == b + 20_000,
            "kill at {step}/5 of {full:?}: Debian:12 went from {b} to {a}, a partial import"
        );
        // The rest of the knowledge base is untouched either way.
        let others = |c: &[(String, u64)]| -> Vec<(String, u64)> {
            c.iter()
                .filter(|(e, _)| e != "Debian:12")
                .cloned()
                .collect()
        };
        assert_eq!(others(&before), others(&after));
        // And it still imports.
        let r = import(state.path(), &[&big]);
        assert_eq!(r["advisories"], 20_000 + 14);
        outcomes.push(a != b);
    }
    eprintln!("imports that finished before the kill: {outcomes:?}");
    assert!(
        outcomes.contains(&false),
        "no kill landed before the import finished"
    );
}
