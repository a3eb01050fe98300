//! HTML extraction on arbitrary bytes: must not panic, must stay within its caps.
#![no_main]

use libfuzzer_sys::fuzz_target;
use picket_webscan::html;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let page = html::extract(&text);
    assert!(page.links.len() <= 5_000 && page.forms.len() <= 5_001);
    let _ = html::marker_contexts(&text, "pkt0123456789");
    let _ = html::text_of(&text, 4096);
});
