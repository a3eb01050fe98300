//! JavaScript, just enough of it: URLs named in scripts (for the crawler) and whether an injected
//! marker landed in code or inside a string or comment (for XSS in script context).
//!
//! Why a lexer and not a regex for the second: `var a = "\";pkt=1//"` holds the marker in a
//! string (the quote is escaped), `var a = "";pkt=1//"` runs it; only tracking string, template,
//! and comment states tells them apart.

use regex::Regex;
use std::sync::OnceLock;

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Code,
    Single,
    Double,
    Template,
    LineComment,
    BlockComment,
}

/// Whether `marker` occurs in `js` at a place the engine would parse as code.
pub fn marker_in_code(js: &str, marker: &str) -> bool {
    if marker.is_empty() {
        return false;
    }
    let b = js.as_bytes();
    let m = marker.as_bytes();
    let mut st = State::Code;
    // Nesting of `${ ... }` inside template literals.
    let mut tmpl_depth: Vec<u32> = Vec::new();
    let mut brace = 0u32;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        match st {
            State::Code => {
                if b[i..].starts_with(m) {
                    return true;
                }
                match c {
                    b'\'' => st = State::Single,
                    b'"' => st = State::Double,
                    b'`' => st = State::Template,
                    b'/' if next == Some(b'/') => st = State::LineComment,
                    b'/' if next == Some(b'*') => {
                        st = State::BlockComment;
                        i += 1;
                    }
                    // `<!--` starts a line comment in script too (Annex B).
                    b'<' if b[i..].starts_with(b"<!--") => st = State::LineComment,
                    b'{' => brace += 1,
                    b'}' => {
                        if tmpl_depth.last() == Some(&brace) {
                            tmpl_depth.pop();
                            st = State::Template;
                        } else {
                            brace = brace.saturating_sub(1);
                        }
                    }
                    _ => {}
                }
            }
            State::Single | State::Double => {
                let q = if st == State::Single { b'\'' } else { b'"' };
                if c == b'\\' {
                    i += 1;
                } else if c == q || c == b'\n' {
                    st = State::Code;
                }
            }
            State::Template => {
                if c == b'\\' {
                    i += 1;
                } else if c == b'`' {
                    st = State::Code;
                } else if c == b'$' && next == Some(b'{') {
                    tmpl_depth.push(brace);
                    st = State::Code;
                    i += 1;
                }
            }
            State::LineComment => {
                if c == b'\n' {
                    st = State::Code;
                }
            }
            State::BlockComment => {
                if c == b'*' && next == Some(b'/') {
                    st = State::Code;
                    i += 1;
                }
            }
        }
        i += 1;
    }
    false
}

/// Most URLs taken from one script.
const MAX_URLS: usize = 2_000;

/// The string-literal pattern; `None` only if the constant failed to compile, which the unit
/// tests rule out (extraction then finds nothing rather than panicking).
fn literal_re() -> Option<&'static Regex> {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r#"["'`]((?:https?://[A-Za-z0-9.\-:\[\]]+)?/[A-Za-z0-9_\-.~%/?=&;:+,@!$*()]{0,2000}|[A-Za-z0-9_\-/]+\.(?:php|aspx?|jsp|json|html?|do|action|cgi|xml)(?:\?[A-Za-z0-9_\-.~%=&]*)?)["'`]"#).ok()
    })
    .as_ref()
}

/// URLs (absolute, root-relative, or relative with a page-like extension) named in string
/// literals of a script.
pub fn urls_in_script(js: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let Some(re) = literal_re() else {
        return out;
    };
    for cap in re.captures_iter(js) {
        let Some(m) = cap.get(1) else { continue };
        let u = m.as_str();
        // "//" alone, "/" alone and regex-looking strings are not links.
        if u == "/"
            || u.starts_with("//")
            || u.contains("/*")
            || u.contains("//") && !u.contains("://")
        {
            continue;
        }
        if !out.iter().any(|o| o == u) {
            out.push(u.to_owned());
            if out.len() >= MAX_URLS {
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_in_strings_and_comments_is_not_code() {
        let m = "pktx";
        assert!(marker_in_code("var a = '';pktx=1;//'", m));
        assert!(!marker_in_code("var a = '\\';pktx=1;//'", m));
        assert!(!marker_in_code("var a = \"pktx\";", m));
        assert!(!marker_in_code("// pktx\n", m));
        assert!(!marker_in_code("/* pktx */", m));
        assert!(marker_in_code("/* x */ pktx", m));
        assert!(!marker_in_code("`a pktx`", m));
        assert!(marker_in_code("`a ${pktx}`", m));
        assert!(!marker_in_code("`a ${ {a:1} } pktx`", m));
    }

    #[test]
    fn urls_from_scripts() {
        let js = r#"fetch("/api/users?id=1"); $.get('search.php?q=a');
            var re = /ab+c/; var c = "//cdn"; var x = "https://127.0.0.1:8080/x"; var s = "/";
            axios.post(`/api/v1/orders`, {});"#;
        assert_eq!(
            urls_in_script(js),
            vec![
                "/api/users?id=1",
                "search.php?q=a",
                "https://127.0.0.1:8080/x",
                "/api/v1/orders"
            ]
        );
    }
}
