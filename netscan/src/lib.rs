//! `picket-netscan`: what is on a network, what is listening, and what is it.
//!
//! The crate is a ladder, as hickory-dns is: pure parsers and packet builders at the bottom
//! (`targets`, `ports`, `packet`, `service::*` matchers, `osguess`) that take bytes and return typed
//! values without I/O; thin I/O layers above them (`discovery`, `syn`, `connect`, `udp`,
//! `service::detect`, `rdns`); and one policy layer on top (`scan`) that orders the phases, shares
//! round-trip-time measurements between them and builds the [`picket_model::NetReport`].
//!
//! Nothing here prints or exits: warnings (such as falling back to a connect scan without
//! CAP_NET_RAW) are returned to the caller.
#![forbid(unsafe_code)]

pub mod connect;
pub mod discovery;
pub mod error;
pub mod host;
pub mod osguess;
pub mod packet;
pub mod ports;
pub mod rdns;
pub mod scan;
pub mod service;
pub mod syn;
pub mod targets;
pub mod timing;
pub mod udp;

pub use error::{NetscanError, Result};
pub use scan::{run, NetScanConfig, Progress, ScanOutcome};
