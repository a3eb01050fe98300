//! TLS client configurations for talking to the platform (rustls, ring provider).
//!
//! Why a module: the trust decisions are the security of the whole link, so they are made in one
//! place. At enrollment the platform is trusted by a configured CA file, a CA fingerprint, or the
//! system roots (webpki-roots plus `/etc/ssl/certs/ca-certificates.crt`); after enrollment the
//! server chain is verified ONLY against the CA the platform returned and we pinned, whatever any
//! system or proxy trust store says, and the appliance's client certificate is presented.

use crate::app::AppError;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use std::path::Path;
use std::sync::Arc;

/// The system's CA bundle on Debian-family systems (the image ships ca-certificates).
const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
/// Largest PEM file read.
const MAX_PEM_BYTES: u64 = 4 * 1024 * 1024;

pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn cert_err(reason: impl Into<String>) -> AppError {
    AppError::Certificate {
        reason: reason.into(),
    }
}

/// Certificates of a PEM text.
pub fn certs_from_pem(pem: &str, what: &str) -> Result<Vec<CertificateDer<'static>>, AppError> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| cert_err(format!("{what}: bad PEM: {e}")))?;
    if certs.is_empty() {
        return Err(cert_err(format!("{what}: no certificate in the PEM")));
    }
    Ok(certs)
}

/// Certificates of a PEM file (bounded read).
pub fn certs_from_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, AppError> {
    use std::io::Read;
    let what = path.display().to_string();
    let f = std::fs::File::open(path).map_err(|e| cert_err(format!("{what}: {e}")))?;
    let mut text = String::new();
    f.take(MAX_PEM_BYTES)
        .read_to_string(&mut text)
        .map_err(|e| cert_err(format!("{what}: {e}")))?;
    certs_from_pem(&text, &what)
}

/// SHA-256 of a DER certificate, lowercase hex with colons.
pub fn fingerprint(der: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, der)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn builder() -> Result<rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier>, AppError> {
    ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| cert_err(format!("TLS versions: {e}")))
}

/// How the platform is trusted at enrollment.
#[derive(Debug, Clone)]
pub enum EnrollTrust {
    /// System roots plus extra PEM certificates (configured CA file, proxy bundle).
    Roots(Vec<CertificateDer<'static>>),
    /// Exactly the CA with this SHA-256 fingerprint, which must be in the server's chain.
    Fingerprint([u8; 32]),
}

/// The configuration for the enrollment call (no client certificate).
pub fn enrollment_config(trust: &EnrollTrust) -> Result<ClientConfig, AppError> {
    let mut cfg = match trust {
        EnrollTrust::Roots(extra) => {
            let mut roots = RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            if let Ok(system) = certs_from_file(Path::new(SYSTEM_BUNDLE)) {
                let _ = roots.add_parsable_certificates(system);
            }
            for c in extra {
                roots
                    .add(c.clone())
                    .map_err(|e| cert_err(format!("extra CA: {e}")))?;
            }
            builder()?
                .with_root_certificates(roots)
                .with_no_client_auth()
        }
        EnrollTrust::Fingerprint(fp) => builder()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(FingerprintVerifier {
                fingerprint: *fp,
                provider: provider(),
            }))
            .with_no_client_auth(),
    };
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

/// The configuration of every call after enrollment: the pinned CA only, our client certificate.
pub fn pinned_config(
    ca_pem: &str,
    cert_pem: &str,
    key_pkcs8_der: &[u8],
) -> Result<ClientConfig, AppError> {
    let mut roots = RootCertStore::empty();
    for c in certs_from_pem(ca_pem, "pinned platform CA")? {
        roots
            .add(c)
            .map_err(|e| cert_err(format!("pinned platform CA: {e}")))?;
    }
    let chain = certs_from_pem(cert_pem, "client certificate")?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pkcs8_der.to_vec()));
    let mut cfg = builder()?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|e| cert_err(format!("client certificate and key: {e}")))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

/// Accepts a server whose chain contains the CA with the configured fingerprint and whose end
/// certificate verifies against that CA alone (name, validity, signatures).
#[derive(Debug)]
struct FingerprintVerifier {
    fingerprint: [u8; 32],
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for FingerprintVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let ca = intermediates
            .iter()
            .find(|c| {
                ring::digest::digest(&ring::digest::SHA256, c.as_ref()).as_ref()
                    == self.fingerprint.as_slice()
            })
            .ok_or_else(|| {
                rustls::Error::General(
                    "no certificate in the platform's chain matches the configured CA fingerprint"
                        .into(),
                )
            })?;
        let mut roots = RootCertStore::empty();
        roots.add(ca.clone().into_owned())?;
        let inner =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
                .build()
                .map_err(|e| rustls::Error::General(e.to_string()))?;
        inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
