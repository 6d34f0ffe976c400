//! What a GitHub App's installation can reach.

use reqwest::Method;
use serde::Deserialize;

use crate::github::app::AS_INSTALLATION;
use crate::github::client::Client;
use crate::github::error::{ErrorKind, GitHubError};
use crate::github::listing;
use crate::model::{InstallationRepos, Repo};

type Result<T> = std::result::Result<T, GitHubError>;

impl Client {
    /// The repositories the App's installation on `owner` can reach
    /// (`GET /installation/repositories` with that installation's token, every page).
    /// `Ok(None)` when the App is not installed there; an error without App auth.
    /// `repo_hint`: a repository of `owner`, to find the installation by when `owner` is no
    /// organization (`GET /repos/{owner}/{repo}/installation`).
    /// `GET /app/installations` (as the App, every page): every installation of the App,
    /// with its account and permissions. Needs GitHub App auth.
    pub async fn app_installations(&self) -> Result<Vec<crate::model::Installation>> {
        if self.app_auth().is_none() {
            return Err(GitHubError::local(
                ErrorKind::InvalidInput,
                Method::GET,
                "/app/installations".into(),
                "listing the App's installations needs GitHub App auth".into(),
            ));
        }
        listing::paginate(
            self.transport(),
            "/app/installations?per_page=100".to_string(),
            |body| serde_json::from_slice::<Vec<crate::model::Installation>>(body),
        )
        .await
    }

    /// The App's installation on `owner` (looked up once per process; `None` without App
    /// auth or when the App is not installed there). `repo_hint`: a repository of `owner`,
    /// asked about when `owner` is no organization.
    pub async fn installation_of(
        &self,
        owner: &str,
        repo_hint: Option<&str>,
    ) -> Result<Option<crate::model::Installation>> {
        match self.app_auth() {
            Some(app) => {
                app.installation_for(self.transport(), owner, repo_hint)
                    .await
            }
            None => Ok(None),
        }
    }

    /// Forgets what this client cached about `owner`: its repository listing (the next
    /// listing asks GitHub unconditionally) and, with App auth, its installation (looked
    /// up again on next use). For a webhook saying either changed.
    pub fn forget_owner(&self, owner: &str) {
        self.listings().forget_owner(owner);
        if let Some(app) = self.app_auth() {
            app.forget_installation(owner);
        }
    }

    pub async fn installation_repos(
        &self,
        owner: &str,
        repo_hint: Option<&str>,
    ) -> Result<Option<InstallationRepos>> {
        let Some(app) = self.app_auth() else {
            return Err(GitHubError::local(
                ErrorKind::InvalidInput,
                Method::GET,
                "/installation/repositories".into(),
                "listing an installation's repositories needs GitHub App auth".into(),
            ));
        };
        let Some(installation) = app
            .installation_for(self.transport(), owner, repo_hint)
            .await?
        else {
            return Ok(None);
        };
        #[derive(Deserialize)]
        struct Page {
            repositories: Vec<Repo>,
        }
        let pages = listing::paginate(
            self.transport(),
            "/installation/repositories?per_page=100".to_string(),
            |body| serde_json::from_slice::<Page>(body).map(|p| p.repositories),
        );
        let repos = AS_INSTALLATION.scope(installation.id, pages).await?;
        let repos = repos
            .into_iter()
            .filter(|r| r.owner().eq_ignore_ascii_case(owner))
            .collect();
        Ok(Some(InstallationRepos {
            installation,
            repos,
        }))
    }
}
