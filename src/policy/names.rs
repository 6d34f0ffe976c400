//! Name rules: policy names, GitHub secret names, organizations, repositories, environments,
//! topics, Vault paths, git refs and workflow inputs. Each check returns a short message saying what is wrong.

/// `[a-z0-9-]+`, not starting with `-` (so it never reads as a command-line flag).
pub fn check_policy_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("policy name is empty: use a-z, 0-9 and -".to_string());
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(format!(
            "policy name \"{name}\" is not allowed: use only a-z, 0-9 and -"
        ));
    }
    if name.starts_with('-') {
        return Err(format!(
            "policy name \"{name}\" is not allowed: it must not start with -"
        ));
    }
    Ok(())
}

/// GitHub's rules for secret names: only `[A-Za-z0-9_]`, not starting with a digit, not
/// starting with `GITHUB_` (in any case).
pub fn check_secret_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("secret name is empty: names use A-Z, a-z, 0-9 and _".to_string());
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(format!(
            "secret name \"{name}\" is refused by GitHub: names may contain only A-Z, a-z, 0-9 and _"
        ));
    }
    if name.as_bytes()[0].is_ascii_digit() {
        return Err(format!(
            "secret name \"{name}\" is refused by GitHub: names must not start with a digit"
        ));
    }
    if name.len() >= 7 && name[..7].eq_ignore_ascii_case("GITHUB_") {
        return Err(format!(
            "secret name \"{name}\" is refused by GitHub: names must not start with GITHUB_"
        ));
    }
    Ok(())
}

/// An organization (or user) login: 1 to 39 of `[A-Za-z0-9_-]`, not starting or ending with `-`.
pub fn check_org(org: &str) -> Result<(), String> {
    let ok = !org.is_empty()
        && org.len() <= 39
        && org
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && !org.starts_with('-')
        && !org.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "organization \"{org}\" is not a GitHub login: 1 to 39 letters, digits, - or _, not starting or ending with -"
        ))
    }
}

/// `owner/name`: an owner login and a repository name of 1 to 100 of `[A-Za-z0-9._-]`.
pub fn check_repo(full: &str) -> Result<(&str, &str), String> {
    let bad = || format!("repository \"{full}\" is not owner/name (letters, digits, ., - and _)");
    let (owner, name) = full.split_once('/').ok_or_else(bad)?;
    check_org(owner).map_err(|_| bad())?;
    let name_ok = !name.is_empty()
        && name.len() <= 100
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
        && name != "."
        && name != "..";
    if name_ok {
        Ok((owner, name))
    } else {
        Err(bad())
    }
}

/// An environment name: 1 to 255 characters, no control characters, no surrounding spaces.
pub fn check_environment(env: &str) -> Result<(), String> {
    if env.is_empty() {
        return Err("environment name is empty".to_string());
    }
    if env.chars().count() > 255 || env.chars().any(char::is_control) || env.trim() != env {
        return Err(format!(
            "environment \"{}\" is not allowed: at most 255 characters, no control characters or surrounding spaces",
            env.escape_debug()
        ));
    }
    Ok(())
}

/// A GitHub topic: 1 to 50 of `[a-z0-9-]`, starting with a letter or digit.
pub fn check_topic(topic: &str) -> Result<(), String> {
    let ok = !topic.is_empty()
        && topic.len() <= 50
        && topic
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !topic.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "topic \"{topic}\" can never match: GitHub topics are 1 to 50 of a-z, 0-9 and -, not starting with -"
        ))
    }
}

/// A Vault mount or path: non-empty, no surrounding `/`, no empty, `.` or `..` segments.
pub fn check_vault_path(what: &str, path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err(format!("{what} is empty"));
    }
    if path.starts_with('/') || path.ends_with('/') {
        return Err(format!("{what} \"{path}\" must not start or end with /"));
    }
    if path
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err(format!("{what} \"{path}\" has an empty, . or .. segment"));
    }
    if path.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(format!(
            "{what} \"{}\" holds spaces or control characters",
            path.escape_debug()
        ));
    }
    Ok(())
}

/// A branch or tag to run a workflow on (git's ref rules, simplified): not empty, no spaces
/// or control characters, none of `~ ^ : ? * [ \`, no `..`, `//` or `@{`, not starting with
/// `-` or `/`, not ending with `/`, `.` or `.lock`. `main`, `v1.2.0` and `refs/heads/main` pass.
pub fn check_git_ref(r: &str) -> Result<(), String> {
    const HINT: &str = "name a branch or tag, e.g. main or refs/tags/v1.2.0";
    let bad = |why: &str| Err(format!("ref \"{}\" {why}: {HINT}", r.escape_debug()));
    if r.is_empty() {
        return Err(format!(
            "ref is empty: {HINT}, or omit ref for the default branch"
        ));
    }
    if r.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return bad("holds spaces or control characters");
    }
    if let Some(c) = r.chars().find(|c| "~^:?*[\\".contains(*c)) {
        return bad(&format!("holds {c}, which git refuses in a ref"));
    }
    if r.starts_with('-') || r.starts_with('/') {
        return bad("must not start with - or /");
    }
    if r.ends_with('/') || r.ends_with('.') || r.ends_with(".lock") {
        return bad("must not end with /, . or .lock");
    }
    for seq in ["..", "//", "@{"] {
        if r.contains(seq) {
            return bad(&format!("holds {seq}, which git refuses in a ref"));
        }
    }
    if r == "@" {
        return bad("is not a ref");
    }
    Ok(())
}

/// A `workflow_dispatch` input name: `[A-Za-z_][A-Za-z0-9_-]*`.
pub fn check_input_name(name: &str) -> Result<(), String> {
    let mut bytes = name.bytes();
    let ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else if name.is_empty() {
        Err(
            "input name is empty: names are A-Z, a-z, 0-9, _ and -, starting with a letter or _"
                .to_string(),
        )
    } else {
        Err(format!(
            "input name \"{}\" is not allowed: names are A-Z, a-z, 0-9, _ and -, starting with a letter or _",
            name.escape_debug()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_secret_name_rules_hold() {
        for ok in ["DEPLOY_TOKEN", "a1", "_X", "github", "GITHUBX_TOKEN"] {
            assert!(check_secret_name(ok).is_ok(), "{ok} refused");
        }
        for bad in [
            "",
            "1TOKEN",
            "DEPLOY-TOKEN",
            "GITHUB_TOKEN",
            "github_token",
            "Github_X",
            "TÖKEN",
            "A B",
        ] {
            assert!(check_secret_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn repositories_are_owner_slash_name() {
        assert_eq!(
            check_repo("acme/payments-api"),
            Ok(("acme", "payments-api"))
        );
        assert_eq!(check_repo("acme/.github"), Ok(("acme", ".github")));
        for bad in [
            "acme", "acme/", "/x", "acme/a/b", "-acme/x", "acme/..", "acme/a b",
        ] {
            assert!(check_repo(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn policy_names_are_lower_case_kebab() {
        assert!(check_policy_name("payments-deploy-token").is_ok());
        for bad in ["", "Payments", "a_b", "-x", "a b"] {
            assert!(check_policy_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn vault_paths_have_no_empty_or_dot_segments() {
        assert!(check_vault_path("path", "ci/payments/deploy-token").is_ok());
        for bad in ["", "/ci", "ci/", "ci//x", "ci/../x", "ci/ x"] {
            assert!(check_vault_path("path", bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn git_refs_follow_gits_rules() {
        for ok in [
            "main",
            "release/2024-01",
            "v1.2.0",
            "refs/heads/main",
            "refs/tags/v1",
            "feature_x",
        ] {
            assert!(check_git_ref(ok).is_ok(), "{ok:?} refused");
        }
        for bad in [
            "", "a b", "a\tb", "-main", "/main", "main/", "main.", "a.lock", "a..b", "a//b",
            "a@{1}", "@", "a~1", "a^", "a:b", "a?", "a*", "a[b", "a\\b", "a\u{7f}",
        ] {
            assert!(check_git_ref(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn input_names_start_with_a_letter_or_underscore() {
        for ok in ["reason", "_x", "dry-run", "A9_b-c"] {
            assert!(check_input_name(ok).is_ok(), "{ok:?} refused");
        }
        for bad in ["", "9x", "-x", "a b", "a.b", "é"] {
            assert!(check_input_name(bad).is_err(), "{bad:?} accepted");
        }
    }
}
