//! Diagnostics: a stable code and a `file:line:col` position for every policy problem.

use std::fmt;
use std::path::PathBuf;

/// One problem found in a policy file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based.
    pub line: usize,
    /// 1-based.
    pub col: usize,
    /// Stable code, e.g. `E0101`.
    pub code: &'static str,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {} {}",
            self.file.display(),
            self.line,
            self.col,
            self.code,
            self.message
        )
    }
}
