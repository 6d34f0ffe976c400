//! Policies: YAML files -> validated `PolicySet`. No network I/O happens here.

pub mod diag;
pub mod load;
pub mod model;

pub use diag::Diagnostic;
pub use load::load_dir;
pub use model::*;
