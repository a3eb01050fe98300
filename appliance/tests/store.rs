//! The store, driven through its public API and, where a test plays the part of damage or of
//! another program, through sled and the file system directly.
//!
//! The durability test re-executes this test binary as a child that saves scans and is then
//! killed with SIGKILL; whatever it reported saved must be readable afterwards.

use picket_appliance::store::{Resolved, Store, StoreError, StoredScan};
use picket_model::{
    HostStatus, NetHost, NetReport, PortResult, PortState, PortSummary, Protocol, ScanKind,
    ScanMeta, ScanStats, Service, PICKET_VERSION,
};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "PICKET_STORE_TEST_CHILD_DIR";

fn report(id: &str, hosts: usize) -> NetReport {
    NetReport {
        picket_version: PICKET_VERSION.into(),
        scan: ScanMeta {
            id: id.into(),
            kind: ScanKind::Net,
            started_at: "2026-11-21T07:00:00Z".into(),
            finished_at: "2026-11-21T07:00:01Z".into(),
            targets: vec!["198.18.0.0/24".into()],
        },
        hosts: (0..hosts)
            .map(|i| NetHost {
                address: format!("198.18.0.{}", i % 250 + 1),
                status: HostStatus::Up,
                reason: "arp-response".into(),
                hostnames: vec![format!("h{i}.test")],
                mac: Some("02:00:00:00:00:0a".into()),
                os: None,
                ports: (0..10)
                    .map(|p| PortResult {
                        port: 20 + p,
                        protocol: Protocol::Tcp,
                        state: PortState::Open,
                        reason: "syn-ack".into(),
                        service: Some(Service {
                            name: "ssh".into(),
                            product: Some("OpenSSH".into()),
                            version: Some("9.2p1".into()),
                            banner: Some("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3".into()),
                            ..Service::default()
                        }),
                        tls: None,
                    })
                    .collect(),
                port_summary: PortSummary::default(),
                rtt_us: Some(80),
            })
            .collect(),
        findings: vec![],
        stats: ScanStats::default(),
    }
}

fn scan(id: &str) -> StoredScan {
    StoredScan::Net(report(id, 3))
}

fn tempdir() -> tempfile::TempDir {
    match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("cannot create a temporary directory: {e}"),
    }
}

fn open(dir: &Path) -> Store {
    match Store::open(dir) {
        Ok(s) => s,
        Err(e) => panic!("cannot open the store in {}: {e}", dir.display()),
    }
}

fn save(store: &mut Store, id: &str) {
    if let Err(e) = store.save(&scan(id)) {
        panic!("cannot save {id}: {e}");
    }
}

fn ids(store: &Store) -> Vec<String> {
    store.ids().unwrap_or_else(|e| panic!("ids: {e}"))
}

fn gen_dir(state: &Path) -> PathBuf {
    let current = std::fs::read_to_string(state.join("store/CURRENT")).unwrap_or_default();
    state.join("store").join(current.trim())
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn saves_lists_resolves_and_survives_a_clean_reopen() {
    let dir = tempdir();
    {
        let mut store = open(dir.path());
        assert!(ids(&store).is_empty());
        // Same second, so only the save order can tell which is latest.
        save(&mut store, "20261121T070000Z-ffffffff");
        save(&mut store, "20261121T070000Z-00000001");
        save(&mut store, "20261121T080000Z-abcdef01");
        assert_eq!(
            ids(&store),
            vec![
                "20261121T070000Z-ffffffff",
                "20261121T070000Z-00000001",
                "20261121T080000Z-abcdef01"
            ]
        );
        match store.save(&scan("20261121T080000Z-abcdef01")) {
            Err(StoreError::Duplicate { id }) => assert_eq!(id, "20261121T080000Z-abcdef01"),
            other => panic!("expected Duplicate, got {other:?}"),
        }
    }
    let store = open(dir.path());
    assert!(store.was_closed_cleanly(), "a dropped store is sealed");
    let resolve = |r: &str| store.resolve(r).unwrap_or_else(|e| panic!("{r}: {e}"));
    assert_eq!(
        resolve("latest"),
        Resolved::Found("20261121T080000Z-abcdef01".into())
    );
    assert_eq!(
        resolve("previous"),
        Resolved::Found("20261121T070000Z-00000001".into())
    );
    assert_eq!(
        resolve("20261121T08"),
        Resolved::Found("20261121T080000Z-abcdef01".into())
    );
    assert!(matches!(resolve("20261121T07"), Resolved::Ambiguous(v) if v.len() == 2));
    assert_eq!(resolve("2025"), Resolved::NotFound);
    assert_eq!(resolve(""), Resolved::NotFound);

    let got = store.get("20261121T070000Z-00000001");
    assert_eq!(got.ok().flatten(), Some(scan("20261121T070000Z-00000001")));
    let list = store.list().unwrap_or_else(|e| panic!("list: {e}"));
    assert_eq!(list.len(), 3);
    let first = list[0].summary.as_ref().ok();
    assert_eq!(first.map(|s| (s.hosts_up, s.open_ports)), Some((3, 30)));
}

#[test]
fn store_directory_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempdir();
    let state = dir.path().join("state");
    drop(open(&state));
    for d in [&state, &state.join("store")] {
        let mode = std::fs::metadata(d).map(|m| m.permissions().mode() & 0o777);
        assert_eq!(mode.ok(), Some(0o700), "{}", d.display());
    }
}

#[test]
fn a_second_opener_gets_locked_and_a_patient_one_waits() {
    let dir = tempdir();
    let store = open(dir.path());
    match Store::open(dir.path()) {
        Err(StoreError::Locked { path }) => assert!(path.ends_with("store"), "{path:?}"),
        other => panic!("expected Locked, got {other:?}"),
    }
    let holder = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        drop(store);
    });
    let t = Instant::now();
    let waited = Store::open_waiting(dir.path(), Duration::from_secs(10));
    assert!(waited.is_ok(), "{:?}", waited.err());
    assert!(t.elapsed() >= Duration::from_millis(250));
    let _ = holder.join();
}

#[test]
fn deleted_scans_stay_deleted_and_do_not_look_like_damage() {
    let dir = tempdir();
    {
        let mut store = open(dir.path());
        for i in 0..5 {
            save(&mut store, &format!("20261121T07000{i}Z-00000000"));
        }
        assert_eq!(store.delete("20261121T070002Z-00000000").ok(), Some(true));
        assert_eq!(store.delete("20261121T070002Z-00000000").ok(), Some(false));
    }
    let store = open(dir.path());
    assert_eq!(ids(&store).len(), 4);
    assert_eq!(store.get("20261121T070002Z-00000000").ok().flatten(), None);
}

#[test]
fn undecodable_and_newer_records_are_named_and_do_not_hide_the_others() {
    let dir = tempdir();
    {
        let mut store = open(dir.path());
        save(&mut store, "20261121T070000Z-00000001");
        save(&mut store, "20261121T070000Z-00000003");
    }
    // Another program (or a newer picket) writes records this picket cannot read.
    {
        let db = sled::open(gen_dir(dir.path())).unwrap_or_else(|e| panic!("sled: {e}"));
        for tree in ["scans", "summaries"] {
            let t = db.open_tree(tree).unwrap_or_else(|e| panic!("{e}"));
            // Format 1, then a body cut short.
            let _ = t.insert("20261121T070000Z-00000002", &[1u8, 0xff, 0xff][..]);
            // Format 9.
            let _ = t.insert("20261121T070000Z-00000009", &[9u8, 0][..]);
        }
        let _ = db.flush();
    }
    let store = open(dir.path());
    assert!(!store.was_closed_cleanly(), "sled changed the files");
    match store.get("20261121T070000Z-00000002") {
        Err(StoreError::CorruptRecord { tree, key, .. }) => {
            assert_eq!((tree, key.as_str()), ("scans", "20261121T070000Z-00000002"));
        }
        other => panic!("expected CorruptRecord, got {other:?}"),
    }
    match store.get("20261121T070000Z-00000009") {
        Err(StoreError::UnknownRecordFormat { format, key, .. }) => {
            assert_eq!((format, key.as_str()), (9, "20261121T070000Z-00000009"));
        }
        other => panic!("expected UnknownRecordFormat, got {other:?}"),
    }
    assert!(store
        .get("20261121T070000Z-00000001")
        .ok()
        .flatten()
        .is_some());
    assert!(store
        .get("20261121T070000Z-00000003")
        .ok()
        .flatten()
        .is_some());
    let list = store.list().unwrap_or_else(|e| panic!("list: {e}"));
    let good: Vec<&str> = list
        .iter()
        .filter(|e| e.summary.is_ok())
        .map(|e| e.id.as_str())
        .collect();
    let bad: Vec<&str> = list
        .iter()
        .filter(|e| e.summary.is_err())
        .map(|e| e.id.as_str())
        .collect();
    assert_eq!(
        good,
        vec!["20261121T070000Z-00000001", "20261121T070000Z-00000003"]
    );
    assert_eq!(
        bad,
        vec!["20261121T070000Z-00000002", "20261121T070000Z-00000009"]
    );
}

#[test]
fn a_store_from_a_newer_picket_is_refused() {
    let dir = tempdir();
    drop(open(dir.path()));
    {
        let db = sled::open(gen_dir(dir.path())).unwrap_or_else(|e| panic!("sled: {e}"));
        let meta = db.open_tree("meta").unwrap_or_else(|e| panic!("{e}"));
        let _ = meta.insert("schema", &[1u8, 99][..]);
        let _ = db.flush();
    }
    match Store::open(dir.path()) {
        Err(StoreError::UnsupportedSchema { found, .. }) => assert_eq!(found, 99),
        other => panic!("expected UnsupportedSchema, got {other:?}"),
    }
}

/// Damage in sled's log makes sled drop (and overwrite) everything after it. The store must
/// notice, refuse, and leave the damaged files byte for byte as they were.
#[test]
fn damaged_database_files_are_refused_and_left_untouched() {
    for damage in ["truncate", "flip"] {
        let dir = tempdir();
        {
            let mut store = open(dir.path());
            for i in 0..30 {
                save(&mut store, &format!("20261121T0700{i:02}Z-00000000"));
            }
        }
        let db = gen_dir(dir.path()).join("db");
        let original = std::fs::read(&db).unwrap_or_default();
        assert!(
            original.len() > 10_000,
            "database of {} bytes",
            original.len()
        );
        let mut damaged = original.clone();
        match damage {
            "truncate" => damaged.truncate(original.len() / 2),
            _ => {
                let mid = original.len() / 2;
                for b in &mut damaged[mid..mid + 64] {
                    *b ^= 0x5a;
                }
            }
        }
        assert!(std::fs::write(&db, &damaged).is_ok());

        for attempt in 0..2 {
            match Store::open(dir.path()) {
                Err(StoreError::Corrupt { reason, .. }) => {
                    assert!(reason.contains("missing"), "{damage}: {reason}");
                }
                other => panic!("{damage} attempt {attempt}: expected Corrupt, got {other:?}"),
            }
            let now = std::fs::read(&db).unwrap_or_default();
            assert!(
                now == damaged,
                "{damage}: the files changed ({} -> {} bytes)",
                damaged.len(),
                now.len()
            );
        }
        assert_eq!(
            entries(&dir.path().join("store")),
            vec!["CURRENT", "MANIFEST", "gen-1", "lock"],
            "{damage}: no copies left behind"
        );
        // Putting the original back (as from a backup) makes it whole again.
        assert!(std::fs::write(&db, &original).is_ok());
        let store = open(dir.path());
        assert_eq!(ids(&store).len(), 30, "{damage}");
    }
}

/// Live bytes come from the sizes recorded at save; a store written before sizes were recorded
/// (simulated by removing them) measures the same by reading its reports.
#[test]
fn live_bytes_from_recorded_sizes_equal_those_read_from_the_reports() {
    let dir = tempdir();
    let with_sizes = {
        let mut store = open(dir.path());
        for i in 0..4 {
            let id = format!("20261121T07{i:04}Z-00000000");
            if let Err(e) = store.save(&StoredScan::Net(report(&id, 30 + i))) {
                panic!("save: {e}");
            }
        }
        store.usage().unwrap_or_else(|e| panic!("{e}")).live_bytes
    };
    let sizes_bytes = {
        let db = sled::open(gen_dir(dir.path())).unwrap_or_else(|e| panic!("sled: {e}"));
        let t = db.open_tree("sizes").unwrap_or_else(|e| panic!("{e}"));
        let n: u64 = t
            .iter()
            .filter_map(Result::ok)
            .map(|(k, v)| (k.len() + v.len()) as u64)
            .sum();
        assert_eq!(t.len(), 4, "one recorded size per scan");
        let _ = t.clear();
        let _ = db.flush();
        n
    };
    let store = open(dir.path());
    let read = store.usage().unwrap_or_else(|e| panic!("{e}")).live_bytes;
    assert_eq!(read + sizes_bytes, with_sizes);
    assert!(with_sizes > 4 * 30 * 200, "reports counted: {with_sizes}");
}

#[test]
fn compaction_keeps_every_record_and_switches_generation() {
    let dir = tempdir();
    let mut store = open(dir.path());
    for i in 0..60 {
        let id = format!("20261121T07{:04}Z-00000000", i);
        if let Err(e) = store.save(&StoredScan::Net(report(&id, 20))) {
            panic!("save: {e}");
        }
        if i >= 5 {
            let oldest = ids(&store).remove(0);
            assert_eq!(store.delete(&oldest).ok(), Some(true));
        }
    }
    let before = store.usage().unwrap_or_else(|e| panic!("{e}"));
    let kept = ids(&store);
    assert_eq!(kept.len(), 5);
    if let Err(e) = store.compact() {
        panic!("compact: {e}");
    }
    let after = store.usage().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(after.live_bytes, before.live_bytes);
    assert!(
        after.disk_bytes <= before.disk_bytes,
        "{before:?} -> {after:?}"
    );
    assert_eq!(ids(&store), kept);
    for id in &kept {
        assert!(store.get(id).ok().flatten().is_some(), "{id}");
    }
    assert!(store.gen_path().ends_with("gen-2"));
    drop(store);
    assert_eq!(
        entries(&dir.path().join("store")),
        vec!["CURRENT", "MANIFEST", "SEAL", "gen-2", "lock"]
    );
    let store = open(dir.path());
    assert!(store.was_closed_cleanly());
    assert_eq!(ids(&store), kept);
}

#[test]
fn leftovers_of_interrupted_compaction_and_verification_are_cleaned_up() {
    let dir = tempdir();
    {
        let mut store = open(dir.path());
        save(&mut store, "20261121T070000Z-00000001");
    }
    let root = dir.path().join("store");
    // A compaction killed before switching CURRENT left a partial gen-2.
    assert!(std::fs::create_dir(root.join("gen-2")).is_ok());
    assert!(std::fs::write(root.join("gen-2/db"), b"partial").is_ok());
    // A verification killed while copying left a partial copy.
    assert!(std::fs::create_dir(root.join("gen-1.copying")).is_ok());
    let store = open(dir.path());
    assert_eq!(ids(&store), vec!["20261121T070000Z-00000001"]);
    drop(store);
    assert_eq!(
        entries(&root),
        vec!["CURRENT", "MANIFEST", "SEAL", "gen-1", "lock"]
    );

    // A verification killed after its copy was complete: the copy is the authority.
    let copy = root.join("gen-1.preopen");
    assert!(Command::new("cp")
        .arg("-a")
        .arg(root.join("gen-1"))
        .arg(&copy)
        .status()
        .is_ok_and(|s| s.success()));
    assert!(std::fs::write(root.join("gen-1/db"), b"rewritten by sled").is_ok());
    let store = open(dir.path());
    assert_eq!(ids(&store), vec!["20261121T070000Z-00000001"]);
}

/// Not a test on its own: the child half of `sigkill_after_save_loses_nothing`.
#[test]
fn child_saves_scans_then_waits_to_be_killed() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let mut store = open(Path::new(&dir));
    for i in 0..3 {
        let id = format!("20261121T07000{i}Z-0000000{i}");
        save(&mut store, &id);
        println!("saved {id}");
    }
    std::thread::sleep(Duration::from_secs(60));
    std::process::exit(0);
}

#[test]
fn sigkill_after_save_loses_nothing() {
    let dir = tempdir();
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("current_exe: {e}"));
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "child_saves_scans_then_waits_to_be_killed",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn: {e}"));
    let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
    let mut saved = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        // The harness may print its own "test ... " prefix on the same line.
        if let Some(at) = line.find("saved ") {
            saved.push(line[at + "saved ".len()..].trim().to_owned());
            if saved.len() == 3 {
                // SIGKILL at once: no destructor, no final flush, no seal.
                let _ = child.kill();
                break;
            }
        }
    }
    let _ = child.wait();
    assert_eq!(saved.len(), 3, "the child reported {saved:?}");
    let store = open(dir.path());
    assert!(
        !store.was_closed_cleanly(),
        "a killed process leaves no seal"
    );
    for id in &saved {
        assert!(
            store.get(id).ok().flatten().is_some(),
            "{id} was reported saved but is gone"
        );
    }
    assert_eq!(ids(&store), saved);
}

/// Figures for the report: disk use of the store under churn, before and after compaction.
/// `cargo test -p picket-appliance --test store -- --ignored --nocapture disk_use`
#[test]
#[ignore]
fn disk_use_under_churn() {
    let keep: usize = std::env::var("KEEP")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let hosts: usize = std::env::var("HOSTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let dir = tempdir();
    let mut store = open(dir.path());
    let t = Instant::now();
    for round in 0..rounds {
        let id = format!("20261121T{round:06}Z-{round:08x}");
        if let Err(e) = store.save(&StoredScan::Net(report(&id, hosts))) {
            panic!("save: {e}");
        }
        let all = ids(&store);
        if all.len() > keep {
            let _ = store.delete(&all[0]);
        }
        if (round + 1) % (rounds / 10).max(1) == 0 {
            let u = store.usage().unwrap_or_else(|e| panic!("{e}"));
            println!(
                "after {} saves: disk {} KiB, live {} KiB ({:.1}x)",
                round + 1,
                u.disk_bytes / 1024,
                u.live_bytes / 1024,
                u.disk_bytes as f64 / u.live_bytes as f64
            );
        }
    }
    println!("{rounds} saves+deletes in {:?}", t.elapsed());
    let t = Instant::now();
    if let Err(e) = store.compact() {
        panic!("compact: {e}");
    }
    let u = store.usage().unwrap_or_else(|e| panic!("{e}"));
    println!(
        "compacted in {:?}: disk {} KiB, live {} KiB ({:.1}x)",
        t.elapsed(),
        u.disk_bytes / 1024,
        u.live_bytes / 1024,
        u.disk_bytes as f64 / u.live_bytes as f64
    );
}
