//! `pep440` against the reference implementation itself: Python's `packaging.version.Version`
//! (Debian's python3-packaging, installed by scripts/install-deps.sh), run once as a
//! `/usr/bin/python3` child that reads version pairs on stdin and answers with the comparison.
//!
//! Why random pairs beside the fixtures: the fixtures hold versions as published, nearly all in
//! canonical form, while scanned hosts and advisories carry every spelling packaging accepts
//! (`1.0-ALPHA_1`, `v1.0.post`, `1.0-1`, ` 1.0 `) and many it rejects. The generator is seeded,
//! so a failure reproduces; it builds versions piece by piece with random spellings and
//! separators, derives the second of a pair from the first (so equal and near-equal pairs are
//! common), and mutates some into invalid strings, where both sides must agree on validity.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::Rng;

use picket_kb::version::pep440;
use std::cmp::Ordering;
use std::io::Write;
use std::process::{Command, Stdio};

const PYTHON: &str = "/usr/bin/python3";

const SCRIPT: &str = r#"
import sys
try:
    from packaging.version import Version, InvalidVersion
except ImportError:
    sys.stderr.write("python3 packaging module missing\n")
    sys.exit(3)

def parse(h):
    try:
        return Version(bytes.fromhex(h).decode("utf-8"))
    except InvalidVersion:
        return None

out = []
for line in sys.stdin:
    ha, hb = line.rstrip("\n").split(" ")
    a, b = parse(ha), parse(hb)
    if a is None or b is None:
        out.append(("I" if a is None else "V") + ("I" if b is None else "V"))
    else:
        out.append("<" if a < b else (">" if a > b else "="))
sys.stdout.write("\n".join(out) + "\n")
"#;

/// A version's content; rendering picks a random spelling of it.
#[derive(Clone)]
struct Spec {
    epoch: Option<String>,
    release: Vec<String>,
    pre: Option<(usize, Option<String>)>,
    post: Option<Option<String>>,
    dev: Option<Option<String>>,
    local: Option<Vec<String>>,
}

fn number(rng: &mut Rng) -> String {
    match rng.below(10) {
        0 => format!("0{}", rng.below(20)),
        1 => (0..20 + rng.below(25))
            .map(|_| char::from(b'0' + rng.below(10) as u8))
            .collect(),
        2..=4 => "0".to_string(),
        _ => rng.below(13).to_string(),
    }
}

fn local_segment(rng: &mut Rng) -> String {
    let alphabet = b"abcxyzABZ0123456789";
    (0..1 + rng.below(4))
        .map(|_| char::from(alphabet[rng.below(alphabet.len())]))
        .collect()
}

fn spec(rng: &mut Rng) -> Spec {
    Spec {
        epoch: rng.chance(10).then(|| number(rng)),
        release: (0..1 + rng.below(4)).map(|_| number(rng)).collect(),
        pre: rng
            .chance(35)
            .then(|| (rng.below(3), rng.chance(75).then(|| number(rng)))),
        post: rng.chance(25).then(|| rng.chance(75).then(|| number(rng))),
        dev: rng.chance(25).then(|| rng.chance(75).then(|| number(rng))),
        local: rng
            .chance(20)
            .then(|| (0..1 + rng.below(3)).map(|_| local_segment(rng)).collect()),
    }
}

/// A variant of `s` differing in one piece (or not at all: then only the spelling differs).
fn tweak(rng: &mut Rng, s: &Spec) -> Spec {
    let mut t = s.clone();
    match rng.below(8) {
        0 => t.release.push("0".into()),
        1 => {
            let i = rng.below(t.release.len());
            t.release[i] = number(rng);
        }
        2 => {
            t.pre = rng
                .chance(60)
                .then(|| (rng.below(3), rng.chance(60).then(|| number(rng))))
        }
        3 => t.post = rng.chance(60).then(|| rng.chance(60).then(|| number(rng))),
        4 => t.dev = rng.chance(60).then(|| rng.chance(60).then(|| number(rng))),
        5 => {
            t.local = rng
                .chance(70)
                .then(|| (0..1 + rng.below(3)).map(|_| local_segment(rng)).collect())
        }
        6 => t.epoch = rng.chance(50).then(|| number(rng)),
        _ => {}
    }
    t
}

fn random_case(rng: &mut Rng, word: &str) -> String {
    if rng.chance(70) {
        return word.to_string();
    }
    word.chars()
        .map(|c| {
            if rng.chance(50) {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

fn sep(rng: &mut Rng) -> &'static str {
    rng.pick(&["", "", ".", "-", "_"])
}

fn render(rng: &mut Rng, s: &Spec) -> String {
    let spaces = [
        " ", "  ", "\t", "\n", "\u{a0}", "\u{2003}", "\u{1c}", "\u{b}", "\u{85}",
    ];
    let mut out = String::new();
    if rng.chance(8) {
        out.push_str(rng.pick(&spaces));
    }
    if rng.chance(10) {
        out.push_str(rng.pick(&["v", "V"]));
    }
    if let Some(e) = &s.epoch {
        out.push_str(e);
        out.push('!');
    }
    out.push_str(&s.release.join("."));
    if let Some((kind, n)) = &s.pre {
        let words: &[&str] = match kind {
            0 => &["a", "alpha"],
            1 => &["b", "beta"],
            _ => &["rc", "c", "pre", "preview"],
        };
        out.push_str(sep(rng));
        let w = rng.pick(words);
        out.push_str(&random_case(rng, w));
        if let Some(n) = n {
            out.push_str(sep(rng));
            out.push_str(n);
        } else if rng.chance(10) {
            out.push_str(sep(rng));
        }
    }
    if let Some(n) = &s.post {
        match n {
            Some(n) if rng.chance(30) => {
                out.push('-');
                out.push_str(n);
            }
            _ => {
                out.push_str(sep(rng));
                let w = rng.pick(&["post", "post", "rev", "r"]);
                out.push_str(&random_case(rng, w));
                if let Some(n) = n {
                    out.push_str(sep(rng));
                    out.push_str(n);
                }
            }
        }
    }
    if let Some(n) = &s.dev {
        out.push_str(sep(rng));
        out.push_str(&random_case(rng, "dev"));
        if let Some(n) = n {
            out.push_str(sep(rng));
            out.push_str(n);
        }
    }
    if let Some(segs) = &s.local {
        out.push('+');
        for (i, seg) in segs.iter().enumerate() {
            if i > 0 {
                out.push_str(rng.pick(&[".", "-", "_"]));
            }
            out.push_str(seg);
        }
    }
    if rng.chance(8) {
        out.push_str(rng.pick(&spaces));
    }
    out
}

/// Sometimes breaks a version: both implementations must then agree it is invalid (or, when
/// the change happens to keep it valid, agree on its order).
fn mutate(rng: &mut Rng, v: String) -> String {
    if !rng.chance(15) {
        return v;
    }
    let chars: Vec<char> = v.chars().collect();
    let at = rng.below(chars.len() + 1);
    let extra = [
        '.', '-', '_', '+', '!', 'v', 'x', 'p', 'é', ' ', '0', 'a', '~', '*',
    ];
    let mut out: Vec<char> = chars.clone();
    match rng.below(3) {
        0 => out.insert(at, extra[rng.below(extra.len())]),
        1 if at < chars.len() => {
            out.remove(at);
        }
        _ if at < chars.len() => out.insert(at, chars[at]),
        _ => out.push('.'),
    }
    out.into_iter().collect()
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

/// Asks packaging about every pair; one answer per pair: `<`, `=`, `>`, or validity flags
/// (`IV`, `VI`, `II`) when either side is invalid.
fn packaging_answers(pairs: &[(String, String)]) -> Vec<String> {
    let mut child = Command::new(PYTHON)
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {PYTHON} ({e}): install python3 and python3-packaging (scripts/install-deps.sh)"));
    let mut stdin = child.stdin.take().unwrap();
    let input: String = pairs
        .iter()
        .map(|(a, b)| format!("{} {}\n", hex(a), hex(b)))
        .collect();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().unwrap();
    let written = writer.join().unwrap();
    assert!(
        out.status.success(),
        "{PYTHON} with packaging failed ({}): {} -- install Debian's python3-packaging \
         (apt-get install python3-packaging, or scripts/install-deps.sh)",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    written.unwrap();
    let answers: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(
        answers.len(),
        pairs.len(),
        "packaging answered a different number of pairs"
    );
    answers
}

fn ours(a: &str, b: &str) -> String {
    let valid = |v: &str| pep440::compare(v, v).is_ok();
    match pep440::compare(a, b) {
        Ok(Ordering::Less) => "<".into(),
        Ok(Ordering::Equal) => "=".into(),
        Ok(Ordering::Greater) => ">".into(),
        Err(_) => format!(
            "{}{}",
            if valid(a) { "V" } else { "I" },
            if valid(b) { "V" } else { "I" }
        ),
    }
}

fn fixture_pairs() -> Vec<(String, String)> {
    common::read_pairs("pypi-versions")
        .into_iter()
        .map(|p| (p.a, p.b))
        .collect()
}

#[test]
fn agrees_with_packaging() {
    // PICKET_ORACLE_PAIRS / PICKET_ORACLE_SEED widen the search when changing pep440.
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let mut rng = Rng(env("PICKET_ORACLE_SEED", 0x5eed_cafe_f00d_1234) | 1);
    let mut pairs: Vec<(String, String)> = Vec::new();
    for _ in 0..env("PICKET_ORACLE_PAIRS", 12_000) {
        let s = spec(&mut rng);
        let t = if rng.chance(60) {
            tweak(&mut rng, &s)
        } else {
            spec(&mut rng)
        };
        let a = render(&mut rng, &s);
        let a = mutate(&mut rng, a);
        let b = render(&mut rng, &t);
        let b = mutate(&mut rng, b);
        pairs.push((a, b));
    }
    let random = pairs.len();
    pairs.extend(fixture_pairs());

    let started = std::time::Instant::now();
    let answers = packaging_answers(&pairs);
    let oracle_time = started.elapsed();

    let mut disagreements = Vec::new();
    let mut tally = std::collections::BTreeMap::<String, usize>::new();
    for ((a, b), want) in pairs.iter().zip(&answers) {
        *tally.entry(want.clone()).or_default() += 1;
        let got = ours(a, b);
        if &got != want {
            disagreements.push(format!("{a:?} vs {b:?}: packaging {want}, pep440 {got}"));
        }
    }
    println!(
        "{} pairs ({random} random, {} from fixtures), packaging answered in {oracle_time:?}: \
         {tally:?}; {} disagreements",
        pairs.len(),
        pairs.len() - random,
        disagreements.len()
    );
    assert!(
        disagreements.is_empty(),
        "{} disagreements with packaging:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
    // The generator must exercise both sides of validity and every order.
    for key in ["<", "=", ">", "IV", "VI"] {
        assert!(
            tally.get(key).copied().unwrap_or(0) >= 100,
            "too few {key:?} pairs: {tally:?}"
        );
    }
}
