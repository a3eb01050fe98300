//! `picket-platform` configuration (TOML).
//!
//! Why strict: a misspelt key (`cert_validty_secs`) silently falling back to a default is how a
//! fleet ends up with year-long certificates. Unknown keys are errors naming the key and the file.

use crate::error::PlatformError;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Largest config file read, so a wrong path (a disk image) is refused rather than loaded.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address the HTTPS server binds.
    pub listen: SocketAddr,
    /// DNS names and IP addresses the server certificate is issued for.
    pub server_names: Vec<String>,
    /// Default and maximum validity of an enrollment code.
    pub code_ttl_secs: u64,
    /// Validity of an issued client certificate.
    pub cert_validity_secs: u64,
    /// How long a certificate replaced by a renewal keeps working (the appliance may have calls in
    /// flight with the old one, or may lose the renewal's answer).
    pub renew_grace_secs: u64,
    /// File holding the operators' bearer token; `STATE_DIR/admin-token` (created) when unset.
    pub admin_token_file: Option<PathBuf>,
    /// Connections served at once; further ones are closed at accept.
    pub max_connections: usize,
    /// sled page cache, bytes.
    pub cache_bytes: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            server_names: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
            code_ttl_secs: 24 * 3600,
            cert_validity_secs: 30 * 24 * 3600,
            renew_grace_secs: 600,
            admin_token_file: None,
            max_connections: 4096,
            cache_bytes: 64 * 1024 * 1024,
        }
    }
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, PlatformError> {
        let meta = std::fs::metadata(path).map_err(|e| PlatformError::Config {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
        if meta.len() > MAX_CONFIG_BYTES {
            return Err(PlatformError::Config {
                path: path.to_path_buf(),
                detail: format!("larger than {MAX_CONFIG_BYTES} bytes"),
            });
        }
        let text = std::fs::read_to_string(path).map_err(|e| PlatformError::Config {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
        Config::parse(&text).map_err(|detail| PlatformError::Config {
            path: path.to_path_buf(),
            detail,
        })
    }

    /// Parses and checks the values; the error text names the offending key.
    pub fn parse(text: &str) -> Result<Config, String> {
        let config: Config = toml::from_str(text).map_err(|e| e.to_string())?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), String> {
        if self.server_names.is_empty() {
            return Err("server_names: at least one name is needed".into());
        }
        if self.code_ttl_secs == 0 || self.code_ttl_secs > 30 * 24 * 3600 {
            return Err("code_ttl_secs: must be between 1 and 2592000".into());
        }
        if self.cert_validity_secs == 0 || self.cert_validity_secs > 397 * 24 * 3600 {
            return Err("cert_validity_secs: must be between 1 and 34300800 (397 days)".into());
        }
        if self.max_connections == 0 {
            return Err("max_connections: must be at least 1".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let c = Config::parse("").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c, Config::default());
        let c = Config::parse(
            "listen = \"127.0.0.1:9443\"\nserver_names = [\"localhost\", \"198.18.0.1\"]\ncert_validity_secs = 60\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.listen.port(), 9443);
        assert_eq!(c.cert_validity_secs, 60);
    }

    #[test]
    fn the_shipped_example_parses_to_the_defaults() {
        let c = Config::parse(include_str!("../platform.example.toml"))
            .unwrap_or_else(|e| panic!("platform.example.toml: {e}"));
        assert_eq!(c, Config::default());
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = Config::parse("cert_validty_secs = 5\n")
            .err()
            .unwrap_or_default();
        assert!(e.contains("cert_validty_secs"), "{e}");
        let e = Config::parse("code_ttl_secs = 0\n")
            .err()
            .unwrap_or_default();
        assert!(e.contains("code_ttl_secs"), "{e}");
    }

    #[test]
    fn load_names_the_file() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("platform.toml");
        std::fs::write(&path, "bogus = 1\n").unwrap_or_else(|e| panic!("{e}"));
        let e = Config::load(&path)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("platform.toml") && e.contains("bogus"), "{e}");
    }
}
