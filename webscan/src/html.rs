//! HTML extraction for the crawler and HTML-aware confirmation for the XSS checks.
//!
//! Why the WHATWG tokenizer (html5ever) and no tree: links, forms and scripts only need the token
//! stream, and a tokenizer has no recursion, so a page nested a million levels deep costs time
//! linear in its size and no stack. Why parse to confirm XSS: a payload that comes back
//! HTML-escaped is text to the browser; only a parser tells whether our marker became an
//! element, an attribute or script code, which is what a browser would run.

use html5ever::tendril::StrTendril;
use html5ever::tokenizer::states::RawKind;
use html5ever::tokenizer::{
    BufferQueue, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
};
use std::cell::RefCell;

/// Most tokens kept from one document (a 2 MiB body of empty tags is ~300k).
pub const MAX_EVENTS: usize = 400_000;
/// Longest text run kept.
const MAX_TEXT: usize = 1 << 20;

/// A token of the document, simplified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Start {
        name: String,
        attrs: Vec<(String, String)>,
    },
    End {
        name: String,
    },
    /// Text; `raw` names the raw-text element it is inside (`script`, `style`, ...).
    Text {
        text: String,
        raw: Option<String>,
    },
    Comment(String),
}

struct Sink {
    events: RefCell<Vec<Event>>,
    /// The raw-text element we are in, if any.
    raw: RefCell<Option<String>>,
}

impl TokenSink for Sink {
    type Handle = ();

    fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
        let mut ev = self.events.borrow_mut();
        if ev.len() >= MAX_EVENTS {
            return TokenSinkResult::Continue;
        }
        match token {
            Token::TagToken(tag) => {
                let name = tag.name.to_string();
                match tag.kind {
                    TagKind::StartTag => {
                        let attrs = tag
                            .attrs
                            .iter()
                            .map(|a| (a.name.local.to_string(), a.value.to_string()))
                            .collect();
                        ev.push(Event::Start {
                            name: name.clone(),
                            attrs,
                        });
                        if tag.self_closing {
                            return TokenSinkResult::Continue;
                        }
                        let kind = match name.as_str() {
                            "script" => Some(RawKind::ScriptData),
                            "style" | "xmp" | "iframe" | "noembed" | "noframes" => {
                                Some(RawKind::Rawtext)
                            }
                            "textarea" | "title" => Some(RawKind::Rcdata),
                            "plaintext" => {
                                *self.raw.borrow_mut() = Some(name);
                                return TokenSinkResult::Plaintext;
                            }
                            _ => None,
                        };
                        if let Some(k) = kind {
                            *self.raw.borrow_mut() = Some(name);
                            return TokenSinkResult::RawData(k);
                        }
                    }
                    TagKind::EndTag => {
                        *self.raw.borrow_mut() = None;
                        ev.push(Event::End { name });
                    }
                }
            }
            Token::CharacterTokens(t) => {
                let raw = self.raw.borrow().clone();
                if let Some(Event::Text { text, raw: r }) = ev.last_mut() {
                    if *r == raw {
                        if text.len() < MAX_TEXT {
                            text.push_str(&t);
                        }
                        return TokenSinkResult::Continue;
                    }
                }
                ev.push(Event::Text {
                    text: t.to_string(),
                    raw,
                });
            }
            Token::CommentToken(c) => ev.push(Event::Comment(c.to_string())),
            _ => {}
        }
        TokenSinkResult::Continue
    }
}

/// The token stream of a document (capped at [`MAX_EVENTS`]).
pub fn events(html: &str) -> Vec<Event> {
    let sink = Sink {
        events: RefCell::new(Vec::new()),
        raw: RefCell::new(None),
    };
    let input = BufferQueue::default();
    input.push_back(StrTendril::from_slice(html));
    let tok = Tokenizer::new(sink, TokenizerOpts::default());
    let _ = tok.feed(&input);
    tok.end();
    tok.sink.events.take()
}

/// A form field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    /// `input` type (lower case), `textarea`, `select`, `button`.
    pub kind: String,
    pub value: String,
}

/// A form as found on a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Form {
    pub action: Option<String>,
    /// Upper case.
    pub method: String,
    pub enctype: String,
    pub fields: Vec<Field>,
}

impl Form {
    /// Whether the form asks for a password (a login form).
    pub fn has_password(&self) -> bool {
        self.fields.iter().any(|f| f.kind == "password")
    }
}

/// What the crawler takes from a page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    /// Link targets as written (relative or absolute).
    pub links: Vec<String>,
    pub forms: Vec<Form>,
    pub script_srcs: Vec<String>,
    pub inline_scripts: Vec<String>,
    /// `<base href>`, when present.
    pub base: Option<String>,
    pub title: Option<String>,
    /// Images, media and stylesheets: not crawled, but their directories are probed.
    pub resources: Vec<String>,
}

/// Most links, forms and scripts kept from one page.
const MAX_ITEMS: usize = 5_000;

fn attr<'a>(attrs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Extracts links, forms and scripts from a document.
pub fn extract(html: &str) -> Page {
    let mut page = Page::default();
    let mut form: Option<Form> = None;
    let mut in_select: Option<Field> = None;
    let mut in_textarea: Option<Field> = None;
    let mut in_title = false;
    let push = |v: &mut Vec<String>, s: &str| {
        let s = s.trim();
        if !s.is_empty() && v.len() < MAX_ITEMS {
            v.push(s.to_owned());
        }
    };
    for ev in events(html) {
        match ev {
            Event::Start { name, attrs } => match name.as_str() {
                "a" | "area" | "link" => {
                    let rel = attr(&attrs, "rel").unwrap_or_default().to_ascii_lowercase();
                    if let Some(h) = attr(&attrs, "href") {
                        if name != "link" || rel.contains("alternate") || rel.is_empty() {
                            push(&mut page.links, h);
                        } else {
                            push(&mut page.resources, h);
                        }
                    }
                }
                "img" | "source" | "video" | "audio" | "object" => {
                    if let Some(h) = attr(&attrs, "src").or_else(|| attr(&attrs, "data")) {
                        push(&mut page.resources, h);
                    }
                }
                "iframe" | "frame" | "embed" => {
                    if let Some(h) = attr(&attrs, "src") {
                        push(&mut page.links, h);
                    }
                }
                "meta" => {
                    let eq = attr(&attrs, "http-equiv").unwrap_or_default();
                    if eq.eq_ignore_ascii_case("refresh") {
                        if let Some(c) = attr(&attrs, "content") {
                            if let Some((_, u)) = c.split_once('=') {
                                push(&mut page.links, u.trim_matches(['\'', '"', ' ']));
                            }
                        }
                    }
                }
                "base" if page.base.is_none() => {
                    page.base = attr(&attrs, "href").map(str::to_owned);
                }
                "script" => {
                    if let Some(s) = attr(&attrs, "src") {
                        push(&mut page.script_srcs, s);
                    }
                }
                "title" => in_title = true,
                "form" => {
                    if let Some(f) = form.take() {
                        if page.forms.len() < MAX_ITEMS {
                            page.forms.push(f);
                        }
                    }
                    form = Some(Form {
                        action: attr(&attrs, "action").map(str::to_owned),
                        method: attr(&attrs, "method")
                            .unwrap_or("GET")
                            .trim()
                            .to_ascii_uppercase(),
                        enctype: attr(&attrs, "enctype")
                            .unwrap_or("application/x-www-form-urlencoded")
                            .to_ascii_lowercase(),
                        fields: Vec::new(),
                    });
                }
                "input" | "button" => {
                    if let (Some(f), Some(n)) = (form.as_mut(), attr(&attrs, "name")) {
                        let kind = if name == "button" {
                            "button".to_owned()
                        } else {
                            attr(&attrs, "type").unwrap_or("text").to_ascii_lowercase()
                        };
                        if f.fields.len() < 512 {
                            f.fields.push(Field {
                                name: n.to_owned(),
                                kind,
                                value: attr(&attrs, "value").unwrap_or_default().to_owned(),
                            });
                        }
                    }
                }
                "select" => {
                    in_select = attr(&attrs, "name").map(|n| Field {
                        name: n.to_owned(),
                        kind: "select".into(),
                        value: String::new(),
                    });
                }
                "option" => {
                    if let Some(s) = in_select.as_mut() {
                        if s.value.is_empty() {
                            s.value = attr(&attrs, "value").unwrap_or_default().to_owned();
                        }
                    }
                }
                "textarea" => {
                    in_textarea = attr(&attrs, "name").map(|n| Field {
                        name: n.to_owned(),
                        kind: "textarea".into(),
                        value: String::new(),
                    });
                }
                _ => {}
            },
            Event::End { name } => match name.as_str() {
                "form" => {
                    if let Some(f) = form.take() {
                        if page.forms.len() < MAX_ITEMS {
                            page.forms.push(f);
                        }
                    }
                }
                "select" => {
                    if let (Some(f), Some(s)) = (form.as_mut(), in_select.take()) {
                        f.fields.push(s);
                    }
                }
                "textarea" => {
                    if let (Some(f), Some(t)) = (form.as_mut(), in_textarea.take()) {
                        f.fields.push(t);
                    }
                }
                "title" => in_title = false,
                _ => {}
            },
            Event::Text { text, raw } => {
                if raw.as_deref() == Some("script") && page.inline_scripts.len() < MAX_ITEMS {
                    page.inline_scripts.push(text);
                } else if raw.as_deref() == Some("textarea") {
                    if let Some(t) = in_textarea.as_mut() {
                        t.value = text;
                    }
                } else if in_title && page.title.is_none() {
                    page.title = Some(text.trim().chars().take(200).collect());
                }
            }
            Event::Comment(_) => {}
        }
    }
    if let Some(f) = form.take() {
        page.forms.push(f);
    }
    page
}

/// Where an injected marker ended up in a parsed response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarkerContext {
    /// An element whose name contains the marker: HTML injection in the body.
    Element(String),
    /// An attribute whose name contains the marker: attribute breakout.
    Attribute { element: String, attribute: String },
    /// A URL attribute whose value starts with `javascript:` and contains the marker.
    JavascriptUrl { element: String, attribute: String },
    /// Script code where the marker is outside any string literal or comment.
    ScriptCode,
}

/// Every place where `marker` (lower case, alphanumeric) is live markup or code in `html`,
/// rather than text or an attribute value.
pub fn marker_contexts(html: &str, marker: &str) -> Vec<MarkerContext> {
    let mut out = Vec::new();
    if !html.to_ascii_lowercase().contains(marker) {
        return out;
    }
    for ev in events(html) {
        match ev {
            Event::Start { name, attrs } => {
                if name.contains(marker) {
                    out.push(MarkerContext::Element(name.clone()));
                }
                for (k, v) in &attrs {
                    if k.contains(marker) {
                        out.push(MarkerContext::Attribute {
                            element: name.clone(),
                            attribute: k.clone(),
                        });
                    }
                    let url_attr = matches!(
                        k.as_str(),
                        "href" | "src" | "action" | "formaction" | "data"
                    );
                    if url_attr
                        && v.contains(marker)
                        && v.trim_start()
                            .to_ascii_lowercase()
                            .starts_with("javascript:")
                    {
                        out.push(MarkerContext::JavascriptUrl {
                            element: name.clone(),
                            attribute: k.clone(),
                        });
                    }
                    if k.starts_with("on")
                        && v.contains(marker)
                        && crate::js::marker_in_code(v, marker)
                    {
                        out.push(MarkerContext::JavascriptUrl {
                            element: name.clone(),
                            attribute: k.clone(),
                        });
                    }
                }
            }
            Event::Text { text, raw }
                if raw.as_deref() == Some("script")
                    && text.contains(marker)
                    && crate::js::marker_in_code(&text, marker) =>
            {
                out.push(MarkerContext::ScriptCode);
            }
            _ => {}
        }
    }
    out
}

/// Visible text of a document, capped (for soft-404 and login-page comparisons).
pub fn text_of(html: &str, cap: usize) -> String {
    let mut out = String::new();
    for ev in events(html) {
        if let Event::Text { text, raw: None } = ev {
            if out.len() + text.len() > cap {
                break;
            }
            out.push_str(&text);
            out.push(' ');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_links_forms_and_scripts() {
        let html = r#"<html><head><title> Shop </title><base href="/app/">
<script src="/js/jquery-3.4.1.min.js"></script>
<script>fetch("/api/items?x=1"); var s = "</p>";</script></head>
<body><a href="/a?b=1">a</a><a href='rel/x'>x</a><iframe src="/frame"></iframe>
<form action="/search" method="post"><input name="q" value="v"><input type=submit name=go>
<select name="s"><option value="1">1</option><option value="2">2</option></select>
<textarea name="t">hello</textarea></form>
<form><input name="only"></form>
"#;
        let p = extract(html);
        assert_eq!(p.links, vec!["/a?b=1", "rel/x", "/frame"]);
        assert_eq!(p.script_srcs, vec!["/js/jquery-3.4.1.min.js"]);
        assert_eq!(p.inline_scripts.len(), 1);
        assert!(p.inline_scripts[0].contains("/api/items"));
        assert_eq!(p.base.as_deref(), Some("/app/"));
        assert_eq!(p.title.as_deref(), Some("Shop"));
        assert_eq!(p.forms.len(), 2);
        let f = &p.forms[0];
        assert_eq!(
            (f.action.as_deref(), f.method.as_str()),
            (Some("/search"), "POST")
        );
        let names: Vec<_> = f
            .fields
            .iter()
            .map(|f| (f.name.as_str(), f.value.as_str()))
            .collect();
        assert_eq!(
            names,
            vec![("q", "v"), ("go", ""), ("s", "1"), ("t", "hello")]
        );
        assert_eq!(p.forms[1].method, "GET");
    }

    #[test]
    fn escaped_markers_are_text_and_live_ones_are_markup() {
        let m = "pkt1a2b";
        assert!(marker_contexts("<p>&lt;pkt1a2b&gt;</p>", m).is_empty());
        assert_eq!(
            marker_contexts("<p><pkt1a2b></p>", m),
            vec![MarkerContext::Element("pkt1a2b".into())]
        );
        assert!(marker_contexts(r#"<input value="x&quot; pkt1a2b=&quot;1">"#, m).is_empty());
        assert_eq!(
            marker_contexts(r#"<input value="x" pkt1a2b="1">"#, m),
            vec![MarkerContext::Attribute {
                element: "input".into(),
                attribute: "pkt1a2b".into()
            }]
        );
        assert_eq!(
            marker_contexts(r#"<script>var a = "";pkt1a2b=1;//";</script>"#, m),
            vec![MarkerContext::ScriptCode]
        );
        assert!(marker_contexts(r#"<script>var a = "\";pkt1a2b=1;//";</script>"#, m).is_empty());
        // Inside a textarea, markup is text.
        assert!(marker_contexts("<textarea><pkt1a2b></textarea>", m).is_empty());
    }

    #[test]
    fn deep_nesting_costs_no_stack() {
        let deep = "<div>".repeat(200_000) + "<a href=/deep>x</a>";
        let p = extract(&deep);
        assert_eq!(p.links, vec!["/deep"]);
    }
}
