//! A platform started in-process on a free loopback port, and the calls every test makes
//! (admin connection, codes, enrollment as a simulated appliance).
#![allow(dead_code)]

use picket_model::api::{CreateCode, EnrollRequest, EnrollResponse, EnrollmentCode, Heartbeat};
use picket_model::sealed::SealingKey;
use picket_platform::client::{client_config, device_key, Conn};
use picket_platform::config::Config;
use picket_platform::server::{Platform, Server, Shared};
use std::net::SocketAddr;
use std::sync::Arc;

pub struct TestPlatform {
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    pub platform: Shared,
    pub ca_pem: String,
    pub token: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<()>>,
}

pub struct Enrolled {
    pub id: String,
    pub cert_pem: String,
    pub key_pem: String,
    pub sealing: SealingKey,
    pub response: EnrollResponse,
}

pub fn config() -> Config {
    Config {
        listen: "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}")),
        server_names: vec!["localhost".into(), "127.0.0.1".into()],
        cache_bytes: 8 * 1024 * 1024,
        ..Config::default()
    }
}

pub async fn start(config: Config) -> TestPlatform {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    start_in(config, dir).await
}

pub async fn start_in(config: Config, dir: tempfile::TempDir) -> TestPlatform {
    // After a stop, connection tasks still being torn down may hold the store for a moment.
    let mut tries = 0;
    let platform = loop {
        match Platform::open(config.clone(), dir.path()) {
            Ok(p) => break Arc::new(p),
            Err(e) if tries < 100 && e.to_string().contains("in use") => {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => panic!("open: {e}"),
        }
    };
    let server = Server::bind(platform.clone())
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = server.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        let _ = server
            .run(async {
                let _ = rx.await;
            })
            .await;
    });
    let ca_pem = platform.ca.cert_pem().to_string();
    let token = std::fs::read_to_string(dir.path().join("admin-token"))
        .unwrap_or_default()
        .trim()
        .to_string();
    TestPlatform {
        addr,
        dir,
        platform,
        ca_pem,
        token,
        stop: Some(tx),
        handle: Some(handle),
    }
}

impl TestPlatform {
    pub fn auth(&self) -> String {
        format!("Bearer {}", self.token)
    }

    /// A connection without a client certificate (operators, enrollment).
    pub async fn plain(&self) -> Conn {
        let cfg = client_config(&self.ca_pem, None).unwrap_or_else(|e| panic!("{e}"));
        Conn::connect(self.addr, "localhost", cfg)
            .await
            .unwrap_or_else(|e| panic!("connect: {e}"))
    }

    pub async fn code(&self, ttl_secs: Option<u64>) -> String {
        let mut c = self.plain().await;
        let auth = self.auth();
        let ans = c
            .post_json(
                "/api/v1/enrollment-codes",
                &[("authorization", &auth)],
                &CreateCode {
                    ttl_secs,
                    label: Some("test lab".into()),
                },
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ans.status, 200, "{}", String::from_utf8_lossy(&ans.body));
        let code: EnrollmentCode = ans.json().unwrap_or_else(|e| panic!("{e}"));
        code.code
    }

    /// Enrolls with `code`; returns the HTTP status and the answer body.
    pub async fn try_enroll(&self, code: &str) -> (u16, Vec<u8>, Option<Enrolled>) {
        let key = device_key().unwrap_or_else(|e| panic!("{e}"));
        let sealing = SealingKey::generate().unwrap_or_else(|e| panic!("{e}"));
        let mut c = self.plain().await;
        let ans = c
            .post_json(
                "/api/v1/enroll",
                &[],
                &EnrollRequest {
                    code: code.to_string(),
                    csr_pem: key.csr_pem.clone(),
                    sealing_key: sealing.public_hex(),
                    hostname: "lab-appliance".into(),
                    picket_version: "0.1.0".into(),
                },
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        if ans.status != 200 {
            return (ans.status, ans.body, None);
        }
        let response: EnrollResponse = ans.json().unwrap_or_else(|e| panic!("{e}"));
        let e = Enrolled {
            id: response.appliance_id.clone(),
            cert_pem: response.certificate_pem.clone(),
            key_pem: key.key_pem,
            sealing,
            response,
        };
        (ans.status, ans.body, Some(e))
    }

    pub async fn enroll(&self) -> Enrolled {
        let code = self.code(None).await;
        let (status, body, e) = self.try_enroll(&code).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        e.unwrap_or_else(|| panic!("no enrollment"))
    }

    /// A connection presenting the appliance's certificate, pinning the CA it was given.
    pub async fn conn_as(&self, e: &Enrolled) -> Conn {
        let cfg = client_config(&e.response.ca_pem, Some((&e.cert_pem, &e.key_pem)))
            .unwrap_or_else(|err| panic!("{err}"));
        Conn::connect(self.addr, "localhost", cfg)
            .await
            .unwrap_or_else(|err| panic!("connect: {err}"))
    }

    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            let _ = h.await;
        }
        drop(self.platform);
        self.dir
    }
}

/// Sends a heartbeat as the appliance connected on `c`; it must be accepted.
pub async fn heartbeat(c: &mut Conn, hb: &Heartbeat) {
    let ans = c
        .post_json("/api/v1/appliance/heartbeat", &[], hb)
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(ans.status, 200, "{}", String::from_utf8_lossy(&ans.body));
}
