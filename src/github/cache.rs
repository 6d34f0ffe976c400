//! Repository listings kept with their ETags, in memory and (optionally) in a file between
//! runs, so that an unchanged page is answered `304 Not Modified`: a conditional request
//! does not count against GitHub's primary rate limit.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::model::Repo;

/// One page of a listing as GitHub last sent it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedPage {
    /// The page's URL, exactly as requested.
    pub url: String,
    /// The `ETag` GitHub sent with it.
    pub etag: String,
    /// The `rel="next"` link it carried, if any.
    pub next: Option<String>,
    pub items: Vec<Repo>,
}

/// Every cached listing, keyed by the URL of its first page.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListingCache {
    pub listings: HashMap<String, Vec<CachedPage>>,
}

impl ListingCache {
    /// Reads a cache file; a missing or unreadable file is an empty cache (it is only a cache).
    pub fn load(path: &Path) -> ListingCache {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(path = %path.display(), error = %e, "ignoring an unreadable listing cache");
                ListingCache::default()
            }),
            Err(_) => ListingCache::default(),
        }
    }

    /// Writes the cache to a new file and renames it over the old one.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::private_fs::create_dir(dir)?;
        }
        crate::private_fs::replace(
            path,
            &serde_json::to_vec(self).map_err(std::io::Error::other)?,
        )
    }

    /// The cached page at `url` of the listing that starts at `first`.
    pub fn page(&self, first: &str, url: &str) -> Option<&CachedPage> {
        self.listings.get(first)?.iter().find(|p| p.url == url)
    }
}

/// The client's cache: the listings, and where they are kept between runs.
pub(crate) struct ListingStore {
    pub path: Option<PathBuf>,
    pub cache: Mutex<ListingCache>,
}

impl ListingStore {
    pub fn new(path: Option<PathBuf>) -> Self {
        let cache = path.as_deref().map(ListingCache::load).unwrap_or_default();
        ListingStore {
            path,
            cache: Mutex::new(cache),
        }
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, ListingCache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Drops the listings of organization `owner` (`/orgs/{owner}/repos`), and writes the
    /// file when there is one.
    pub fn forget_owner(&self, owner: &str) {
        let needle = format!("/orgs/{}/repos", owner.to_ascii_lowercase());
        let mut cache = self.lock();
        let before = cache.listings.len();
        cache
            .listings
            .retain(|first, _| !first.to_ascii_lowercase().contains(&needle));
        if cache.listings.len() != before {
            if let Some(path) = &self.path {
                if let Err(e) = cache.save(path) {
                    tracing::warn!(path = %path.display(), error = %e, "could not write the listing cache");
                }
            }
        }
    }

    /// Replaces one listing's pages and writes the file, when there is one.
    pub fn store(&self, first: String, pages: Vec<CachedPage>) {
        let mut cache = self.lock();
        if cache.listings.get(&first) == Some(&pages) {
            return;
        }
        cache.listings.insert(first, pages);
        if let Some(path) = &self.path {
            if let Err(e) = cache.save(path) {
                tracing::warn!(path = %path.display(), error = %e, "could not write the listing cache");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(id: u64) -> Repo {
        Repo {
            id,
            name: format!("svc-{id}"),
            full_name: format!("acme/svc-{id}"),
            archived: false,
            disabled: false,
            private: false,
            visibility: None,
            topics: vec![],
        }
    }

    #[test]
    fn a_listing_survives_a_round_trip_through_its_file_and_damage_is_an_empty_cache() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state").join("listings.json");
        let store = ListingStore::new(Some(path.clone()));
        let page = CachedPage {
            url: "https://api/orgs/acme/repos?per_page=100".into(),
            etag: "W/\"abc\"".into(),
            next: None,
            items: vec![repo(1), repo(2)],
        };
        store.store(page.url.clone(), vec![page.clone()]);
        let again = ListingCache::load(&path);
        assert_eq!(again.page(&page.url, &page.url), Some(&page));
        std::fs::write(&path, b"{not json").unwrap();
        assert_eq!(ListingCache::load(&path), ListingCache::default());
    }
}
