//! rotor keeps GitHub encrypted secrets fresh across a fleet of repositories.
//!
//! Data flows one way, and the modules are listed in that order:
//! `policy` (YAML -> `PolicySet`) -> `plan` (pure: policies + observed state -> `Plan`)
//! -> `source` (one fresh value per rotation) -> `seal` (sealed box per target key)
//! -> `github` (the only module that speaks GitHub's HTTP) -> `ledger` (what was pushed where).
//! `apply` drives a plan through those steps (recording in `ledger` and `audit`); `pass`
//! is one observe-plan-apply round; `daemon` runs passes on each policy's cadence; `cli`
//! sits on top; `emulator` is a GitHub stand-in for tests, benchmarks and the sandbox.

pub mod policy;
pub mod observe;
pub mod plan;
pub mod schedule;
pub mod source;
pub mod seal;
pub mod github;
pub mod ledger;
pub mod intern;
pub mod audit;
pub mod apply;
pub mod pass;
pub mod daemon;
pub mod cli;
pub mod emulator;
pub mod sandbox;
