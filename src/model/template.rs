//! Whole-path syncs: `secrets: { from_keys: "*", name: "{{ key | upper }}" }` makes every
//! key of a KV v2 path (that the globs select) a GitHub secret, named by a small template.
//!
//! A template is literal text with `{{ var | filter | ... }}` in it. Variables: `key` (the
//! KV key), `path` (the KV path, `/` as `_`), `name` (the path's last segment) and `mount`.
//! Filters: `upper`, `lower`, `snake` (every character outside `A-Za-z0-9_` becomes `_`).

use globset::{GlobBuilder, GlobMatcher};

/// The default name: the key, upper case.
pub const DEFAULT_TEMPLATE: &str = "{{ key | upper }}";

/// Which keys a whole-path sync takes, and how it names their secrets.
#[derive(Debug, Clone)]
pub struct FromKeys {
    /// Globs on the key names, as written; a leading `!` excludes. Empty: every key.
    pub keys: Vec<String>,
    pub name: NameTemplate,
    include: Vec<GlobMatcher>,
    exclude: Vec<GlobMatcher>,
}

impl FromKeys {
    /// `keys`: globs as written (comma-separated in the policy).
    pub fn new(keys: Vec<String>, name: NameTemplate) -> Result<FromKeys, String> {
        let mut include = Vec::new();
        let mut exclude = Vec::new();
        for k in &keys {
            let (list, pattern) = match k.strip_prefix('!') {
                Some(rest) => (&mut exclude, rest),
                None => (&mut include, k.as_str()),
            };
            if pattern.is_empty() {
                return Err(format!("key glob \"{k}\" is empty"));
            }
            let glob = GlobBuilder::new(pattern)
                .literal_separator(false)
                .build()
                .map_err(|e| format!("key glob \"{k}\" is not a glob: {}", e.kind()))?;
            list.push(glob.compile_matcher());
        }
        Ok(FromKeys {
            keys,
            name,
            include,
            exclude,
        })
    }

    /// Whether the key `key` is taken (KV keys are case-sensitive).
    pub fn selects(&self, key: &str) -> bool {
        (self.include.is_empty() || self.include.iter().any(|g| g.is_match(key)))
            && !self.exclude.iter().any(|g| g.is_match(key))
    }
}

impl PartialEq for FromKeys {
    fn eq(&self, other: &Self) -> bool {
        self.keys == other.keys && self.name == other.name
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Var {
    Key,
    Path,
    Name,
    Mount,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Filter {
    Upper,
    Lower,
    Snake,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Var(Var, Vec<Filter>),
}

/// A parsed name template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameTemplate {
    /// As written.
    pub text: String,
    parts: Vec<Part>,
}

impl NameTemplate {
    pub fn parse(text: &str) -> Result<NameTemplate, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 2..];
            let close = after.find("}}").ok_or_else(|| {
                format!(
                    "\"{{{{\" at column {} is never closed with \"}}}}\"",
                    text.len() - rest.len() + open + 1
                )
            })?;
            let expr = &after[..close];
            let mut pieces = expr.split('|').map(str::trim);
            let var = match pieces.next().unwrap_or("") {
                "key" => Var::Key,
                "path" => Var::Path,
                "name" => Var::Name,
                "mount" => Var::Mount,
                "" => {
                    return Err("\"{{ }}\" names no variable: use key, path, name or mount".into())
                }
                other => {
                    return Err(format!(
                        "unknown variable \"{other}\": use key, path, name or mount"
                    ))
                }
            };
            let mut filters = Vec::new();
            for f in pieces {
                filters.push(match f {
                    "upper" => Filter::Upper,
                    "lower" => Filter::Lower,
                    "snake" => Filter::Snake,
                    other => {
                        return Err(format!(
                            "unknown filter \"{other}\": use upper, lower or snake"
                        ))
                    }
                });
            }
            parts.push(Part::Var(var, filters));
            rest = &after[close + 2..];
        }
        if rest.contains("}}") {
            return Err("\"}}\" without a \"{{\" before it".into());
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        if !parts.iter().any(|p| matches!(p, Part::Var(Var::Key, _))) {
            return Err(
                "the template does not use {{ key }}: every key would get the same name".into(),
            );
        }
        Ok(NameTemplate {
            text: text.to_string(),
            parts,
        })
    }

    /// The secret name for `key` of the KV path `path` on `mount`.
    pub fn render(&self, key: &str, mount: &str, path: &str) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Var(v, filters) => {
                    let path = path.trim_matches('/');
                    let mut s = match v {
                        Var::Key => key.to_string(),
                        Var::Path => path.replace('/', "_"),
                        Var::Name => path.rsplit('/').next().unwrap_or(path).to_string(),
                        Var::Mount => mount.trim_matches('/').replace('/', "_"),
                    };
                    for f in filters {
                        s = match f {
                            Filter::Upper => s.to_ascii_uppercase(),
                            Filter::Lower => s.to_ascii_lowercase(),
                            Filter::Snake => s
                                .chars()
                                .map(|c| {
                                    if c.is_ascii_alphanumeric() || c == '_' {
                                        c
                                    } else {
                                        '_'
                                    }
                                })
                                .collect(),
                        };
                    }
                    out.push_str(&s);
                }
            }
        }
        out
    }

    /// A glob (upper case) every name this template renders for the path matches: the
    /// key's parts become `*`. For the set-wide check of doubled names.
    pub fn pattern(&self, mount: &str, path: &str) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Var(Var::Key, _) => out.push('*'),
                Part::Text(_) | Part::Var(..) => {
                    let one = NameTemplate {
                        text: String::new(),
                        parts: vec![p.clone()],
                    };
                    out.push_str(&escape(&one.render("", mount, path)));
                }
            }
        }
        out.to_ascii_uppercase()
    }
}

fn escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| match c {
            '*' | '?' | '[' | ']' | '{' | '}' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect()
}

/// Whether `name` (explicit) is among the names `pattern` stands for.
pub fn pattern_matches(pattern: &str, name: &str) -> bool {
    GlobBuilder::new(pattern)
        .case_insensitive(true)
        .literal_separator(false)
        .build()
        .map(|g| g.compile_matcher().is_match(name))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNT: &str = "secret";
    const PATH: &str = "ci/payments-api";

    #[test]
    fn templates_render_keys_path_segments_and_filters() {
        let t = NameTemplate::parse("{{ key | upper }}").unwrap();
        assert_eq!(t.render("db_password", MOUNT, PATH), "DB_PASSWORD");
        let t = NameTemplate::parse("{{name|snake|upper}}_{{ key | snake | upper }}").unwrap();
        assert_eq!(t.render("api-key", MOUNT, PATH), "PAYMENTS_API_API_KEY");
        let t = NameTemplate::parse("APP_{{ path | snake | upper }}__{{key}}").unwrap();
        assert_eq!(t.render("x", MOUNT, PATH), "APP_CI_PAYMENTS_API__x");
        let t = NameTemplate::parse("{{ mount | upper }}_{{ key | lower }}").unwrap();
        assert_eq!(t.render("ABC", MOUNT, PATH), "SECRET_abc");
    }

    #[test]
    fn bad_templates_say_what_is_wrong() {
        for (text, says) in [
            ("PREFIX", "does not use {{ key }}"),
            ("{{ name }}", "does not use {{ key }}"),
            ("{{ key | shout }}", "unknown filter \"shout\""),
            ("{{ value }}", "unknown variable \"value\""),
            ("{{ key ", "never closed"),
            ("{{key}} }}", "without a \"{{\""),
            ("{{ }}", "names no variable"),
        ] {
            let e = NameTemplate::parse(text).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        }
    }

    #[test]
    fn globs_select_keys_and_excludes_win() {
        let t = NameTemplate::parse(DEFAULT_TEMPLATE).unwrap();
        let f = FromKeys::new(vec!["db_*".into(), "!db_admin".into()], t.clone()).unwrap();
        assert!(f.selects("db_user") && f.selects("db_password"));
        assert!(!f.selects("db_admin") && !f.selects("api_key") && !f.selects("DB_USER"));
        let all = FromKeys::new(vec!["*".into()], t.clone()).unwrap();
        assert!(all.selects("anything/at all"));
        let none_but = FromKeys::new(vec!["!legacy".into()], t.clone()).unwrap();
        assert!(none_but.selects("x") && !none_but.selects("legacy"));
        assert!(FromKeys::new(vec!["[".into()], t).is_err());
    }

    #[test]
    fn a_pattern_covers_every_name_the_template_can_render() {
        let t = NameTemplate::parse("PAY_{{ key | upper }}").unwrap();
        let p = t.pattern(MOUNT, PATH);
        assert_eq!(p, "PAY_*");
        assert!(pattern_matches(&p, "pay_token"));
        assert!(!pattern_matches(&p, "TOKEN"));
        let t = NameTemplate::parse("{{ name | snake | upper }}_{{ key }}").unwrap();
        assert_eq!(t.pattern(MOUNT, PATH), "PAYMENTS_API_*");
    }
}
