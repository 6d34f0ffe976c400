//! The ground floor: the types every room of rotor shares, and nothing else. `model`
//! imports nothing of rotor outside itself, so every other module may use it and none of
//! them has to import another room to name a scope, a policy or a plan.
//!
//! - `scope`: GitHub products (`App`), organization `Visibility`, and `SecretScope`.
//! - `github`: what GitHub says about a fleet (repositories, secrets, keys, installations).
//! - `policy`: the validated policy model, with the source facts (`SourceSpec::mints`,
//!   `SourceSpec::is_stored`).
//! - `template`: whole-path syncs (`FromKeys`: which KV keys, and the name template).
//! - `plan`: what the planner reads (`Observed`, `Listings`, `Budget`) and writes (`Plan`,
//!   `Estimate`).

pub mod github;
pub mod plan;
pub mod policy;
pub mod scope;
pub mod template;

pub use github::{
    Account, DispatchedRun, Installation, InstallationRepos, Job, JobStep, OrgAccess, PublicKey,
    PutOutcome, Repo, SecretMeta, WorkflowRun,
};
pub use scope::{App, SecretScope, Visibility};
