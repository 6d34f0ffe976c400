//! Reads the text of one policy file into raw policies, and turns parser errors into diagnostics.
//!
//! The parser is serde-saphyr with duplicate keys refused, YAML 1.1 booleans (`yes`, `on`, ...)
//! refused, and tight budgets against alias bombs and oversized documents.

use std::path::Path;

use serde_saphyr::{
    DuplicateKeyPolicy, Error as YamlError, Location, MessageFormatter, Options, Spanned,
};

use super::diag::Diagnostic;
use super::raw::{RawFile, RawPolicy, RawValue};

/// One policy as written, with the position of its mapping.
pub struct Located {
    pub policy: RawPolicy,
    pub at: Pos,
}

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

impl Pos {
    pub fn of(loc: Location) -> Pos {
        Pos {
            line: usize::try_from(loc.line()).unwrap_or(usize::MAX),
            col: usize::try_from(loc.column()).unwrap_or(usize::MAX),
        }
    }
    pub fn of_spanned<T>(s: &Spanned<T>) -> Pos {
        Pos::of(s.referenced)
    }
}

fn options() -> Options {
    let mut o = Options::default();
    o.duplicate_keys = DuplicateKeyPolicy::Error;
    o.strict_booleans = true;
    o.with_snippet = false;
    o.budget = serde_saphyr::budget! {
        max_events: 200_000,
        max_aliases: 500,
        max_anchors: 500,
        max_recorded_anchor_bytes: 64 * 1024,
        max_nodes: 100_000,
        max_depth: 32,
        max_documents: 8,
        max_total_scalar_bytes: 1024 * 1024,
    };
    o.alias_limits = serde_saphyr::alias_limits! {
        max_total_replayed_events: 100_000,
        max_replay_stack_depth: 16,
    };
    o
}

/// Parse `text` (the content of `file`) into raw policies, or the one structural error
/// the parser stopped at.
pub fn parse(file: &Path, text: &str) -> Result<Vec<Located>, Diagnostic> {
    if text.lines().all(|l| {
        let t = l.trim();
        t.is_empty() || t.starts_with('#') || t == "---" || t == "..."
    }) {
        return Err(Diagnostic::whole(
            file,
            "E0006",
            "file holds no policy: write one policy mapping or a list of policies",
        ));
    }
    match serde_saphyr::from_str_with_options::<Spanned<RawFile>>(text, options()) {
        Ok(root) => {
            let at = Pos::of_spanned(&root);
            match root.value {
                RawFile::One(mut policy) => {
                    keep_written_text(text, &mut policy);
                    Ok(vec![Located {
                        policy: *policy,
                        at,
                    }])
                }
                RawFile::Many(list) if list.is_empty() => Err(Diagnostic::at(
                    file,
                    at.line,
                    at.col,
                    "E0006",
                    "the list of policies is empty",
                )),
                RawFile::Many(list) => Ok(list
                    .into_iter()
                    .map(|mut p| {
                        keep_written_text(text, &mut p.value);
                        Located {
                            at: Pos::of_spanned(&p),
                            policy: p.value,
                        }
                    })
                    .collect()),
            }
        }
        Err(e) => Err(diagnose(file, text, &e)),
    }
}

/// Give the numbers and booleans among `verify.inputs` their text as written (`1.50` stays
/// `1.50`, `0x1F` stays `0x1F`): GitHub passes every input as a string, and the parser
/// hands over only the number.
fn keep_written_text(text: &str, policy: &mut RawPolicy) {
    let Some(verify) = &mut policy.verify else {
        return;
    };
    let Some(inputs) = &mut verify.value.inputs else {
        return;
    };
    if let RawValue::Map(entries) = &mut inputs.value {
        for (_, v) in entries {
            // `defined`: an alias's text is at its anchor.
            let written = scalar_source(text, v.defined);
            if let RawValue::Plain { text, .. } = &mut v.value {
                if !written.is_empty() {
                    *text = written;
                }
            }
        }
    }
}

/// The source characters of a plain scalar at `loc` (empty when the span is unknown).
fn scalar_source(text: &str, loc: Location) -> String {
    let span = loc.span();
    let (Ok(start), Ok(len)) = (usize::try_from(span.offset()), usize::try_from(span.len())) else {
        return String::new();
    };
    let s: String = text.chars().skip(start).take(len).collect();
    if s.contains(['\n', '#', ',', '}', ']']) {
        return String::new();
    }
    s.trim().to_string()
}

/// Map a parser error to a diagnostic with a stable code and a short message.
fn diagnose(file: &Path, text: &str, err: &YamlError) -> Diagnostic {
    // No problem lies before the content starts (some errors point at the document start).
    let start = first_content(text);
    let pos = err.location().map(Pos::of).map_or(start, |p| p.max(start));
    let mut inner = err;
    while let YamlError::AliasError { error, .. } | YamlError::WithSnippet { error, .. } = inner {
        inner = error;
    }
    let snippet = err
        .location()
        .map(|l| source_text(text, l))
        .unwrap_or_default();
    let (code, message) = match inner {
        YamlError::DuplicateMappingKey { key, .. } => (
            "E0002",
            match key {
                Some(k) => format!("duplicate key \"{}\": a key may appear only once in a mapping", clean(k)),
                None => "duplicate key: a key may appear only once in a mapping".to_string(),
            },
        ),
        YamlError::SerdeUnknownField { field, expected, .. } => (
            "E0003",
            format!("unknown field \"{}\": allowed here are {}", clean(field), expected.join(", ")),
        ),
        YamlError::SerdeMissingField { field, .. } => ("E0005", format!("missing field \"{field}\"")),
        YamlError::InvalidBooleanStrict { .. } => (
            "E0004",
            format!("{} is not a boolean: write true or false", quoted(&snippet, "value")),
        ),
        YamlError::InvalidScalar { ty, .. } => (
            "E0004",
            format!("{} is not {}", quoted(&snippet, "value"), scalar_kind(ty)),
        ),
        YamlError::SerdeInvalidType { unexpected, expected, .. } => (
            "E0004",
            format!("wrong type: found {}, expected {}", clean(unexpected), clean(expected)),
        ),
        YamlError::SerdeInvalidValue { unexpected, expected, .. } => (
            "E0004",
            format!("wrong value: found {}, expected {}", clean(unexpected), clean(expected)),
        ),
        YamlError::Unexpected { expected, .. } => ("E0004", format!("wrong type: expected {}", plain_kind(expected))),
        YamlError::NullIntoString { .. } => ("E0004", "wrong type: found null, expected a string".to_string()),
        YamlError::Budget { breach, .. } => (
            "E0001",
            format!("file exceeds the parser's limits for a policy file (too large, too deep or too many aliases): {}", clean(&format!("{breach:?}"))),
        ),
        YamlError::MultipleDocuments { .. } => (
            "E0001",
            "more than one YAML document: put several policies in one list instead of separating them with ---"
                .to_string(),
        ),
        other => ("E0001", lower_first(&clean(&serde_saphyr::DefaultMessageFormatter.format_message(other)))),
    };
    Diagnostic::at(file, pos.line, pos.col, code, message)
}

/// Where the document's content starts: the first line that is not blank, a comment or `---`.
fn first_content(text: &str) -> Pos {
    text.lines()
        .enumerate()
        .find_map(|(i, l)| {
            let t = l.trim_start();
            let content = !(t.is_empty() || t.starts_with('#') || t.trim_end() == "---");
            content.then(|| Pos {
                line: i + 1,
                col: l.chars().count() - t.chars().count() + 1,
            })
        })
        .unwrap_or(Pos { line: 1, col: 1 })
}

/// The source characters a location's span covers (one line at most).
fn source_text(text: &str, loc: Location) -> String {
    let span = loc.span();
    let (Ok(start), Ok(len)) = (usize::try_from(span.offset()), usize::try_from(span.len())) else {
        return String::new();
    };
    text.chars()
        .skip(start)
        .take(len.min(80))
        .take_while(|c| *c != '\n')
        .collect()
}

fn quoted(s: &str, fallback: &str) -> String {
    if s.is_empty() {
        fallback.to_string()
    } else {
        format!("\"{}\"", clean(s))
    }
}

/// The parser's name for what it expected, in the words of a policy author.
fn plain_kind(expected: &str) -> &str {
    match expected {
        "string scalar" | "string" | "str expected" => "a string",
        "mapping start" | "map" => "a mapping (key: value lines)",
        "sequence start" | "seq" => "a list",
        "scalar" => "a single value",
        other => other,
    }
}

fn scalar_kind(ty: &str) -> String {
    match ty {
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "an integer".to_string(),
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "a non-negative integer".to_string(),
        "bool" => "a boolean (true or false)".to_string(),
        "f32" | "f64" => "a number".to_string(),
        other => format!("a valid {other}"),
    }
}

/// Keep messages on one line and free of control characters.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}
