//! `rotor run`: the daemon. Runs each policy's pass on its cadence, catches up after
//! downtime, retries unconverged targets with backoff, follows new Vault versions, serves
//! health, readiness and metrics over HTTP, reloads policies on SIGHUP and drains on
//! SIGTERM/SIGINT. See `docs/daemon.md`.

pub mod alert;
pub mod api;
pub mod config;
pub mod http;
pub mod inbox;
pub mod metrics;
pub mod service;
pub mod shared;
pub mod slots;
pub mod status;
pub mod ticker;
pub mod token;
pub mod webhook;

pub use config::{DaemonConfig, DaemonError};
pub use service::run;
