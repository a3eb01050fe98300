//! What the version-ordering tests share: the ordered-pair fixtures of `kb/testdata/version-order/`
//! and a seeded generator for oracle inputs.
// Each test binary uses a different part of this module.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::cmp::Ordering;
use std::path::PathBuf;

/// One line `A op B` of a fixture file.
#[derive(Debug, Clone)]
pub struct Pair {
    pub file: String,
    /// 1-based line number.
    pub line_no: usize,
    /// The line as written (trimmed).
    pub line: String,
    pub a: String,
    pub b: String,
    pub want: Ordering,
}

pub fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/version-order")
}

/// Every pair of every `PREFIX*.txt` file, in file then line order. Blank lines and `#` or `//`
/// comments are skipped; a malformed line fails the test, naming file and line.
pub fn read_pairs(prefix: &str) -> Vec<Pair> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(data_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with(prefix) && name.ends_with(".txt")
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no {prefix}*.txt under {:?}", data_dir());
    let mut pairs = Vec::new();
    for path in files {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        for (n, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with("//") {
                continue;
            }
            let parts: Vec<&str> = line.split(' ').collect();
            assert_eq!(parts.len(), 3, "{file}:{}: malformed line {line:?}", n + 1);
            let want = match parts[1] {
                "<" => Ordering::Less,
                "=" => Ordering::Equal,
                ">" => Ordering::Greater,
                op => panic!("{file}:{}: unknown operator {op:?}", n + 1),
            };
            pairs.push(Pair {
                file: file.clone(),
                line_no: n + 1,
                line: line.to_owned(),
                a: parts[0].to_owned(),
                b: parts[2].to_owned(),
                want,
            });
        }
    }
    pairs
}

/// xorshift64*: tiny, seeded, good enough to spread test inputs.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}
