//! Repository name globs (`payments-*`, `!payments-legacy`) and the matcher built from a selector.

use globset::{Glob, GlobBuilder, GlobMatcher};

use super::model::RepoSelector;

/// Compile one repository name glob (without its leading `!`). Names are compared ignoring
/// case, as GitHub does. A glob holding `/` is refused: it matches names, not `owner/name`.
pub fn compile_glob(pattern: &str) -> Result<GlobMatcher, String> {
    if pattern.is_empty() {
        return Err(
            "empty glob: write a repository name or a pattern such as payments-*".to_string(),
        );
    }
    if pattern.contains('/') {
        return Err(format!(
            "glob \"{pattern}\" holds /: globs match repository names without the owner"
        ));
    }
    let glob: Glob = GlobBuilder::new(pattern)
        .case_insensitive(true)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map_err(|e| format!("bad glob \"{pattern}\": {}", e.kind()))?;
    Ok(glob.compile_matcher())
}

/// Which repository names a validated [`RepoSelector`] selects, by name alone (topics,
/// visibility and archived/disabled state are checked against the repository elsewhere).
#[derive(Debug, Clone)]
pub struct NameMatcher {
    include: Vec<GlobMatcher>,
    exclude: Vec<GlobMatcher>,
}

impl NameMatcher {
    /// Build the matcher for a selector; fails only for globs `validate` would refuse.
    pub fn new(selector: &RepoSelector) -> Result<Self, String> {
        Ok(NameMatcher {
            include: selector
                .include
                .iter()
                .map(|g| compile_glob(g))
                .collect::<Result<_, _>>()?,
            exclude: selector
                .exclude
                .iter()
                .map(|g| compile_glob(g))
                .collect::<Result<_, _>>()?,
        })
    }

    /// Whether `name` (a repository name without owner) is selected: it matches an include
    /// glob (or there are none) and no exclude glob.
    pub fn matches(&self, name: &str) -> bool {
        (self.include.is_empty() || self.include.iter().any(|g| g.is_match(name)))
            && !self.exclude.iter().any(|g| g.is_match(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(include: &[&str], exclude: &[&str]) -> NameMatcher {
        NameMatcher::new(&RepoSelector {
            include: include.iter().map(|s| s.to_string()).collect(),
            exclude: exclude.iter().map(|s| s.to_string()).collect(),
            ..RepoSelector::default()
        })
        .expect("valid globs")
    }

    #[test]
    fn excludes_win_over_includes_and_case_is_ignored() {
        let m = sel(&["payments-*"], &["payments-legacy"]);
        assert!(m.matches("payments-api"));
        assert!(m.matches("Payments-API"));
        assert!(!m.matches("payments-legacy"));
        assert!(!m.matches("billing"));
    }

    #[test]
    fn no_include_globs_select_every_name_but_the_excluded() {
        let m = sel(&[], &["sandbox-*"]);
        assert!(m.matches("anything"));
        assert!(!m.matches("sandbox-1"));
    }

    #[test]
    fn empty_slash_and_unbalanced_globs_are_refused() {
        for bad in ["", "acme/payments-*", "payments-[", "{a,b"] {
            assert!(compile_glob(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
