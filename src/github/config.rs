//! Settings of the GitHub client: where the API is, how to authenticate, limits and timeouts.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;

use super::app::{AppConfig, AppKey};
use super::auth::Auth;
use super::governor::{self, GovernorSettings};
use super::retry::RetryPolicy;

/// The public GitHub API.
pub const DEFAULT_API_URL: &str = "https://api.github.com";
/// The REST API version rotor is written against.
pub const DEFAULT_API_VERSION: &str = "2022-11-28";

/// Settings of the GitHub client.
pub struct GitHubConfig {
    /// API base without a trailing slash: `https://api.github.com`, or a GitHub Enterprise
    /// Server's `https://HOST/api/v3`. Paths are appended to it as is.
    pub api_url: String,
    /// Bearer token (`GITHUB_TOKEN`, else `GH_TOKEN`); requests go unauthenticated without it.
    pub token: Option<SecretString>,
    /// GitHub App credentials (`GITHUB_APP_ID` or `GITHUB_APP_CLIENT_ID`, with
    /// `GITHUB_APP_PRIVATE_KEY_FILE`). When set, they are used instead of `token`.
    pub app: Option<AppConfig>,
    /// Deadline of one request, from connecting until its body has been read
    /// (`ROTOR_GITHUB_TIMEOUT`, default 30 s).
    pub timeout: Duration,
    /// `User-Agent` header; GitHub refuses requests without one.
    pub user_agent: String,
    /// `X-GitHub-Api-Version` header.
    pub api_version: String,
    /// Retries after the first attempt of a call.
    pub max_retries: u32,
    /// Longest single wait before a retry; a rate limit that asks for more is returned as
    /// an error instead.
    pub max_retry_wait: Duration,
    /// Most requests in flight at once (GitHub's secondary limit is 100 concurrent).
    pub max_concurrency: usize,
    /// Which budget the governor keeps to: GitHub's published limits (default), or none
    /// (GitHub Enterprise Server, where rate limits are off unless an admin turns them on).
    /// `ROTOR_GITHUB_LIMITS=github|off`.
    pub limits: Limits,
    /// Points per minute (GET 1, writes 5) instead of the default of `limits` (GitHub: 900,
    /// off: none); 0 turns the points budget off. `ROTOR_POINTS_PER_MINUTE`.
    pub points_per_minute: Option<u64>,
    /// Least time between two writes; zero (the default) for none. `ROTOR_MIN_WRITE_GAP`.
    pub min_write_gap: Duration,
    /// Divides GitHub's windows: 1 against GitHub; 60 against an emulator whose limits are
    /// time-scaled the same way (benchmarks). `ROTOR_TIME_SCALE`.
    pub time_scale: u32,
    /// A file where repository listings and their ETags are kept between runs, so that an
    /// unchanged listing costs a `304 Not Modified` (free of the primary budget) per page.
    pub listing_cache: Option<PathBuf>,
}

/// Which rate limits the governor keeps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Limits {
    /// GitHub's published limits: 900 points a minute, the `x-ratelimit-*` budget.
    #[default]
    GitHub,
    /// No points budget and no primary pacing; the concurrency bound, `retry-after` and
    /// retries stay.
    Off,
}

impl std::str::FromStr for Limits {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "github" | "on" => Ok(Limits::GitHub),
            "off" | "none" => Ok(Limits::Off),
            other => Err(format!("{other:?} is not github or off")),
        }
    }
}

/// A setting of the GitHub client is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("GITHUB_API_URL {url:?} is not a usable API base URL: {reason}")]
    ApiUrl { url: String, reason: String },
    #[error(transparent)]
    Token(#[from] super::auth::InvalidToken),
    #[error(transparent)]
    AppKey(#[from] super::app::AppKeyError),
    #[error("{0}")]
    AppSettings(String),
    #[error("the HTTP client could not be built: {0}")]
    Http(String),
    #[error("{name}: {reason}")]
    Setting { name: &'static str, reason: String },
}

impl Default for GitHubConfig {
    fn default() -> Self {
        let retry = RetryPolicy::default();
        GitHubConfig {
            api_url: DEFAULT_API_URL.to_string(),
            token: None,
            app: None,
            timeout: Duration::from_secs(30),
            user_agent: concat!("rotor/", env!("CARGO_PKG_VERSION")).to_string(),
            api_version: DEFAULT_API_VERSION.to_string(),
            max_retries: retry.max_retries,
            max_retry_wait: retry.max_wait,
            max_concurrency: 100,
            limits: Limits::GitHub,
            points_per_minute: None,
            min_write_gap: Duration::ZERO,
            time_scale: 1,
            listing_cache: None,
        }
    }
}

impl GitHubConfig {
    /// Defaults plus the environment: `GITHUB_API_URL`, then `GITHUB_TOKEN` else `GH_TOKEN`.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// Like [`GitHubConfig::from_env`], reading variables through `var` (tests pass a map).
    /// An empty variable counts as unset.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let set = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let mut config = GitHubConfig::default();
        if let Some(url) = set("GITHUB_API_URL") {
            config.api_url = normalize_api_url(&url)?;
        }
        config.token = set("GITHUB_TOKEN")
            .or_else(|| set("GH_TOKEN"))
            .map(SecretString::from);
        let bad = |name: &'static str| move |reason: String| ConfigError::Setting { name, reason };
        if let Some(v) = set("ROTOR_GITHUB_LIMITS") {
            config.limits = v.parse().map_err(bad("ROTOR_GITHUB_LIMITS"))?;
        }
        if let Some(v) = set("ROTOR_POINTS_PER_MINUTE") {
            config.points_per_minute =
                Some(v.trim().parse().map_err(|_| {
                    bad("ROTOR_POINTS_PER_MINUTE")(format!("{v:?} is not a number"))
                })?);
        }
        if let Some(v) = set("ROTOR_MIN_WRITE_GAP") {
            config.min_write_gap = governor::parse_gap(&v).map_err(bad("ROTOR_MIN_WRITE_GAP"))?;
        }
        if let Some(v) = set("ROTOR_GITHUB_TIMEOUT") {
            config.timeout = governor::parse_gap(&v)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    bad("ROTOR_GITHUB_TIMEOUT")(format!("{v:?} is not a duration like 30s"))
                })?;
        }
        if let Some(v) = set("ROTOR_TIME_SCALE") {
            config.time_scale = v
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| {
                    bad("ROTOR_TIME_SCALE")(format!("{v:?} is not a whole number >= 1"))
                })?;
        }
        let issuer = set("GITHUB_APP_CLIENT_ID").or_else(|| set("GITHUB_APP_ID"));
        let key_file = set("GITHUB_APP_PRIVATE_KEY_FILE");
        config.app = match (issuer, key_file) {
            (Some(issuer), Some(file)) => Some(AppConfig {
                issuer: issuer.trim().to_string(),
                key: AppKey::File(file.into()),
            }),
            (None, None) => None,
            (Some(_), None) => {
                return Err(ConfigError::AppSettings(
                    "GITHUB_APP_ID is set but GITHUB_APP_PRIVATE_KEY_FILE is not: App auth needs the App's private key".into(),
                ))
            }
            (None, Some(_)) => {
                return Err(ConfigError::AppSettings(
                    "GITHUB_APP_PRIVATE_KEY_FILE is set but neither GITHUB_APP_ID nor GITHUB_APP_CLIENT_ID is".into(),
                ))
            }
        };
        Ok(config)
    }

    /// What the governor keeps to under these settings.
    pub fn governor_settings(&self) -> GovernorSettings {
        let default_points = match self.limits {
            Limits::GitHub => Some(governor::GITHUB_POINTS_PER_MINUTE),
            Limits::Off => None,
        };
        GovernorSettings {
            max_concurrency: self.max_concurrency.max(1),
            points_per_minute: self.points_per_minute.or(default_points).filter(|p| *p > 0),
            min_write_gap: self.min_write_gap,
            follow_primary: self.limits == Limits::GitHub,
            time_scale: self.time_scale.max(1),
        }
    }

    /// The credential the token stands for.
    pub fn auth(&self) -> Option<Auth> {
        self.token.clone().map(Auth::Token)
    }

    /// The retry policy these settings describe.
    pub fn retry_policy(&self) -> RetryPolicy {
        let default = RetryPolicy::default();
        RetryPolicy {
            max_retries: self.max_retries,
            max_wait: self.max_retry_wait,
            // The minute GitHub asks for after an unexplained secondary limit, time-scaled.
            secondary_min: default.secondary_min / self.time_scale.max(1),
            ..default
        }
    }
}

/// Checks an API base URL and trims its trailing slashes.
pub fn normalize_api_url(url: &str) -> Result<String, ConfigError> {
    let bad = |reason: &str| ConfigError::ApiUrl {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let trimmed = url.trim().trim_end_matches('/');
    let parsed = reqwest::Url::parse(trimmed).map_err(|e| bad(&e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad("the scheme must be https (or http)"));
    }
    if parsed.host_str().is_none() {
        return Err(bad("it has no host"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(bad("it must not carry a query or fragment"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        // Report the URL without the credentials it carries.
        let mut shown = parsed.clone();
        let _ = shown.set_username("");
        let _ = shown.set_password(None);
        return Err(ConfigError::ApiUrl {
            url: shown.to_string(),
            reason: "credentials belong in GITHUB_TOKEN, not in the URL".to_string(),
        });
    }
    Ok(trimmed.to_string())
}

impl std::fmt::Debug for GitHubConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHubConfig")
            .field("api_url", &self.api_url)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("app", &self.app)
            .field("timeout", &self.timeout)
            .field("user_agent", &self.user_agent)
            .field("api_version", &self.api_version)
            .field("max_retries", &self.max_retries)
            .field("max_retry_wait", &self.max_retry_wait)
            .field("max_concurrency", &self.max_concurrency)
            .field("limits", &self.limits)
            .field("points_per_minute", &self.points_per_minute)
            .field("min_write_gap", &self.min_write_gap)
            .field("time_scale", &self.time_scale)
            .field("listing_cache", &self.listing_cache)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use std::collections::HashMap;

    fn from(vars: &[(&str, &str)]) -> Result<GitHubConfig, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        GitHubConfig::from_vars(|k| map.get(k).cloned())
    }

    fn token(c: &GitHubConfig) -> Option<&str> {
        c.token.as_ref().map(|t| t.expose_secret())
    }

    #[test]
    fn defaults_match_the_public_api() {
        let c = from(&[]).unwrap();
        assert_eq!(c.api_url, "https://api.github.com");
        assert_eq!(token(&c), None);
        assert_eq!(c.timeout, Duration::from_secs(30));
        assert_eq!(c.api_version, "2022-11-28");
        assert_eq!(c.user_agent, format!("rotor/{}", env!("CARGO_PKG_VERSION")));
        assert_eq!((c.max_retries, c.max_concurrency), (5, 100));
        assert_eq!(c.max_retry_wait, Duration::from_secs(900));
    }

    #[test]
    fn github_token_takes_precedence_over_gh_token() {
        let both = from(&[
            ("GITHUB_TOKEN", "from-github-token"),
            ("GH_TOKEN", "from-gh-token"),
        ])
        .unwrap();
        assert_eq!(token(&both), Some("from-github-token"));
        let gh_only = from(&[("GH_TOKEN", "from-gh-token")]).unwrap();
        assert_eq!(token(&gh_only), Some("from-gh-token"));
        let empty_github = from(&[("GITHUB_TOKEN", ""), ("GH_TOKEN", "from-gh-token")]).unwrap();
        assert_eq!(token(&empty_github), Some("from-gh-token"));
    }

    #[test]
    fn an_enterprise_server_url_keeps_its_path_and_loses_the_trailing_slash() {
        let c = from(&[("GITHUB_API_URL", "https://ghe.example.com/api/v3/")]).unwrap();
        assert_eq!(c.api_url, "https://ghe.example.com/api/v3");
        let c = from(&[("GITHUB_API_URL", "https://api.github.com/")]).unwrap();
        assert_eq!(c.api_url, "https://api.github.com");
    }

    #[test]
    fn unusable_api_urls_are_refused() {
        for url in [
            "api.github.com",
            "ftp://x.example",
            "https://x.example/api?x=1",
            "https://u:p@x.example",
        ] {
            let err = from(&[("GITHUB_API_URL", url)]).unwrap_err();
            assert!(matches!(err, ConfigError::ApiUrl { .. }), "{url}: {err}");
        }
        let err =
            from(&[("GITHUB_API_URL", "https://someone:hunter2@x.example/api/v3")]).unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn governor_settings_follow_the_limits_and_their_overrides() {
        let c = from(&[]).unwrap();
        let g = c.governor_settings();
        assert_eq!(
            (g.points_per_minute, g.follow_primary, g.max_concurrency),
            (Some(900), true, 100)
        );
        let off = from(&[("ROTOR_GITHUB_LIMITS", "off")])
            .unwrap()
            .governor_settings();
        assert_eq!((off.points_per_minute, off.follow_primary), (None, false));
        let custom = from(&[
            ("ROTOR_GITHUB_LIMITS", "off"),
            ("ROTOR_POINTS_PER_MINUTE", "2000"),
            ("ROTOR_MIN_WRITE_GAP", "750ms"),
            ("ROTOR_TIME_SCALE", "60"),
        ])
        .unwrap();
        let g = custom.governor_settings();
        assert_eq!(g.points_per_minute, Some(2000));
        assert_eq!(g.min_write_gap, Duration::from_millis(750));
        assert_eq!(g.points_window(), Duration::from_secs(1));
        assert_eq!(custom.retry_policy().secondary_min, Duration::from_secs(1));
        let slow = from(&[("ROTOR_GITHUB_TIMEOUT", "1s")]).unwrap();
        assert_eq!(slow.timeout, Duration::from_secs(1));
        let none = from(&[("ROTOR_POINTS_PER_MINUTE", "0")])
            .unwrap()
            .governor_settings();
        assert_eq!(none.points_per_minute, None);
        for (k, v) in [
            ("ROTOR_GITHUB_LIMITS", "sometimes"),
            ("ROTOR_POINTS_PER_MINUTE", "lots"),
            ("ROTOR_MIN_WRITE_GAP", "1h"),
            ("ROTOR_TIME_SCALE", "0"),
            ("ROTOR_GITHUB_TIMEOUT", "0"),
        ] {
            let err = from(&[(k, v)]).unwrap_err();
            assert!(err.to_string().starts_with(k), "{err}");
        }
    }

    #[test]
    fn app_settings_come_in_pairs_and_the_client_id_wins_over_the_app_id() {
        let c = from(&[
            ("GITHUB_APP_ID", "123"),
            ("GITHUB_APP_CLIENT_ID", "Iv23liABC"),
            ("GITHUB_APP_PRIVATE_KEY_FILE", "/keys/app.pem"),
        ])
        .unwrap();
        let app = c.app.expect("app settings");
        assert_eq!(app.issuer, "Iv23liABC");
        assert!(matches!(app.key, AppKey::File(ref p) if p.to_str() == Some("/keys/app.pem")));
        let c = from(&[
            ("GITHUB_APP_ID", "123"),
            ("GITHUB_APP_PRIVATE_KEY_FILE", "k.pem"),
        ])
        .unwrap();
        assert_eq!(c.app.expect("app").issuer, "123");
        assert!(matches!(
            from(&[("GITHUB_APP_ID", "123")]),
            Err(ConfigError::AppSettings(_))
        ));
        assert!(matches!(
            from(&[("GITHUB_APP_PRIVATE_KEY_FILE", "k.pem")]),
            Err(ConfigError::AppSettings(_))
        ));
        assert!(from(&[]).unwrap().app.is_none());
    }

    #[test]
    fn debug_redacts_the_token() {
        let c = from(&[("GITHUB_TOKEN", "ghp_SuperSecretToken")]).unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("ghp_SuperSecretToken"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }
}
