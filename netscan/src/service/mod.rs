//! Service detection: what runs behind an open port, and with which product and version.
//!
//! Why: a port number is only a guess. Vulnerability matching needs the product and version the
//! service itself announces, and TLS details (certificate, accepted protocol versions) are
//! findings of their own.
//!
//! Layout, bottom up:
//! - pure matchers over bytes, one file per protocol (`ssh`, `http`, `ftp`, `mail`, `dns`,
//!   `redis`, `memcached`, `mysql`, `postgres`, `snmp`, `rdp`, `smb`, `ldap`, `ntp`, `netbios`,
//!   `ssdp`, `banner`), plus `tls` (hand-built ClientHello and server-flight parser), `cert`
//!   (X.509 facts), `ber` (the ASN.1 subset SNMP and LDAP need), `cpe` and `text`;
//! - `probes`: the probe table and port hints, still without I/O;
//! - `detect`: the thin async layer that connects, sends, reads with RTT-derived timeouts and
//!   bounded buffers, and speaks TLS through rustls.
//!
//! The probes and match rules are our own, written from the protocol specifications.

// Tests may assert with expect(); library code is still held to the workspace lints, since
// clippy also checks the non-test build.
#![cfg_attr(test, allow(clippy::expect_used, clippy::unwrap_used))]

pub mod banner;
pub mod ber;
pub mod cert;
pub mod cpe;
pub mod detect;
pub mod dns;
pub mod ftp;
pub mod http;
pub mod ldap;
pub mod mail;
pub mod memcached;
pub mod mysql;
pub mod netbios;
pub mod ntp;
pub mod postgres;
pub mod probes;
pub mod rdp;
pub mod redis;
pub mod smb;
pub mod snmp;
pub mod ssdp;
pub mod ssh;
pub mod text;
pub mod tls;

use crate::scan::Progress;
use crate::timing::RttEstimator;
pub use picket_model::{Service, TlsInfo};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// A service of this name with nothing else known yet.
pub fn named(name: &str) -> Service {
    Service {
        name: name.to_string(),
        ..Default::default()
    }
}

/// Sets product, version (both cleaned and bounded) and the matching CPE name.
pub fn with_product(mut s: Service, product: &str, version: Option<&str>) -> Service {
    s.product = text::clean_field(product);
    s.version = version.and_then(text::clean_field);
    s.cpe = s
        .product
        .as_deref()
        .and_then(|p| cpe::cpe_for(p, s.version.as_deref()))
        .into_iter()
        .collect();
    s
}

/// Identifies the services on open TCP ports, `concurrency` connections at a time.
///
/// Ports whose service cannot be identified are returned as `unknown` with the bytes they sent,
/// or left out when they sent nothing.
pub async fn detect_many(
    jobs: Vec<(SocketAddr, RttEstimator)>,
    hostnames: &HashMap<IpAddr, Vec<String>>,
    concurrency: usize,
    progress: Arc<dyn Progress>,
) -> Vec<(SocketAddr, (Service, Option<TlsInfo>))> {
    let sem = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
    let mut set = tokio::task::JoinSet::new();
    for (addr, rtt) in jobs {
        let host = hostnames.get(&addr.ip()).and_then(|v| v.first()).cloned();
        let sem = sem.clone();
        set.spawn(async move {
            // The semaphore is never closed, so acquiring only waits.
            let _permit = sem.acquire_owned().await.ok();
            (addr, detect::detect_one(addr, rtt, host.as_deref()).await)
        });
    }
    let mut out = Vec::new();
    while let Some(joined) = set.join_next().await {
        progress.advance(1);
        match joined {
            Ok((addr, Some(found))) => out.push((addr, found)),
            Ok((_, None)) => {}
            Err(e) => tracing::warn!("service detection task failed: {e}"),
        }
    }
    out.sort_by_key(|(a, _)| *a);
    out
}
