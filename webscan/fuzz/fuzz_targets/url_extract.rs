//! URLs from scripts and link resolution on arbitrary input: no panic; resolved links carry no
//! fragment and only schemes the resolver allows.
#![no_main]

use libfuzzer_sys::fuzz_target;
use picket_webscan::{js, scope};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let base =
        url::Url::parse("http://127.0.0.1:8080/app/page.html").unwrap_or_else(|_| unreachable!());
    for u in js::urls_in_script(&text) {
        if let Some(r) = scope::resolve(&base, &u) {
            assert!(r.fragment().is_none());
        }
    }
    if let Some(r) = scope::resolve(&base, &text) {
        assert!(r.fragment().is_none());
        let _ = scope::dedup_key("GET", &r, &[]);
    }
    let _ = js::marker_in_code(&text, "pkt");
});
