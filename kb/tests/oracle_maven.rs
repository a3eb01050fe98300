//! `maven` against the reference implementation itself: Maven's own `ComparableVersion`
//! (Debian's `maven` package ships it as /usr/share/java/maven3-artifact.jar, 3.8.7), run once as
//! a `java` child that reads version pairs on stdin and answers with the comparison.
//!
//! Why random pairs beside the fixtures: the fixtures hold published versions; the corners of
//! the algorithm (empty segments, `-` runs, qualifier aliases next to digits, null items inside
//! sub-lists, leading zeros, 10- and 19-digit numbers) are where a port goes wrong. The
//! generator is seeded, so a failure reproduces, and derives the second version of a pair from
//! the first (appending null items, changing case or separators) so that equal and near-equal
//! pairs are common.
//!
//! The jar is 3.8.7, so the check goes through `maven::compare_3_8_7`; `maven::compare` (3.8.6,
//! the order of OSV's fixtures) differs from it only in MNG-7644's reading of a qualifier after a
//! dot, which `tests/testdata_lang.rs` pins against the 3.8.6-generated fixtures.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::Rng;

use picket_kb::version::maven;
use std::cmp::Ordering;
use std::io::Write;
use std::process::{Command, Stdio};

const JAVA: &str = "java";
const MAVEN_ARTIFACT_JAR: &str = "/usr/share/java/maven3-artifact.jar";

const SOURCE: &str = r#"
import org.apache.maven.artifact.versioning.ComparableVersion;
import java.io.*;
import java.nio.charset.StandardCharsets;

public class MavenOracle {
    static String unhex(String h) {
        byte[] b = new byte[h.length() / 2];
        for (int i = 0; i < b.length; i++) {
            b[i] = (byte) Integer.parseInt(h.substring(2 * i, 2 * i + 2), 16);
        }
        return new String(b, StandardCharsets.UTF_8);
    }

    public static void main(String[] args) throws IOException {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        StringBuilder out = new StringBuilder();
        String line;
        while ((line = in.readLine()) != null) {
            int sp = line.indexOf(' ');
            ComparableVersion a = new ComparableVersion(unhex(line.substring(0, sp)));
            ComparableVersion b = new ComparableVersion(unhex(line.substring(sp + 1)));
            int c = a.compareTo(b);
            out.append(c < 0 ? "<" : (c > 0 ? ">" : "=")).append('\n');
        }
        System.out.print(out);
    }
}
"#;

fn token(rng: &mut Rng) -> String {
    match rng.below(12) {
        0..=4 => rng.below(12).to_string(),
        5 => format!("0{}", rng.below(10)),
        6 => {
            let len = rng
                .pick(&["9", "10", "18", "19", "25"])
                .parse::<usize>()
                .unwrap();
            let mut s: String = (0..len)
                .map(|_| char::from(b'0' + rng.below(10) as u8))
                .collect();
            if rng.chance(20) {
                s = "0".repeat(len);
            }
            s
        }
        7..=9 => rng
            .pick(&[
                "alpha",
                "a",
                "beta",
                "b",
                "milestone",
                "m",
                "rc",
                "cr",
                "snapshot",
                "SNAPSHOT",
                "ga",
                "GA",
                "final",
                "Final",
                "release",
                "RELEASE",
                "sp",
                "SP",
            ])
            .to_string(),
        10 => rng
            .pick(&["x", "foo", "abc", "jre", "android", "M", "RC", "Beta"])
            .to_string(),
        _ => String::new(),
    }
}

fn version(rng: &mut Rng) -> String {
    let mut v = token(rng);
    for _ in 0..rng.below(6) {
        v.push_str(rng.pick(&[".", ".", "-", "-", ""]));
        v.push_str(&token(rng));
    }
    if v.is_empty() {
        v.push('1');
    }
    v
}

fn tweak(rng: &mut Rng, v: &str) -> String {
    match rng.below(7) {
        0 => format!(
            "{v}{}",
            rng.pick(&[".0", "-0", ".0.0", "-ga", ".final", "-", ".", "-0.0"])
        ),
        1 => v.to_ascii_uppercase(),
        2 => v.replace('-', "."),
        3 => v.replace('.', "-"),
        4 => format!("{v}{}{}", rng.pick(&[".", "-", ""]), token(rng)),
        5 => {
            let cut = rng.below(v.len()).max(1);
            v.get(..cut).unwrap_or(v).to_string()
        }
        _ => version(rng),
    }
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn maven_answers(pairs: &[(String, String)]) -> Vec<String> {
    assert!(
        std::path::Path::new(MAVEN_ARTIFACT_JAR).exists(),
        "{MAVEN_ARTIFACT_JAR} missing: install Debian's maven and default-jre-headless \
         (scripts/install-deps.sh)"
    );
    let dir = std::env::temp_dir().join(format!("picket-maven-oracle-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let source = dir.join("MavenOracle.java");
    std::fs::write(&source, SOURCE).unwrap();
    let mut child = Command::new(JAVA)
        .arg("-cp")
        .arg(MAVEN_ARTIFACT_JAR)
        .arg(&source)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {JAVA} ({e}): install default-jre-headless (scripts/install-deps.sh)"
            )
        });
    let mut stdin = child.stdin.take().unwrap();
    let input: String = pairs
        .iter()
        .map(|(a, b)| format!("{} {}\n", hex(a), hex(b)))
        .collect();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().unwrap();
    let written = writer.join().unwrap();
    std::fs::remove_dir_all(&dir).ok();
    assert!(
        out.status.success(),
        "java ComparableVersion oracle failed ({}): {}",
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
        "the oracle answered a different number of pairs"
    );
    answers
}

fn fixture_pairs() -> Vec<(String, String)> {
    common::read_pairs("maven-versions")
        .into_iter()
        .map(|p| (p.a, p.b))
        .collect()
}

#[test]
fn agrees_with_comparable_version() {
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let mut rng = Rng(env("PICKET_ORACLE_SEED", 0x0a11_ce5e_ed00_7777) | 1);
    let mut pairs = Vec::new();
    for _ in 0..env("PICKET_ORACLE_PAIRS", 12_000) {
        let a = version(&mut rng);
        let b = if rng.chance(70) {
            tweak(&mut rng, &a)
        } else {
            version(&mut rng)
        };
        pairs.push((a, b));
    }
    let random = pairs.len();
    pairs.extend(fixture_pairs());

    let answers = maven_answers(&pairs);
    let mut disagreements = Vec::new();
    let mut tally = std::collections::BTreeMap::<String, usize>::new();
    for ((a, b), want) in pairs.iter().zip(&answers) {
        *tally.entry(want.clone()).or_default() += 1;
        let got = match maven::compare_3_8_7(a, b) {
            Ok(Ordering::Less) => "<".to_string(),
            Ok(Ordering::Equal) => "=".to_string(),
            Ok(Ordering::Greater) => ">".to_string(),
            Err(e) => format!("error: {e}"),
        };
        if &got != want {
            disagreements.push(format!(
                "{a:?} vs {b:?}: ComparableVersion {want}, maven {got}"
            ));
        }
    }
    println!(
        "{} pairs ({random} random, {} from fixtures): {tally:?}; {} disagreements",
        pairs.len(),
        pairs.len() - random,
        disagreements.len()
    );
    assert!(
        disagreements.is_empty(),
        "{} disagreements with ComparableVersion:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
    for key in ["<", "=", ">"] {
        assert!(
            tally.get(key).copied().unwrap_or(0) >= 500,
            "too few {key:?} pairs: {tally:?}"
        );
    }
}
