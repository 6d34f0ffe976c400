//! What the checks of every section share: where a file's diagnostics go, and positions.

use std::path::Path;

use serde_saphyr::Spanned;

use crate::policy::diag::Diagnostic;
use crate::policy::glob::compile_glob;
use crate::policy::yaml::Pos;

/// Where diagnostics for one file go.
pub(super) struct Sink<'a> {
    pub(super) file: &'a Path,
    pub(super) diags: &'a mut Vec<Diagnostic>,
    /// The operator's rules for Vault sources.
    pub(super) rules: &'a crate::policy::sources::SourceRules,
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

/// Repository name globs as targets, `verify.repos` and `rollout.canary` write them: each
/// must compile (E0404); a leading `!` excludes. Returns the include and exclude globs
/// (without their `!`), or `None` when one of them was refused.
pub(super) fn check_repo_globs<'g>(
    s: &mut Sink,
    globs: impl IntoIterator<Item = (&'g str, Pos)>,
) -> Option<(Vec<String>, Vec<String>)> {
    let start = s.count();
    let (mut include, mut exclude) = (Vec::new(), Vec::new());
    for (g, at) in globs {
        let (negated, pattern) = match g.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, g),
        };
        match compile_glob(pattern) {
            Err(m) => s.err(at, "E0404", m),
            Ok(_) if negated => exclude.push(pattern.to_string()),
            Ok(_) => include.push(pattern.to_string()),
        }
    }
    (s.count() == start).then_some((include, exclude))
}
