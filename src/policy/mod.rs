//! Policies: YAML files -> validated `PolicySet`. No network I/O happens here.

pub mod cron;
pub mod diag;
pub mod duration;
pub mod glob;
pub mod load;
pub use crate::model::policy as model;
pub(crate) mod names;
pub(crate) mod raw;
pub mod schema;
mod set;
pub mod sources;
mod validate;
mod yaml;

pub use diag::{Diagnostic, CODES};
pub use load::{load_dir, load_dir_located, load_dir_with, load_str, load_str_with, LocatedPolicy};
pub use model::*;
pub use sources::SourceRules;
