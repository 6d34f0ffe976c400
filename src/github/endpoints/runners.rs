//! Self-hosted runner registration tokens: `POST /orgs/{org}/actions/runners/
//! registration-token` (or the repository's). The token is a secret: its answer is parsed
//! into a `SecretString` and the body wiped; a parse error does not quote it.

use chrono::{DateTime, Utc};
use reqwest::Method;
use secrecy::SecretString;
use serde::Deserialize;

use crate::github::client::Client;
use crate::github::error::GitHubError;
use crate::github::routes;

/// A registration token and when GitHub says it expires (an hour after it was made).
pub struct RunnerToken {
    pub token: SecretString,
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for RunnerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunnerToken")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A new runner registration token for organization `owner`, or for repository
    /// `owner/repo`. Needs admin rights (an App: the organization's "Self-hosted runners",
    /// or the repository's "Administration", at write).
    pub async fn runner_registration_token(
        &self,
        owner: &str,
        repo: Option<&str>,
    ) -> Result<RunnerToken, GitHubError> {
        #[derive(Deserialize)]
        struct Body {
            token: SecretString,
            expires_at: DateTime<Utc>,
        }
        let segments: Vec<&str> = match repo {
            Some(r) => vec![
                "repos",
                owner,
                r,
                "actions",
                "runners",
                "registration-token",
            ],
            None => vec!["orgs", owner, "actions", "runners", "registration-token"],
        };
        let path = routes::path(&Method::POST, &segments)?;
        let mut reply = self
            .transport()
            .send_json(Method::POST, &path, &serde_json::json!({}))
            .await?;
        let parsed = serde_json::from_slice::<Body>(&reply.body);
        zeroize::Zeroize::zeroize(&mut reply.body);
        let body = parsed.map_err(|e| {
            GitHubError::decode(
                Method::POST,
                path.clone(),
                reply.status,
                &reply.headers,
                format!(
                    "the registration token answer is not {{token, expires_at}} (at line {}, column {})",
                    e.line(),
                    e.column()
                ),
            )
        })?;
        Ok(RunnerToken {
            token: body.token,
            expires_at: body.expires_at,
        })
    }
}
