//! A GitHub REST emulator for tests, benchmarks and sandboxes: a fleet of organizations and
//! repositories in memory, real X25519 keys per secret scope, decryption and strict checks
//! of every pushed value, GitHub's status codes, error bodies, pagination and rate limits,
//! and inspection routes to see what it holds. See `docs/emulator.md`.

mod actions_api;
mod apps;
mod auth;
pub mod cli;
mod counters;
mod errors;
mod events;
mod extract;
mod faults;
pub mod fleet;
mod guard;
mod inspect;
mod keys;
mod logs;
mod middleware;
mod pagination;
mod ratelimit;
mod routes_actions;
mod routes_apps;
mod routes_org_secrets;
mod routes_repos;
mod routes_secrets;
mod runners;
mod runs;
pub mod scope;
mod server;
mod state;
mod validate;
mod views;
mod views_actions;
mod webhooks;
pub mod workflow_spec;

pub use apps::{
    default_permissions, AppKeyPair, AppSpec, InstallationSpec, RepositorySelection,
    DEFAULT_TOKEN_LIFETIME_SECS,
};
pub use cli::{run, EmulateArgs};
pub use counters::{Counters, RequestRecord};
pub use errors::FleetError;
pub use faults::{FaultKind, FaultRule};
pub use fleet::{
    FleetSpec, LimitsSpec, OrgSpec, RepoSpec, RepoVisibility, TokenSpec, WebhookSpec, DEFAULT_TOKEN,
};
pub use inspect::{SecretInfo, SecretRecord};
pub use runners::{RunnerToken, RUNNER_TOKEN_LIFETIME};
pub use runs::RunView;
pub use scope::{App, PublicKey, Scope, Visibility};
pub use server::{Emulator, ServerHandle};
pub use webhooks::{signature as webhook_signature, Delivery};
pub use workflow_spec::{SecretRule, WorkflowSpec, DEFAULT_DURATION, DEFAULT_QUEUE_DELAY};
