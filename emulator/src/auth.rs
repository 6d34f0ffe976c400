//! Who is calling and what they may see: tokens, the User-Agent and API-version checks,
//! and the per-request context handlers receive.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::http::{header, HeaderMap, StatusCode};

use super::apps::Grant;
use super::errors::ApiError;
use super::fleet::{RepoVisibility, TokenSpec};

/// What one caller may see and manage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Access {
    /// Every organization and repository.
    All,
    /// Listed organizations (lower-case) and single repositories (`owner/name`, lower-case).
    Limited {
        orgs: HashSet<String>,
        repos: HashSet<String>,
    },
    /// No token: public repositories only, and no secrets.
    Anonymous,
    /// A GitHub App's JWT: only the App endpoints.
    App { app_id: u64 },
    /// An installation token: its organization's repositories (all or selected), within
    /// its permissions.
    Installation(Arc<Grant>),
}

impl Access {
    fn from_spec(spec: &TokenSpec) -> Self {
        if spec.orgs.is_empty() && spec.repos.is_empty() {
            return Access::All;
        }
        Access::Limited {
            orgs: spec.orgs.iter().map(|o| o.to_ascii_lowercase()).collect(),
            repos: spec.repos.iter().map(|r| r.to_ascii_lowercase()).collect(),
        }
    }

    pub fn is_authenticated(&self) -> bool {
        !matches!(self, Access::Anonymous)
    }

    /// May manage the organization itself (its secrets) and all its repositories.
    pub fn manages_org(&self, org: &str) -> bool {
        match self {
            Access::All => true,
            Access::Limited { orgs, .. } => orgs.contains(&org.to_ascii_lowercase()),
            Access::Installation(g) => g.org.eq_ignore_ascii_case(org),
            Access::Anonymous | Access::App { .. } => false,
        }
    }

    /// May manage this repository (its secrets, environments and keys).
    pub fn manages_repo(&self, org: &str, repo: &str) -> bool {
        match self {
            Access::All => true,
            Access::Limited { orgs, repos } => {
                orgs.contains(&org.to_ascii_lowercase())
                    || repos.contains(&format!("{org}/{repo}").to_ascii_lowercase())
            }
            Access::Installation(g) => g.reaches_repo(org, repo),
            Access::Anonymous | Access::App { .. } => false,
        }
    }

    /// An App or installation (fine-grained permissions; "integration" in GitHub's words).
    pub fn is_integration(&self) -> bool {
        matches!(self, Access::App { .. } | Access::Installation(_))
    }

    /// May read this repository's metadata: anyone for public repositories.
    pub fn reads_repo(&self, org: &str, repo: &str, visibility: RepoVisibility) -> bool {
        visibility == RepoVisibility::Public || self.manages_repo(org, repo)
    }
}

/// The tokens an emulator accepts.
pub(crate) struct Tokens {
    by_token: HashMap<String, (u64, Arc<Access>)>,
    anonymous: Arc<Access>,
}

impl Tokens {
    pub fn new(specs: &[TokenSpec]) -> Self {
        let by_token = specs
            .iter()
            .enumerate()
            .map(|(i, s)| {
                (
                    s.token.clone(),
                    (i as u64 + 1, Arc::new(Access::from_spec(s))),
                )
            })
            .collect();
        Tokens {
            by_token,
            anonymous: Arc::new(Access::Anonymous),
        }
    }

    /// `Authorization: Bearer T` or `token T`. No header: anonymous. A header that names no
    /// known token: 401 `Bad credentials`.
    pub fn identify(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Ok(Caller {
                user_id: 0,
                key: "anonymous".into(),
                access: self.anonymous.clone(),
            });
        };
        let value = value
            .to_str()
            .map_err(|_| ApiError::unauthorized("Bad credentials"))?;
        let (scheme, token) = value.trim().split_once(' ').unwrap_or(("", ""));
        if !(scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token")) {
            return Err(ApiError::unauthorized("Bad credentials"));
        }
        match self.by_token.get(token.trim()) {
            Some((user_id, access)) => Ok(Caller {
                user_id: *user_id,
                key: format!("token:{user_id}"),
                access: access.clone(),
            }),
            None => Err(ApiError::unauthorized("Bad credentials")),
        }
    }
}

/// The identified caller of one request.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    /// 0 for anonymous callers.
    pub user_id: u64,
    /// The rate-limit bucket this caller draws from.
    pub key: String,
    pub access: Arc<Access>,
}

/// The REST API versions the emulator speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ApiVersion {
    V2022_11_28,
    V2026_03_10,
}

impl ApiVersion {
    pub const SUPPORTED: [&'static str; 2] = ["2022-11-28", "2026-03-10"];

    pub fn as_str(self) -> &'static str {
        match self {
            ApiVersion::V2022_11_28 => "2022-11-28",
            ApiVersion::V2026_03_10 => "2026-03-10",
        }
    }

    /// `X-GitHub-Api-Version`: absent means 2022-11-28; an unknown value is a 400.
    pub fn from_headers(headers: &HeaderMap) -> Result<Self, ApiError> {
        let Some(value) = headers.get("x-github-api-version") else {
            return Ok(ApiVersion::V2022_11_28);
        };
        match value.to_str().map(str::trim) {
            Ok("2022-11-28") => Ok(ApiVersion::V2022_11_28),
            Ok("2026-03-10") => Ok(ApiVersion::V2026_03_10),
            other => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!(
                    "Unsupported 'X-GitHub-Api-Version' header. The requested version '{}' is not supported. Supported versions are: {}.",
                    other.unwrap_or("<not text>"),
                    Self::SUPPORTED.join(", ")
                ),
            )),
        }
    }
}

/// GitHub refuses requests that carry no User-Agent.
pub(crate) fn require_user_agent(headers: &HeaderMap) -> Result<(), ApiError> {
    match headers.get(header::USER_AGENT) {
        Some(v) if !v.as_bytes().is_empty() => Ok(()),
        _ => Err(ApiError::forbidden(
            "Request forbidden by administrative rules. Please make sure your request has a User-Agent header (https://docs.github.com/rest/overview/resources-in-the-rest-api#user-agent-required). Check https://developer.github.com for other possible causes.",
        )),
    }
}

/// Where the request came in: used for URLs in bodies and in `Link` headers.
#[derive(Debug, Clone)]
pub(crate) struct BaseUrl {
    /// `http://host:port`, from the Host header (and `X-Forwarded-Proto` when present).
    pub origin: String,
    /// `/api/v3` when the request came in under that prefix, else empty.
    pub prefix: String,
    /// The request's full path (prefix included), without the query.
    pub path: String,
    /// The raw query string, if any.
    pub query: Option<String>,
}

impl BaseUrl {
    pub fn from_request(headers: &HeaderMap, uri: &axum::http::Uri) -> Self {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| uri.authority().map(|a| a.as_str()))
            .unwrap_or("localhost")
            .to_string();
        let scheme = headers
            .get("x-forwarded-proto")
            .and_then(|h| h.to_str().ok())
            .filter(|p| *p == "https" || *p == "http")
            .unwrap_or("http");
        let path = uri.path().to_string();
        let prefix = if path == API_V3 || path.starts_with(&format!("{API_V3}/")) {
            API_V3.to_string()
        } else {
            String::new()
        };
        BaseUrl {
            origin: format!("{scheme}://{host}"),
            prefix,
            path,
            query: uri.query().map(String::from),
        }
    }

    /// The API root, e.g. `http://127.0.0.1:8080` or `http://host/api/v3`.
    pub fn api(&self) -> String {
        format!("{}{}", self.origin, self.prefix)
    }
}

/// The path prefix GitHub Enterprise Server clients put before every API path.
pub(crate) const API_V3: &str = "/api/v3";

/// What a handler knows about the request beyond its path and body.
#[derive(Debug, Clone)]
pub(crate) struct ReqCtx {
    pub caller: Caller,
    pub version: ApiVersion,
    pub base: BaseUrl,
}

impl ReqCtx {
    pub fn access(&self) -> &Access {
        &self.caller.access
    }

    /// Secrets need a token: 401 `Requires authentication` otherwise.
    pub fn require_auth(&self) -> Result<(), ApiError> {
        if self.caller.access.is_authenticated() {
            Ok(())
        } else {
            Err(ApiError::unauthorized("Requires authentication"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn tokens() -> Tokens {
        Tokens::new(&[
            TokenSpec::all("t-all"),
            TokenSpec {
                token: "t-one".into(),
                orgs: vec![],
                repos: vec!["Acme/API".into()],
            },
        ])
    }

    fn with_auth(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(value).expect("header"),
        );
        h
    }

    #[test]
    fn bearer_and_token_schemes_are_accepted_and_others_are_bad_credentials() {
        let t = tokens();
        assert_eq!(
            *t.identify(&with_auth("Bearer t-all")).expect("ok").access,
            Access::All
        );
        assert_eq!(
            *t.identify(&with_auth("token t-all")).expect("ok").access,
            Access::All
        );
        let err = t.identify(&with_auth("Basic t-all")).expect_err("refused");
        assert_eq!(
            (err.status.as_u16(), err.message.as_str()),
            (401, "Bad credentials")
        );
        assert!(t.identify(&with_auth("Bearer nope")).is_err());
        assert!(!t
            .identify(&HeaderMap::new())
            .expect("anonymous")
            .access
            .is_authenticated());
    }

    #[test]
    fn a_limited_token_manages_only_its_repositories_case_insensitively() {
        let t = tokens();
        let caller = t.identify(&with_auth("Bearer t-one")).expect("ok");
        assert!(caller.access.manages_repo("acme", "api"));
        assert!(!caller.access.manages_repo("acme", "web"));
        assert!(!caller.access.manages_org("acme"));
        assert!(caller
            .access
            .reads_repo("acme", "web", RepoVisibility::Public));
        assert!(!caller
            .access
            .reads_repo("acme", "web", RepoVisibility::Private));
    }

    #[test]
    fn unknown_api_versions_are_refused_with_400() {
        let mut h = HeaderMap::new();
        h.insert(
            "x-github-api-version",
            HeaderValue::from_static("2023-01-01"),
        );
        assert_eq!(
            ApiVersion::from_headers(&h)
                .expect_err("refused")
                .status
                .as_u16(),
            400
        );
        h.insert(
            "x-github-api-version",
            HeaderValue::from_static("2026-03-10"),
        );
        assert_eq!(
            ApiVersion::from_headers(&h).expect("ok"),
            ApiVersion::V2026_03_10
        );
        assert_eq!(
            ApiVersion::from_headers(&HeaderMap::new()).expect("ok"),
            ApiVersion::V2022_11_28
        );
    }
}
