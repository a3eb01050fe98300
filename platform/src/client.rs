//! A minimal HTTPS client of the platform API: one TLS connection, HTTP/1.1, requests in turn.
//!
//! Why here and not the appliance's client: the platform's own tests, its `code --url` helper and
//! the load generator need to speak the protocol with exact control over the TLS side (which CA is
//! pinned, which client certificate is presented, one connection per simulated appliance) without
//! depending on the appliance crate. The appliance's daemon has its own client.

use crate::ca::pem_certs;
use crate::error::PlatformError;
use axum::body::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Largest response body read (a findings query can be large).
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024 * 1024;

fn tls_err(context: &'static str) -> impl Fn(rustls::Error) -> PlatformError {
    move |e| PlatformError::Tls {
        context,
        detail: e.to_string(),
    }
}

/// A rustls client config trusting only `ca_pem`, presenting `identity` (certificate chain PEM,
/// PKCS#8 key PEM) when given.
pub fn client_config(
    ca_pem: &str,
    identity: Option<(&str, &str)>,
) -> Result<Arc<ClientConfig>, PlatformError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for c in pem_certs(ca_pem) {
        roots.add(c).map_err(tls_err("adding the pinned CA"))?;
    }
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(tls_err("protocol versions"))?
        .with_root_certificates(roots);
    let mut config = match identity {
        Some((cert_pem, key_pem)) => {
            let chain: Vec<CertificateDer<'static>> = pem_certs(cert_pem);
            let key_der = crate::ca::pem_to_der(key_pem, "PRIVATE KEY").ok_or_else(|| {
                PlatformError::Tls {
                    context: "client key",
                    detail: "no PRIVATE KEY block".into(),
                }
            })?;
            let key = PrivateKeyDer::Pkcs8(key_der.into());
            builder
                .with_client_auth_cert(chain, key)
                .map_err(tls_err("client certificate"))?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// One connection.
#[derive(Debug)]
pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
    host: String,
}

/// An answer: status, headers and body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, PlatformError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            PlatformError::BadRequest(format!(
                "answer {}: {e}: {}",
                self.status,
                String::from_utf8_lossy(&self.body[..self.body.len().min(300)])
            ))
        })
    }
}

impl Conn {
    /// Connects and completes the TLS handshake (with the server certificate checked for
    /// `server_name` against the pinned CA) within 10 s.
    pub async fn connect(
        addr: SocketAddr,
        server_name: &str,
        config: Arc<ClientConfig>,
    ) -> Result<Conn, PlatformError> {
        let name =
            ServerName::try_from(server_name.to_string()).map_err(|e| PlatformError::Invalid {
                what: "server name",
                detail: e.to_string(),
            })?;
        let io_err = |e: std::io::Error| PlatformError::io("connecting to", addr.to_string(), e);
        let fut = async {
            let tcp = tokio::net::TcpStream::connect(addr).await.map_err(io_err)?;
            let _ = tcp.set_nodelay(true);
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await
                .map_err(|e| PlatformError::Tls {
                    context: "handshake",
                    detail: e.to_string(),
                })?;
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
                .await
                .map_err(|e| PlatformError::Tls {
                    context: "http handshake",
                    detail: e.to_string(),
                })?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Ok::<_, PlatformError>(sender)
        };
        let sender = tokio::time::timeout(Duration::from_secs(10), fut)
            .await
            .map_err(|_| PlatformError::Unavailable(format!("connecting to {addr} timed out")))??;
        Ok(Conn {
            sender,
            host: server_name.to_string(),
        })
    }

    /// Sends one request and reads the whole answer.
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<Answer, PlatformError> {
        let has_body = body.is_some();
        let mut b = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.host);
        let typed = headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
        if has_body && !typed {
            b = b.header("content-type", "application/json");
        }
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let req = b
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| PlatformError::Invalid {
                what: "request",
                detail: e.to_string(),
            })?;
        let http = |e: hyper::Error| PlatformError::Unavailable(format!("{method} {path}: {e}"));
        self.sender.ready().await.map_err(http)?;
        let resp = self.sender.send_request(req).await.map_err(http)?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = Limited::new(resp.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|e| PlatformError::Unavailable(format!("{method} {path}: body: {e}")))?
            .to_bytes()
            .to_vec();
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    pub async fn get(
        &mut self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<Answer, PlatformError> {
        self.request("GET", path, headers, None).await
    }

    pub async fn post_json<T: serde::Serialize>(
        &mut self,
        path: &str,
        headers: &[(&str, &str)],
        body: &T,
    ) -> Result<Answer, PlatformError> {
        let body = serde_json::to_vec(body).map_err(|e| PlatformError::Invalid {
            what: "request body",
            detail: e.to_string(),
        })?;
        self.request("POST", path, headers, Some(body)).await
    }
}

/// A device key and its CSR, as an appliance makes them (ECDSA P-256, PKCS#8).
#[derive(Debug, Clone)]
pub struct DeviceKey {
    pub key_pem: String,
    pub csr_pem: String,
}

pub fn device_key() -> Result<DeviceKey, PlatformError> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(PlatformError::ca("generating a device key"))?;
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "picket appliance");
    let csr = params
        .serialize_request(&key)
        .and_then(|r| r.pem())
        .map_err(PlatformError::ca("making a CSR"))?;
    Ok(DeviceKey {
        key_pem: key.serialize_pem(),
        csr_pem: csr,
    })
}
