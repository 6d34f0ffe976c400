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
}

pub fn router(shared: Arc<Shared>) -> Router {
    let listener = Listener {
        shared,
        ready_cache: Mutex::new(None),
    };
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(Arc::new(listener))
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

async fn readiness(listener: &Listener) -> Readiness {
    let shared = &listener.shared;
    if let Some((at, r)) = listener
        .ready_cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
    {
        if at.elapsed() < CACHE_FOR {
            return r;
        }
    }
    let (policies, draining) = {
        let s = shared.status();
        (s.policies.len(), s.shutting_down)
    };
    let mut checks = BTreeMap::new();
    checks.insert(
        "policies",
        if draining {
            Check::failed("shutting down")
        } else {
            Check::ok(format!("{policies} loaded"))
        },
    );
    let vault = if !shared.needs_vault() {
        Check::ok("no policy needs Vault")
    } else if shared.ctx.sources.vault().is_none() {
        Check::failed("policies need Vault, and it is not configured")
    } else {
        let check = match tokio::time::timeout(CHECK_TIMEOUT, shared.ctx.sources.health()).await {
            Ok(Ok(())) => Check::ok("answers, unsealed, token accepted"),
            Ok(Err(e)) => Check::failed(e.to_string()),
            Err(_) => Check::failed(format!("no answer within {CHECK_TIMEOUT:?}")),
        };
        shared.status().set_vault_up(check.ok, Some(&check.message));
        check
    };
    checks.insert("vault", vault);
    let github = match tokio::time::timeout(CHECK_TIMEOUT, shared.ctx.github.rate_limit()).await {
        Ok(Ok(rl)) => Check::ok(format!("{} of {} requests left", rl.remaining, rl.limit)),
        Ok(Err(e)) => Check::failed(e.to_string()),
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
