//! The callback listener: a small HTTP server the scanner runs itself, so SSRF, blind XXE and
//! other out-of-band injections are confirmed by the target calling back with a token.
//!
//! Why our own: a data center cannot reach public callback services, and a token that arrives
//! here is proof, not inference. The listener answers every request with a short body naming the
//! token (so in-band SSRF shows it too), reads at most 8 KiB of a request, and keeps at most
//! 10,000 hits.

use crate::error::{Result, WebscanError};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Most hits remembered.
const MAX_HITS: usize = 10_000;

/// A request the listener received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// The request line (escaped).
    pub request_line: String,
    pub peer: SocketAddr,
}

/// The running listener.
#[derive(Debug)]
pub struct Callback {
    pub addr: SocketAddr,
    /// The base URL given to targets (`http://ADDR` unless `--callback-url` says otherwise).
    pub base_url: String,
    hits: Arc<Mutex<Vec<Hit>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Callback {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The body served for a path: names the token so in-band fetches show it.
pub fn body_for(path: &str) -> String {
    let token: String = path
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(64)
        .collect();
    format!("picket-callback-{token}")
}

impl Callback {
    /// Binds the listener and serves until dropped.
    pub async fn start(listen: SocketAddr, base_url: Option<String>) -> Result<Callback> {
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|e| WebscanError::Callback {
                addr: listen.to_string(),
                reason: e.to_string(),
            })?;
        let addr = listener.local_addr().map_err(|e| WebscanError::Callback {
            addr: listen.to_string(),
            reason: e.to_string(),
        })?;
        let hits: Arc<Mutex<Vec<Hit>>> = Arc::new(Mutex::new(Vec::new()));
        let h = hits.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut sock, peer)) = listener.accept().await else {
                    continue;
                };
                let h = h.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 8192];
                    let mut len = 0;
                    let read = tokio::time::timeout(Duration::from_secs(5), async {
                        while len < buf.len() {
                            match sock.read(&mut buf[len..]).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => len += n,
                            }
                            if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                                break;
                            }
                        }
                    })
                    .await;
                    let _ = read;
                    let text = String::from_utf8_lossy(&buf[..len]).into_owned();
                    let line = text.lines().next().unwrap_or_default().to_owned();
                    let path = line.split(' ').nth(1).unwrap_or_default().to_owned();
                    {
                        let mut hits = h.lock().unwrap_or_else(|p| p.into_inner());
                        if hits.len() < MAX_HITS {
                            hits.push(Hit {
                                request_line: line.escape_default().to_string(),
                                peer,
                            });
                        }
                    }
                    let body = body_for(&path);
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = tokio::time::timeout(
                        Duration::from_secs(5),
                        sock.write_all(resp.as_bytes()),
                    )
                    .await;
                });
            }
        });
        let base_url = base_url.unwrap_or_else(|| format!("http://{addr}"));
        Ok(Callback {
            addr,
            base_url: base_url.trim_end_matches('/').to_owned(),
            hits,
            task,
        })
    }

    /// The URL that proves `token` when requested.
    pub fn url_for(&self, kind: &str, token: &str) -> String {
        format!("{}/{kind}/{token}", self.base_url)
    }

    /// The hit carrying `token`, if any arrived.
    pub fn hit(&self, token: &str) -> Option<Hit> {
        self.hits
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|h| h.request_line.contains(token))
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_with_a_token_is_recorded_and_answered() {
        let cb = Callback::start(
            "127.0.0.1:0".parse().unwrap_or_else(|_| unreachable!()),
            None,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        let url = cb.url_for("ssrf", "tok123");
        assert!(url.starts_with("http://127.0.0.1:"));
        let mut s = tokio::net::TcpStream::connect(cb.addr)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        s.write_all(b"GET /ssrf/tok123 HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mut out = String::new();
        s.read_to_string(&mut out)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(out.ends_with("picket-callback-tok123"), "{out}");
        assert!(cb.hit("tok123").is_some());
        assert!(cb.hit("other").is_none());
    }
}
