//! Repositories: an organization's listing (conditional, cached, page by page), one
//! repository, its environments.

use reqwest::Method;
use serde::Deserialize;

use crate::github::client::Client;
use crate::github::error::GitHubError;
use crate::github::{listing, routes};
use crate::model::Repo;

type Result<T> = std::result::Result<T, GitHubError>;

impl Client {
    /// `GET /orgs/{org}/repos?per_page=100&type=all`, every page (following `Link: rel="next"`).
    ///
    /// Conditional: a page seen before is asked for with `If-None-Match`, and a `304` (which
    /// does not count against the primary budget) reuses the cached page. When the listing
    /// was read before, every page is asked for at once, at the URLs GitHub's own `Link`
    /// headers gave last time; if the pages no longer link up that way, the listing is read
    /// again page after page.
    pub async fn list_org_repos(&self, org: &str) -> Result<Vec<Repo>> {
        let mut items = Vec::new();
        self.list_org_repos_pages(org, |page| items.extend_from_slice(page))
            .await?;
        Ok(items)
    }

    /// [`Client::list_org_repos`], handing each page's repositories to `on_page` as they
    /// arrive, in order, instead of collecting them.
    ///
    /// A page read on its own is handed over once it has arrived; pages asked for at once
    /// (a relisting, or pages 2..N of a first listing) when all of them have and they
    /// chain up. No page is handed over twice; on an error, the pages handed over so far
    /// were only part of the listing.
    pub async fn list_org_repos_pages(
        &self,
        org: &str,
        mut on_page: impl FnMut(&[Repo]),
    ) -> Result<()> {
        let path = routes::path(&Method::GET, &["orgs", org, "repos"])?;
        let transport = self.transport();
        let first = transport.url_for(&Method::GET, &format!("{path}?per_page=100&type=all"))?;
        listing::repos(transport, self.listings(), first, &mut on_page).await
    }

    /// `GET /repos/{owner}/{repo}` (a renamed repository's 301 is followed).
    pub async fn get_repo(&self, owner: &str, repo: &str) -> Result<Repo> {
        let path = routes::path(&Method::GET, &["repos", owner, repo])?;
        self.transport().get_json(&path).await
    }

    /// `GET /repos/{owner}/{repo}/environments?per_page=100`: the environments' names.
    pub async fn list_environments(&self, owner: &str, repo: &str) -> Result<Vec<String>> {
        #[derive(Deserialize)]
        struct Page {
            environments: Vec<Named>,
        }
        #[derive(Deserialize)]
        struct Named {
            name: String,
        }
        let path = routes::path(&Method::GET, &["repos", owner, repo, "environments"])?;
        listing::paginate(self.transport(), format!("{path}?per_page=100"), |body| {
            serde_json::from_slice::<Page>(body)
                .map(|p| p.environments.into_iter().map(|e| e.name).collect())
        })
        .await
    }
}
