//! The ordered pairs of `kb/testdata/version-order/` (from osv-scalibr, checked there against
//! the native tools) as an external oracle for the dpkg, rpm and apk comparators.
//!
//! Every pair is checked both ways (`A op B` and `B reverse(op) A`). dpkg and rpm must agree on
//! every line. For Alpine, osv-scalibr generated its data with the apk-tools of `alpine:3.10`
//! (2.10), while we follow the current apk-tools, whose parser stops at the first token it cannot
//! read (a digit straight after a letter as in `6.6.1p1`, an empty number as in `0..8` or `1-r`, a
//! second `-r`). The two disagree only on such versions, so a disagreement is tolerated when, and
//! only when, one side is a version the current apk rejects (`apk version -c`); every tolerated
//! line is printed, and their number is pinned so that a change shows up.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use picket_kb::version::{apk, dpkg, rpm, VersionError};
use std::cmp::Ordering;

type Cmp = fn(&str, &str) -> Result<Ordering, VersionError>;

/// Lines tolerated under the rule above, counted when this test was written (see the report).
const ALPINE_TOLERATED: usize = 44;

type Tolerate = fn(&str, &str) -> bool;

fn never(_: &str, _: &str) -> bool {
    false
}

fn apk_invalid(a: &str, b: &str) -> bool {
    !apk::is_valid(a) || !apk::is_valid(b)
}

struct Outcome {
    checked: usize,
    disagreements: Vec<String>,
    tolerated: Vec<String>,
}

fn run(prefix: &str, cmp: Cmp, tolerate: Tolerate) -> Outcome {
    let mut out = Outcome {
        checked: 0,
        disagreements: Vec::new(),
        tolerated: Vec::new(),
    };
    for p in common::read_pairs(prefix) {
        let (a, b, want) = (p.a.as_str(), p.b.as_str(), p.want);
        let fwd = cmp(a, b);
        let back = cmp(b, a);
        let agrees =
            fwd.as_ref().ok() == Some(&want) && back.as_ref().ok() == Some(&want.reverse());
        out.checked += 1;
        if !agrees {
            let list = if tolerate(a, b) {
                &mut out.tolerated
            } else {
                &mut out.disagreements
            };
            list.push(format!(
                "{}:{}: {}: got {a} vs {b} = {fwd:?}, {b} vs {a} = {back:?}",
                p.file, p.line_no, p.line
            ));
        }
    }
    out
}

fn check(name: &str, prefix: &str, cmp: Cmp, tolerate: Tolerate, tolerated: usize) {
    let out = run(prefix, cmp, tolerate);
    eprintln!(
        "{name}: {} pairs checked both ways, {} disagreements, {} tolerated",
        out.checked,
        out.disagreements.len(),
        out.tolerated.len()
    );
    for t in &out.tolerated {
        eprintln!("  tolerated (version invalid for current apk-tools): {t}");
    }
    assert!(out.checked > 100, "{name}: only {} pairs read", out.checked);
    assert!(
        out.disagreements.is_empty(),
        "{name}: {} disagreements:\n{}",
        out.disagreements.len(),
        out.disagreements.join("\n")
    );
    assert_eq!(
        out.tolerated.len(),
        tolerated,
        "{name}: the number of tolerated lines changed"
    );
}

#[test]
fn debian_pairs_agree() {
    check("dpkg", "debian-versions", dpkg::compare, never, 0);
}

#[test]
fn redhat_pairs_agree() {
    check("rpm", "redhat-versions", rpm::compare, never, 0);
}

#[test]
fn alpine_pairs_agree() {
    check(
        "apk",
        "alpine-versions",
        apk::compare,
        apk_invalid,
        ALPINE_TOLERATED,
    );
}

/// Prints what one comparison costs over the real-world pairs (no assertion: timings depend on
/// the machine and the build profile; run with `--release -- --nocapture` for figures).
#[test]
fn comparison_cost() {
    for (name, prefix, cmp) in [
        ("dpkg", "debian-versions", dpkg::compare as Cmp),
        ("rpm", "redhat-versions", rpm::compare as Cmp),
        ("apk", "alpine-versions", apk::compare as Cmp),
    ] {
        let pairs: Vec<(String, String)> = common::read_pairs(prefix)
            .into_iter()
            .map(|p| (p.a, p.b))
            .collect();
        let rounds = 20;
        let started = std::time::Instant::now();
        let mut less = 0usize;
        for _ in 0..rounds {
            for (a, b) in &pairs {
                if cmp(std::hint::black_box(a), std::hint::black_box(b)) == Ok(Ordering::Less) {
                    less += 1;
                }
            }
        }
        let n = rounds * pairs.len();
        let ns = started.elapsed().as_nanos() as f64 / n as f64;
        eprintln!("{name}: {n} comparisons, {ns:.0} ns each ({less} less)");
        assert!(less > 0);
    }
}
