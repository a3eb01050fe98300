//! OpenAPI 3.0/3.1 and Swagger 2.0 documents turned into endpoints with example values.
//!
//! Why: a REST API has no links to crawl; its document lists every operation, parameter and
//! body schema. Each operation becomes one endpoint with a plausible value in every parameter
//! (the document's example, else one by type), so the active checks test it like a form.
//! DELETE operations are left out: a scanner should not destroy the data it is testing.
//! Bounded: at most 2,000 operations, `$ref` chains followed 8 deep, 4 MiB documents.

use crate::error::{Result, WebscanError};
use crate::inject::{Body, Endpoint};
use serde_json::{Map, Value};
use std::path::Path;
use url::Url;

/// Largest document read.
pub const MAX_DOC: u64 = 4 << 20;
const MAX_OPERATIONS: usize = 2_000;
const MAX_REF_DEPTH: usize = 8;

/// Reads a document from a file.
pub fn read_file(path: &Path) -> Result<Value> {
    let bad = |reason: String| WebscanError::File {
        path: path.to_path_buf(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|e| bad(e.to_string()))?;
    if meta.len() > MAX_DOC {
        return Err(bad(format!("larger than {MAX_DOC} bytes")));
    }
    let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    serde_json::from_slice(&bytes).map_err(|e| WebscanError::OpenApi {
        source_name: path.display().to_string(),
        reason: format!("not JSON ({e}); YAML documents: convert to JSON first"),
    })
}

/// Whether a JSON value looks like an OpenAPI or Swagger document.
pub fn is_openapi(v: &Value) -> bool {
    (v.get("openapi").is_some() || v.get("swagger").is_some()) && v.get("paths").is_some()
}

fn resolve<'a>(doc: &'a Value, v: &'a Value, depth: usize) -> &'a Value {
    if depth > MAX_REF_DEPTH {
        return v;
    }
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) if r.starts_with("#/") => {
            let ptr = &r[1..];
            match doc.pointer(ptr) {
                Some(t) => resolve(doc, t, depth + 1),
                None => v,
            }
        }
        _ => v,
    }
}

/// An example value for a schema.
fn example(doc: &Value, schema: &Value, name: &str, depth: usize) -> Value {
    let schema = resolve(doc, schema, 0);
    if let Some(e) = schema.get("example") {
        return e.clone();
    }
    if let Some(e) = schema.get("default") {
        return e.clone();
    }
    if let Some(Value::Array(e)) = schema.get("enum") {
        if let Some(f) = e.first() {
            return f.clone();
        }
    }
    let ty = match schema.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("string")
            .to_owned(),
        _ if schema.get("properties").is_some() => "object".into(),
        _ => "string".into(),
    };
    match ty.as_str() {
        "integer" | "number" => Value::from(1),
        "boolean" => Value::Bool(true),
        "array" => Value::Array(Vec::new()),
        "object" if depth < 4 => {
            let mut m = Map::new();
            if let Some(Value::Object(props)) = schema.get("properties") {
                for (k, s) in props.iter().take(64) {
                    m.insert(k.clone(), example(doc, s, k, depth + 1));
                }
            }
            Value::Object(m)
        }
        _ => Value::String(crate::inject::default_value(name)),
    }
}

fn param_value(doc: &Value, p: &Value) -> String {
    let v = p
        .get("example")
        .or_else(|| p.get("x-example"))
        .cloned()
        .unwrap_or_else(|| {
            let schema = p.get("schema").unwrap_or(p);
            example(
                doc,
                schema,
                p.get("name").and_then(Value::as_str).unwrap_or(""),
                0,
            )
        });
    match v {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

/// The base URL of the API: `servers[0].url` (OpenAPI 3) or `basePath` (Swagger 2), resolved
/// against the document's own URL.
fn base_url(doc: &Value, doc_url: &Url) -> Url {
    let raw = doc
        .pointer("/servers/0/url")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| {
            doc.get("basePath")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "/".into());
    let mut u = doc_url.join(&raw).unwrap_or_else(|_| doc_url.clone());
    if !u.path().ends_with('/') {
        let p = format!("{}/", u.path());
        u.set_path(&p);
    }
    u
}

/// The endpoints of a document found at (or, for files, attributed to) `doc_url`.
pub fn endpoints(doc: &Value, doc_url: &Url) -> Vec<Endpoint> {
    let mut out = Vec::new();
    let Some(Value::Object(paths)) = doc.get("paths") else {
        return out;
    };
    let base = base_url(doc, doc_url);
    let swagger2 = doc.get("swagger").is_some();
    for (path, item) in paths {
        let item = resolve(doc, item, 0);
        let common: Vec<Value> = item
            .get("parameters")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for method in ["get", "post", "put", "patch"] {
            let Some(op) = item.get(method) else { continue };
            if out.len() >= MAX_OPERATIONS {
                return out;
            }
            let mut params: Vec<Value> = common.clone();
            if let Some(Value::Array(ps)) = op.get("parameters") {
                params.extend(ps.iter().cloned());
            }
            let mut query: Vec<(String, String)> = Vec::new();
            let mut form: Vec<(String, String)> = Vec::new();
            let mut body = Body::None;
            let mut rel = path.trim_start_matches('/').to_owned();
            let mut path_names: Vec<String> = Vec::new();
            for p in &params {
                let p = resolve(doc, p, 0);
                let name = p.get("name").and_then(Value::as_str).unwrap_or_default();
                let value = param_value(doc, p);
                match p.get("in").and_then(Value::as_str) {
                    Some("query") => query.push((name.to_owned(), value)),
                    Some("path") => {
                        rel = rel
                            .replace(&format!("{{{name}}}"), &crate::inject::path_encode(&value));
                        path_names.push(name.to_owned());
                    }
                    Some("formData") => form.push((name.to_owned(), value)),
                    Some("body") if swagger2 => {
                        let schema = p.get("schema").unwrap_or(&Value::Null);
                        let xml = op
                            .get("consumes")
                            .and_then(Value::as_array)
                            .is_some_and(|c| {
                                c.iter()
                                    .filter_map(Value::as_str)
                                    .any(|x| x.contains("xml"))
                            });
                        body = if xml {
                            let sample = match example(doc, schema, name, 0) {
                                Value::String(s) if s.trim_start().starts_with('<') => s,
                                _ => "<?xml version=\"1.0\"?><data>picket</data>".to_owned(),
                            };
                            Body::Xml(sample)
                        } else {
                            Body::Json(example(doc, schema, name, 0))
                        };
                    }
                    _ => {}
                }
            }
            if !form.is_empty() {
                let multipart = op
                    .get("consumes")
                    .and_then(Value::as_array)
                    .is_some_and(|c| c.iter().any(|x| x.as_str() == Some("multipart/form-data")));
                body = if multipart {
                    Body::Multipart(form)
                } else {
                    Body::Form(form)
                };
            }
            if let Some(Value::Object(content)) =
                resolve(doc, op.get("requestBody").unwrap_or(&Value::Null), 0).get("content")
            {
                let pick = |ct: &str| content.get(ct).and_then(|c| c.get("schema"));
                if let Some(s) = pick("application/json") {
                    body = Body::Json(example(doc, s, "body", 0));
                } else if let Some(s) = pick("application/x-www-form-urlencoded") {
                    body = Body::Form(pairs_of(&example(doc, s, "body", 0)));
                } else if let Some(s) = pick("multipart/form-data") {
                    body = Body::Multipart(pairs_of(&example(doc, s, "body", 0)));
                } else if let Some(c) = content
                    .get("application/xml")
                    .or_else(|| content.get("text/xml"))
                {
                    let sample = c
                        .get("example")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                        .unwrap_or_else(|| "<?xml version=\"1.0\"?><data>picket</data>".into());
                    body = Body::Xml(sample);
                }
            }
            let Ok(mut url) = base.join(&rel) else {
                continue;
            };
            if !query.is_empty() {
                url.set_query(Some(&crate::inject::encode_pairs(&query)));
            }
            // The segments that came from path parameters.
            let template: Vec<&str> = path.trim_start_matches('/').split('/').collect();
            let base_depth = base
                .path_segments()
                .map_or(0, |s| s.filter(|x| !x.is_empty()).count());
            let path_params = template
                .iter()
                .enumerate()
                .filter(|(_, s)| s.starts_with('{') && s.ends_with('}'))
                .map(|(i, _)| base_depth + i)
                .collect();
            out.push(Endpoint {
                method: method.to_ascii_uppercase(),
                url,
                body,
                path_params,
                found_on: format!("openapi {doc_url}"),
            });
        }
    }
    out
}

fn pairs_of(v: &Value) -> Vec<(String, String)> {
    match v {
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| {
                let s = match v {
                    Value::String(s) => s.clone(),
                    o => o.to_string(),
                };
                (k.clone(), s)
            })
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openapi3_operations_become_endpoints() {
        let doc = serde_json::json!({
            "openapi": "3.0.3",
            "servers": [{"url": "/api/v2"}],
            "paths": {
                "/items/{id}": {
                    "parameters": [{"name": "id", "in": "path", "schema": {"type": "integer"}}],
                    "get": {"parameters": [{"name": "fields", "in": "query", "schema": {"type": "string"}}]},
                    "delete": {}
                },
                "/orders": {"post": {"requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Order"}}}}}}
            },
            "components": {"schemas": {"Order": {"type": "object", "properties": {"item": {"type": "string", "example": "book"}, "qty": {"type": "integer"}}}}}
        });
        let base = Url::parse("http://h:1/openapi.json").unwrap_or_else(|e| panic!("{e}"));
        assert!(is_openapi(&doc));
        let eps = endpoints(&doc, &base);
        assert_eq!(eps.len(), 2);
        let get = eps
            .iter()
            .find(|e| e.method == "GET")
            .unwrap_or_else(|| panic!("no GET"));
        assert_eq!(get.url.as_str(), "http://h:1/api/v2/items/1?fields=picket");
        assert_eq!(get.path_params, vec![3]);
        let post = eps
            .iter()
            .find(|e| e.method == "POST")
            .unwrap_or_else(|| panic!("no POST"));
        assert_eq!(
            post.body,
            Body::Json(serde_json::json!({"item": "book", "qty": 1}))
        );
    }

    #[test]
    fn swagger2_form_and_body_parameters() {
        let doc = serde_json::json!({
            "swagger": "2.0", "basePath": "/api/v1",
            "paths": {"/notes": {"post": {"consumes": ["application/x-www-form-urlencoded"],
                "parameters": [{"name": "title", "in": "formData", "type": "string"}]}},
                "/users": {"put": {"parameters": [{"name": "u", "in": "body", "schema": {"type": "object", "properties": {"name": {"type": "string"}}}}]}},
                "/import": {"post": {"consumes": ["application/xml"], "parameters": [{"name": "o", "in": "body", "schema": {"type": "string", "example": "<order><item>A</item></order>"}}]}},
                "/users/{id}": {"get": {"parameters": [{"name": "id", "in": "path", "type": "string", "x-example": "7"}]}}}
        });
        let base = Url::parse("http://h/api/v1/swagger.json").unwrap_or_else(|e| panic!("{e}"));
        let eps = endpoints(&doc, &base);
        let notes = eps
            .iter()
            .find(|e| e.url.path() == "/api/v1/notes")
            .unwrap_or_else(|| panic!("no notes"));
        assert_eq!(
            notes.body,
            Body::Form(vec![("title".into(), "picket".into())])
        );
        let put = eps
            .iter()
            .find(|e| e.method == "PUT")
            .unwrap_or_else(|| panic!("no PUT"));
        assert_eq!(put.body, Body::Json(serde_json::json!({"name": "picket"})));
        let imp = eps
            .iter()
            .find(|e| e.url.path() == "/api/v1/import")
            .unwrap_or_else(|| panic!("no import"));
        assert_eq!(imp.body, Body::Xml("<order><item>A</item></order>".into()));
        let user = eps
            .iter()
            .find(|e| e.url.path().starts_with("/api/v1/users/"))
            .unwrap_or_else(|| panic!("no user"));
        assert_eq!(
            (user.url.path(), user.path_params.clone()),
            ("/api/v1/users/7", vec![3])
        );
    }
}
