//! How alike two responses are: the boolean SQL-injection check and soft-404 detection both
//! decide by comparing pages, and pages vary a little by themselves (timestamps, tokens, the
//! reflected value), so the comparison is over words, not bytes.

use std::collections::HashMap;

/// Most words compared per page.
const MAX_WORDS: usize = 20_000;

fn words(s: &str) -> HashMap<&str, u32> {
    let mut m: HashMap<&str, u32> = HashMap::new();
    for w in s
        .split(|c: char| !c.is_alphanumeric() && c != '_')
        .filter(|w| !w.is_empty())
        .take(MAX_WORDS)
    {
        *m.entry(w).or_insert(0) += 1;
    }
    m
}

/// Similarity in [0, 1]: the multiset Jaccard index of the two texts' words (1 when both are
/// empty).
pub fn similarity(a: &str, b: &str) -> f64 {
    let (wa, wb) = (words(a), words(b));
    let mut inter = 0u64;
    let mut union = 0u64;
    for (w, &ca) in &wa {
        let cb = wb.get(w).copied().unwrap_or(0);
        inter += u64::from(ca.min(cb));
        union += u64::from(ca.max(cb));
    }
    for (w, &cb) in &wb {
        if !wa.contains_key(w) {
            union += u64::from(cb);
        }
    }
    if union == 0 {
        1.0
    } else {
        inter as f64 / union as f64
    }
}

/// Removes every occurrence of the given strings (payloads, the requested path) so that a page
/// echoing its input compares equal to itself.
pub fn without(text: &str, echoes: &[&str]) -> String {
    let mut t = text.to_owned();
    for e in echoes {
        if e.len() >= 3 {
            t = t.replace(e, "");
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn similarity_is_one_for_equal_and_low_for_different() {
        assert!((similarity("a b c", "a b c") - 1.0).abs() < 1e-9);
        assert!(similarity("<p>3 results: x y z</p>", "<p>0 results</p>") < 0.5);
        assert!(similarity("", "") > 0.99);
        assert!(similarity("a b c d e f g h i j", "a b c d e f g h i k") > 0.8);
        assert_eq!(
            without("you searched for abc'def", &["abc'def"]),
            "you searched for "
        );
    }
}
