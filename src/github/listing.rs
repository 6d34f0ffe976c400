//! Reading GitHub's listings: every page, following `Link: rel="next"` exactly as given
//! and never off the API's origin.
//!
//! Repository listings are also conditional and cached ([`super::cache`]): a first listing
//! reads page 1, then pages 2..N at once when its `rel="last"` numbers them; a listing read
//! before is asked for all at once, every page with `If-None-Match`. Their pages are handed
//! to the caller one by one, in order, each once it is known to belong to the listing.

use std::collections::HashSet;

use reqwest::{Method, Url};

use super::cache::{CachedPage, ListingStore};
use super::error::{ErrorKind, GitHubError};
use super::link;
use super::transport::{decode, Reply, Transport};
use crate::model::Repo;

type Result<T> = std::result::Result<T, GitHubError>;

/// Reads the repository listing that starts at `first`, handing each page's repositories
/// to `on_page` in order.
///
/// Conditional: a page seen before is asked for with `If-None-Match`, and a `304` (which
/// does not count against the primary budget) reuses the cached page. When the listing
/// was read before, every page is asked for at once, at the URLs GitHub's own `Link`
/// headers gave last time; if the pages no longer link up that way, the listing is read
/// again page after page.
///
/// A page read on its own is handed over as soon as it has arrived; pages asked for at
/// once (a relisting, or pages 2..N of a first listing) only when all of them have and
/// they chain up, since pages that do not are read again. No page is handed over twice.
/// On an error, the pages handed over so far were only part of the listing.
pub(crate) async fn repos<F: FnMut(&[Repo])>(
    transport: &Transport,
    store: &ListingStore,
    first: Url,
    on_page: &mut F,
) -> Result<()> {
    let key = first.to_string();
    if let Some(pages) = relist_at_once(transport, store, &key).await? {
        hand_over(&pages, on_page);
        store.store(key, pages);
        return Ok(());
    }
    let mut pages: Vec<CachedPage> = Vec::new();
    let mut url = first;
    // Page 1's `Link` header, which may name the last page.
    let mut first_links = String::new();
    loop {
        let cached = store.lock().page(&key, url.as_str()).cloned();
        let etag = cached.as_ref().map(|c| c.etag.clone());
        let reply = transport
            .send_with(Method::GET, url.clone(), None, etag.as_deref())
            .await?;
        if pages.is_empty() {
            let links: Vec<&str> = reply
                .headers
                .get_all("link")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect();
            first_links = links.join(", ");
        }
        let page = match (reply.status.as_u16(), cached) {
            (304, Some(c)) => c,
            _ => {
                let path = transport.display_path(&url);
                let repos: Vec<Repo> =
                    decode(Method::GET, &path, &reply, |b| serde_json::from_slice(b))?;
                CachedPage {
                    url: url.to_string(),
                    etag: reply
                        .headers
                        .get("etag")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string(),
                    next: next_page(transport, &url, &reply, &[])?.map(|u| u.to_string()),
                    items: repos,
                }
            }
        };
        on_page(&page.items);
        let next = page.next.clone();
        pages.push(page);
        let Some(next) = next else { break };
        let next = url_for_absolute(transport, &next, &url)?;
        // The first page names the last by number: ask for all the others at once.
        if pages.len() == 1 {
            if let Some(urls) = numbered_pages(&next, &first_links) {
                let wanted = {
                    let cache = store.lock();
                    urls.into_iter()
                        .map(|u| {
                            let cached = cache.page(&key, u.as_str()).cloned();
                            (u, cached)
                        })
                        .collect()
                };
                if let Some(rest) = pages_at_once(transport, wanted, PAGES_AT_ONCE).await? {
                    hand_over(&rest, on_page);
                    pages.extend(rest);
                    break;
                }
            }
        }
        if pages.iter().any(|p| p.url == next.as_str()) {
            let path = transport.display_path(&url);
            let msg = "pagination link loops back to a page already read".to_string();
            return Err(GitHubError::local(
                ErrorKind::Decode,
                Method::GET,
                path,
                msg,
            ));
        }
        url = next;
    }
    if pages.iter().all(|p| !p.etag.is_empty()) {
        store.store(key, pages);
    }
    Ok(())
}

/// Hands every page of `pages`, in order, to `on_page`.
fn hand_over<F: FnMut(&[Repo])>(pages: &[CachedPage], on_page: &mut F) {
    for page in pages {
        on_page(&page.items);
    }
}

/// One page of a listing, conditional on its cached `ETag`.
async fn listing_page(
    transport: &Transport,
    url: Url,
    cached: Option<CachedPage>,
) -> Result<CachedPage> {
    let etag = cached.as_ref().map(|c| c.etag.clone());
    let reply = transport
        .send_with(Method::GET, url.clone(), None, etag.as_deref())
        .await?;
    if let (304, Some(c)) = (reply.status.as_u16(), cached) {
        return Ok(c);
    }
    let path = transport.display_path(&url);
    let items: Vec<Repo> = decode(Method::GET, &path, &reply, |b| serde_json::from_slice(b))?;
    let etag = reply.headers.get("etag").and_then(|v| v.to_str().ok());
    Ok(CachedPage {
        url: url.to_string(),
        etag: etag.unwrap_or_default().to_string(),
        next: next_page(transport, &url, &reply, &[])?.map(|u| u.to_string()),
        items,
    })
}

/// Every cached page of a listing at once; `None` when there is no usable cache or the
/// pages no longer chain up as they did (then the caller reads page after page).
async fn relist_at_once(
    transport: &Transport,
    store: &ListingStore,
    key: &str,
) -> Result<Option<Vec<CachedPage>>> {
    let cached = store.lock().listings.get(key).cloned();
    let Some(cached) = cached.filter(|c| c.len() > 1 && c.iter().all(|p| !p.etag.is_empty()))
    else {
        return Ok(None);
    };
    let mut wanted = Vec::with_capacity(cached.len());
    for page in cached {
        match Url::parse(&page.url) {
            Ok(u) if transport.on_api_origin(&u) => wanted.push((u, Some(page))),
            _ => return Ok(None),
        }
    }
    // Conditional requests: a 304 carries no body, so every page may be in flight.
    let at_once = wanted.len();
    let Some(pages) = pages_at_once(transport, wanted, at_once).await? else {
        return Ok(None);
    };
    Ok(Some(pages))
}

/// Pages of a listing asked for all at once (each conditional on its cached copy);
/// `None` unless they chain up as GitHub's `Link` headers say, each `next` naming the
/// page after it and the last naming none.
async fn pages_at_once(
    transport: &Transport,
    wanted: Vec<(Url, Option<CachedPage>)>,
    at_once: usize,
) -> Result<Option<Vec<CachedPage>>> {
    use futures::stream::{StreamExt as _, TryStreamExt as _};
    let pages: Vec<CachedPage> = futures::stream::iter(wanted)
        .map(|(url, cached)| listing_page(transport, url, cached))
        .buffered(at_once.max(1))
        .try_collect()
        .await?;
    let chained = pages
        .windows(2)
        .all(|w| w[0].next.as_deref() == Some(w[1].url.as_str()))
        && pages.last().is_some_and(|p| p.next.is_none());
    Ok(chained.then_some(pages))
}

/// Fetches `first` and every page after it, following `Link: rel="next"` exactly as
/// given. Refuses links to another origin (the token would go with them) and loops.
pub(crate) async fn paginate<T>(
    transport: &Transport,
    first: String,
    extract: impl Fn(&[u8]) -> serde_json::Result<Vec<T>>,
) -> Result<Vec<T>> {
    let mut url = transport.url_for(&Method::GET, &first)?;
    let mut visited = HashSet::new();
    let mut items = Vec::new();
    loop {
        visited.insert(url.to_string());
        let reply = transport.send(Method::GET, url.clone(), None).await?;
        let path = transport.display_path(&url);
        items.extend(decode(Method::GET, &path, &reply, &extract)?);
        let visited_now: Vec<&str> = visited.iter().map(String::as_str).collect();
        match next_page(transport, &url, &reply, &visited_now)? {
            Some(next) => url = next,
            None => return Ok(items),
        }
    }
}

/// The `Link: rel="next"` of a page, checked: same origin as the API, not visited yet.
fn next_page(
    transport: &Transport,
    url: &Url,
    reply: &Reply,
    visited: &[&str],
) -> Result<Option<Url>> {
    let path = transport.display_path(url);
    let links: Vec<&str> = reply
        .headers
        .get_all("link")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let Some(next) = link::next(&links.join(", ")) else {
        return Ok(None);
    };
    let bad_link = |why: &str| {
        let msg = format!("pagination link {why}");
        GitHubError::decode(Method::GET, path.clone(), reply.status, &reply.headers, msg)
    };
    let next = url
        .join(&next)
        .map_err(|e| bad_link(&format!("is not a URL: {e}")))?;
    if !transport.on_api_origin(&next) {
        return Err(bad_link(&format!(
            "leads off the API origin to {}",
            next.origin().ascii_serialization()
        )));
    }
    if visited.contains(&next.as_str()) {
        return Err(bad_link("loops back to a page already read"));
    }
    Ok(Some(next))
}

/// A cached absolute link, checked again against the API origin.
fn url_for_absolute(transport: &Transport, link: &str, from: &Url) -> Result<Url> {
    let url = Url::parse(link).ok().filter(|u| transport.on_api_origin(u));
    url.ok_or_else(|| {
        let msg = "a cached pagination link is not on the API origin".to_string();
        GitHubError::local(
            ErrorKind::Decode,
            Method::GET,
            transport.display_path(from),
            msg,
        )
    })
}

/// Listings with more pages than this are read page after page.
const MAX_PAGES_AT_ONCE: usize = 1_000;

/// Pages of one listing read for the first time in flight at once. Each connection that carried a page keeps a
/// read buffer the size of one (hundreds of KB) while it idles in the pool: ten at a
/// time reads 100 pages in ten round trips and keeps a few MB, not tens.
const PAGES_AT_ONCE: usize = 10;

/// The URLs of pages 2 to N when the first page's `Link` header gives `next` as page 2 and
/// `last` as page N of the same URL (GitHub's page-numbered listings); `None` otherwise
/// (cursor pagination, an odd link), and then the listing is read page after page.
fn numbered_pages(next: &Url, links: &str) -> Option<Vec<Url>> {
    let last = link::parse(links).into_iter().find(|l| l.has_rel("last"))?;
    let last = next.join(&last.target).ok()?;
    let page_of = |u: &Url| {
        u.query_pairs()
            .find(|(k, _)| k == "page")
            .and_then(|(_, v)| v.parse::<usize>().ok())
    };
    if page_of(next)? != 2 {
        return None;
    }
    let n = page_of(&last)?;
    if !(2..=MAX_PAGES_AT_ONCE).contains(&n) {
        return None;
    }
    let with_page = |p: usize| {
        let pairs: Vec<(String, String)> = next
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == "page" {
                    p.to_string()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        let mut u = next.clone();
        u.query_pairs_mut().clear().extend_pairs(pairs);
        u
    };
    // Only when the links read back exactly as built (same parameters, same encoding).
    if with_page(2) != *next || with_page(n) != last {
        return None;
    }
    Some((2..=n).map(with_page).collect())
}

#[cfg(test)]
mod numbered_pages_tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).expect("url")
    }

    #[test]
    fn pages_two_to_last_are_named_from_githubs_links() {
        let next = url("https://api.github.com/organizations/7/repos?per_page=100&type=all&page=2");
        let links = "<https://api.github.com/organizations/7/repos?per_page=100&type=all&page=2>; rel=\"next\", \
                     <https://api.github.com/organizations/7/repos?per_page=100&type=all&page=4>; rel=\"last\"";
        let pages: Vec<String> = numbered_pages(&next, links)
            .expect("numbered")
            .iter()
            .map(Url::to_string)
            .collect();
        assert_eq!(
            pages,
            [2, 3, 4].map(|p| format!(
                "https://api.github.com/organizations/7/repos?per_page=100&type=all&page={p}"
            ))
        );
    }

    #[test]
    fn anything_but_plain_page_numbers_is_read_page_after_page() {
        let next = url("https://api.github.com/orgs/acme/repos?per_page=100&page=2");
        // No `last` (cursor pagination gives none).
        assert_eq!(
            numbered_pages(
                &next,
                "<https://api.github.com/orgs/acme/repos?per_page=100&page=2>; rel=\"next\""
            ),
            None
        );
        // `last` with other parameters than `next`.
        let odd = "<https://api.github.com/orgs/acme/repos?per_page=50&page=9>; rel=\"last\"";
        assert_eq!(numbered_pages(&next, odd), None);
        // `next` that is not page 2.
        let cursor = url("https://api.github.com/orgs/acme/repos?per_page=100&after=Y3Vyc29y");
        let last = "<https://api.github.com/orgs/acme/repos?per_page=100&page=3>; rel=\"last\"";
        assert_eq!(numbered_pages(&cursor, last), None);
        // More pages than are asked for at once.
        let huge = "<https://api.github.com/orgs/acme/repos?per_page=100&page=5000>; rel=\"last\"";
        assert_eq!(numbered_pages(&next, huge), None);
        // `last` on another host.
        let elsewhere = "<https://evil.example/orgs/acme/repos?per_page=100&page=3>; rel=\"last\"";
        assert_eq!(numbered_pages(&next, elsewhere), None);
    }
}
