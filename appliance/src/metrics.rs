//! Prometheus metrics of the daemon, in the text exposition format, on loopback only.
//!
//! Why hand-written: a dozen counters and gauges do not need a metrics framework, and the listener
//! is a few lines whose every read is bounded. The address is refused unless it is loopback
//! (`config::parse_metrics_listen`): the appliance exposes nothing inbound.
//!
//! Names (documented in docs/daemon.md): `picket_jobs_running`, `picket_jobs_completed_total`,
//! `picket_jobs_failed_total`, `picket_outbox_chunks`, `picket_outbox_bytes`,
//! `picket_outbox_dropped_chunks_total`, `picket_outbox_dropped_findings_total`,
//! `picket_poll_errors_total`, `picket_upload_errors_total`, `picket_last_contact_timestamp_seconds`,
//! `picket_enrolled`.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The daemon's counters and gauges.
#[derive(Debug, Default)]
pub struct Metrics {
    pub jobs_running: AtomicU64,
    pub jobs_completed: AtomicU64,
    pub jobs_failed: AtomicU64,
    pub outbox_chunks: AtomicU64,
    pub outbox_bytes: AtomicU64,
    pub dropped_chunks: AtomicU64,
    pub dropped_findings: AtomicU64,
    pub poll_errors: AtomicU64,
    pub upload_errors: AtomicU64,
    /// Unix seconds of the last successful call to the platform (0: never).
    pub last_contact: AtomicU64,
    pub enrolled: AtomicU64,
}

impl Metrics {
    /// The text exposition (format 0.0.4).
    pub fn render(&self) -> String {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut out = String::with_capacity(2048);
        let mut one = |name: &str, kind: &str, help: &str, v: u64| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            let _ = writeln!(out, "{name} {v}");
        };
        one(
            "picket_jobs_running",
            "gauge",
            "Jobs running now.",
            g(&self.jobs_running),
        );
        one(
            "picket_jobs_completed_total",
            "counter",
            "Job runs finished with their results in the outbox.",
            g(&self.jobs_completed),
        );
        one(
            "picket_jobs_failed_total",
            "counter",
            "Job runs failed, cancelled or refused.",
            g(&self.jobs_failed),
        );
        one(
            "picket_outbox_chunks",
            "gauge",
            "Result chunks waiting for the platform's acknowledgement.",
            g(&self.outbox_chunks),
        );
        one(
            "picket_outbox_bytes",
            "gauge",
            "Bytes in the outbox.",
            g(&self.outbox_bytes),
        );
        one(
            "picket_outbox_dropped_chunks_total",
            "counter",
            "Result chunks dropped by the outbox quota since enrollment.",
            g(&self.dropped_chunks),
        );
        one(
            "picket_outbox_dropped_findings_total",
            "counter",
            "Findings in dropped chunks.",
            g(&self.dropped_findings),
        );
        one(
            "picket_poll_errors_total",
            "counter",
            "Long-polls that failed.",
            g(&self.poll_errors),
        );
        one(
            "picket_upload_errors_total",
            "counter",
            "Uploads and reports that failed.",
            g(&self.upload_errors),
        );
        one(
            "picket_last_contact_timestamp_seconds",
            "gauge",
            "Unix time of the last successful call to the platform (0: never).",
            g(&self.last_contact),
        );
        one(
            "picket_enrolled",
            "gauge",
            "1 when enrolled.",
            g(&self.enrolled),
        );
        out
    }
}

/// Serves `GET /metrics` (any path, in fact) on `addr` until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let gate = Arc::new(tokio::sync::Semaphore::new(8));
    loop {
        let (mut stream, _) = tokio::select! {
            () = shutdown.cancelled() => return,
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = gate.clone().try_acquire_owned() else {
            continue;
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let _permit = permit;
            // Read the request head (bounded, with a deadline); its content does not matter.
            let mut buf = [0u8; 4096];
            let mut seen = 0usize;
            let read = tokio::time::timeout(Duration::from_secs(5), async {
                while seen < buf.len() {
                    let n = stream.read(&mut buf[seen..]).await?;
                    if n == 0 {
                        break;
                    }
                    seen += n;
                    if buf[..seen].windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
                Ok::<_, std::io::Error>(())
            })
            .await;
            if !matches!(read, Ok(Ok(()))) {
                return;
            }
            let body = metrics.render();
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = tokio::time::timeout(Duration::from_secs(5), async {
                stream.write_all(head.as_bytes()).await?;
                stream.write_all(body.as_bytes()).await?;
                stream.shutdown().await
            })
            .await;
        });
    }
}

/// Binds the metrics listener (loopback checked by the config).
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_names_every_metric_once() {
        let m = Metrics::default();
        m.jobs_completed.store(3, Ordering::Relaxed);
        let text = m.render();
        assert!(text.contains("\npicket_jobs_completed_total 3\n"));
        for name in [
            "picket_jobs_running",
            "picket_outbox_bytes",
            "picket_poll_errors_total",
            "picket_last_contact_timestamp_seconds",
        ] {
            assert_eq!(
                text.matches(&format!("# TYPE {name} ")).count(),
                1,
                "{name}"
            );
        }
    }
}
