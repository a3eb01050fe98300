//! The TLS configuration of an HTTPS target: obsolete protocol versions accepted, and a
//! certificate a browser would refuse.
//!
//! Why netscan's hand-built ClientHello: rustls cannot speak TLS 1.0 or 1.1, so asking a server
//! whether it still accepts them takes a ClientHello we write ourselves and netscan's parser of
//! the server's answer (both pure and fuzzed there). Certificate validity is a verifying rustls
//! handshake (Web PKI roots); it matters when the scan runs with `--insecure-tls`, since without
//! it an invalid certificate already stops the scan.

use crate::finding::{self, make};
use crate::http::Request;
use crate::Ctx;
use picket_model::WebEvidence;
use picket_netscan::service::tls::{client_hello, parse_server_flight, version_name, TLS10, TLS11};
use rand::Rng;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Most bytes read of a server's first flight.
const MAX_FLIGHT: usize = 64 * 1024;

/// The version the server chose when offered only `version`, if it answered with a ServerHello.
async fn accepted(host: &str, port: u16, version: u16, ctx: &Ctx) -> Option<u16> {
    let _t = ctx.client.pace().await;
    let fut = async {
        let mut s = ctx.client.tcp_connect(host, port).await.ok()?;
        let sni = host.parse::<std::net::IpAddr>().is_err().then_some(host);
        s.write_all(&client_hello(version, sni, rand::thread_rng().gen()))
            .await
            .ok()?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            let n = s.read(&mut chunk).await.ok()?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            match parse_server_flight(&buf) {
                Ok(f) if f.complete || f.version.is_some() => return f.version,
                Ok(_) if buf.len() < MAX_FLIGHT => continue,
                _ => return None,
            }
        }
        parse_server_flight(&buf).ok().and_then(|f| f.version)
    };
    tokio::time::timeout(ctx.client.request_timeout(), fut)
        .await
        .ok()
        .flatten()
}

/// Runs the TLS checks when the target is HTTPS.
pub(crate) async fn check(ctx: &Arc<Ctx>) {
    let url = &ctx.start;
    if url.scheme() != "https" || ctx.client.past_deadline() {
        return;
    }
    let host = url
        .host_str()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = url.port_or_known_default().unwrap_or(443);
    let mut old = Vec::new();
    for v in [TLS10, TLS11] {
        if accepted(&host, port, v, ctx).await == Some(v) {
            old.push(version_name(v).unwrap_or("?"));
        }
    }
    let origin = url.origin().ascii_serialization();
    if !old.is_empty() {
        let ev = WebEvidence {
            request: format!(
                "TLS ClientHello offering only {} to {host}:{port}",
                old.join(" / ")
            ),
            response_excerpt: format!("ServerHello selecting {}", old.join(", then ")),
        };
        let mut f = make(
            &finding::TLS_WEAK,
            url,
            "CONNECT",
            None,
            None,
            ev,
            &old.join(", "),
            Vec::new(),
        );
        f.id = finding::stable_id(&finding::TLS_WEAK, "TLS", url, Some(&origin), None);
        ctx.add(f);
    }
    if let Err(reason) = ctx.client.verify_certificate(url).await {
        let ev = WebEvidence {
            request: finding::request_text(&ctx.client, &Request::get(url.clone())),
            response_excerpt: format!("TLS handshake with certificate verification: {reason}"),
        };
        let mut f = make(
            &finding::TLS_CERT,
            url,
            "CONNECT",
            None,
            None,
            ev,
            &reason,
            Vec::new(),
        );
        f.id = finding::stable_id(&finding::TLS_CERT, "TLS", url, Some(&origin), None);
        ctx.add(f);
    }
}
