//! `page`/`per_page` query parameters and the `Link` header, built on the request's own URL.

use super::auth::BaseUrl;

pub(crate) const DEFAULT_PER_PAGE: usize = 30;
pub(crate) const MAX_PER_PAGE: usize = 100;

/// One page request: `page` from 1, `per_page` in 1..=100 (default 30).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Page {
    pub page: usize,
    pub per_page: usize,
}

/// The raw value of one query parameter.
pub(crate) fn query_param<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then_some(v)
    })
}

impl Page {
    /// Reads `page` and `per_page`; values GitHub would not take fall back to the defaults,
    /// and `per_page` above 100 is cut to 100.
    pub fn from_query(query: Option<&str>) -> Self {
        let num = |name| query_param(query, name).and_then(|v| v.parse::<usize>().ok());
        let per_page = match num("per_page") {
            Some(0) | None => DEFAULT_PER_PAGE,
            Some(n) => n.min(MAX_PER_PAGE),
        };
        let page = num("page").filter(|p| *p > 0).unwrap_or(1);
        Page { page, per_page }
    }

    /// This page's part of `items`.
    pub fn slice<'a, T>(&self, items: &'a [T]) -> &'a [T] {
        let start = (self.page - 1)
            .saturating_mul(self.per_page)
            .min(items.len());
        let end = start.saturating_add(self.per_page).min(items.len());
        &items[start..end]
    }

    fn last(&self, total: usize) -> usize {
        total.div_ceil(self.per_page).max(1)
    }

    /// `Link: <..page=3>; rel="prev", <..page=5>; rel="next", <..page=9>; rel="last",
    /// <..page=1>; rel="first"`, omitted when everything fits on the first page.
    pub fn link_header(&self, base: &BaseUrl, total: usize) -> Option<String> {
        let last = self.last(total);
        if last == 1 && self.page == 1 {
            return None;
        }
        let kept: Vec<&str> = base
            .query
            .as_deref()
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty() && p.split('=').next() != Some("page"))
            .collect();
        let url = |page: usize| {
            let mut q = kept.clone();
            let page = format!("page={page}");
            q.push(&page);
            format!("<{}{}?{}>", base.origin, base.path, q.join("&"))
        };
        let mut parts = Vec::new();
        if self.page > 1 {
            parts.push(format!("{}; rel=\"prev\"", url((self.page - 1).min(last))));
        }
        if self.page < last {
            parts.push(format!("{}; rel=\"next\"", url(self.page + 1)));
            parts.push(format!("{}; rel=\"last\"", url(last)));
        }
        if self.page > 1 {
            parts.push(format!("{}; rel=\"first\"", url(1)));
        }
        Some(parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(query: Option<&str>) -> BaseUrl {
        BaseUrl {
            origin: "http://127.0.0.1:9".into(),
            prefix: String::new(),
            path: "/orgs/acme/repos".into(),
            query: query.map(String::from),
        }
    }

    #[test]
    fn per_page_is_capped_at_100_and_defaults_to_30() {
        assert_eq!(
            Page::from_query(None),
            Page {
                page: 1,
                per_page: 30
            }
        );
        assert_eq!(
            Page::from_query(Some("per_page=500&page=2")),
            Page {
                page: 2,
                per_page: 100
            }
        );
        assert_eq!(
            Page::from_query(Some("per_page=x&page=0")),
            Page {
                page: 1,
                per_page: 30
            }
        );
    }

    #[test]
    fn link_header_names_prev_next_last_first_and_keeps_other_parameters() {
        let p = Page::from_query(Some("type=all&per_page=10&page=2"));
        let link = p
            .link_header(&base(Some("type=all&per_page=10&page=2")), 35)
            .expect("link");
        assert_eq!(
            link,
            "<http://127.0.0.1:9/orgs/acme/repos?type=all&per_page=10&page=1>; rel=\"prev\", \
             <http://127.0.0.1:9/orgs/acme/repos?type=all&per_page=10&page=3>; rel=\"next\", \
             <http://127.0.0.1:9/orgs/acme/repos?type=all&per_page=10&page=4>; rel=\"last\", \
             <http://127.0.0.1:9/orgs/acme/repos?type=all&per_page=10&page=1>; rel=\"first\""
        );
        assert_eq!(Page::from_query(None).link_header(&base(None), 30), None);
        let last = Page::from_query(Some("page=2"))
            .link_header(&base(Some("page=2")), 31)
            .expect("link");
        assert!(last.contains("rel=\"prev\"") && !last.contains("rel=\"next\""));
    }

    #[test]
    fn slices_past_the_end_are_empty() {
        let items: Vec<u32> = (0..5).collect();
        assert_eq!(
            Page {
                page: 2,
                per_page: 3
            }
            .slice(&items),
            &[3, 4]
        );
        assert!(Page {
            page: 9,
            per_page: 3
        }
        .slice(&items)
        .is_empty());
    }
}
