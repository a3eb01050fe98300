//! The appliance's local settings: what the console (`picket console`) sets at the box — network,
//! proxy, platform address — kept in the store (postcard behind a format number, flushed before
//! `save` returns), with the proxy password sealed under the key-encryption key.
//!
//! Why in the store and not in a file under /etc: one durable, versioned place for everything the
//! box was told, which the daemon reads at start and the console writes; the image renders
//! /etc files (systemd-networkd) from it (see `netcfg`).
//!
//! Who may open the store: while `picket daemon` runs it holds the store, so [`load`] and
//! [`save`] go through the daemon's control socket (`STATE_DIR/daemon.sock`) when the store is
//! locked, and open the store directly otherwise. Callers do not need to know which.
//!
//! Precedence (documented in docs/daemon.md): the config file's `[platform]` and `[proxy]` win
//! over these settings when they are set there; the settings fill in what the file leaves out.

use crate::app::AppError;
use crate::secrets::{Kek, SealedBlob, SecretString};
use crate::store::{StateTree, Store, StoreError};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Format of the stored settings record (the store envelope carries the encoding version; this
/// is the struct's own, bumped when a field changes meaning).
const KEY_SETTINGS: &[u8] = b"appliance";
/// The configured KEK file, recorded by the daemon so that other processes use the same key.
pub(crate) const KEY_KEK_FILE: &[u8] = b"kek_file";
pub(crate) const SECRET_PROXY_PASSWORD: &str = "proxy password";

/// Everything the console sets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplianceSettings {
    pub network: NetworkSettings,
    pub proxy: Option<ProxySettings>,
    /// `https://platform.example:8443`; used by the console's enrollment and by the daemon when
    /// the config file names no platform.
    pub platform_url: Option<String>,
    /// SHA-256 of the platform CA's certificate (hex, colons allowed), trusted at enrollment.
    pub platform_ca_fingerprint: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkSettings {
    /// Interface name (e.g. `eth0`); empty: not configured yet.
    pub interface: String,
    pub mode: AddressMode,
    /// 802.1Q VLAN id on top of `interface`.
    pub vlan: Option<u16>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum AddressMode {
    #[default]
    Dhcp,
    Static {
        /// `192.0.2.10/24`
        address_cidr: String,
        gateway: Option<String>,
        dns: Vec<String>,
    },
}

/// An HTTP CONNECT proxy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxySettings {
    /// `http://proxy.example:3128`
    pub url: String,
    pub username: Option<String>,
    /// Kept sealed in the store; never in the settings record.
    #[serde(skip)]
    pub password: Option<SecretString>,
}

/// The stored form: the same, without the password.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredSettings {
    network: NetworkSettings,
    proxy: Option<StoredProxy>,
    platform_url: Option<String>,
    platform_ca_fingerprint: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredProxy {
    url: String,
    username: Option<String>,
}

/// The KEK for secrets of this store: the configured file the daemon recorded, if any.
pub(crate) fn kek_for(store: &Store, state_dir: &Path) -> Result<Kek, AppError> {
    let configured: Option<PathBuf> = store.state_get(StateTree::Settings, KEY_KEK_FILE)?;
    Kek::resolve(state_dir, configured.as_deref())
}

/// Reads a sealed secret of the store.
pub(crate) fn read_secret(
    store: &Store,
    kek: &Kek,
    purpose: &'static str,
) -> Result<Option<crate::secrets::SecretBytes>, AppError> {
    match store.state_get::<SealedBlob>(StateTree::Secrets, purpose.as_bytes())? {
        Some(blob) => Ok(Some(kek.open(purpose, &blob)?)),
        None => Ok(None),
    }
}

/// Seals and writes a secret (durable on return).
pub(crate) fn write_secret(
    store: &Store,
    kek: &Kek,
    purpose: &'static str,
    plain: &[u8],
) -> Result<(), AppError> {
    let blob = kek.seal(purpose, plain)?;
    store.state_put(StateTree::Secrets, purpose.as_bytes(), &blob)?;
    Ok(())
}

/// Reads the settings from an open store (defaults when never saved).
pub fn load_from(store: &Store, state_dir: &Path) -> Result<ApplianceSettings, AppError> {
    let Some(stored) = store.state_get::<StoredSettings>(StateTree::Settings, KEY_SETTINGS)? else {
        return Ok(ApplianceSettings::default());
    };
    let proxy = match stored.proxy {
        Some(p) => {
            let kek = kek_for(store, state_dir)?;
            let password = read_secret(store, &kek, SECRET_PROXY_PASSWORD)?
                .map(|b| SecretString::new(String::from_utf8_lossy(b.expose()).into_owned()));
            Some(ProxySettings {
                url: p.url,
                username: p.username,
                password,
            })
        }
        None => None,
    };
    Ok(ApplianceSettings {
        network: stored.network,
        proxy,
        platform_url: stored.platform_url,
        platform_ca_fingerprint: stored.platform_ca_fingerprint,
    })
}

/// Validates and writes the settings to an open store; durable on return.
pub fn save_to(store: &Store, state_dir: &Path, s: &ApplianceSettings) -> Result<(), AppError> {
    validate(s)?;
    if let Some(pw) = s.proxy.as_ref().and_then(|p| p.password.as_ref()) {
        let kek = kek_for(store, state_dir)?;
        write_secret(store, &kek, SECRET_PROXY_PASSWORD, pw.expose().as_bytes())?;
    } else {
        store.state_remove(StateTree::Secrets, SECRET_PROXY_PASSWORD.as_bytes())?;
    }
    let stored = StoredSettings {
        network: s.network.clone(),
        proxy: s.proxy.as_ref().map(|p| StoredProxy {
            url: p.url.clone(),
            username: p.username.clone(),
        }),
        platform_url: s.platform_url.clone(),
        platform_ca_fingerprint: s.platform_ca_fingerprint.clone(),
    };
    store.state_put(StateTree::Settings, KEY_SETTINGS, &stored)?;
    Ok(())
}

/// Checks what the daemon will rely on (network fields are `netcfg`'s to check).
pub fn validate(s: &ApplianceSettings) -> Result<(), AppError> {
    let bad = |reason: String| AppError::Config {
        path: PathBuf::from("<appliance settings>"),
        reason,
    };
    if let Some(url) = &s.platform_url {
        crate::config::check_platform_url(url).map_err(bad)?;
    }
    if let Some(fp) = &s.platform_ca_fingerprint {
        crate::config::parse_fingerprint(fp).map_err(bad)?;
    }
    if let Some(p) = &s.proxy {
        crate::config::check_proxy_url(&p.url).map_err(bad)?;
    }
    if let Some(v) = s.network.vlan {
        if !(1..=4094).contains(&v) {
            return Err(bad(format!("vlan {v}: must be 1..=4094")));
        }
    }
    Ok(())
}

/// Loads the settings of the appliance whose state directory is `state_dir`, from the store or,
/// while the daemon holds the store, through the daemon.
pub fn load(state_dir: &Path) -> Result<ApplianceSettings, AppError> {
    match Store::open_waiting(state_dir, crate::app::LOCK_WAIT) {
        Ok(store) => load_from(&store, state_dir),
        Err(StoreError::Locked { .. }) => {
            match crate::control::request(state_dir, &crate::control::Request::GetSettings)? {
                crate::control::Response::Settings(s) => Ok(s.into_settings()),
                other => Err(crate::control::unexpected(state_dir, &other)),
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// Saves the settings (durable on return); through the daemon while it holds the store, which
/// then applies the proxy and platform parts at once.
pub fn save(state_dir: &Path, s: &ApplianceSettings) -> Result<(), AppError> {
    validate(s)?;
    match Store::open_waiting(state_dir, crate::app::LOCK_WAIT) {
        Ok(store) => save_to(&store, state_dir, s),
        Err(StoreError::Locked { .. }) => {
            let req = crate::control::Request::SaveSettings(crate::control::WireSettings::from(s));
            match crate::control::request(state_dir, &req)? {
                crate::control::Response::Ok => Ok(()),
                other => Err(crate::control::unexpected(state_dir, &other)),
            }
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_round_trip_with_the_password_sealed() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let s = ApplianceSettings {
            network: NetworkSettings {
                interface: "eth0".into(),
                mode: AddressMode::Static {
                    address_cidr: "198.18.0.10/24".into(),
                    gateway: Some("198.18.0.1".into()),
                    dns: vec!["198.18.0.53".into()],
                },
                vlan: Some(42),
            },
            proxy: Some(ProxySettings {
                url: "http://127.0.0.1:3128".into(),
                username: Some("ops".into()),
                password: Some(SecretString::new("pr0xy-s3cret")),
            }),
            platform_url: Some("https://127.0.0.1:8443".into()),
            platform_ca_fingerprint: None,
        };
        save(dir.path(), &s).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(load(dir.path()).ok(), Some(s.clone()));
        // The password is nowhere in the store's files in the clear.
        let mut hits = 0;
        for e in walk(&dir.path().join("store")) {
            let bytes = std::fs::read(&e).unwrap_or_default();
            if bytes.windows(12).any(|w| w == b"pr0xy-s3cret") {
                hits += 1;
            }
        }
        assert_eq!(hits, 0, "proxy password found in clear in the store");
        let bad = ApplianceSettings {
            platform_url: Some("ftp://x".into()),
            ..ApplianceSettings::default()
        };
        assert_eq!(save(dir.path(), &bad).err().map(|e| e.exit_code()), Some(2));
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
        out
    }
}
