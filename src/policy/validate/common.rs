//! What the checks of every section share: where a file's diagnostics go, and positions.

use std::path::Path;

use serde_saphyr::Spanned;

use crate::policy::diag::Diagnostic;
use crate::policy::yaml::Pos;

/// Where diagnostics for one file go.
pub(super) struct Sink<'a> {
    pub(super) file: &'a Path,
    pub(super) diags: &'a mut Vec<Diagnostic>,
}

impl Sink<'_> {
    pub(super) fn err(&mut self, at: Pos, code: &'static str, message: impl Into<String>) {
        self.diags
            .push(Diagnostic::at(self.file, at.line, at.col, code, message));
    }
    pub(super) fn count(&self) -> usize {
        self.diags.len()
    }
}

pub(super) fn pos<T>(s: &Spanned<T>) -> Pos {
    Pos::of_spanned(s)
}
