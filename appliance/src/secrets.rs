//! Secrets at rest: the device private key, the X25519 sealing key and the proxy password are
//! kept in the store only encrypted (ChaCha20-Poly1305) under a key-encryption key (KEK) that is
//! not in the store.
//!
//! Why: the store is the part of the box most likely to be copied (backups, a pulled disk image,
//! a support bundle). Where the KEK comes from decides what that buys, and `picket status` says
//! which case applies:
//!
//! 1. `$CREDENTIALS_DIRECTORY/picket-kek`: a systemd credential (`LoadCredentialEncrypted=`),
//!    decrypted by systemd at service start with the TPM and/or the host key
//!    (`systemd-creds encrypt`). A copy of the disk without the TPM cannot open the secrets.
//! 2. A file named by the configuration (`[secrets] kek_file`), e.g. on separate media.
//! 3. Otherwise a random key generated into `STATE_DIR/kek` (mode 0600). This protects only
//!    against theft of the store directory alone; anyone who can read the whole state directory
//!    (root on the box, a full disk image) has the key too.
//!
//! Each sealed blob records a short id of the KEK that sealed it, so opening with another key
//! says "sealed under a different key-encryption key" instead of a generic failure.

use crate::app::AppError;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};

/// Name of the systemd credential holding the KEK.
pub const CREDENTIAL_NAME: &str = "picket-kek";
/// Name of the generated KEK file in the state directory.
pub const GENERATED_KEK_FILE: &str = "kek";
/// Shortest KEK file accepted: 32 bytes of key material (any longer content is hashed down).
const MIN_KEK_BYTES: usize = 32;
/// Longest KEK file read.
const MAX_KEK_BYTES: u64 = 64 * 1024;

/// Where the KEK came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KekSource {
    SystemdCredential(PathBuf),
    ConfiguredFile(PathBuf),
    Generated(PathBuf),
}

impl KekSource {
    /// A sentence for `picket status`, honest about what it protects against.
    pub fn describe(&self) -> String {
        match self {
            KekSource::SystemdCredential(p) => format!(
                "systemd credential {} (encrypted by systemd-creds with the TPM/host key)",
                p.display()
            ),
            KekSource::ConfiguredFile(p) => format!("configured key file {}", p.display()),
            KekSource::Generated(p) => format!(
                "generated key file {}: protects only against theft of the store alone, \
                 not of the whole state directory",
                p.display()
            ),
        }
    }

    pub fn is_generated(&self) -> bool {
        matches!(self, KekSource::Generated(_))
    }
}

/// A secret sealed under the KEK, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedBlob {
    /// First 8 bytes of SHA-256 of the derived key: which KEK sealed it.
    pub kek_id: [u8; 8],
    pub nonce: [u8; NONCE_LEN],
    pub ciphertext: Vec<u8>,
}

/// Secret bytes that are wiped on drop and never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    pub fn new(bytes: Vec<u8>) -> SecretBytes {
        SecretBytes(bytes)
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for SecretBytes {
    fn drop(&mut self) {
        // Best effort: the optimizer may not remove a write through a mutable slice that is
        // then dropped via a black-boxed reference.
        for b in self.0.iter_mut() {
            *b = 0;
        }
        std::hint::black_box(&self.0);
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes(<{} bytes redacted>)", self.0.len())
    }
}

/// A secret string (a password): redacted in `Debug`, wiped on drop.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(s: impl Into<String>) -> SecretString {
        SecretString(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl Drop for SecretString {
    fn drop(&mut self) {
        let taken = std::mem::take(&mut self.0);
        drop(SecretBytes(taken.into_bytes()));
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString(<redacted>)")
    }
}

/// The key-encryption key.
pub struct Kek {
    key: LessSafeKey,
    id: [u8; 8],
    source: KekSource,
}

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kek")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

fn secret_err(what: &'static str, reason: impl Into<String>) -> AppError {
    AppError::Secret {
        what,
        reason: reason.into(),
    }
}

impl Kek {
    /// The KEK: the systemd credential if systemd passed one, else `configured`, else the
    /// generated file under `state_dir` (created on first use).
    pub fn resolve(state_dir: &Path, configured: Option<&Path>) -> Result<Kek, AppError> {
        if let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY") {
            let path = Path::new(&dir).join(CREDENTIAL_NAME);
            if path.exists() {
                let bytes = read_key_file(&path)?;
                return Kek::from_material(bytes.expose(), KekSource::SystemdCredential(path));
            }
        }
        if let Some(path) = configured {
            let bytes = read_key_file(path)?;
            return Kek::from_material(
                bytes.expose(),
                KekSource::ConfiguredFile(path.to_path_buf()),
            );
        }
        let path = state_dir.join(GENERATED_KEK_FILE);
        if !path.exists() {
            let mut key = [0u8; 32];
            SystemRandom::new()
                .fill(&mut key)
                .map_err(|_| secret_err("key-encryption key", "system random generator failed"))?;
            std::fs::create_dir_all(state_dir).map_err(|e| {
                secret_err(
                    "key-encryption key",
                    format!("cannot create {}: {e}", state_dir.display()),
                )
            })?;
            crate::fsutil::write_atomic(&path, &key, 0o600).map_err(|e| {
                secret_err(
                    "key-encryption key",
                    format!("cannot write {}: {e}", path.display()),
                )
            })?;
            let material = SecretBytes::new(key.to_vec());
            key.fill(0);
            return Kek::from_material(material.expose(), KekSource::Generated(path));
        }
        let bytes = read_key_file(&path)?;
        Kek::from_material(bytes.expose(), KekSource::Generated(path))
    }

    /// A KEK from key material (hashed to 256 bits, so any file of ≥ 32 random bytes serves).
    pub fn from_material(material: &[u8], source: KekSource) -> Result<Kek, AppError> {
        if material.len() < MIN_KEK_BYTES {
            return Err(secret_err(
                "key-encryption key",
                format!(
                    "{} holds {} bytes, at least {MIN_KEK_BYTES} are needed",
                    source.describe(),
                    material.len()
                ),
            ));
        }
        let salt = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, b"picket kek v1");
        let prk = salt.extract(material);
        let okm = prk
            .expand(&[b"picket secrets at rest"], &CHACHA20_POLY1305)
            .map_err(|_| secret_err("key-encryption key", "key derivation failed"))?;
        let mut raw = [0u8; 32];
        okm.fill(&mut raw)
            .map_err(|_| secret_err("key-encryption key", "key derivation failed"))?;
        let digest = ring::digest::digest(&ring::digest::SHA256, &raw);
        let mut id = [0u8; 8];
        id.copy_from_slice(digest.as_ref().get(..8).unwrap_or(&[0u8; 8]));
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, &raw)
            .map_err(|_| secret_err("key-encryption key", "bad key length"))?;
        raw.fill(0);
        Ok(Kek {
            key: LessSafeKey::new(unbound),
            id,
            source,
        })
    }

    pub fn source(&self) -> &KekSource {
        &self.source
    }

    /// Encrypts `plain`; `purpose` (e.g. "device key") is bound as associated data, so a blob
    /// cannot be swapped for another secret's.
    pub fn seal(&self, purpose: &str, plain: &[u8]) -> Result<SealedBlob, AppError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| secret_err("secret", "system random generator failed"))?;
        let mut body = plain.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(purpose.as_bytes()),
                &mut body,
            )
            .map_err(|_| secret_err("secret", "encryption failed"))?;
        Ok(SealedBlob {
            kek_id: self.id,
            nonce,
            ciphertext: body,
        })
    }

    /// Decrypts a blob sealed for `purpose`.
    pub fn open(&self, purpose: &'static str, blob: &SealedBlob) -> Result<SecretBytes, AppError> {
        if blob.kek_id != self.id {
            return Err(secret_err(
                purpose,
                format!(
                    "sealed under a different key-encryption key than the {}",
                    self.source.describe()
                ),
            ));
        }
        let mut body = blob.ciphertext.clone();
        let plain = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(blob.nonce),
                Aad::from(purpose.as_bytes()),
                &mut body,
            )
            .map_err(|_| secret_err(purpose, "decryption failed (altered or wrong key)"))?;
        let out = SecretBytes::new(plain.to_vec());
        body.fill(0);
        Ok(out)
    }
}

fn read_key_file(path: &Path) -> Result<SecretBytes, AppError> {
    use std::io::Read;
    let bad = |reason: String| secret_err("key-encryption key", reason);
    let file = std::fs::File::open(path)
        .map_err(|e| bad(format!("cannot open {}: {e}", path.display())))?;
    let mut bytes = Vec::new();
    file.take(MAX_KEK_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| bad(format!("cannot read {}: {e}", path.display())))?;
    if bytes.len() as u64 > MAX_KEK_BYTES {
        return Err(bad(format!(
            "{} is larger than {MAX_KEK_BYTES} bytes",
            path.display()
        )));
    }
    Ok(SecretBytes::new(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_binds_purpose_and_key() {
        let kek = Kek::from_material(&[7u8; 32], KekSource::Generated("/x".into()))
            .unwrap_or_else(|e| panic!("{e}"));
        let blob = kek
            .seal("device key", b"secret")
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!blob.ciphertext.windows(6).any(|w| w == b"secret"));
        let plain = kek
            .open("device key", &blob)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(plain.expose(), b"secret");
        assert!(kek.open("proxy password", &blob).is_err(), "purpose bound");
        let mut altered = blob.clone();
        altered.ciphertext[0] ^= 1;
        assert!(kek.open("device key", &altered).is_err());
        let other = Kek::from_material(&[8u8; 32], KekSource::Generated("/x".into()))
            .unwrap_or_else(|e| panic!("{e}"));
        let err = other.open("device key", &blob).err().map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("different key-encryption key")),
            "{err:?}"
        );
        assert!(Kek::from_material(&[1u8; 31], KekSource::Generated("/x".into())).is_err());
    }

    #[test]
    fn generated_kek_is_private_and_stable() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let a = Kek::resolve(dir.path(), None).unwrap_or_else(|e| panic!("{e}"));
        let meta = std::fs::metadata(dir.path().join(GENERATED_KEK_FILE))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let b = Kek::resolve(dir.path(), None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.id, b.id);
        assert!(a.source().is_generated());
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let s = SecretString::new("hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
        let b = SecretBytes::new(b"hunter2".to_vec());
        assert!(!format!("{b:?}").contains("hunter2"));
    }
}
