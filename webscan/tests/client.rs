//! The HTTP client against small hostile servers on loopback: every limit ends in a typed error
//! or a cut body, within time.

use picket_webscan::http::{Client, ClientConfig, Request};
use picket_webscan::WebscanError;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use url::Url;

fn config(max_requests: u64) -> ClientConfig {
    ClientConfig {
        request_timeout: Duration::from_millis(800),
        max_body: 64 * 1024,
        max_head: 8 * 1024,
        max_requests,
        max_rps: None,
        concurrency: 4,
        deadline: Instant::now() + Duration::from_secs(60),
        deadline_secs: 60,
        insecure_tls: false,
        extra_headers: Vec::new(),
        allowed_nets: Vec::new(),
    }
}

/// A server that answers every connection with `behaviour`, reading the request first.
async fn serve(behaviour: &'static str) -> Url {
    let l = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = l.local_addr().unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                match behaviour {
                    "ok" => {
                        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nSet-Cookie: sid=abc; HttpOnly\r\n\r\nok").await;
                        // Keep-alive: answer further requests on the same connection.
                        while let Ok(n) = s.read(&mut buf).await {
                            if n == 0 {
                                break;
                            }
                            let _ = s
                                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                                .await;
                        }
                    }
                    "endless" => {
                        let _ = s
                            .write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                            .await;
                        let chunk = format!("{:x}\r\n{}\r\n", 1000, "a".repeat(1000));
                        while s.write_all(chunk.as_bytes()).await.is_ok() {}
                    }
                    "huge-head" => {
                        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nX-Junk: ").await;
                        let block = vec![b'a'; 4096];
                        for _ in 0..1000 {
                            if s.write_all(&block).await.is_err() {
                                break;
                            }
                        }
                    }
                    "slowloris" => {
                        let _ = s.write_all(b"HTTP/1.1 200 OK\r\n").await;
                        for _ in 0..100 {
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            if s.write_all(b"X").await.is_err() {
                                break;
                            }
                        }
                    }
                    _ => {
                        let _ = s.write_all(b"\x00\x01garbage\r\n\r\n").await;
                    }
                }
            });
        }
    });
    Url::parse(&format!("http://{addr}/")).unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn the_request_budget_is_hard_and_cookies_are_kept() {
    let url = serve("ok").await;
    let c = Client::new(config(3)).unwrap_or_else(|e| panic!("{e}"));
    for _ in 0..3 {
        let r = c
            .send(&Request::get(url.clone()))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((r.status, r.body.as_slice()), (200, b"ok".as_slice()));
    }
    assert_eq!(
        c.send(&Request::get(url.clone())).await.err(),
        Some(WebscanError::RequestBudget { limit: 3 })
    );
    assert_eq!(c.sent(), 3);
    assert_eq!(c.cookies(), vec![("sid".to_owned(), "abc".to_owned())]);
}

#[tokio::test]
async fn an_endless_body_is_cut_at_the_cap() {
    let url = serve("endless").await;
    let c = Client::new(config(10)).unwrap_or_else(|e| panic!("{e}"));
    let r = c
        .send(&Request::get(url))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(r.truncated);
    assert_eq!(r.body.len(), 64 * 1024);
}

#[tokio::test]
async fn a_huge_head_slowloris_and_garbage_are_typed_errors() {
    let c = Client::new(config(10)).unwrap_or_else(|e| panic!("{e}"));
    let url = serve("huge-head").await;
    assert!(matches!(
        c.send(&Request::get(url)).await,
        Err(WebscanError::HeadTooLarge { limit: 8192, .. })
    ));
    let url = serve("slowloris").await;
    let started = Instant::now();
    assert!(matches!(
        c.send(&Request::get(url)).await,
        Err(WebscanError::Timeout { .. })
    ));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let url = serve("garbage").await;
    assert!(matches!(
        c.send(&Request::get(url)).await,
        Err(WebscanError::Protocol { .. })
    ));
}

/// With allowed networks set (the daemon's scope), an address outside them is refused before
/// any connection is made, and one inside is used as usual.
#[tokio::test]
async fn addresses_outside_the_allowed_networks_are_never_connected_to() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let l = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = l.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let accepted = Arc::new(AtomicUsize::new(0));
    let seen = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    .await;
            });
        }
    });
    let url = Url::parse(&format!("http://{addr}/")).unwrap_or_else(|e| panic!("{e}"));

    let mut cfg = config(10);
    cfg.allowed_nets = vec!["198.18.0.0/15".parse().unwrap_or_else(|e| panic!("{e:?}"))];
    let outside = Client::new(cfg).unwrap_or_else(|e| panic!("{e}"));
    match outside.send(&Request::get(url.clone())).await {
        Err(WebscanError::Io { reason, .. }) => assert!(
            reason.contains("127.0.0.1") && reason.contains("outside the scan scope"),
            "{reason}"
        ),
        other => panic!("expected a scope refusal, got {other:?}"),
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 0, "a connection was made");

    let mut cfg = config(10);
    cfg.allowed_nets = vec!["127.0.0.0/8".parse().unwrap_or_else(|e| panic!("{e:?}"))];
    let inside = Client::new(cfg).unwrap_or_else(|e| panic!("{e}"));
    let resp = inside
        .send(&Request::get(url))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(resp.status, 200);
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}
