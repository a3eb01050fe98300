//! The appliance refuses a platform whose server certificate has expired, even when it chains to
//! the pinned CA — the appliance half of "an expired certificate is refused in both directions"
//! (the platform half, an expired client certificate, is `platform/tests/tls_api.rs`).
//!
//! The server is a rustls server on loopback presenting certificates made here with rcgen; the
//! client is the appliance's own `PlatformClient` with its own TLS configurations (the pinned one
//! used after enrollment, and the fingerprint one used at enrollment). A valid certificate from the
//! same CA is served as the control, so the test fails if the refusal had another cause.

use picket_appliance::sync::{chain, PlatformClient};
use picket_appliance::tls::{enrollment_config, pinned_config, EnrollTrust};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use ring::digest::{digest, SHA256};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::sync::Arc;
use time::{Duration, OffsetDateTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Pki {
    ca_pem: String,
    ca_der: Vec<u8>,
    ca_params: CertificateParams,
    ca_key: KeyPair,
}

fn pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap_or_else(|e| panic!("{e}"));
    let mut p = CertificateParams::default();
    p.distinguished_name
        .push(DnType::CommonName, "test platform CA");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = p
        .clone()
        .self_signed(&ca_key)
        .unwrap_or_else(|e| panic!("{e}"));
    Pki {
        ca_pem: ca.pem(),
        ca_der: ca.der().to_vec(),
        ca_params: p,
        ca_key,
    }
}

/// A leaf signed by the CA, valid from `from` to `until` (relative to now).
fn leaf(pki: &Pki, server: bool, from: Duration, until: Duration) -> (String, Vec<u8>, Vec<u8>) {
    let key = KeyPair::generate().unwrap_or_else(|e| panic!("{e}"));
    let mut p =
        CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap_or_else(|e| panic!("{e}"));
    p.distinguished_name.push(DnType::CommonName, "leaf");
    p.extended_key_usages = vec![if server {
        ExtendedKeyUsagePurpose::ServerAuth
    } else {
        ExtendedKeyUsagePurpose::ClientAuth
    }];
    let now = OffsetDateTime::now_utc();
    p.not_before = now + from;
    p.not_after = now + until;
    let issuer = pki
        .ca_params
        .clone()
        .self_signed(&pki.ca_key)
        .unwrap_or_else(|e| panic!("{e}"));
    let cert = p
        .signed_by(&key, &issuer, &pki.ca_key)
        .unwrap_or_else(|e| panic!("{e}"));
    (cert.pem(), cert.der().to_vec(), key.serialize_der())
}

/// Serves one fixed poll answer over TLS to every connection; returns the base URL.
async fn serve(pki: &Pki, server_der: Vec<u8>, server_key: Vec<u8>) -> String {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|e| panic!("{e}"))
        .with_no_client_auth()
        .with_single_cert(
            vec![
                CertificateDer::from(server_der),
                CertificateDer::from(pki.ca_der.clone()),
            ],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key)),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(async move {
        // Bounded: the test makes a handful of connections.
        for _ in 0..16 {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = vec![0u8; 8192];
                let _ = tokio::time::timeout(std::time::Duration::from_secs(5), tls.read(&mut buf))
                    .await;
                let body = r#"{"jobs":[],"commands":[]}"#;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(answer.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    format!("https://{addr}")
}

async fn poll_with(url: &str, cfg: rustls::ClientConfig) -> Result<(), String> {
    let client = PlatformClient::new(url, cfg, None).map_err(|e| e.to_string())?;
    client.poll(1).await.map(|_| ()).map_err(|e| chain(&e))
}

#[tokio::test]
async fn an_expired_platform_certificate_is_refused_even_under_the_pinned_ca() {
    let pki = pki();
    let (client_pem, _, client_key) = leaf(&pki, false, Duration::hours(-1), Duration::days(1));
    let pinned =
        || pinned_config(&pki.ca_pem, &client_pem, &client_key).unwrap_or_else(|e| panic!("{e}"));
    let fingerprint: [u8; 32] = digest(&SHA256, &pki.ca_der)
        .as_ref()
        .try_into()
        .unwrap_or_else(|e| panic!("{e}"));
    let enrolling = || {
        enrollment_config(&EnrollTrust::Fingerprint(fingerprint)).unwrap_or_else(|e| panic!("{e}"))
    };

    // Control: a valid server certificate from the same CA is accepted by both configurations.
    let (_, good_der, good_key) = leaf(&pki, true, Duration::hours(-1), Duration::days(1));
    let good = serve(&pki, good_der, good_key).await;
    poll_with(&good, pinned())
        .await
        .unwrap_or_else(|e| panic!("valid certificate refused: {e}"));
    poll_with(&good, enrolling())
        .await
        .unwrap_or_else(|e| panic!("valid certificate refused at enrollment: {e}"));

    // Expired yesterday: refused by both, and the error says why.
    let (_, old_der, old_key) = leaf(&pki, true, Duration::days(-30), Duration::days(-1));
    let expired = serve(&pki, old_der, old_key).await;
    for (what, cfg) in [("pinned", pinned()), ("enrollment", enrolling())] {
        let err = poll_with(&expired, cfg)
            .await
            .err()
            .unwrap_or_else(|| panic!("{what}: an expired server certificate was accepted"));
        assert!(
            err.to_lowercase().contains("expired"),
            "{what}: refused, but not for expiry: {err}"
        );
    }

    // Not yet valid (a platform clock running ahead): refused too.
    let (_, early_der, early_key) = leaf(&pki, true, Duration::days(1), Duration::days(30));
    let early = serve(&pki, early_der, early_key).await;
    let err = poll_with(&early, pinned())
        .await
        .err()
        .unwrap_or_else(|| panic!("a not-yet-valid server certificate was accepted"));
    assert!(err.to_lowercase().contains("valid"), "{err}");
}
