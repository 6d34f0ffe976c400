//! Reads every policy file of a folder (or one text), validates the set, and returns it or
//! every diagnostic at once.

use std::path::{Path, PathBuf};

use super::diag::Diagnostic;
use super::model::{Policy, PolicySet};
use super::set::check_set;
use super::sources::SourceRules;
use super::validate::{check_policy, Checked};
use super::yaml::parse;

/// Load and validate the `*.yaml` / `*.yml` files directly in `dir` (not in sub-folders),
/// taken in name order. Each path in a diagnostic is `dir` joined with the file name.
///
/// Returns every diagnostic of every file at once, sorted by file, line and column: a file
/// that does not parse does not hide the problems of the others. A folder that cannot be
/// read, or holds no policy file, is an error too (E0000, E0006). Policies in the set are
/// sorted by name.
pub fn load_dir(dir: &Path) -> Result<PolicySet, Vec<Diagnostic>> {
    load_dir_with(dir, &SourceRules::new())
}

/// The largest policy file rotor reads. Policies are a few kilobytes; a bigger file is a
/// mistake (or an attempt to make rotor parse a huge document).
pub const MAX_POLICY_FILE: u64 = 1024 * 1024;

/// A valid policy with where its parts are written, for checks that report against the
/// file after loading (`rotor validate --online`).
#[derive(Debug, Clone)]
pub struct LocatedPolicy {
    pub policy: Policy,
    /// The policy itself, its `source`, and each target in order.
    pub at: (usize, usize),
    pub source_at: (usize, usize),
    pub targets_at: Vec<(usize, usize)>,
}

/// As [`load_dir_with`], keeping each policy's positions. Policies sorted by name.
pub fn load_dir_located(
    dir: &Path,
    rules: &SourceRules,
) -> Result<Vec<LocatedPolicy>, Vec<Diagnostic>> {
    let checked = load_checked(dir, rules)?;
    let mut out: Vec<LocatedPolicy> = checked
        .into_iter()
        .filter_map(|c| {
            let at = (c.at.line, c.at.col);
            let source_at = c.source_at.map_or(at, |p| (p.line, p.col));
            let targets_at = c.targets.iter().map(|(_, p)| (p.line, p.col)).collect();
            c.policy.map(|policy| LocatedPolicy {
                policy,
                at,
                source_at,
                targets_at,
            })
        })
        .collect();
    out.sort_by(|a, b| a.policy.name.cmp(&b.policy.name));
    Ok(out)
}

/// As [`load_dir`], with the operator's rules for Vault sources (an allow-list).
pub fn load_dir_with(dir: &Path, rules: &SourceRules) -> Result<PolicySet, Vec<Diagnostic>> {
    let checked = load_checked(dir, rules)?;
    let mut policies: Vec<Policy> = checked.into_iter().filter_map(|c| c.policy).collect();
    policies.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(PolicySet { policies })
}

/// Every policy of `dir`, checked; `Err` with every diagnostic when any is wrong.
fn load_checked(dir: &Path, rules: &SourceRules) -> Result<Vec<Checked>, Vec<Diagnostic>> {
    let files = match policy_files(dir) {
        Ok(files) => files,
        Err(e) => {
            return Err(vec![Diagnostic::whole(
                dir,
                "E0000",
                format!("cannot read folder: {e}"),
            )])
        }
    };
    if files.is_empty() {
        return Err(vec![Diagnostic::whole(
            dir,
            "E0006",
            "folder holds no policy file: policies are *.yaml or *.yml files directly in it",
        )]);
    }
    let mut diags = Vec::new();
    let mut checked = Vec::new();
    for file in files {
        match crate::private_fs::read_capped(&file, MAX_POLICY_FILE) {
            Err(e) => diags.push(Diagnostic::whole(
                &file,
                "E0000",
                format!("cannot read file: {e}"),
            )),
            Ok(bytes) => match String::from_utf8(bytes) {
                Err(_) => diags.push(Diagnostic::whole(&file, "E0001", "file is not valid UTF-8")),
                Ok(text) => checked.extend(check_text(&file, &text, rules, &mut diags)),
            },
        }
    }
    check_set(&checked, &mut diags);
    if diags.is_empty() {
        Ok(checked)
    } else {
        Diagnostic::sort(&mut diags);
        Err(diags)
    }
}

/// Parse and validate the policies of one file's text, as [`load_dir`] would (including the
/// set-wide checks among the policies of this text). Policies come back in file order.
pub fn load_str(file: &Path, text: &str) -> Result<Vec<Policy>, Vec<Diagnostic>> {
    load_str_with(file, text, &SourceRules::new())
}

/// As [`load_str`], with the operator's rules for Vault sources.
pub fn load_str_with(
    file: &Path,
    text: &str,
    rules: &SourceRules,
) -> Result<Vec<Policy>, Vec<Diagnostic>> {
    let mut diags = Vec::new();
    let checked = check_text(file, text, rules, &mut diags);
    finish(checked, &mut diags)
}

fn check_text(
    file: &Path,
    text: &str,
    rules: &SourceRules,
    diags: &mut Vec<Diagnostic>,
) -> Vec<Checked> {
    match parse(file, text) {
        Err(d) => {
            diags.push(d);
            Vec::new()
        }
        Ok(located) => located
            .into_iter()
            .map(|l| check_policy(file, l, rules, diags))
            .collect(),
    }
}

fn finish(
    checked: Vec<Checked>,
    diags: &mut Vec<Diagnostic>,
) -> Result<Vec<Policy>, Vec<Diagnostic>> {
    check_set(&checked, diags);
    if diags.is_empty() {
        // No diagnostic means every policy was built.
        Ok(checked.into_iter().filter_map(|c| c.policy).collect())
    } else {
        let mut all = std::mem::take(diags);
        Diagnostic::sort(&mut all);
        Err(all)
    }
}

/// `*.yaml` and `*.yml` entries directly in `dir`, sorted by file name.
fn policy_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') {
            continue;
        }
        if name.ends_with(".yaml") || name.ends_with(".yml") {
            files.push((name.into_owned(), dir.join(entry.file_name())));
        }
    }
    files.sort();
    Ok(files.into_iter().map(|(_, p)| p).collect())
}
