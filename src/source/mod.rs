//! Sources: where a policy's value comes from (generator, Vault KV v2, Vault dynamic reads).
//! The only module that speaks to Vault. Values leave it only as `SecretString`.
//!
//! This file only names the children and re-exports what the rest of rotor uses; none of
//! them imports it.

pub mod auth;
pub mod error;
pub mod generate;
pub mod sources;
mod value;
pub mod vault;

pub use auth::{
    AppRole, JwtLogin, JwtSource, KubernetesLogin, Login, SecretId, TokenAction, TokenInfo,
    TokenState,
};
pub use error::SourceError;
pub use generate::generate;
pub use sources::{Sources, GENERATED_FIELD};
pub use value::{Lease, SourceValue};
pub use vault::{KvVersionInfo, LeaseLookup, Vault, VaultConfig};
