//! Reads every policy file under a folder and validates the set.

use std::path::Path;

use super::{Diagnostic, PolicySet};

/// Load and validate every `*.yaml`/`*.yml` file under `dir`.
/// Returns every diagnostic at once, sorted by file, line and column.
pub fn load_dir(dir: &Path) -> Result<PolicySet, Vec<Diagnostic>> {
    let _ = dir;
    todo!("policy loading")
}
