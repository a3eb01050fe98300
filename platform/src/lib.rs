//! The reference Picket platform: the cloud side that appliances enroll with, long-poll for jobs
//! and commands, and upload results to (see ARCHITECTURE.md and `picket_model::api`).
//!
//! Modules, bottom up: `error` (the one error type), `config` (strict TOML), `ca` (the enrollment
//! CA), `store` (the only sled code), `server` (state, TLS accept loop, limits), the handlers
//! (`appliance`, `operator`, `console`), `routes` (the one route table the OpenAPI document is
//! checked against), and `client` (a minimal mTLS client for tests, helpers and the load
//! generator).
#![forbid(unsafe_code)]

pub mod appliance;
pub mod ca;
pub mod client;
pub mod config;
pub mod console;
pub mod error;
pub mod operator;
pub mod routes;
pub mod server;
pub mod store;

pub use error::PlatformError;
