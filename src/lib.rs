//! rotor keeps GitHub encrypted secrets fresh across a fleet of repositories.
//!
//! Data flows one way: `policy` (YAML -> `PolicySet`) -> `observe` (the reads a plan
//! needs) -> `plan` (pure: policies + observed state -> `Plan`) -> `source` (one fresh
//! value per rotation) -> `seal` (sealed box per target key) -> `github` (the only module
//! that speaks GitHub's HTTP) -> `ledger` (what was pushed where). `apply` drives a plan
//! through those steps (recording in `ledger` and `audit`); `pass` is one
//! observe-plan-apply round; both borrow a `context` (client, sources, ledger, audit log,
//! concurrency, stop signal) that their caller owns; `daemon` runs passes on each policy's
//! cadence. `model` is the ground floor: the types every room shares, importing nothing of
//! rotor. The command line is the binary's (`src/bin/rotor/`); the GitHub emulator is a
//! crate of its own (`emulator/`) that this library never imports.

pub mod apply;
pub mod audit;
pub mod context;
pub mod daemon;
pub mod focus;
pub mod github;
pub mod intern;
pub mod ledger;
pub mod model;
pub mod net;
pub mod observe;
pub mod online;
pub mod pass;
pub mod plan;
pub mod policy;
pub mod private_fs;
pub mod redact;
pub mod rollback;
pub mod schedule;
pub mod sdk;
pub mod seal;
pub mod source;
pub mod webhook;
