//! The Picket appliance: the `picket` command line, its store of scan history and its report
//! writers.
//!
//! Why a library under the binary: the integration tests drive the store directly (durability,
//! corruption, compaction), and the later daemon will reuse the same pieces; `main.rs` only parses
//! arguments, sets up logging and maps errors to exit codes.
#![forbid(unsafe_code)]

pub mod app;
pub mod cli;
pub mod config;
pub mod console;
pub mod control;
pub mod daemon;
pub mod diff;
pub mod enroll;
pub mod findings;
pub mod fsutil;
pub mod hostscan;
pub mod kbcmd;
pub mod logging;
pub mod metrics;
pub mod netcfg;
pub mod outbox;
pub mod progress;
pub mod report;
pub mod secrets;
pub mod settings;
pub mod status;
pub mod store;
pub mod sync;
pub mod tls;
pub mod webscan;
