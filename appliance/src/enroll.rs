//! Enrollment: the appliance's identity with the platform.
//!
//! Why this shape: the device key is generated here (ECDSA P-256, rcgen) and never leaves the
//! box — the platform only sees a CSR; the X25519 sealing key is generated beside it for job
//! credentials (`model::sealed`). Both private keys are stored sealed under the key-encryption key
//! (`secrets`). The platform's CA, returned at enrollment, is pinned: every later call verifies
//! the server ONLY against it. Certificates are renewed at 2/3 of their validity.

use crate::app::AppError;
use crate::config::Config;
use crate::secrets::{Kek, SecretBytes};
use crate::settings::{self, read_secret};
use crate::store::{StateBatch, StateTree, Store, StoreError};
use crate::sync::{PlatformClient, ProxySpec};
use crate::tls::{self, EnrollTrust};
use picket_model::api;
use picket_model::sealed::SealingKey;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

const KEY_IDENTITY: &[u8] = b"identity";
pub(crate) const SECRET_DEVICE_KEY: &str = "device key";
pub(crate) const SECRET_SEALING_KEY: &str = "sealing key";

/// How the platform's certificate is trusted for the enrollment call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum CaTrust {
    /// The system's roots (a platform with a public certificate).
    SystemRoots,
    /// A PEM file of CAs (plus the system roots).
    CaFile(PathBuf),
    /// PEM text of CAs (plus the system roots): the console can paste one.
    CaPem(String),
    /// SHA-256 of the platform CA certificate: exactly that CA, nothing else.
    Fingerprint(String),
}

/// What an enrollment produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollOutcome {
    pub appliance_id: String,
    pub platform_url: String,
    /// RFC 3339.
    pub certificate_not_after: String,
    /// SHA-256 of the pinned platform CA.
    pub ca_fingerprint: String,
}

/// The public half of the identity, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub appliance_id: String,
    pub platform_url: String,
    pub certificate_pem: String,
    pub ca_pem: String,
    /// RFC 3339 validity of the certificate.
    pub not_before: String,
    pub not_after: String,
    pub enrolled_at: String,
}

impl Identity {
    /// When to renew: at 2/3 of the validity.
    pub fn renew_at(&self) -> Option<time::OffsetDateTime> {
        let f = &time::format_description::well_known::Rfc3339;
        let nb = time::OffsetDateTime::parse(&self.not_before, f).ok()?;
        let na = time::OffsetDateTime::parse(&self.not_after, f).ok()?;
        Some(nb + (na - nb) * 2 / 3)
    }
}

/// The identity and its keys, opened.
pub struct Enrolled {
    pub identity: Identity,
    pub device_key: SecretBytes,
    pub sealing_key: SealingKey,
}

impl std::fmt::Debug for Enrolled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enrolled")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

impl Enrolled {
    /// The pinned-CA, client-certificate TLS configuration.
    pub fn tls(&self) -> Result<rustls::ClientConfig, AppError> {
        tls::pinned_config(
            &self.identity.ca_pem,
            &self.identity.certificate_pem,
            self.device_key.expose(),
        )
    }
}

/// The stored identity (public part), if enrolled.
pub fn identity(store: &Store) -> Result<Option<Identity>, AppError> {
    Ok(store.state_get(StateTree::Settings, KEY_IDENTITY)?)
}

/// The identity with its private keys opened.
pub fn load(store: &Store, kek: &Kek) -> Result<Option<Enrolled>, AppError> {
    let Some(identity) = identity(store)? else {
        return Ok(None);
    };
    let device_key = read_secret(store, kek, SECRET_DEVICE_KEY)?.ok_or(AppError::Secret {
        what: SECRET_DEVICE_KEY,
        reason: "missing from the store".into(),
    })?;
    let seal = read_secret(store, kek, SECRET_SEALING_KEY)?.ok_or(AppError::Secret {
        what: SECRET_SEALING_KEY,
        reason: "missing from the store".into(),
    })?;
    let bytes: [u8; 32] = seal.expose().try_into().map_err(|_| AppError::Secret {
        what: SECRET_SEALING_KEY,
        reason: "not 32 bytes".into(),
    })?;
    Ok(Some(Enrolled {
        identity,
        device_key,
        sealing_key: SealingKey::from_bytes(bytes),
    }))
}

fn cert_err(reason: impl std::fmt::Display) -> AppError {
    AppError::Certificate {
        reason: reason.to_string(),
    }
}

/// A fresh device key and a CSR for it (PKCS#8 DER of the key, CSR PEM).
pub fn new_device_key(hostname: &str) -> Result<(SecretBytes, String), AppError> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(cert_err)?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(cert_err)?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, hostname);
    let csr = params.serialize_request(&key).map_err(cert_err)?;
    let pem = csr.pem().map_err(cert_err)?;
    Ok((SecretBytes::new(key.serialize_der()), pem))
}

/// The box's host name (for the platform's display), bounded and printable.
pub fn hostname() -> String {
    let h = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let h: String = h
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'))
        .take(253)
        .collect();
    if h.is_empty() {
        "picket".into()
    } else {
        h
    }
}

/// The enrollment trust from a [`CaTrust`], the config's `[platform]` and the proxy's CA bundle.
pub fn enrollment_trust(ca: &CaTrust, cfg: &Config) -> Result<EnrollTrust, AppError> {
    let mut extra = Vec::new();
    if let Some(b) = cfg.proxy.as_ref().and_then(|p| p.ca_bundle.as_ref()) {
        extra.extend(tls::certs_from_file(b)?);
    }
    match ca {
        CaTrust::Fingerprint(fp) => {
            let fp = crate::config::parse_fingerprint(fp).map_err(|reason| AppError::Config {
                path: "<ca fingerprint>".into(),
                reason,
            })?;
            Ok(EnrollTrust::Fingerprint(fp))
        }
        CaTrust::CaFile(p) => {
            extra.extend(tls::certs_from_file(p)?);
            Ok(EnrollTrust::Roots(extra))
        }
        CaTrust::CaPem(pem) => {
            extra.extend(tls::certs_from_pem(pem, "platform CA")?);
            Ok(EnrollTrust::Roots(extra))
        }
        CaTrust::SystemRoots => Ok(EnrollTrust::Roots(extra)),
    }
}

/// The proxy to use: the config file's, else the console settings'.
pub fn effective_proxy(
    cfg: &Config,
    s: &settings::ApplianceSettings,
) -> Result<Option<ProxySpec>, AppError> {
    if let Some(p) = &cfg.proxy {
        let password = match &p.password_env {
            Some(var) => Some(crate::secrets::SecretString::new(
                std::env::var(var).map_err(|_| AppError::MissingSecret { var: var.clone() })?,
            )),
            None => s
                .proxy
                .as_ref()
                .filter(|sp| sp.url == p.url)
                .and_then(|sp| sp.password.clone()),
        };
        return Ok(Some(ProxySpec {
            url: p.url.clone(),
            username: p.username.clone(),
            password,
        }));
    }
    Ok(s.proxy.as_ref().map(|p| ProxySpec {
        url: p.url.clone(),
        username: p.username.clone(),
        password: p.password.clone(),
    }))
}

/// An enrollment prepared from the store (trust, proxy, fresh keys), to be executed without
/// holding the store.
#[derive(Debug)]
pub struct EnrollPlan {
    platform_url: String,
    request: api::EnrollRequest,
    device_key: SecretBytes,
    sealing: SealingKey,
    tls: rustls::ClientConfig,
    proxy: Option<ProxySpec>,
}

/// The platform's answer, checked, to be committed to the store.
#[derive(Debug)]
pub struct EnrollAnswer {
    plan: EnrollPlan,
    resp: api::EnrollResponse,
    not_before: String,
    ca_fingerprint: String,
}

impl EnrollPlan {
    /// Checks the inputs and generates the keys.
    pub fn prepare(
        store: &Store,
        state_dir: &Path,
        cfg: &Config,
        platform_url: &str,
        code: &str,
        ca: &CaTrust,
    ) -> Result<EnrollPlan, AppError> {
        crate::config::check_platform_url(platform_url).map_err(|reason| AppError::Config {
            path: "--platform".into(),
            reason,
        })?;
        if code.trim().is_empty() || code.len() > 128 {
            return Err(AppError::Config {
                path: "--code".into(),
                reason: "empty or longer than 128 characters".into(),
            });
        }
        let s = settings::load_from(store, state_dir)?;
        let proxy = effective_proxy(cfg, &s)?;
        let host = hostname();
        let (device_key, csr_pem) = new_device_key(&host)?;
        let sealing = SealingKey::generate().map_err(|e| AppError::Secret {
            what: SECRET_SEALING_KEY,
            reason: e.to_string(),
        })?;
        let tls = tls::enrollment_config(&enrollment_trust(ca, cfg)?)?;
        Ok(EnrollPlan {
            platform_url: platform_url.trim_end_matches('/').to_owned(),
            request: api::EnrollRequest {
                code: code.trim().to_owned(),
                csr_pem,
                sealing_key: sealing.public_hex(),
                hostname: host,
                picket_version: picket_model::PICKET_VERSION.to_owned(),
            },
            device_key,
            sealing,
            tls,
            proxy,
        })
    }

    /// The enrollment call; checks that the answer is usable before anything is replaced.
    pub async fn execute(self) -> Result<EnrollAnswer, AppError> {
        let client =
            PlatformClient::new(&self.platform_url, self.tls.clone(), self.proxy.as_ref())?;
        let resp = client.enroll(&self.request).await.map_err(|e| match e {
            crate::sync::CallError::Status { error, status, .. }
                if matches!(status, 401 | 403 | 404 | 409 | 410)
                    || error.error.starts_with("code") =>
            {
                AppError::EnrollRefused {
                    code: error.error,
                    detail: error.detail,
                }
            }
            other => AppError::from(other),
        })?;
        let ca_certs = tls::certs_from_pem(&resp.ca_pem, "platform CA")?;
        let ca_fingerprint = ca_certs
            .first()
            .map(|c| tls::fingerprint(c.as_ref()))
            .unwrap_or_default();
        let not_before = cert_not_before(&resp.certificate_pem)?;
        tls::pinned_config(
            &resp.ca_pem,
            &resp.certificate_pem,
            self.device_key.expose(),
        )?;
        Ok(EnrollAnswer {
            plan: self,
            resp,
            not_before,
            ca_fingerprint,
        })
    }
}

impl EnrollAnswer {
    /// Stores the keys and the identity (durable on return). The identity record goes last: until
    /// it is written the previous identity (if any) stays whole.
    pub fn commit(self, store: &Store, state_dir: &Path) -> Result<EnrollOutcome, AppError> {
        let kek = settings::kek_for(store, state_dir)?;
        let identity = Identity {
            appliance_id: self.resp.appliance_id.clone(),
            platform_url: self.plan.platform_url.clone(),
            certificate_pem: self.resp.certificate_pem,
            ca_pem: self.resp.ca_pem,
            not_before: self.not_before,
            not_after: self.resp.not_after.clone(),
            enrolled_at: crate::report::rfc3339(crate::report::now_utc()),
        };
        let device = kek.seal(SECRET_DEVICE_KEY, self.plan.device_key.expose())?;
        let sealing = kek.seal(SECRET_SEALING_KEY, &self.plan.sealing.to_bytes())?;
        let mut secrets = StateBatch::new();
        secrets.put(SECRET_DEVICE_KEY.as_bytes(), &device)?;
        secrets.put(SECRET_SEALING_KEY.as_bytes(), &sealing)?;
        save_identity(store, &identity, secrets)?;
        Ok(EnrollOutcome {
            appliance_id: self.resp.appliance_id,
            platform_url: identity.platform_url,
            certificate_not_after: self.resp.not_after,
            ca_fingerprint: self.ca_fingerprint,
        })
    }
}

/// Enrolls with an open store (the `picket enroll` command when no daemon runs).
pub async fn enroll_with_store(
    store: &Store,
    state_dir: &Path,
    cfg: &Config,
    platform_url: &str,
    code: &str,
    ca: &CaTrust,
) -> Result<EnrollOutcome, AppError> {
    let plan = EnrollPlan::prepare(store, state_dir, cfg, platform_url, code, ca)?;
    plan.execute().await?.commit(store, state_dir)
}

/// Replaces key and certificate after a renewal (a new key each time).
pub fn store_renewal(
    store: &Store,
    kek: &Kek,
    mut identity: Identity,
    device_key: &SecretBytes,
    resp: &api::RenewResponse,
) -> Result<Identity, AppError> {
    tls::pinned_config(&identity.ca_pem, &resp.certificate_pem, device_key.expose())?;
    identity.not_before = cert_not_before(&resp.certificate_pem)?;
    identity.certificate_pem = resp.certificate_pem.clone();
    identity.not_after = resp.not_after.clone();
    // Key and certificate change together, in one transaction.
    let mut secrets = StateBatch::new();
    secrets.put(
        SECRET_DEVICE_KEY.as_bytes(),
        &kek.seal(SECRET_DEVICE_KEY, device_key.expose())?,
    )?;
    save_identity(store, &identity, secrets)?;
    Ok(identity)
}

/// Writes the identity and the secrets that go with it in one transaction: a certificate is
/// never stored without its key.
fn save_identity(store: &Store, identity: &Identity, secrets: StateBatch) -> Result<(), AppError> {
    let mut ident = StateBatch::new();
    ident.put(KEY_IDENTITY, identity)?;
    store.state_apply_all(vec![
        (StateTree::Secrets, secrets),
        (StateTree::Settings, ident),
    ])?;
    Ok(())
}

/// notBefore of the first certificate of a PEM, RFC 3339.
fn cert_not_before(pem: &str) -> Result<String, AppError> {
    let certs = tls::certs_from_pem(pem, "client certificate")?;
    let first = certs.first().ok_or_else(|| cert_err("no certificate"))?;
    let (_, cert) = x509_parser::parse_x509_certificate(first.as_ref())
        .map_err(|e| cert_err(format!("client certificate: {e}")))?;
    let ts = cert.validity().not_before.timestamp();
    let t = time::OffsetDateTime::from_unix_timestamp(ts).map_err(cert_err)?;
    Ok(crate::report::rfc3339(t))
}

/// Enrolls the appliance of `state_dir` (the console's entry point): directly when the store is
/// free, through the running daemon otherwise. `cfg`: the daemon config (proxy, CA bundle).
pub async fn enroll(
    state_dir: &Path,
    platform_url: &str,
    code: &str,
    ca: CaTrust,
) -> Result<EnrollOutcome, AppError> {
    let cfg = Config::load(Path::new(crate::config::DEFAULT_CONFIG), false)?;
    enroll_with_config(state_dir, &cfg, platform_url, code, ca).await
}

/// [`enroll`] with an explicit configuration.
pub async fn enroll_with_config(
    state_dir: &Path,
    cfg: &Config,
    platform_url: &str,
    code: &str,
    ca: CaTrust,
) -> Result<EnrollOutcome, AppError> {
    match Store::open_waiting(state_dir, crate::app::LOCK_WAIT) {
        Ok(store) => enroll_with_store(&store, state_dir, cfg, platform_url, code, &ca).await,
        Err(StoreError::Locked { .. }) => {
            let dir = state_dir.to_path_buf();
            let req = crate::control::Request::Enroll {
                platform_url: platform_url.to_owned(),
                code: code.to_owned(),
                ca,
            };
            let resp = tokio::task::spawn_blocking(move || crate::control::request(&dir, &req))
                .await
                .map_err(|e| AppError::Control {
                    path: crate::control::socket_path(state_dir),
                    reason: e.to_string(),
                })??;
            match resp {
                crate::control::Response::Enrolled(o) => Ok(o),
                other => Err(crate::control::unexpected(state_dir, &other)),
            }
        }
        Err(e) => Err(e.into()),
    }
}
