//! Property tests of the pure extraction layer: what the crawler takes from pages and scripts,
//! and the chunked decoder, on generated input.

use picket_webscan::http::wire::{decode_chunks, Chunked};
use picket_webscan::{html, js, scope};
use proptest::prelude::*;
use url::Url;

fn base() -> Url {
    Url::parse("http://127.0.0.1:8080/app/index.html").unwrap_or_else(|e| panic!("{e}"))
}

/// Paths made of the characters links commonly use.
fn path() -> impl Strategy<Value = String> {
    proptest::collection::vec("[a-z0-9_-]{1,8}", 1..5)
        .prop_map(|segs| format!("/{}", segs.join("/")))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn every_anchor_is_extracted_in_order(paths in proptest::collection::vec(path(), 0..20), filler in "[a-z <>/=\"']{0,40}") {
        let mut doc = String::from("<html><body>");
        for p in &paths {
            doc.push_str(&format!("<p>{}</p><a class=x href=\"{p}\">t</a>", filler.replace(['<', '>'], "")));
        }
        let page = html::extract(&doc);
        prop_assert_eq!(page.links, paths);
    }

    #[test]
    fn extraction_never_panics_and_respects_caps(s in ".{0,2000}") {
        let page = html::extract(&s);
        prop_assert!(page.links.len() <= 5_000);
        let _ = html::marker_contexts(&s, "pktabc");
    }

    #[test]
    fn script_urls_are_found_in_any_quote(p in path(), q in "[a-z]{1,6}=[0-9]{1,4}", quote in prop::sample::select(vec!['"', '\'', '`'])) {
        let url = format!("{p}?{q}");
        let js_src = format!("let x = 1; fetch({quote}{url}{quote}).then(r => r.json());");
        prop_assert!(js::urls_in_script(&js_src).contains(&url));
    }

    #[test]
    fn resolved_links_have_no_fragment_and_stay_http(link in "[ -~]{0,60}") {
        if let Some(u) = scope::resolve(&base(), &link) {
            prop_assert!(u.fragment().is_none());
            let lower = link.trim().to_ascii_lowercase();
            prop_assert!(!lower.starts_with("javascript:"));
        }
    }

    #[test]
    fn dedup_keys_ignore_values_but_not_names(a in 0u32..100_000, b in 0u32..100_000, v in "[a-z]{1,5}", w in "[a-z]{1,5}") {
        let u1 = Url::parse(&format!("http://h/item/{a}?q={v}")).unwrap_or_else(|e| panic!("{e}"));
        let u2 = Url::parse(&format!("http://h/item/{b}?q={w}")).unwrap_or_else(|e| panic!("{e}"));
        let u3 = Url::parse(&format!("http://h/item/{b}?r={w}")).unwrap_or_else(|e| panic!("{e}"));
        prop_assert_eq!(scope::dedup_key("GET", &u1, &[]), scope::dedup_key("GET", &u2, &[]));
        prop_assert_ne!(scope::dedup_key("GET", &u1, &[]), scope::dedup_key("GET", &u3, &[]));
    }

    #[test]
    fn chunked_bodies_round_trip_for_any_split(body in proptest::collection::vec(any::<u8>(), 0..3000), sizes in proptest::collection::vec(1usize..700, 1..10), split in 0usize..4000) {
        let mut raw = Vec::new();
        let mut rest = &body[..];
        let mut i = 0;
        while !rest.is_empty() {
            let n = sizes[i % sizes.len()].min(rest.len());
            raw.extend_from_slice(format!("{n:x}\r\n").as_bytes());
            raw.extend_from_slice(&rest[..n]);
            raw.extend_from_slice(b"\r\n");
            rest = &rest[n..];
            i += 1;
        }
        raw.extend_from_slice(b"0\r\n\r\n");
        let cut = split.min(raw.len());
        let mut st = Chunked::default();
        let mut out = Vec::new();
        decode_chunks(&raw[..cut], &mut st, &mut out).map_err(TestCaseError::fail)?;
        decode_chunks(&raw, &mut st, &mut out).map_err(TestCaseError::fail)?;
        prop_assert!(st.done);
        prop_assert_eq!(out, body);
    }
}
