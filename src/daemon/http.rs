//! The HTTP listener: `/healthz` (the process answers), `/readyz` (policies loaded, Vault
//! and GitHub reachable) and `/metrics` (Prometheus text).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use super::metrics::{self, Extra};
use super::shared::Shared;

/// Deadline of each readiness check.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a readiness answer is reused (probes come often; GitHub and Vault need not
/// hear from each one).
const CACHE_FOR: Duration = Duration::from_secs(2);

/// What the handlers see: the daemon's shared state, and the last readiness answer.
struct Listener {
    shared: Arc<Shared>,
    ready_cache: Mutex<Option<(Instant, Readiness)>>,
    /// Held while the checks run: probes that arrive meanwhile wait for that answer
    /// instead of asking Vault and GitHub again.
    refreshing: tokio::sync::Mutex<()>,
}

/// What the listener serves besides the probes and metrics.
pub struct Routes {
    /// `GITHUB_WEBHOOK_SECRET(_FILE)`: `POST /webhooks/github` is on only with one.
    pub webhook_secret: Option<secrecy::SecretString>,
    /// `ROTOR_API_TOKEN_FILE`: the control API (`/v1/...`) is on only with one.
    pub api_token: Option<secrecy::SecretString>,
    /// Where the webhook receiver and the API hand work to the loop.
    pub inbox: tokio::sync::mpsc::UnboundedSender<super::inbox::Inbound>,
}

pub fn router(shared: Arc<Shared>, routes: Routes) -> Router {
    let listener = Listener {
        shared: Arc::clone(&shared),
        ready_cache: Mutex::new(None),
        refreshing: tokio::sync::Mutex::new(()),
    };
    let mut router = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(Arc::new(listener));
    if let Some(secret) = routes.webhook_secret {
        let receiver =
            super::webhook::Receiver::new(secret, routes.inbox.clone(), Arc::clone(&shared));
        router = router.merge(
            Router::new()
                .route(
                    "/webhooks/github",
                    axum::routing::post(super::webhook::receive),
                )
                // The receiver reads the body itself, up to GitHub's 25 MB.
                .layer(axum::extract::DefaultBodyLimit::disable())
                .with_state(Arc::new(receiver)),
        );
    }
    if let Some(token) = routes.api_token {
        router = router.merge(super::api::router(shared, token, routes.inbox));
    }
    router
}

async fn healthz() -> Response {
    Json(serde_json::json!({ "status": "ok" })).into_response()
}

async fn metrics_text(State(listener): State<Arc<Listener>>) -> Response {
    let shared = &listener.shared;
    let rate_limit = shared.ctx.github.last_rate_limit();
    let extra = Extra {
        rate_limit: rate_limit.as_ref(),
        vault_logins: shared.ctx.sources.vault().map(|v| v.logins()),
    };
    let text = metrics::render(&shared.status(), &extra);
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response()
}

async fn readyz(State(listener): State<Arc<Listener>>) -> Response {
    let r = readiness(&listener).await;
    let code = if r.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(r)).into_response()
}

/// The answer of `/readyz`.
#[derive(Debug, Clone, Serialize)]
pub struct Readiness {
    pub ready: bool,
    pub checks: BTreeMap<&'static str, Check>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub ok: bool,
    pub message: String,
}

impl Check {
    fn ok(message: impl Into<String>) -> Check {
        Check {
            ok: true,
            message: message.into(),
        }
    }

    fn failed(message: impl Into<String>) -> Check {
        Check {
            ok: false,
            message: message.into(),
        }
    }
}

/// The last answer while it is fresh.
fn cached(listener: &Listener) -> Option<Readiness> {
    let cache = listener
        .ready_cache
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    cache
        .as_ref()
        .filter(|(at, _)| at.elapsed() < CACHE_FOR)
        .map(|(_, r)| r.clone())
}

/// What a failed Vault check says on `/readyz`: the kind of failure, never Vault's own
/// text (the listener may be reachable by more people than Vault's logs). The whole error
/// goes to the log.
fn vault_failure(e: &crate::source::SourceError) -> String {
    use crate::source::SourceError;
    tracing::warn!(error = %e, "readiness: the Vault check failed");
    match e {
        SourceError::Vault {
            status: Some(403), ..
        } => "Vault refused rotor's token".to_string(),
        SourceError::Vault {
            status: Some(503), ..
        } => "Vault is sealed or unavailable".to_string(),
        SourceError::Vault {
            status: Some(501), ..
        } => "Vault is not initialized".to_string(),
        SourceError::Vault {
            status: Some(code), ..
        } => format!("Vault answered HTTP {code}"),
        SourceError::Vault { status: None, .. } => "Vault did not answer".to_string(),
        SourceError::InvalidConfig { setting, .. } => format!("the {setting} setting is unusable"),
        _ => "the Vault check failed".to_string(),
    }
}

/// The same for GitHub.
fn github_failure(e: &crate::github::GitHubError) -> String {
    use crate::github::ErrorKind;
    tracing::warn!(error = %e, "readiness: the GitHub check failed");
    match (&e.kind, e.status) {
        (ErrorKind::Unauthorized, _) => "GitHub refused rotor's credential".to_string(),
        (ErrorKind::RateLimited { .. }, _) => "GitHub's rate limit is spent".to_string(),
        (ErrorKind::Transport | ErrorKind::Timeout, _) => "GitHub did not answer".to_string(),
        (_, Some(code)) => format!("GitHub answered HTTP {code}"),
        _ => "the GitHub check failed".to_string(),
    }
}

/// `/readyz`: the daemon's own state, read fresh each time, and Vault's and GitHub's
/// checks, shared by the probes of `CACHE_FOR` (at most one check of each at a time).
async fn readiness(listener: &Listener) -> Readiness {
    let mut checks = upstream(listener).await.checks;
    let (policies, draining, panicked) = {
        let s = listener.shared.status();
        let panicked: Vec<String> = s
            .policies
            .iter()
            .filter(|(_, p)| p.last_pass_panicked)
            .map(|(n, _)| n.clone())
            .collect();
        (s.policies.len(), s.shutting_down, panicked)
    };
    checks.insert(
        "policies",
        if draining {
            Check::failed("shutting down")
        } else {
            Check::ok(format!("{policies} loaded"))
        },
    );
    checks.insert(
        "passes",
        if panicked.is_empty() {
            Check::ok("no pass panicked")
        } else {
            Check::failed(format!(
                "the last pass of {} panicked (a bug in rotor; see the log); retried with backoff",
                panicked.join(", ")
            ))
        },
    );
    Readiness {
        ready: checks.values().all(|c| c.ok),
        checks,
    }
}

/// Vault's and GitHub's checks, from the cache while it is fresh. Probes arriving while
/// they run wait for that answer instead of asking again.
async fn upstream(listener: &Listener) -> Readiness {
    if let Some(r) = cached(listener) {
        return r;
    }
    let _refreshing = listener.refreshing.lock().await;
    // Another probe may have refreshed the answer while this one waited.
    if let Some(r) = cached(listener) {
        return r;
    }
    let shared = &listener.shared;
    let mut checks = BTreeMap::new();
    let vault = if !shared.needs_vault() {
        Check::ok("no policy needs Vault")
    } else if shared.ctx.sources.vault().is_none() {
        Check::failed("policies need Vault, and it is not configured")
    } else {
        let check = match tokio::time::timeout(CHECK_TIMEOUT, shared.ctx.sources.health()).await {
            Ok(Ok(())) => Check::ok("answers, unsealed, token accepted"),
            Ok(Err(e)) => Check::failed(vault_failure(&e)),
            Err(_) => Check::failed(format!("no answer within {CHECK_TIMEOUT:?}")),
        };
        shared.status().set_vault_up(check.ok, Some(&check.message));
        check
    };
    checks.insert("vault", vault);
    let github = match tokio::time::timeout(CHECK_TIMEOUT, shared.ctx.github.rate_limit()).await {
        Ok(Ok(rl)) => Check::ok(format!("{} of {} requests left", rl.remaining, rl.limit)),
        Ok(Err(e)) => Check::failed(github_failure(&e)),
        Err(_) => Check::failed(format!("no answer within {CHECK_TIMEOUT:?}")),
    };
    checks.insert("github", github);
    let r = Readiness {
        ready: checks.values().all(|c| c.ok),
        checks,
    };
    *listener
        .ready_cache
        .lock()
        .unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), r.clone()));
    r
}
