//! URL paths of the endpoints rotor calls, every segment percent-encoded.

use super::error::GitHubError;
use crate::model::App;
use crate::model::SecretScope;

/// Percent-encodes one path segment: everything but RFC 3986 unreserved characters.
pub fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Builds a path from segments, refusing segments that cannot name a GitHub resource
/// (empty, `.` or `..`: URL normalisation would silently point them elsewhere).
pub fn path(method: &reqwest::Method, segments: &[&str]) -> Result<String, GitHubError> {
    let mut out = String::new();
    for s in segments {
        if s.is_empty() || *s == "." || *s == ".." {
            let shown: Vec<String> = segments.iter().map(|s| encode_segment(s)).collect();
            return Err(GitHubError::invalid_input(
                method,
                format!("/{}", shown.join("/")),
                format!("path segment {s:?} cannot name a GitHub resource"),
            ));
        }
        out.push('/');
        out.push_str(&encode_segment(s));
    }
    Ok(out)
}

/// The path prefix of a scope's secrets, e.g. `/repos/acme/api/actions/secrets`.
pub fn secrets(method: &reqwest::Method, scope: &SecretScope) -> Result<String, GitHubError> {
    match scope {
        SecretScope::Repo { owner, repo, app } => {
            path(method, &["repos", owner, repo, app.as_str(), "secrets"])
        }
        SecretScope::Environment {
            owner,
            repo,
            environment,
        } => path(
            method,
            &["repos", owner, repo, "environments", environment, "secrets"],
        ),
        SecretScope::Org { org, app } => path(method, &["orgs", org, app.as_str(), "secrets"]),
    }
}

/// One secret of a scope, e.g. `/repos/acme/api/actions/secrets/NPM_TOKEN`.
pub fn secret(
    method: &reqwest::Method,
    scope: &SecretScope,
    name: &str,
) -> Result<String, GitHubError> {
    Ok(format!(
        "{}{}",
        secrets(method, scope)?,
        path(method, &[name])?
    ))
}

/// `/orgs/{org}/{app}/secrets/{name}/repositories`.
pub fn selected_repos(
    method: &reqwest::Method,
    org: &str,
    app: App,
    name: &str,
) -> Result<String, GitHubError> {
    path(
        method,
        &["orgs", org, app.as_str(), "secrets", name, "repositories"],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::github::error::ErrorKind;
    use reqwest::Method;

    #[test]
    fn unreserved_characters_pass_and_everything_else_is_encoded() {
        assert_eq!(encode_segment("my-repo.v2_x~"), "my-repo.v2_x~");
        assert_eq!(encode_segment("pre prod"), "pre%20prod");
        assert_eq!(encode_segment("a/b?c#d%"), "a%2Fb%3Fc%23d%25");
        assert_eq!(encode_segment("été"), "%C3%A9t%C3%A9");
    }

    #[test]
    fn scope_paths_follow_githubs_url_tree() {
        let g = Method::GET;
        let repo = SecretScope::Repo {
            owner: "acme".into(),
            repo: "api".into(),
            app: App::Dependabot,
        };
        assert_eq!(
            secrets(&g, &repo).unwrap(),
            "/repos/acme/api/dependabot/secrets"
        );
        let env = SecretScope::Environment {
            owner: "acme".into(),
            repo: "api".into(),
            environment: "pre prod/eu".into(),
        };
        assert_eq!(
            secrets(&g, &env).unwrap(),
            "/repos/acme/api/environments/pre%20prod%2Feu/secrets"
        );
        let org = SecretScope::Org {
            org: "acme".into(),
            app: App::Codespaces,
        };
        assert_eq!(secrets(&g, &org).unwrap(), "/orgs/acme/codespaces/secrets");
        assert_eq!(
            selected_repos(&Method::PUT, "acme", App::Actions, "TOKEN").unwrap(),
            "/orgs/acme/actions/secrets/TOKEN/repositories"
        );
    }

    #[test]
    fn dot_and_empty_segments_are_refused_before_any_request() {
        let env = SecretScope::Environment {
            owner: "acme".into(),
            repo: "api".into(),
            environment: "..".into(),
        };
        let err = secrets(&Method::GET, &env).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        assert!(path(&Method::GET, &["repos", "", "x"]).is_err());
        assert!(secret(&Method::PUT, &env, "").is_err());
        let repo = SecretScope::Repo {
            owner: "acme".into(),
            repo: "api".into(),
            app: App::Actions,
        };
        assert!(secret(&Method::PUT, &repo, "").is_err());
        assert_eq!(
            secret(&Method::PUT, &repo, "NPM_TOKEN").unwrap(),
            "/repos/acme/api/actions/secrets/NPM_TOKEN"
        );
    }
}
