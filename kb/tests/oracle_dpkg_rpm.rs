//! Differential tests against the reference implementations themselves: `dpkg --compare-versions`
//! for dpkg ordering and rpm's Python bindings (`rpm.ver` to split the EVR, `rpm.labelCompare` to
//! compare) for rpm ordering. Each test compares over 10,000 generated pairs (of valid versions; pairs with an invalid
//! version come on top and must be rejected by both) from a seeded
//! generator whose alphabet aims at the corners of both algorithms: `~`, `^`, leading zeros,
//! digit runs longer than any machine integer, empty segments, epochs (signed, huge, empty),
//! separators, non-ASCII bytes, stray white space.
//!
//! The tools are required, not optional: a missing tool fails the test with the Debian package
//! to install (`dpkg`, `python3-rpm`; scripts/install-deps.sh installs both).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::Rng;

use picket_kb::version::{dpkg, rpm};
use std::cmp::Ordering;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::time::Instant;

/// Pairs both of whose versions are accepted, per tool: dpkg costs one or two process spawns per
/// pair, rpm's oracle is a single process.
const DPKG_PAIRS: usize = 10_000;
const RPM_PAIRS: usize = 50_000;
const SHOW: usize = 20;

fn digits(rng: &mut Rng) -> String {
    let len = match rng.below(10) {
        0 => 21 + rng.below(15),
        1..=3 => 2 + rng.below(3),
        _ => 1,
    };
    let mut s = String::new();
    if rng.chance(20) {
        s.push_str(&"0".repeat(1 + rng.below(3)));
    }
    for _ in 0..len {
        s.push(char::from(b'0' + u8::try_from(rng.below(10)).unwrap()));
    }
    s
}

/// One version-ish string built from the pieces both algorithms care about.
fn piece_string(rng: &mut Rng, pieces: &[&str], max: usize) -> String {
    let mut s = String::new();
    if rng.chance(85) {
        s.push_str(&digits(rng));
    }
    for _ in 0..rng.below(max) {
        match rng.below(4) {
            0 => s.push_str(&digits(rng)),
            _ => s.push_str(rng.pick(pieces)),
        }
    }
    s
}

/// A related version: equal, or one small edit away, so that pairs often share a long prefix.
fn mutate(rng: &mut Rng, a: &str, pieces: &[&str]) -> String {
    let mut chars: Vec<char> = a.chars().collect();
    match rng.below(6) {
        0 => {}
        1 if !chars.is_empty() => {
            let i = rng.below(chars.len());
            chars.remove(i);
        }
        2 => {
            let i = rng.below(chars.len() + 1);
            let p: Vec<char> = rng.pick(pieces).chars().collect();
            chars.splice(i..i, p);
        }
        3 if !chars.is_empty() => {
            let i = rng.below(chars.len());
            let c = rng.pick(pieces).chars().next().unwrap_or('0');
            chars[i] = c;
        }
        4 => {
            let i = rng.below(chars.len() + 1);
            chars.splice(i..i, ['0']);
        }
        _ => {
            let p: Vec<char> = rng.pick(pieces).chars().collect();
            chars.extend(p);
        }
    }
    chars.into_iter().collect()
}

const DPKG_PIECES: &[&str] = &[
    ".", ".", "-", "+", "~", "~~", ":", "a", "b", "z", "A", "Z", "rc", "deb", "ubuntu", "~rc",
    "+deb12u1", "-1", "-0", "-00", "é", "..", "--", "_", "%",
];

const DPKG_EPOCHS: &[&str] = &[
    "0:",
    "1:",
    "2:",
    "01:",
    "00:",
    "+1:",
    "-0:",
    "-1:",
    ":",
    "2147483647:",
    "2147483648:",
    "99999999999999999999:",
    "a:",
    "1a:",
];

fn dpkg_version(rng: &mut Rng) -> String {
    let mut s = String::new();
    if rng.chance(25) {
        s.push_str(rng.pick(DPKG_EPOCHS));
    }
    s.push_str(&piece_string(rng, DPKG_PIECES, 6));
    if rng.chance(40) {
        s.push('-');
        s.push_str(&piece_string(rng, DPKG_PIECES, 3));
    }
    if rng.chance(3) {
        s.insert(0, rng.pick(&[" ", "\t", "\n"]).chars().next().unwrap());
    }
    if rng.chance(3) {
        s.push_str(rng.pick(&[" ", "\t", " x", "\n"]));
    }
    s
}

const RPM_PIECES: &[&str] = &[
    ".", ".", "-", "+", "~", "^", "~~", "^^", "_", ":", "a", "b", "z", "A", "Z", "rc", "el9",
    "fc39", "git", "^git", "~rc", "..", "--", "é", "%",
];

const RPM_EPOCHS: &[&str] = &["0:", "1:", "2:", "01:", "00:", ":", "10:", "a:"];

fn rpm_version(rng: &mut Rng) -> String {
    let mut s = String::new();
    if rng.chance(25) {
        s.push_str(rng.pick(RPM_EPOCHS));
    }
    s.push_str(&piece_string(rng, RPM_PIECES, 6));
    if rng.chance(50) {
        s.push('-');
        s.push_str(&piece_string(rng, RPM_PIECES, 3));
    }
    s
}

/// Generated pairs, until `valid` of them are pairs our comparator accepts (those that one side
/// rejects are kept too: the reference must reject them as well).
fn pairs(
    seed: u64,
    valid: usize,
    gen: fn(&mut Rng) -> String,
    pieces: &[&str],
    accepts: fn(&str, &str) -> bool,
) -> Vec<(String, String)> {
    let mut rng = Rng(seed);
    let mut out = Vec::new();
    let mut accepted = 0;
    while accepted < valid {
        let a = gen(&mut rng);
        let b = if rng.chance(45) {
            mutate(&mut rng, &a, pieces)
        } else {
            gen(&mut rng)
        };
        // Neither tool can be handed an empty string (dpkg reads it as "no version") or a NUL.
        if a.is_empty() || b.is_empty() || a.contains('\0') || b.contains('\0') {
            continue;
        }
        if accepts(&a, &b) {
            accepted += 1;
        }
        out.push((a, b));
    }
    out
}

/// `None` when dpkg rejects either version (exit status 2).
fn dpkg_says(a: &str, b: &str) -> Option<Ordering> {
    let run = |op: &str| -> Option<bool> {
        let status = Command::new("dpkg")
            .args(["--compare-versions", "--", a, op, b])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap_or_else(|e| panic!("cannot run dpkg ({e}): install the Debian package `dpkg`"));
        match status.code() {
            Some(0) => Some(true),
            Some(1) => Some(false),
            Some(2) => None,
            other => panic!("dpkg --compare-versions {a:?} {op} {b:?}: exit {other:?}"),
        }
    };
    if run("lt")? {
        Some(Ordering::Less)
    } else if run("eq")? {
        Some(Ordering::Equal)
    } else {
        Some(Ordering::Greater)
    }
}

fn report(name: &str, n: usize, rejected: usize, disagreements: &[String], started: Instant) {
    eprintln!(
        "{name}: {n} pairs compared with the reference ({} both accepted, {rejected} with a rejected version), {} disagreements, {:.1}s",
        n - rejected,
        disagreements.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        disagreements.is_empty(),
        "{name}: {} of {n} pairs disagree with the reference; first {}:\n{}",
        disagreements.len(),
        SHOW.min(disagreements.len()),
        disagreements
            .iter()
            .take(SHOW)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn dpkg_agrees_with_dpkg_compare_versions() {
    let started = Instant::now();
    let pairs = pairs(
        0x5eed_d9c6_0001,
        DPKG_PAIRS,
        dpkg_version,
        DPKG_PIECES,
        |a, b| dpkg::compare(a, b).is_ok(),
    );
    let next = AtomicUsize::new(0);
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 4));
    let mut disagreements: Vec<(usize, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut bad = Vec::new();
                    loop {
                        let i = next.fetch_add(1, AtomicOrdering::Relaxed);
                        let Some((a, b)) = pairs.get(i) else { break };
                        let want = dpkg_says(a, b);
                        let got = dpkg::compare(a, b);
                        if got.as_ref().ok() != want.as_ref() {
                            bad.push((
                                i,
                                format!("{a:?} vs {b:?}: dpkg says {want:?}, we say {got:?}"),
                            ));
                        }
                    }
                    bad
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    disagreements.sort();
    let lines: Vec<String> = disagreements.into_iter().map(|(_, l)| l).collect();
    let rejected = pairs
        .iter()
        .filter(|(a, b)| dpkg::compare(a, b).is_err())
        .count();
    report("dpkg", pairs.len(), rejected, &lines, started);
}

/// Reads `A<TAB>B` lines; answers `-1`, `0`, `1`, or `E <error>` per line. rpm's own `rpm.ver`
/// splits each EVR (its `parseEVR`), `rpm.labelCompare` compares the parts.
const RPM_SCRIPT: &str = r#"
import sys
try:
    import rpm
except ImportError:
    sys.stderr.write("python3-rpm missing\n")
    sys.exit(3)
out = []
for line in sys.stdin.buffer.read().split(b"\n"):
    if not line:
        continue
    a, b = line.decode("utf-8").split("\t")
    try:
        va, vb = rpm.ver(a), rpm.ver(b)
        out.append(str(rpm.labelCompare((va.e, va.v, va.r), (vb.e, vb.v, vb.r))))
    except Exception as e:
        out.append("E " + repr(e))
sys.stdout.write("\n".join(out) + "\n")
"#;

#[test]
fn rpm_agrees_with_rpm_label_compare() {
    let started = Instant::now();
    let pairs = pairs(
        0x5eed_0c0f_fee5,
        RPM_PAIRS,
        rpm_version,
        RPM_PIECES,
        |a, b| rpm::compare(a, b).is_ok(),
    );
    // python3-rpm installs into the system interpreter, not into any other python3 on PATH.
    let python = "/usr/bin/python3";
    let mut child = Command::new(python)
        .args(["-c", RPM_SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run {python} ({e}): install the Debian packages `python3` and `python3-rpm`")
        });
    let mut input = String::new();
    for (a, b) in &pairs {
        assert!(!a.contains(['\t', '\n']) && !b.contains(['\t', '\n']));
        input.push_str(a);
        input.push('\t');
        input.push_str(b);
        input.push('\n');
    }
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        stdin.write_all(input.as_bytes()).unwrap();
    });
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    writer.join().unwrap();
    let status = child.wait().unwrap();
    assert!(
        status.code() != Some(3),
        "the rpm Python module is missing: install the Debian package `python3-rpm`"
    );
    assert!(status.success(), "rpm oracle failed: {status}: {stderr}");

    let answers: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        answers.len(),
        pairs.len(),
        "rpm oracle answered {} of {} pairs",
        answers.len(),
        pairs.len()
    );
    let mut disagreements = Vec::new();
    for ((a, b), answer) in pairs.iter().zip(&answers) {
        let want = match *answer {
            "-1" => Some(Ordering::Less),
            "0" => Some(Ordering::Equal),
            "1" => Some(Ordering::Greater),
            _ => None,
        };
        let got = rpm::compare(a, b);
        if got.as_ref().ok() != want.as_ref() {
            disagreements.push(format!("{a:?} vs {b:?}: rpm says {answer}, we say {got:?}"));
        }
    }
    let rejected = pairs
        .iter()
        .filter(|(a, b)| rpm::compare(a, b).is_err())
        .count();
    report("rpm", pairs.len(), rejected, &disagreements, started);
}
