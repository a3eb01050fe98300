//! The certificate facts a report shows: subject, issuer, SANs, validity, self-signature and
//! the SHA-256 fingerprint of the leaf.
//!
//! Why: we inspect certificates rather than trust them, so this reads whatever the server sent,
//! including expired, self-signed or malformed ones, and never fails the scan over it.

use picket_model::TlsInfo;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// Why a certificate could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertError {
    /// The DER does not parse as an X.509 certificate.
    Malformed(String),
}

/// Most SANs we keep.
const MAX_SANS: usize = 100;

/// Hex SHA-256 of `der`.
pub fn sha256_hex(der: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, der);
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads a leaf certificate. `versions` is filled in by the caller.
pub fn tls_info(der: &[u8]) -> Result<TlsInfo, CertError> {
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|e| CertError::Malformed(e.to_string()))?;
    let subject = bounded(cert.subject().to_string());
    let issuer = bounded(cert.issuer().to_string());
    let mut sans = Vec::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for n in ext.value.general_names.iter().take(MAX_SANS) {
            match n {
                GeneralName::DNSName(d) => sans.push(bounded(d.to_string())),
                GeneralName::IPAddress(ip) => {
                    if let Some(a) = ip_text(ip) {
                        sans.push(a);
                    }
                }
                GeneralName::RFC822Name(m) => sans.push(bounded(format!("email:{m}"))),
                GeneralName::URI(u) => sans.push(bounded(format!("uri:{u}"))),
                _ => {}
            }
        }
    }
    let rfc3339 = |t: x509_parser::time::ASN1Time| {
        t.to_datetime()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    };
    let same_name = cert.subject().as_raw() == cert.issuer().as_raw();
    // A self-signed certificate verifies with its own key; a name match alone is not enough
    // (a CA may issue a leaf whose subject equals its own name).
    let self_signed = same_name && cert.verify_signature(None).is_ok();
    Ok(TlsInfo {
        subject,
        issuer,
        sans,
        not_before: rfc3339(cert.validity().not_before),
        not_after: rfc3339(cert.validity().not_after),
        versions: Vec::new(),
        self_signed,
        sha256: sha256_hex(der),
    })
}

fn ip_text(raw: &[u8]) -> Option<String> {
    match raw.len() {
        4 => {
            let a: [u8; 4] = raw.try_into().ok()?;
            Some(std::net::Ipv4Addr::from(a).to_string())
        }
        16 => {
            let a: [u8; 16] = raw.try_into().ok()?;
            Some(std::net::Ipv6Addr::from(a).to_string())
        }
        _ => None,
    }
}

fn bounded(s: String) -> String {
    s.chars().filter(|c| !c.is_control()).take(256).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sha256_known_value() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    /// `openssl req -x509` output: EC P-256, SANs of two names and an address.
    const SELF_SIGNED: &[u8] = include_bytes!("testdata/selfsigned-ec.der");
    /// A leaf whose subject equals its issuer's name but which the CA signed: not self-signed.
    const SAME_NAME_LEAF: &[u8] = include_bytes!("testdata/leaf-same-name-as-ca.der");

    #[test]
    fn self_signed_fixture() {
        let info = tls_info(SELF_SIGNED).expect("parses");
        assert_eq!(info.subject, "CN=fixture.picket.test, O=Picket fixture");
        assert_eq!(info.issuer, info.subject);
        assert_eq!(
            info.sans,
            vec![
                "fixture.picket.test",
                "www.fixture.picket.test",
                "192.0.2.7"
            ]
        );
        assert_eq!(info.not_before, "2026-11-21T07:25:41Z");
        assert_eq!(info.not_after, "2036-11-18T07:25:41Z");
        assert!(info.self_signed);
        assert_eq!(
            info.sha256,
            "c27ff5aefc72ac35b5ed9d33671102d15ebc6179507f757de287b6dfd6939000"
        );
        assert!(info.versions.is_empty(), "filled in by the caller");
    }

    #[test]
    fn same_name_is_not_enough_for_self_signed() {
        let info = tls_info(SAME_NAME_LEAF).expect("parses");
        assert_eq!(info.subject, "CN=Picket Test CA");
        assert_eq!(info.issuer, info.subject);
        assert!(!info.self_signed, "signed by the CA's key, not its own");
        assert_eq!(info.sans, vec!["leaf.picket.test"]);
    }

    #[test]
    fn truncated_certificates_are_errors() {
        for cut in [1, 10, SELF_SIGNED.len() / 2, SELF_SIGNED.len() - 1] {
            assert!(tls_info(&SELF_SIGNED[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(tls_info(b"not a certificate").is_err());
        assert!(tls_info(&[]).is_err());
        assert!(tls_info(&[0x30, 0x82, 0xff, 0xff]).is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = tls_info(&data);
        }

        #[test]
        fn mutated_fixture_never_panics(pos in 0usize..520, byte: u8) {
            let mut der = SELF_SIGNED.to_vec();
            if let Some(b) = der.get_mut(pos) {
                *b = byte;
            }
            let _ = tls_info(&der);
        }
    }
}
