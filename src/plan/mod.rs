//! Planning: (PolicySet, observed state, now) -> Plan. Pure: **no I/O happens here.**
//!
//! `resolve` turns target specs into concrete secret scopes using repository listings,
//! `build` decides per policy and secret what apply will do and why, `render` prints a
//! plan as text or JSON. A plan never holds a value.

pub mod access;
pub mod build;
pub mod estimate;
pub mod leases;
pub mod markdown;
pub use crate::model::plan as model;
pub mod preflight;
pub mod render;
pub mod resolve;
pub mod rollout;
pub mod txn;

pub use build::{decide_rotation, decide_rotation_since, last_rotation, plan};
pub use estimate::estimate;
pub use model::*;
pub use resolve::{resolve, ResolvedTarget};

#[cfg(test)]
mod tests;
