//! Diagnostics: a stable code and a `file:line:col` position for every policy problem.

use std::fmt;
use std::path::{Path, PathBuf};

/// Every diagnostic code rotor emits, with what it means. Codes never change meaning and
/// are never reused; a test keeps them unique.
pub const CODES: &[(&str, &str)] = &[
    ("E0000", "cannot read the policies folder or a file in it"),
    ("E0001", "YAML syntax error (or a parser limit, or more than one YAML document)"),
    ("E0002", "duplicate key in a mapping"),
    ("E0003", "unknown field"),
    ("E0004", "wrong type (e.g. a list where a string belongs), or a boolean other than true/false"),
    ("E0005", "missing required field"),
    ("E0006", "no policy: an empty file, an empty list, or a folder without policy files"),
    ("E0007", "value is not one of the allowed words (charset, app, scope, visibility, repo_visibility, on_failure)"),
    ("E0101", "version is not 1"),
    ("E0102", "policy name is not [a-z0-9-] (or starts with -)"),
    ("E0103", "policy name used twice in the set"),
    ("E0201", "no source: one of generate, vault_kv, vault_read, github_runner_token is needed"),
    ("E0202", "more than one source"),
    ("E0203", "generate.length outside 16..4096"),
    ("E0204", "charset custom without alphabet, alphabet without charset custom, or an alphabet of fewer than 2 distinct characters"),
    ("E0205", "bad Vault mount, path or key (empty, surrounding /, empty or dot segments)"),
    ("E0206", "a Vault path under auth/, sys/, cubbyhole/ or identity/ (Vault's own machinery) as a source"),
    ("E0207", "a Vault path outside the operator's allowed sources (ROTOR_ALLOWED_SOURCES)"),
    ("E0208", "a github_runner_token with other than vault_kv targets, or with secrets, or vault_kv targets with another source, or a runner token naming neither (or both) org and repo"),
    ("E0301", "secret name GitHub would refuse"),
    ("E0302", "secrets field the source cannot yield"),
    ("E0303", "empty secrets map"),
    ("E0304", "two secret names in one policy that are equal ignoring case"),
    ("E0305", "a whole-path sync (from_keys, name template) that cannot work"),
    ("E0401", "empty target list"),
    ("E0402", "target with neither or both of repo and org"),
    ("E0403", "bad repository (not owner/name)"),
    ("E0404", "bad repository glob"),
    ("E0405", "visibility: selected without repos"),
    ("E0406", "field not allowed for this kind of target"),
    ("E0407", "the same secret name written twice to the same target"),
    ("E0408", "empty repos list (omit repos to select every repository)"),
    ("E0409", "bad organization name"),
    ("E0410", "bad environment name"),
    ("E0411", "bad topic (GitHub topics are lower-case a-z, 0-9 and -)"),
    ("E0501", "bad cron expression"),
    ("E0502", "both cron and every"),
    ("E0503", "bad duration"),
    ("E0504", "unknown time zone"),
    ("E0505", "schedule with none of cron, every, max_age"),
    ("E0506", "a github_runner_token without a schedule shorter than the token's hour"),
    ("E0601", "bad verify.workflow: neither a .yml/.yaml file name without / nor a positive workflow id"),
    ("E0602", "bad verify.ref: not a branch or tag name git accepts"),
    ("E0603", "bad verify.inputs: not a mapping, more than 25 inputs, a bad input name, or a value that is not a string, number or boolean"),
    ("E0604", "verify.timeout outside 30s..6h"),
    ("E0605", "verify.repos empty, or missing while an Actions organization secret is verified"),
    ("E0606", "verify on a policy with no Actions secret target: workflow runs read only Actions secrets"),
    ("E0701", "bad rollout.canary: not a count of at least 1, a percentage 1%..100%, or a non-empty list of repository globs"),
    ("E0702", "on_failure: rollback (the default) with verify for a value stored nowhere (vault_read, or generate without store)"),
];

/// One problem found in a policy file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based; 0 when the problem concerns the file or folder as a whole.
    pub line: usize,
    /// 1-based; 0 when the problem concerns the file or folder as a whole.
    pub col: usize,
    /// Stable code, e.g. `E0101` (see [`CODES`]).
    pub code: &'static str,
    pub message: String,
}

/// The codes of `rotor validate --online` (they need Vault and GitHub, so no offline
/// snapshot shows them; see `online.rs`).
pub const ONLINE_CODES: &[(&str, &str)] = &[
    ("E0801", "Vault would refuse the token on a source, store or vault_kv target path"),
    ("E0802", "GitHub would refuse or cannot find a target (a repository the credential cannot see, a missing environment, an App not installed)"),
    ("E0803", "a plan warning: a missing permission, a count over GitHub's limits, a shadowed secret"),
];

impl Diagnostic {
    /// A diagnostic at a position in `file`.
    pub fn at(
        file: &Path,
        line: usize,
        col: usize,
        code: &'static str,
        message: impl Into<String>,
    ) -> Self {
        debug_assert!(
            CODES.iter().chain(ONLINE_CODES).any(|(c, _)| *c == code),
            "unknown code {code}"
        );
        Diagnostic {
            file: file.to_path_buf(),
            line,
            col,
            code,
            message: message.into(),
        }
    }

    /// A diagnostic about a whole file or folder (no position).
    pub fn whole(file: &Path, code: &'static str, message: impl Into<String>) -> Self {
        Self::at(file, 0, 0, code, message)
    }

    /// The order diagnostics are reported in: file, line, column, code, message.
    pub fn sort(diags: &mut [Diagnostic]) {
        diags.sort_by(|a, b| {
            (&a.file, a.line, a.col, a.code, &a.message)
                .cmp(&(&b.file, b.line, b.col, b.code, &b.message))
        });
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {} {}", self.file.display(), self.code, self.message)
        } else {
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
}

impl std::error::Error for Diagnostic {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_well_formed() {
        let mut seen = std::collections::BTreeSet::new();
        for (code, meaning) in CODES {
            assert!(seen.insert(*code), "code {code} appears twice");
            assert!(
                code.len() == 5
                    && code.starts_with('E')
                    && code[1..].chars().all(|c| c.is_ascii_digit()),
                "code {code} is not E + four digits"
            );
            assert!(!meaning.is_empty(), "code {code} has no meaning");
        }
    }

    #[test]
    fn display_is_file_line_col_code_message() {
        let d = Diagnostic::at(
            Path::new("p/a.yaml"),
            3,
            5,
            "E0301",
            "secret name \"X-\" is refused",
        );
        assert_eq!(
            d.to_string(),
            "p/a.yaml:3:5: E0301 secret name \"X-\" is refused"
        );
        let w = Diagnostic::whole(Path::new("p"), "E0000", "cannot read folder");
        assert_eq!(w.to_string(), "p: E0000 cannot read folder");
    }
}
