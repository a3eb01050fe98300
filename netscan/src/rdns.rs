//! Reverse DNS (PTR) names of the hosts found up.
//!
//! Why bounded so tightly: reverse zones of internal networks are often missing or served by a
//! slow forwarder, and a scan must not wait on them. Lookups run concurrently (at most
//! [`CONCURRENCY`] at once), each gives up after [`PER_LOOKUP_TIMEOUT`], and the whole phase after
//! [`TOTAL_TIMEOUT`]; a failure only means the host gets no name.

use crate::targets::system_resolver;
use hickory_resolver::TokioResolver;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// PTR lookups in flight at once.
pub const CONCURRENCY: usize = 32;
/// Longest wait for one address's PTR answer.
pub const PER_LOOKUP_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest the whole reverse-DNS phase may take.
pub const TOTAL_TIMEOUT: Duration = Duration::from_secs(20);
/// Names kept per address (a PTR set is normally one name; a hostile server may send hundreds).
const MAX_NAMES: usize = 8;

/// PTR names of each address that has any; bounded in time.
pub async fn reverse_names(addrs: &[IpAddr]) -> HashMap<IpAddr, Vec<String>> {
    reverse_names_with(addrs, &system_resolver(), PER_LOOKUP_TIMEOUT, TOTAL_TIMEOUT).await
}

/// [`reverse_names`] with a given resolver and limits.
pub(crate) async fn reverse_names_with(
    addrs: &[IpAddr],
    resolver: &TokioResolver,
    per_lookup: Duration,
    total: Duration,
) -> HashMap<IpAddr, Vec<String>> {
    let mut unique = addrs.to_vec();
    unique.sort_unstable();
    unique.dedup();
    // A fixed set of workers pulls addresses from a shared queue, so memory stays proportional to
    // CONCURRENCY however many hosts are up.
    let queue = Arc::new(std::sync::Mutex::new(unique.into_iter()));
    let results = Arc::new(std::sync::Mutex::new(HashMap::new()));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENCY {
        let (resolver, queue, results) = (resolver.clone(), queue.clone(), results.clone());
        set.spawn(async move {
            loop {
                let next = queue.lock().ok().and_then(|mut q| q.next());
                let Some(addr) = next else { break };
                let lookup = tokio::time::timeout(per_lookup, resolver.reverse_lookup(addr)).await;
                let Ok(Ok(lookup)) = lookup else { continue };
                let mut names: Vec<String> = lookup
                    .iter()
                    .map(|ptr| ptr.0.to_utf8().trim_end_matches('.').to_string())
                    .filter(|n| !n.is_empty())
                    .take(MAX_NAMES)
                    .collect();
                names.sort();
                names.dedup();
                if !names.is_empty() {
                    if let Ok(mut r) = results.lock() {
                        r.insert(addr, names);
                    }
                }
            }
        });
    }
    let deadline = tokio::time::Instant::now() + total;
    while let Ok(Some(_)) = tokio::time::timeout_at(deadline, set.join_next()).await {}
    set.abort_all();
    let out = results.lock().map(|r| r.clone()).unwrap_or_default();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_resolver::config::ResolverConfig;
    use hickory_resolver::name_server::TokioConnectionProvider;

    /// Without name servers every lookup fails at once: the phase must return empty, quickly.
    /// (Real PTR answers are tested against dnsmasq in tests/discovery_netns.rs.)
    #[tokio::test]
    async fn failures_mean_no_names_and_time_is_bounded() {
        let resolver = TokioResolver::builder_with_config(
            ResolverConfig::new(),
            TokioConnectionProvider::default(),
        )
        .build();
        let addrs: Vec<IpAddr> = (1..=200u8)
            .map(|i| IpAddr::from([198, 18, 250, i]))
            .collect();
        let started = std::time::Instant::now();
        let names = reverse_names_with(
            &addrs,
            &resolver,
            Duration::from_millis(500),
            Duration::from_secs(2),
        )
        .await;
        assert!(names.is_empty(), "{names:?}");
        assert!(started.elapsed() < Duration::from_secs(3));
    }
}
