//! Unprivileged TCP connect scan: the fallback when the process lacks CAP_NET_RAW.
//!
//! Each probe is a full `connect()`: accepted means open, refused means closed, no answer within
//! the host's retransmission timeout (retried `retries` times) means filtered. The socket is closed
//! with SO_LINGER 0 so an open port sees a RST rather than a lingering connection, and our side
//! keeps no TIME_WAIT state. Concurrency is bounded by the file-descriptor limit, which we raise to
//! the hard limit first.

use crate::error::Result;
use crate::scan::{HostPorts, HostTarget, PortScanConfig, PortScanStats, Progress};
use crate::timing::RttEstimator;
use rand::seq::SliceRandom;
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpSocket;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// The most connections in flight at once, whatever the descriptor limit allows.
const MAX_CONCURRENCY: usize = 2048;
/// A connect attempt is never given less than this, so scheduler jitter is not taken for filtering.
const MIN_CONNECT_TIMEOUT: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Open,
    Closed,
    Silent,
    Unreachable,
}

async fn probe(addr: SocketAddr, timeout: Duration) -> (Outcome, Option<Duration>) {
    let sock = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    };
    let Ok(sock) = sock else {
        return (Outcome::Silent, None);
    };
    // Zero linger: close() sends RST at once and never blocks.
    let _ = socket2::SockRef::from(&sock).set_linger(Some(Duration::ZERO));
    let started = Instant::now();
    match tokio::time::timeout(timeout, sock.connect(addr)).await {
        Ok(Ok(stream)) => {
            drop(stream);
            (Outcome::Open, Some(started.elapsed()))
        }
        Ok(Err(e)) if e.kind() == ErrorKind::ConnectionRefused => {
            (Outcome::Closed, Some(started.elapsed()))
        }
        Ok(Err(e))
            if matches!(
                e.raw_os_error(),
                Some(libc::EHOSTUNREACH) | Some(libc::ENETUNREACH)
            ) =>
        {
            (Outcome::Unreachable, None)
        }
        Ok(Err(_)) | Err(_) => (Outcome::Silent, None),
    }
}

/// Raises the soft descriptor limit to the hard one and returns a safe concurrency for it.
fn concurrency_budget() -> usize {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return 256;
    };
    let soft = if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        hard
    } else {
        soft
    };
    (soft.saturating_sub(128) as usize).clamp(16, MAX_CONCURRENCY)
}

/// Scans `ports` on every host with connect(). Results come back in the order of `hosts`.
pub async fn connect_scan(
    hosts: &[HostTarget],
    ports: &[u16],
    cfg: &PortScanConfig,
    progress: Arc<dyn Progress>,
) -> Result<(Vec<HostPorts>, PortScanStats)> {
    let budget = concurrency_budget();
    let sem = Arc::new(Semaphore::new(budget));
    let rate = cfg
        .max_rate
        .map(|r| Duration::from_secs_f64(1.0 / f64::from(r)));
    let results: Vec<Arc<Mutex<(HostPorts, RttEstimator)>>> = hosts
        .iter()
        .map(|h| Arc::new(Mutex::new((HostPorts::default(), h.rtt))))
        .collect();
    let stats = Arc::new(Mutex::new(PortScanStats::default()));

    // Interleave hosts and ports in random order so no host sees a burst of sequential ports.
    let mut work: Vec<(usize, u16)> = (0..hosts.len())
        .flat_map(|h| ports.iter().map(move |&p| (h, p)))
        .collect();
    work.shuffle(&mut rand::thread_rng());

    let max_attempts = u32::from(cfg.retries) + 1;
    let keep_closed = cfg.keep_closed;
    let mut set = JoinSet::new();
    let mut next_send = Instant::now();
    for (h, port) in work {
        if let Some(gap) = rate {
            let now = Instant::now();
            if next_send > now {
                tokio::time::sleep(next_send - now).await;
            }
            next_send = next_send.max(now) + gap;
        }
        let permit = match sem.clone().acquire_owned().await {
            Ok(p) => p,
            Err(_) => break,
        };
        let addr: IpAddr = hosts[h].addr;
        let slot = results[h].clone();
        let stats = stats.clone();
        let progress = progress.clone();
        set.spawn(async move {
            let _permit = permit;
            let sa = SocketAddr::new(addr, port);
            let mut outcome = Outcome::Silent;
            for attempt in 0..max_attempts {
                let timeout = slot
                    .lock()
                    .map(|g| g.1.rto() * 2)
                    .unwrap_or(MIN_CONNECT_TIMEOUT)
                    .max(MIN_CONNECT_TIMEOUT);
                let (o, rtt) = probe(sa, timeout).await;
                if let Ok(mut s) = stats.lock() {
                    s.probes_sent += 1;
                    if attempt > 0 {
                        s.retransmissions += 1;
                    }
                }
                if let (Some(rtt), Ok(mut g)) = (rtt, slot.lock()) {
                    g.1.observe(rtt);
                }
                outcome = o;
                if matches!(o, Outcome::Open | Outcome::Closed | Outcome::Unreachable) {
                    break;
                }
            }
            if let Ok(mut g) = slot.lock() {
                let hp = &mut g.0;
                match outcome {
                    Outcome::Open => {
                        hp.open.push(port);
                        hp.responded = true;
                    }
                    Outcome::Closed => {
                        hp.closed_count += 1;
                        hp.responded = true;
                        if keep_closed {
                            hp.closed.push(port);
                        }
                    }
                    Outcome::Silent | Outcome::Unreachable => hp.filtered.push(port),
                }
            }
            progress.advance(1);
        });
        // Reap finished tasks as we go so the set stays small.
        while set.try_join_next().is_some() {}
    }
    while set.join_next().await.is_some() {}

    let out = results
        .into_iter()
        .map(|slot| {
            let (mut hp, rtt) = match Arc::try_unwrap(slot) {
                Ok(m) => m.into_inner().unwrap_or_default(),
                Err(shared) => shared.lock().map(|g| g.clone()).unwrap_or_default(),
            };
            hp.rtt = rtt;
            hp.open.sort_unstable();
            hp.closed.sort_unstable();
            hp.filtered.sort_unstable();
            hp
        })
        .collect();
    let stats = stats.lock().map(|s| *s).unwrap_or_default();
    Ok((out, stats))
}
