//! Request extractors that turn path parameters and bodies into the emulator's terms, and
//! their failures into GitHub-shaped errors.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::Extension;

use crate::scope::App;
use crate::scope::Scope;

use super::errors::ApiError;

/// All path parameters of the matched route, percent-decoded.
pub(crate) struct Params(pub HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map(|Path(map)| Params(map))
            .map_err(|_| ApiError::not_found())
    }
}

impl Params {
    pub fn get(&self, name: &str) -> Result<&str, ApiError> {
        self.0
            .get(name)
            .map(String::as_str)
            .ok_or_else(ApiError::not_found)
    }

    pub fn opt(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

/// The secret scope a route addresses, from `{owner}/{repo}`, `{environment_name}` or
/// `{org}`, and the app the route was registered for; plus `{secret_name}` and
/// `{repository_id}` when the route has them.
pub(crate) struct Target {
    pub scope: Scope,
    pub secret_name: Option<String>,
    pub repository_id: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for Target {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let params = Params::from_request_parts(parts, state).await?;
        let app = Extension::<App>::from_request_parts(parts, state)
            .await
            .map(|Extension(app)| app)
            .unwrap_or_default();
        let scope = if let Some(org) = params.opt("org") {
            Scope::Org {
                org: org.to_string(),
                app,
            }
        } else {
            let owner = params.get("owner")?.to_string();
            let repo = params.get("repo")?.to_string();
            match params.opt("environment_name") {
                Some(env) => Scope::Environment {
                    owner,
                    repo,
                    environment: env.to_string(),
                },
                None => Scope::Repo { owner, repo, app },
            }
        };
        Ok(Target {
            scope,
            secret_name: params.opt("secret_name").map(String::from),
            repository_id: params.opt("repository_id").map(String::from),
        })
    }
}

impl Target {
    pub fn secret_name(&self) -> Result<&str, ApiError> {
        self.secret_name.as_deref().ok_or_else(ApiError::not_found)
    }

    /// `{repository_id}` as a number; a path that is not one names no repository: 404.
    pub fn repository_id(&self) -> Result<u64, ApiError> {
        self.repository_id
            .as_deref()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(ApiError::not_found)
    }
}

/// The raw request body; an unreadable or oversized body is refused GitHub-style.
pub(crate) struct Body(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Bytes::from_request(req, state)
            .await
            .map(Body)
            .map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "Payload too big")
                } else {
                    ApiError::bad_json()
                }
            })
    }
}
