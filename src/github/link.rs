//! RFC 8288 `Link` header parsing, used to follow GitHub's pagination exactly as given.

/// One link of a `Link` header: its target URL (exactly as sent) and its relation types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkValue {
    pub target: String,
    /// Relation types, lower-cased (`rel="next last"` yields two).
    pub rels: Vec<String>,
}

impl LinkValue {
    pub fn has_rel(&self, rel: &str) -> bool {
        self.rels.iter().any(|r| r.eq_ignore_ascii_case(rel))
    }
}

/// Parses a `Link` header value (several header lines may be joined with `,`).
///
/// Lenient in what it skips: a malformed link-value is dropped and parsing resumes at the
/// next `<`, so one odd entry never hides a good `rel="next"`.
pub fn parse(header: &str) -> Vec<LinkValue> {
    let mut links = Vec::new();
    let mut rest = header;
    while let Some(open) = rest.find('<') {
        let after_open = &rest[open + 1..];
        let Some(close) = after_open.find('>') else {
            break;
        };
        let target = after_open[..close].trim().to_string();
        let (rels, remainder) = parse_params(&after_open[close + 1..]);
        links.push(LinkValue { target, rels });
        rest = remainder;
    }
    links
}

/// The target of the first link whose relation is `next`, if any.
pub fn next(header: &str) -> Option<String> {
    parse(header)
        .into_iter()
        .find(|l| l.has_rel("next"))
        .map(|l| l.target)
}

/// Reads `; name=value; name="quoted, value"` up to the `,` that ends this link-value.
/// Returns the `rel` values and the text after that comma.
fn parse_params(input: &str) -> (Vec<String>, &str) {
    let mut rels = Vec::new();
    let bytes = input.as_bytes();
    let mut i = 0;
    loop {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        match bytes.get(i) {
            None => return (rels, ""),
            Some(b',') => return (rels, &input[i + 1..]),
            Some(b';') => i += 1,
            // Anything else here is malformed: resynchronise at the next link-value.
            Some(_) => {
                let resume = input[i..]
                    .find(',')
                    .map(|p| i + p + 1)
                    .unwrap_or(input.len());
                return (rels, &input[resume..]);
            }
        }
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let name_start = i;
        while i < bytes.len() && !matches!(bytes[i], b'=' | b';' | b',') {
            i += 1;
        }
        let name = input[name_start..i].trim();
        let mut value = String::new();
        if bytes.get(i) == Some(&b'=') {
            i += 1;
            while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            if bytes.get(i) == Some(&b'"') {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    if bytes[i] == b'\\' && i + 1 < bytes.len() {
                        i += 1;
                    }
                    value.push(bytes[i] as char);
                    i += 1;
                }
                i += 1; // closing quote (or end of input)
            } else {
                let start = i;
                while i < bytes.len() && !matches!(bytes[i], b';' | b',') {
                    i += 1;
                }
                value = input[start..i].trim().to_string();
            }
        }
        if name.eq_ignore_ascii_case("rel") {
            rels.extend(
                value
                    .split_ascii_whitespace()
                    .map(|r| r.to_ascii_lowercase()),
            );
        }
        i = i.min(bytes.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn githubs_documented_example_yields_next_and_last() {
        let h = r#"<https://api.github.com/resource?page=2>; rel="next", <https://api.github.com/resource?page=5>; rel="last""#;
        let links = parse(h);
        assert_eq!(links.len(), 2);
        assert_eq!(links[0].target, "https://api.github.com/resource?page=2");
        assert!(links[0].has_rel("next"));
        assert_eq!(links[1].target, "https://api.github.com/resource?page=5");
        assert!(links[1].has_rel("last"));
        assert_eq!(
            next(h).as_deref(),
            Some("https://api.github.com/resource?page=2")
        );
    }

    #[test]
    fn next_is_found_among_prev_first_and_last_with_per_page_kept_verbatim() {
        let h = concat!(
            r#"<https://api.github.com/organizations/9919/repos?per_page=100&type=all&page=1>; rel="prev", "#,
            r#"<https://api.github.com/organizations/9919/repos?per_page=100&type=all&page=3>; rel="next", "#,
            r#"<https://api.github.com/organizations/9919/repos?per_page=100&type=all&page=7>; rel="last", "#,
            r#"<https://api.github.com/organizations/9919/repos?per_page=100&type=all&page=1>; rel="first""#
        );
        assert_eq!(
            next(h).as_deref(),
            Some("https://api.github.com/organizations/9919/repos?per_page=100&type=all&page=3")
        );
        assert_eq!(parse(h).len(), 4);
    }

    #[test]
    fn enterprise_server_links_keep_their_api_v3_base_path() {
        let h = r#"<https://ghe.example.com/api/v3/repositories/42/actions/secrets?per_page=100&page=2>; rel="next""#;
        assert_eq!(
            next(h).as_deref(),
            Some("https://ghe.example.com/api/v3/repositories/42/actions/secrets?per_page=100&page=2")
        );
    }

    #[test]
    fn the_last_page_has_no_next() {
        let h = r#"<https://api.github.com/resource?page=4>; rel="prev", <https://api.github.com/resource?page=1>; rel="first""#;
        assert_eq!(next(h), None);
        assert_eq!(next(""), None);
    }

    #[test]
    fn commas_inside_urls_and_quoted_params_do_not_split_links() {
        let h = r#"<https://x.test/a?q=a,b&page=2>; title="one, two"; rel="next", <https://x.test/a?page=9>; rel=last"#;
        let links = parse(h);
        assert_eq!(links.len(), 2);
        assert_eq!(links[0].target, "https://x.test/a?q=a,b&page=2");
        assert!(links[0].has_rel("next"));
        assert!(links[1].has_rel("last"));
    }

    #[test]
    fn several_relation_types_and_odd_spacing_and_case_are_understood() {
        let h = r#"  <https://x.test/p2> ;REL = "Last  Next" ,<https://x.test/p1>;rel=prev"#;
        assert_eq!(next(h).as_deref(), Some("https://x.test/p2"));
        let links = parse(h);
        assert_eq!(links[0].rels, vec!["last".to_string(), "next".to_string()]);
        assert!(links[1].has_rel("prev"));
    }

    #[test]
    fn a_malformed_entry_does_not_hide_a_later_next() {
        let h = r#"<https://x.test/p1> garbage here, <https://x.test/p3>; rel="next""#;
        assert_eq!(next(h).as_deref(), Some("https://x.test/p3"));
    }
}
