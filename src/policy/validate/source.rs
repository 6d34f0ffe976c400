//! The `source` section: exactly one of `generate`, `vault_kv`, `vault_read`.

use serde_saphyr::Spanned;

use super::common::{pos, Sink};
use crate::policy::model::{Charset, KvRef, SourceSpec};
use crate::policy::names;
use std::collections::BTreeMap;

use crate::policy::raw::{RawGenerate, RawKv, RawRead, RawRunnerToken, RawSource, RawValue};
use crate::policy::yaml::Pos;

pub(super) fn check_source(s: &mut Sink, src: Spanned<RawSource>) -> Option<SourceSpec> {
    let at = pos(&src);
    let RawSource {
        generate,
        vault_kv,
        vault_read,
        github_runner_token,
    } = src.value;
    let mut present: Vec<(&str, Pos)> = Vec::new();
    if let Some(g) = &generate {
        present.push(("generate", pos(g)));
    }
    if let Some(k) = &vault_kv {
        present.push(("vault_kv", pos(k)));
    }
    if let Some(r) = &vault_read {
        present.push(("vault_read", pos(r)));
    }
    if let Some(r) = &github_runner_token {
        present.push(("github_runner_token", pos(r)));
    }
    present.sort_by_key(|(_, p)| *p);
    match present.len() {
        0 => s.err(
            at,
            "E0201",
            "no source: set one of generate, vault_kv, vault_read, github_runner_token",
        ),
        1 => {}
        _ => {
            let names: Vec<&str> = present.iter().map(|(n, _)| *n).collect();
            s.err(
                present[1].1,
                "E0202",
                format!(
                    "more than one source ({}): keep exactly one",
                    names.join(", ")
                ),
            )
        }
    }
    // Check every source that is written, so a doubled one shows its own problems too.
    let start = s.count();
    let mut specs = Vec::new();
    specs.extend(generate.map(|g| check_generate(s, g)));
    specs.extend(vault_kv.map(|k| check_kv(s, "vault_kv", k, None).map(SourceSpec::VaultKv)));
    specs.extend(vault_read.map(|r| check_read(s, r)));
    specs.extend(github_runner_token.map(|r| check_runner_token(s, r)));
    if specs.len() != 1 || s.count() > start {
        return None;
    }
    specs.pop().flatten()
}

/// `source.github_runner_token`: exactly one of `org: NAME` and `repo: OWNER/NAME`.
fn check_runner_token(s: &mut Sink, r: Spanned<RawRunnerToken>) -> Option<SourceSpec> {
    let at = pos(&r);
    match (r.value.org, r.value.repo) {
        (Some(org), None) => match names::check_org(&org.value) {
            Ok(()) => Some(SourceSpec::GithubRunnerToken {
                owner: org.value,
                repo: None,
            }),
            Err(m) => {
                s.err(pos(&org), "E0409", m);
                None
            }
        },
        (None, Some(repo)) => match names::check_repo(&repo.value) {
            Ok((owner, name)) => Some(SourceSpec::GithubRunnerToken {
                owner: owner.to_string(),
                repo: Some(name.to_string()),
            }),
            Err(m) => {
                s.err(pos(&repo), "E0403", m);
                None
            }
        },
        _ => {
            s.err(
                at,
                "E0208",
                "github_runner_token names one of org (an organization's runners) or repo (one repository's)",
            );
            None
        }
    }
}

fn check_generate(s: &mut Sink, g: Spanned<RawGenerate>) -> Option<SourceSpec> {
    let at = pos(&g);
    let start = s.count();
    let RawGenerate {
        length,
        charset,
        alphabet,
        prefix,
        store,
    } = g.value;
    let length = match length {
        None => {
            s.err(
                at,
                "E0005",
                "missing field \"length\" in generate: a number of characters, 16..4096",
            );
            None
        }
        Some(l) if !(16..=4096).contains(&l.value) => {
            s.err(
                pos(&l),
                "E0203",
                format!(
                    "length {} is out of range: generate makes 16..4096 characters",
                    l.value
                ),
            );
            None
        }
        Some(l) => usize::try_from(l.value).ok(),
    };
    let charset_word = charset.as_ref().map(|c| (c.value.as_str(), pos(c)));
    let charset = match charset_word {
        None | Some(("alphanumeric", _)) => Some(Charset::Alphanumeric),
        Some(("hex", _)) => Some(Charset::Hex),
        Some(("base64url", _)) => Some(Charset::Base64Url),
        Some(("printable", _)) => Some(Charset::Printable),
        Some(("custom", c_at)) => match &alphabet {
            None => {
                s.err(
                    c_at,
                    "E0204",
                    "charset custom needs an alphabet: the characters to draw from",
                );
                None
            }
            Some(a) => {
                let mut distinct: Vec<char> = a.value.chars().collect();
                distinct.sort_unstable();
                distinct.dedup();
                if distinct.iter().any(|c| c.is_control()) {
                    s.err(
                        pos(a),
                        "E0204",
                        "alphabet holds control characters: use printable characters",
                    );
                    None
                } else if distinct.len() < 2 {
                    s.err(
                        pos(a),
                        "E0204",
                        "alphabet needs at least 2 distinct characters",
                    );
                    None
                } else {
                    Some(Charset::Custom(a.value.clone()))
                }
            }
        },
        Some((other, c_at)) => {
            s.err(
                c_at,
                "E0007",
                format!("charset \"{other}\" is not one of alphanumeric, hex, base64url, printable, custom"),
            );
            None
        }
    };
    if let Some(a) = &alphabet {
        if !matches!(charset_word, Some(("custom", _))) {
            s.err(
                pos(a),
                "E0204",
                "alphabet is only used with charset: custom",
            );
        }
    }
    let store = match store {
        None => None,
        Some(st) => {
            let st_at = pos(&st);
            match st.value.vault_kv {
                None => {
                    s.err(
                        st_at,
                        "E0005",
                        "missing field \"vault_kv\" in store: where each fresh value is kept",
                    );
                    None
                }
                Some(kv) => check_kv(s, "store.vault_kv", kv, Some("value")),
            }
        }
    };
    if s.count() > start {
        return None;
    }
    Some(SourceSpec::Generate {
        length: length?,
        charset: charset?,
        prefix: prefix.map(|p| p.value),
        store,
    })
}

pub(super) fn check_kv(
    s: &mut Sink,
    what: &str,
    kv: Spanned<RawKv>,
    default_key: Option<&str>,
) -> Option<KvRef> {
    let at = pos(&kv);
    let start = s.count();
    let RawKv { mount, path, key } = kv.value;
    let required = |field: &str, v: Option<Spanned<String>>, s: &mut Sink| match v {
        None => {
            s.err(
                at,
                "E0005",
                format!("missing field \"{field}\" in {what}: it needs mount and path"),
            );
            None
        }
        Some(v) => {
            if let Err(m) = names::check_vault_path(field, &v.value) {
                s.err(pos(&v), "E0205", m);
            }
            Some(v.value)
        }
    };
    let mount = required("mount", mount, s);
    let path = required("path", path, s);
    if let (Some(m), Some(p)) = (&mount, &path) {
        if s.count() == start {
            let full = format!("{}/{}", m.trim_matches('/'), p.trim_matches('/'));
            if let Err((code, message)) = s.rules.check(what, &full) {
                s.err(at, code, message);
            }
        }
    }
    let key = match key {
        Some(k) if k.value.is_empty() => {
            s.err(
                pos(&k),
                "E0205",
                "key is empty: name the field of the KV secret, or omit key",
            );
            None
        }
        Some(k) => Some(k.value),
        None => default_key.map(str::to_string),
    };
    if s.count() > start {
        return None;
    }
    Some(KvRef {
        mount: mount?,
        path: path?,
        key,
    })
}

fn check_read(s: &mut Sink, r: Spanned<RawRead>) -> Option<SourceSpec> {
    let at = pos(&r);
    match r.value.path {
        None => {
            s.err(at, "E0005", "missing field \"path\" in vault_read: the engine path to read, e.g. aws/creds/deploy");
            None
        }
        Some(p) => match names::check_vault_path("path", &p.value) {
            Err(m) => {
                s.err(pos(&p), "E0205", m);
                None
            }
            Ok(()) => {
                if let Err((code, message)) = s.rules.check("vault_read", &p.value) {
                    s.err(pos(&p), code, message);
                    return None;
                }
                let params = match r.value.params {
                    Some(v) => check_params(s, v)?,
                    None => BTreeMap::new(),
                };
                Some(SourceSpec::VaultRead {
                    path: p.value,
                    params,
                })
            }
        },
    }
}

/// `vault_read.params`: a mapping of names to scalars, sent as the body of a write.
fn check_params(s: &mut Sink, v: Spanned<RawValue>) -> Option<BTreeMap<String, String>> {
    let at = pos(&v);
    let RawValue::Map(entries) = v.value else {
        s.err(
            at,
            "E0205",
            format!(
                "params is {}: write a mapping of parameter names to values, e.g. {{ common_name: ci.example.com }}",
                v.value.kind()
            ),
        );
        return None;
    };
    let mut out = BTreeMap::new();
    let mut ok = true;
    for (name, value) in entries {
        match value.value.scalar_text() {
            Some(t) if !name.value.is_empty() => {
                out.insert(name.value.clone(), t.to_string());
            }
            _ => {
                s.err(
                    pos(&value),
                    "E0205",
                    format!("params.{} must be a string, number or boolean", name.value),
                );
                ok = false;
            }
        }
    }
    ok.then_some(out)
}
