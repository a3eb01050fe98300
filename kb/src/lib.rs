//! `picket-kb`: the vulnerability knowledge base.
//!
//! Why a crate of its own: advisories and version ordering are needed by every scanner that finds
//! packages (SSH host inventory, container images, later web components) and by the tools that
//! import and publish advisory data, but none of that needs sockets, TLS or the store. Keeping it
//! apart lets it be tested against the reference implementations (dpkg, rpm, apk, PEP 440, Maven,
//! SemVer) without dragging the scanners along.
//!
//! So far: [`version`], exact per-ecosystem version comparison, and [`osv`], the OSV advisory
//! model with affected-range evaluation. Importing advisories into the store and matching host
//! inventories against them follow.
#![forbid(unsafe_code)]

pub mod distro;
pub mod osv;
pub mod record;
pub mod source;
pub mod version;

pub use version::{compare, Ecosystem, VersionError};
