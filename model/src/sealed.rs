//! Job credentials sealed to one appliance.
//!
//! Why: the platform must hand an appliance the SSH or web password a job needs without storing it
//! in the clear or letting anyone but that appliance read it (not the platform's database, not a
//! TLS-inspecting proxy). The appliance publishes an X25519 public key at enrollment; the platform
//! seals each secret with a fresh ephemeral key (ECDH), derives a key with HKDF-SHA256 bound to both
//! public keys, and encrypts with ChaCha20-Poly1305. Both halves live here so they cannot drift.

use crate::api::SealedSecret;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::agreement::{self, EphemeralPrivateKey, UnparsedPublicKey, X25519};
use ring::hkdf;
use ring::rand::{SecureRandom, SystemRandom};
use std::fmt;

const INFO: &[u8] = b"picket sealed secret v1";

/// Why a secret could not be sealed or opened. Deliberately vague about which check failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SealError {
    /// A key or ciphertext was not the hex of the expected length.
    Malformed(&'static str),
    /// Wrong key, or the ciphertext was altered.
    Rejected,
    /// The system random generator failed.
    Random,
}

impl fmt::Display for SealError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SealError::Malformed(what) => write!(f, "malformed sealed secret: {what}"),
            SealError::Rejected => {
                write!(f, "sealed secret rejected (wrong appliance key or altered)")
            }
            SealError::Random => write!(f, "system random generator failed"),
        }
    }
}

impl std::error::Error for SealError {}

/// The appliance's private X25519 key. Kept encrypted at rest by the appliance's store.
pub struct SealingKey {
    secret: x25519_dalek::StaticSecret,
}

impl fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealingKey")
            .field("public", &self.public_hex())
            .finish_non_exhaustive()
    }
}

impl SealingKey {
    pub fn generate() -> Result<SealingKey, SealError> {
        let mut bytes = [0u8; 32];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| SealError::Random)?;
        Ok(SealingKey::from_bytes(bytes))
    }

    pub fn from_bytes(bytes: [u8; 32]) -> SealingKey {
        SealingKey {
            secret: x25519_dalek::StaticSecret::from(bytes),
        }
    }

    pub fn to_bytes(&self) -> [u8; 32] {
        self.secret.to_bytes()
    }

    /// The public half, lowercase hex, as sent at enrollment.
    pub fn public_hex(&self) -> String {
        hex(x25519_dalek::PublicKey::from(&self.secret).as_bytes())
    }

    /// Opens a secret sealed to this key.
    pub fn open(&self, sealed: &SealedSecret) -> Result<Vec<u8>, SealError> {
        let eph: [u8; 32] = unhex(&sealed.ephemeral)
            .and_then(|v| v.try_into().ok())
            .ok_or(SealError::Malformed("ephemeral key"))?;
        let mut data = unhex(&sealed.ciphertext).ok_or(SealError::Malformed("ciphertext"))?;
        if data.len() < NONCE_LEN + CHACHA20_POLY1305.tag_len() {
            return Err(SealError::Malformed("ciphertext too short"));
        }
        let shared = self
            .secret
            .diffie_hellman(&x25519_dalek::PublicKey::from(eph));
        let recipient = x25519_dalek::PublicKey::from(&self.secret);
        let key = derive(shared.as_bytes(), &eph, recipient.as_bytes())?;
        let mut body = data.split_off(NONCE_LEN);
        let nonce =
            Nonce::try_assume_unique_for_key(&data).map_err(|_| SealError::Malformed("nonce"))?;
        let plain = key
            .open_in_place(nonce, Aad::empty(), &mut body)
            .map_err(|_| SealError::Rejected)?;
        Ok(plain.to_vec())
    }
}

/// Seals `plain` to the appliance whose public key (hex) is `recipient`.
pub fn seal(recipient: &str, plain: &[u8]) -> Result<SealedSecret, SealError> {
    let recipient_bytes: [u8; 32] = unhex(recipient)
        .and_then(|v| v.try_into().ok())
        .ok_or(SealError::Malformed("recipient key"))?;
    let rng = SystemRandom::new();
    let eph = EphemeralPrivateKey::generate(&X25519, &rng).map_err(|_| SealError::Random)?;
    let eph_pub = eph.compute_public_key().map_err(|_| SealError::Random)?;
    let eph_pub = eph_pub.as_ref().to_vec();
    let peer = UnparsedPublicKey::new(&X25519, recipient_bytes);
    let key = agreement::agree_ephemeral(eph, &peer, |shared| {
        derive(shared, &eph_pub, &recipient_bytes)
    })
    .map_err(|_| SealError::Rejected)??;
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill(&mut nonce).map_err(|_| SealError::Random)?;
    let mut body = plain.to_vec();
    key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut body)
        .map_err(|_| SealError::Rejected)?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&body);
    Ok(SealedSecret {
        ephemeral: hex(&eph_pub),
        ciphertext: hex(&out),
    })
}

/// HKDF over the shared secret, salted with both public keys so a ciphertext cannot be replayed
/// against another recipient.
fn derive(shared: &[u8], eph_pub: &[u8], recipient: &[u8]) -> Result<LessSafeKey, SealError> {
    let mut salt_bytes = Vec::with_capacity(64);
    salt_bytes.extend_from_slice(eph_pub);
    salt_bytes.extend_from_slice(recipient);
    let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, &salt_bytes);
    let prk = salt.extract(shared);
    let info = [INFO];
    let okm = prk
        .expand(&info, &CHACHA20_POLY1305)
        .map_err(|_| SealError::Rejected)?;
    Ok(LessSafeKey::new(UnboundKey::from(okm)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || s.len() > 2 * 1024 * 1024 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|p| u8::from_str_radix(p, 16).ok()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let key = SealingKey::generate()
            .map_err(|e| e.to_string())
            .unwrap_or_else(|e| panic!("{e}"));
        let sealed = seal(&key.public_hex(), b"hunter2").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(key.open(&sealed), Ok(b"hunter2".to_vec()));

        let other = SealingKey::generate().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(other.open(&sealed), Err(SealError::Rejected));

        let mut altered = sealed.clone();
        let last = altered.ciphertext.pop().unwrap_or('0');
        altered.ciphertext.push(if last == '0' { '1' } else { '0' });
        assert_eq!(key.open(&altered), Err(SealError::Rejected));

        let bad = SealedSecret {
            ephemeral: "zz".into(),
            ciphertext: String::new(),
        };
        assert!(matches!(key.open(&bad), Err(SealError::Malformed(_))));
        assert!(matches!(seal("abcd", b"x"), Err(SealError::Malformed(_))));
    }

    #[test]
    fn key_bytes_round_trip() {
        let key = SealingKey::generate().unwrap_or_else(|e| panic!("{e}"));
        let again = SealingKey::from_bytes(key.to_bytes());
        assert_eq!(key.public_hex(), again.public_hex());
    }
}
