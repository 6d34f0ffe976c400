//! What a policy may read from Vault. A policy is merged by whoever can merge to the
//! policy repository; rotor's Vault token and GitHub credential belong to the operator. So
//! a policy may not name Vault's own machinery as a source (`auth/`, `sys/`, `cubbyhole/`,
//! `identity/`: `auth/token/lookup-self` answers with rotor's own token), and the operator
//! can narrow the paths policies may read or write further with an allow-list
//! (`ROTOR_ALLOWED_SOURCES` / `--allowed-sources`), which policies cannot change.
//!
//! Both are checked at validate time: E0206 for a refused path, E0207 for one outside the
//! allow-list.

use globset::{GlobBuilder, GlobMatcher};

/// Mounts no policy may read or write by default: Vault's auth methods (and the token
/// store under `auth/token/`), its system backend, the per-token cubbyhole and identity.
pub const REFUSED_MOUNTS: &[&str] = &["auth", "sys", "cubbyhole", "identity"];

/// The operator's rules for Vault sources.
#[derive(Debug, Clone, Default)]
pub struct SourceRules {
    /// `None`: every path but the refused ones. `Some`: only paths matching a pattern.
    allowed: Option<Vec<Allowed>>,
}

#[derive(Debug, Clone)]
struct Allowed {
    pattern: String,
    matcher: GlobMatcher,
    /// The pattern's first segment, when it is literal: only such a pattern can allow a
    /// path under a refused mount (`sys/*` can; `*` cannot).
    literal_mount: Option<String>,
}

impl SourceRules {
    /// The default: every Vault path but those under `REFUSED_MOUNTS`.
    pub fn new() -> SourceRules {
        SourceRules::default()
    }

    /// An allow-list from `spec`: patterns separated by commas or newlines, each a glob over
    /// `mount/path` (`secret/ci/*`, `database/creds/*`, `pki/issue/web`); `*` matches within
    /// one segment, `**` across segments. An empty spec is no allow-list.
    pub fn from_spec(spec: &str) -> Result<SourceRules, String> {
        let mut allowed = Vec::new();
        for raw in spec.split([',', '\n']) {
            let pattern = raw.trim().trim_matches('/');
            if pattern.is_empty() {
                continue;
            }
            let matcher = GlobBuilder::new(pattern)
                .literal_separator(true)
                .build()
                .map_err(|e| format!("bad allowed source pattern \"{pattern}\": {}", e.kind()))?
                .compile_matcher();
            let first = pattern.split('/').next().unwrap_or("");
            let literal_mount =
                (!first.contains(['*', '?', '[', '{', '\\'])).then(|| first.to_string());
            allowed.push(Allowed {
                pattern: pattern.to_string(),
                matcher,
                literal_mount,
            });
        }
        Ok(SourceRules {
            allowed: (!allowed.is_empty()).then_some(allowed),
        })
    }

    /// The allow-list's patterns, as given (empty without one).
    pub fn patterns(&self) -> Vec<&str> {
        self.allowed
            .iter()
            .flatten()
            .map(|a| a.pattern.as_str())
            .collect()
    }

    /// Whether a policy may use the Vault path `full` (`mount/path` of KV, or the path of a
    /// dynamic read); the code and message of the refusal otherwise. `what` names the field
    /// in messages (`vault_kv`, `generate.store`, `vault_read`).
    pub fn check(&self, what: &str, full: &str) -> Result<(), (&'static str, String)> {
        let full = full.trim_matches('/');
        let mount = full.split('/').next().unwrap_or("");
        let refused = REFUSED_MOUNTS.iter().any(|m| mount.eq_ignore_ascii_case(m));
        match &self.allowed {
            None if refused => Err(("E0206", refused_message(what, full, mount))),
            None => Ok(()),
            Some(list) => {
                let ok = list.iter().any(|a| {
                    a.matcher.is_match(full)
                        && (!refused
                            || a.literal_mount
                                .as_deref()
                                .is_some_and(|m| m.eq_ignore_ascii_case(mount)))
                });
                match (ok, refused) {
                    (true, _) => Ok(()),
                    (false, true) => Err(("E0206", refused_message(what, full, mount))),
                    (false, false) => Err((
                        "E0207",
                        format!(
                            "{what} path \"{full}\" is not in the operator's allowed sources ({}); \
                             ask whoever runs rotor to add it to ROTOR_ALLOWED_SOURCES",
                            self.patterns().join(", ")
                        ),
                    )),
                }
            }
        }
    }
}

fn refused_message(what: &str, full: &str, mount: &str) -> String {
    format!(
        "{what} path \"{full}\" is under {mount}/, Vault's own machinery rather than a secret \
         (auth/token/lookup-self, for one, answers with rotor's own token); policies may not \
         read or write it. An operator who means it can allow it by name in \
         ROTOR_ALLOWED_SOURCES (e.g. {mount}/...)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vaults_own_paths_are_refused_by_default() {
        let rules = SourceRules::new();
        for path in [
            "auth/token/lookup-self",
            "sys/wrapping/unwrap",
            "cubbyhole/x",
            "identity/oidc/token/x",
            "/auth/approle/role/x/secret-id",
            "AUTH/token/create",
        ] {
            let (code, _) = rules.check("vault_read", path).unwrap_err();
            assert_eq!(code, "E0206", "{path}");
        }
        for path in [
            "secret/ci/npm",
            "database/creds/app",
            "pki/issue/web",
            "authz/x",
        ] {
            assert!(rules.check("vault_read", path).is_ok(), "{path}");
        }
    }

    #[test]
    fn an_allow_list_narrows_and_only_a_literal_mount_reopens_a_refused_one() {
        let rules =
            SourceRules::from_spec("secret/ci/*, database/creds/**\npki/issue/web").unwrap();
        assert!(rules.check("vault_kv", "secret/ci/npm").is_ok());
        assert!(rules.check("vault_read", "database/creds/a/b").is_ok());
        assert!(rules.check("vault_read", "pki/issue/web").is_ok());
        assert_eq!(
            rules.check("vault_kv", "secret/prod/db").unwrap_err().0,
            "E0207"
        );
        assert_eq!(
            rules.check("vault_kv", "secret/ci/a/b").unwrap_err().0,
            "E0207"
        );

        let wide = SourceRules::from_spec("*/**").unwrap();
        assert_eq!(
            wide.check("vault_read", "auth/token/lookup-self")
                .unwrap_err()
                .0,
            "E0206"
        );
        assert!(wide.check("vault_read", "kv/x").is_ok());
        let by_name = SourceRules::from_spec("sys/pki-rotate/*").unwrap();
        assert!(by_name.check("vault_read", "sys/pki-rotate/x").is_ok());
        assert!(SourceRules::from_spec(" , ").unwrap().patterns().is_empty());
        assert!(SourceRules::from_spec("secret/[").is_err());
    }
}
