//! The OpenAPI document (`platform/openapi.yaml`) against what the platform serves: every route of
//! the router is documented and every documented operation is served; every path of the protocol
//! table in `model/src/api.rs` is both; every `$ref` resolves.

use axum::body::Body;
use axum::http::Request;
use picket_platform::routes::{try_router, ROUTES};
use picket_platform::server::Platform;
use std::collections::BTreeSet;
use std::sync::Arc;
use tower::ServiceExt;

const METHODS: [&str; 5] = ["get", "post", "put", "delete", "patch"];

fn document() -> serde_yaml::Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn documented(doc: &serde_yaml::Value) -> BTreeSet<(String, String)> {
    let paths = doc
        .get("paths")
        .and_then(|p| p.as_mapping())
        .unwrap_or_else(|| panic!("no paths"));
    let mut out = BTreeSet::new();
    for (path, item) in paths {
        let path = path.as_str().unwrap_or_else(|| panic!("path key"));
        let item = item
            .as_mapping()
            .unwrap_or_else(|| panic!("{path}: not a mapping"));
        for (method, op) in item {
            let method = method.as_str().unwrap_or_default();
            assert!(METHODS.contains(&method), "{path}: unexpected key {method}");
            assert!(
                op.get("responses").is_some(),
                "{method} {path}: no responses"
            );
            assert!(
                op.get("operationId").is_some(),
                "{method} {path}: no operationId"
            );
            out.insert((method.to_uppercase(), path.to_string()));
        }
    }
    out
}

#[test]
fn every_route_is_documented_and_every_documented_path_is_routed() {
    let doc = document();
    assert_eq!(doc.get("openapi").and_then(|v| v.as_str()), Some("3.1.0"));
    let documented = documented(&doc);
    let routed: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    let undocumented: Vec<_> = routed.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routed).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from openapi.yaml: {undocumented:?}"
    );
    assert!(
        unrouted.is_empty(),
        "openapi.yaml paths not served: {unrouted:?}"
    );
    assert_eq!(routed.len(), ROUTES.len(), "duplicate routes in the table");
}

#[test]
fn the_protocol_table_of_the_model_is_served_and_documented() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../model/src/api.rs");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut found = BTreeSet::new();
    for line in text.lines().filter(|l| l.starts_with("//!")) {
        for method in ["GET", "POST"] {
            let needle = format!("`{method} /api/v1/");
            let mut rest = line;
            while let Some(i) = rest.find(&needle) {
                let after = &rest[i + 1 + method.len() + 1..];
                let end = after
                    .find(|c: char| c == '`' || c == '?' || c.is_whitespace())
                    .unwrap_or(after.len());
                found.insert((method.to_string(), after[..end].to_string()));
                rest = &after[end..];
            }
        }
    }
    assert!(found.len() >= 15, "parsed only {found:?}");
    let documented = documented(&document());
    let routed: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    for op in &found {
        assert!(
            documented.contains(op),
            "{op:?} of api.rs is not in openapi.yaml"
        );
        assert!(routed.contains(op), "{op:?} of api.rs is not routed");
    }
}

#[test]
fn every_reference_resolves() {
    let doc = document();
    let mut refs = Vec::new();
    fn walk(v: &serde_yaml::Value, refs: &mut Vec<String>) {
        match v {
            serde_yaml::Value::Mapping(m) => {
                for (k, v) in m {
                    if k.as_str() == Some("$ref") {
                        refs.push(v.as_str().unwrap_or_default().to_string());
                    } else {
                        walk(v, refs);
                    }
                }
            }
            serde_yaml::Value::Sequence(s) => s.iter().for_each(|v| walk(v, refs)),
            _ => {}
        }
    }
    walk(&doc, &mut refs);
    assert!(refs.len() > 50);
    for r in refs {
        let pointer = r
            .strip_prefix("#/")
            .unwrap_or_else(|| panic!("external ref {r}"));
        let mut node = &doc;
        for part in pointer.split('/') {
            node = node.get(part).unwrap_or_else(|| panic!("unresolved {r}"));
        }
    }
}

/// Each documented route answers on the real router with something other than "no such
/// route" (404 from the fallback or 405): unauthenticated calls get 401, 303 or 400.
#[tokio::test]
async fn every_route_answers() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let platform = Arc::new(
        Platform::open(picket_platform::config::Config::default(), dir.path())
            .unwrap_or_else(|e| panic!("{e}")),
    );
    let router = try_router(platform).unwrap_or_else(|e| panic!("{e}"));
    for (method, path) in ROUTES {
        let concrete = path
            .replace("{job_id}", "job-x")
            .replace("{command_id}", "cmd-x")
            .replace("{id}", "app-x");
        let req = Request::builder()
            .method(*method)
            .uri(&concrete)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from("csrf=x"))
            .unwrap_or_else(|e| panic!("{e}"));
        let resp = router
            .clone()
            .oneshot(req)
            .await
            .unwrap_or_else(|e| match e {});
        let status = resp.status().as_u16();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap_or_default();
        let body = String::from_utf8_lossy(&body);
        assert!(
            status != 405 && !body.contains("no such route"),
            "{method} {path}: {status} {body}"
        );
    }
    // An unknown path is a typed 404.
    let resp = router
        .clone()
        .oneshot(
            Request::builder()
                .uri("/api/v1/nope")
                .body(Body::empty())
                .unwrap_or_else(|e| panic!("{e}")),
        )
        .await
        .unwrap_or_else(|e| match e {});
    assert_eq!(resp.status().as_u16(), 404);
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap_or_default();
    assert!(String::from_utf8_lossy(&body).contains("no such route"));
}
