//! The enrollment CA: the platform's own certificate authority.
//!
//! Why its own CA rather than a public one: an appliance pins this CA at enrollment, so from then
//! on only this platform can talk to it (a TLS-inspecting proxy or a mis-issued public certificate
//! cannot), and the platform can tell appliances apart by the client certificates it issued.
//! The server certificate is issued by the same CA for the configured `server_names`, so the one
//! pinned certificate verifies both directions.
//!
//! Layout of `STATE_DIR/ca/` (0700): `ca.pem` (the CA certificate) and `ca.key` (its ECDSA P-256
//! private key, PKCS#8 PEM, mode 0600, written to a temporary file and renamed so a crash never
//! leaves half a key).

use crate::error::PlatformError;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SerialNumber,
};
use ring::rand::{SecureRandom, SystemRandom};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use time::{Duration, OffsetDateTime};

/// Largest CSR accepted (a P-256 CSR is ~400 bytes of PEM).
pub const MAX_CSR_BYTES: usize = 16 * 1024;

/// A certificate issued to an appliance.
#[derive(Debug, Clone)]
pub struct Issued {
    pub pem: String,
    /// Serial number, lowercase hex of its DER bytes (as [`serial_hex_of`] reads it back).
    pub serial: String,
    pub not_after: OffsetDateTime,
}

pub struct Ca {
    dir: PathBuf,
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    /// Parameters re-read from the stored certificate; used only to sign (issuer name and key id).
    issuer: rcgen::Certificate,
    key: KeyPair,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca")
            .field("dir", &self.dir)
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

impl Ca {
    /// Opens the CA under `state_dir/ca`, creating it (key and self-signed certificate, ten years)
    /// on first use.
    pub fn open_or_create(state_dir: &Path) -> Result<Ca, PlatformError> {
        let dir = state_dir.join("ca");
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| PlatformError::io("creating", &dir, e))?;
        let cert_path = dir.join("ca.pem");
        let key_path = dir.join("ca.key");
        if !key_path.exists() {
            let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
                .map_err(PlatformError::ca("generating the CA key"))?;
            let mut params = CertificateParams::default();
            let mut dn = DistinguishedName::new();
            dn.push(DnType::CommonName, "Picket enrollment CA");
            dn.push(DnType::OrganizationName, "Picket platform");
            params.distinguished_name = dn;
            params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            let now = OffsetDateTime::now_utc();
            params.not_before = now - Duration::hours(1);
            params.not_after = now + Duration::days(3650);
            params.serial_number = Some(random_serial()?);
            let cert = params
                .self_signed(&key)
                .map_err(PlatformError::ca("self-signing the CA"))?;
            // The certificate first: a key without a certificate is regenerated, never the reverse.
            write_private(&cert_path, cert.pem().as_bytes(), 0o644)?;
            write_private(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
        }
        let cert_pem = fs::read_to_string(&cert_path)
            .map_err(|e| PlatformError::io("reading", &cert_path, e))?;
        let key_pem = fs::read_to_string(&key_path)
            .map_err(|e| PlatformError::io("reading", &key_path, e))?;
        let key = KeyPair::from_pem(&key_pem).map_err(PlatformError::ca("reading ca.key"))?;
        let cert_der = pem_to_der(&cert_pem, "CERTIFICATE").ok_or_else(|| PlatformError::Ca {
            context: "reading ca.pem",
            detail: "no CERTIFICATE block".into(),
        })?;
        let params = CertificateParams::from_ca_cert_pem(&cert_pem)
            .map_err(PlatformError::ca("reading ca.pem"))?;
        let issuer = params
            .self_signed(&key)
            .map_err(PlatformError::ca("ca.key does not match ca.pem"))?;
        Ok(Ca {
            dir,
            cert_pem,
            cert_der: CertificateDer::from(cert_der),
            issuer,
            key,
        })
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// SHA-256 of the CA certificate's DER, colon-separated uppercase hex (as `openssl x509
    /// -fingerprint -sha256` prints it), for operators to compare out of band.
    pub fn fingerprint(&self) -> String {
        let d = ring::digest::digest(&ring::digest::SHA256, self.cert_der.as_ref());
        d.as_ref()
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":")
    }

    /// Issues a client certificate for `appliance_id` from a PEM CSR. The CSR's signature is
    /// verified (proof the requester holds the key); only its public key is used: the subject is
    /// the appliance id and the only usage is TLS client authentication, whatever the CSR asked.
    pub fn issue_client(
        &self,
        csr_pem: &str,
        appliance_id: &str,
        validity_secs: u64,
    ) -> Result<Issued, PlatformError> {
        if csr_pem.len() > MAX_CSR_BYTES {
            return Err(PlatformError::BadRequest(format!(
                "csr_pem larger than {MAX_CSR_BYTES} bytes"
            )));
        }
        let csr = CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|e| PlatformError::BadRequest(format!("csr_pem: {e}")))?;
        let alg = csr.public_key.algorithm();
        let allowed = [
            &rcgen::PKCS_ECDSA_P256_SHA256,
            &rcgen::PKCS_ECDSA_P384_SHA384,
            &rcgen::PKCS_ED25519,
        ];
        if !allowed.contains(&alg) {
            return Err(PlatformError::BadRequest(
                "csr_pem: key type not accepted (ECDSA P-256/P-384 or Ed25519)".into(),
            ));
        }
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, appliance_id);
        params.distinguished_name = dn;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = true;
        let now = OffsetDateTime::now_utc();
        // A little backdating absorbs clock skew between platform and appliance.
        params.not_before = now - Duration::minutes(5);
        params.not_after =
            now + Duration::seconds(i64::try_from(validity_secs).unwrap_or(i64::MAX));
        let serial = random_serial()?;
        let serial_hex = hex(&serial.to_bytes());
        params.serial_number = Some(serial);
        let not_after = params.not_after;
        let csr = CertificateSigningRequestParams {
            params,
            public_key: csr.public_key,
        };
        let cert = csr
            .signed_by(&self.issuer, &self.key)
            .map_err(PlatformError::ca("signing a client certificate"))?;
        Ok(Issued {
            pem: cert.pem(),
            serial: serial_hex,
            not_after: truncate_to_second(not_after),
        })
    }

    /// A fresh server key and certificate for `names` (valid a year), chained to the CA.
    pub fn issue_server(
        &self,
        names: &[String],
    ) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), PlatformError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(PlatformError::ca("generating the server key"))?;
        let mut params =
            CertificateParams::new(names.to_vec()).map_err(PlatformError::ca("server_names"))?;
        let mut dn = DistinguishedName::new();
        dn.push(
            DnType::CommonName,
            names.first().cloned().unwrap_or_default(),
        );
        params.distinguished_name = dn;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::hours(1);
        params.not_after = now + Duration::days(365);
        params.serial_number = Some(random_serial()?);
        let cert = params
            .signed_by(&key, &self.issuer, &self.key)
            .map_err(PlatformError::ca("signing the server certificate"))?;
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        Ok((vec![cert.der().clone(), self.cert_der.clone()], key_der))
    }
}

fn truncate_to_second(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(0).unwrap_or(t)
}

/// 16 random bytes, first byte in 0x40..=0x7f: positive and without a leading zero, so the DER
/// INTEGER's bytes are exactly these and [`serial_hex_of`] reads the same hex back.
fn random_serial() -> Result<SerialNumber, PlatformError> {
    let mut b = [0u8; 16];
    SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| PlatformError::Ca {
            context: "serial number",
            detail: "system random generator failed".into(),
        })?;
    b[0] = (b[0] & 0x3f) | 0x40;
    Ok(SerialNumber::from_slice(&b))
}

/// Identity read from a verified peer certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    /// Subject common name: the appliance id.
    pub appliance_id: String,
    pub serial: String,
}

/// Reads the common name and serial of a (rustls-verified) certificate. `None` if it has no CN.
pub fn peer_identity(der: &[u8]) -> Option<PeerIdentity> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let cn = cert
        .subject()
        .iter_common_name()
        .next()?
        .as_str()
        .ok()?
        .to_string();
    Some(PeerIdentity {
        appliance_id: cn,
        serial: serial_hex_of(&cert),
    })
}

pub fn serial_hex_of(cert: &x509_parser::certificate::X509Certificate<'_>) -> String {
    hex(cert.tbs_certificate.raw_serial())
}

/// Reads the first PEM block with this label.
pub fn pem_to_der(pem: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.find(&begin)? + begin.len();
    let stop = start + pem.get(start..)?.find(&end)?;
    let body: String = pem
        .get(start..stop)?
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64_decode(&body)
}

/// Every PEM `CERTIFICATE` block, in order.
pub fn pem_certs(pem: &str) -> Vec<CertificateDer<'static>> {
    let mut out = Vec::new();
    let mut rest = pem;
    // Bounded: each turn consumes at least one block.
    for _ in 0..64 {
        let Some(i) = rest.find("-----BEGIN CERTIFICATE-----") else {
            break;
        };
        let Some(tail) = rest.get(i..) else { break };
        match pem_to_der(tail, "CERTIFICATE") {
            Some(der) => out.push(CertificateDer::from(der)),
            None => break,
        }
        match tail.find("-----END CERTIFICATE-----") {
            Some(j) => rest = tail.get(j + 25..).unwrap_or(""),
            None => break,
        }
    }
    out
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    fn val(c: u8) -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some(u32::from(c - b'A')),
            b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    }
    let bytes = s.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &c in bytes {
        acc = (acc << 6) | val(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    Some(out)
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes a file atomically (temporary file, fsync, rename) with the given mode.
pub fn write_private(path: &Path, data: &[u8], mode: u32) -> Result<(), PlatformError> {
    let tmp = path.with_extension("tmp");
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|e| PlatformError::io("creating", &tmp, e))?;
    f.write_all(data)
        .and_then(|()| f.sync_all())
        .map_err(|e| PlatformError::io("writing", &tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| PlatformError::io("renaming to", path, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csr(alg: &'static rcgen::SignatureAlgorithm) -> String {
        let key = KeyPair::generate_for(alg).unwrap_or_else(|e| panic!("{e}"));
        let params = CertificateParams::new(vec!["evil.example".to_string()])
            .unwrap_or_else(|e| panic!("{e}"));
        params
            .serialize_request(&key)
            .and_then(|r| r.pem())
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn issues_client_certs_with_our_name_only() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let ca = Ca::open_or_create(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let issued = ca
            .issue_client(&csr(&rcgen::PKCS_ECDSA_P256_SHA256), "app-1", 3600)
            .unwrap_or_else(|e| panic!("{e}"));
        let der = pem_to_der(&issued.pem, "CERTIFICATE").unwrap_or_default();
        let id = peer_identity(&der).unwrap_or_else(|| panic!("no identity"));
        assert_eq!(id.appliance_id, "app-1");
        assert_eq!(id.serial, issued.serial);
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap_or_else(|e| panic!("{e}"));
        let san = cert.subject_alternative_name().ok().flatten();
        assert!(san.is_none(), "the CSR's SAN must not be copied");
        let eku = cert
            .extended_key_usage()
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("no EKU"));
        assert!(eku.value.client_auth && !eku.value.server_auth);

        // Reopening keeps the same CA.
        let fp = ca.fingerprint();
        let again = Ca::open_or_create(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(again.fingerprint(), fp);
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &fs::metadata(dir.path().join("ca/ca.key"))
                .unwrap_or_else(|e| panic!("{e}"))
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn refuses_bad_csrs() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let ca = Ca::open_or_create(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let good = csr(&rcgen::PKCS_ECDSA_P256_SHA256);
        // Flip a character inside the base64 body: the signature no longer verifies (or it no
        // longer parses); either way it is refused.
        let mut bad = good.clone().into_bytes();
        let i = bad.len() / 2;
        bad[i] = if bad[i] == b'A' { b'B' } else { b'A' };
        let bad = String::from_utf8(bad).unwrap_or_default();
        assert!(matches!(
            ca.issue_client(&bad, "a", 60),
            Err(PlatformError::BadRequest(_))
        ));
        assert!(matches!(
            ca.issue_client("junk", "a", 60),
            Err(PlatformError::BadRequest(_))
        ));
        assert!(matches!(
            ca.issue_client(&"A".repeat(MAX_CSR_BYTES + 1), "a", 60),
            Err(PlatformError::BadRequest(_))
        ));
    }

    #[test]
    fn base64_and_pem() {
        assert_eq!(base64_decode("aGVsbG8="), Some(b"hello".to_vec()));
        assert_eq!(base64_decode("aGVsbG8h"), Some(b"hello!".to_vec()));
        assert_eq!(base64_decode("a$"), None);
        let two = "-----BEGIN CERTIFICATE-----\naGk=\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nYm8=\n-----END CERTIFICATE-----\n";
        let certs = pem_certs(two);
        assert_eq!(certs.len(), 2);
        assert_eq!(certs[1].as_ref(), b"bo");
    }
}
