//! The control API on the daemon's listener, on only with `ROTOR_API_TOKEN_FILE`: every
//! request carries `Authorization: Bearer TOKEN`, compared in constant time.
//!
//! - `POST /v1/policies/{name}/rotate`: rotate the policy now (as `rotor rotate NAME`),
//!   answering with its report once the pass is done;
//! - `POST /v1/policies/{name}/apply`: run its pass now (as `rotor apply --policy NAME`);
//! - `GET /v1/status`: the rows of `rotor status --output json`, plus each policy's daemon
//!   state and each GitHub identity's budget (one per App installation);
//! - `GET /v1/plan`: what a pass of every policy would do now (`rotor plan --output json`).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use subtle::ConstantTimeEq;
use tokio::sync::mpsc::UnboundedSender;

use super::inbox::{Inbound, RunAnswer};
use super::shared::Shared;

/// How long `rotate` and `apply` wait for their pass before answering 504 (the pass goes on).
pub const RUN_TIMEOUT: Duration = Duration::from_secs(30 * 60);

struct Api {
    shared: Arc<Shared>,
    token: SecretString,
    inbox: UnboundedSender<Inbound>,
}

pub fn router(shared: Arc<Shared>, token: SecretString, inbox: UnboundedSender<Inbound>) -> Router {
    let api = Arc::new(Api {
        shared,
        token,
        inbox,
    });
    Router::new()
        .route("/v1/policies/{name}/rotate", post(rotate))
        .route("/v1/policies/{name}/apply", post(apply))
        .route("/v1/status", get(status))
        .route("/v1/plan", get(plan))
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(&api),
            bearer,
        ))
        .with_state(api)
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "message": message }))).into_response()
}

/// Refuses a request without the API token (401, `WWW-Authenticate: Bearer`).
async fn bearer(State(api): State<Arc<Api>>, req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let want = api.token.expose_secret().as_bytes();
    let ok = !want.is_empty() && bool::from(given.as_bytes().ct_eq(want));
    if !ok {
        tracing::warn!(path = %req.uri().path(), "control API request refused: missing or wrong token");
        let mut r = error(StatusCode::UNAUTHORIZED, "a valid API token is required");
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
        return r;
    }
    next.run(req).await
}

async fn rotate(State(api): State<Arc<Api>>, Path(name): Path<String>) -> Response {
    run(&api, name, true).await
}

async fn apply(State(api): State<Arc<Api>>, Path(name): Path<String>) -> Response {
    run(&api, name, false).await
}

async fn run(api: &Api, policy: String, force: bool) -> Response {
    let (reply, answer) = tokio::sync::oneshot::channel();
    if api
        .inbox
        .send(Inbound::Run {
            policy: policy.clone(),
            force,
            reply,
        })
        .is_err()
    {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the daemon is shutting down",
        );
    }
    match tokio::time::timeout(RUN_TIMEOUT, answer).await {
        Ok(Ok(RunAnswer::Done { converged, report })) => (
            StatusCode::OK,
            Json(json!({ "policy": policy, "converged": converged, "report": report })),
        )
            .into_response(),
        Ok(Ok(RunAnswer::Unknown)) => error(
            StatusCode::NOT_FOUND,
            &format!("no policy named {policy} is loaded"),
        ),
        Ok(Ok(RunAnswer::ShuttingDown)) | Ok(Err(_)) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the daemon is shutting down",
        ),
        Err(_) => error(
            StatusCode::GATEWAY_TIMEOUT,
            "the pass is still running; see GET /v1/status",
        ),
    }
}

async fn status(State(api): State<Arc<Api>>) -> Response {
    let set = api.shared.policies();
    let rows = {
        let ledger = api
            .shared
            .ctx
            .ledger
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        crate::ledger::status_rows(ledger.state(), Some(&set))
    };
    let daemon: serde_json::Map<String, serde_json::Value> = api
        .shared
        .status()
        .policies
        .iter()
        .map(|(name, p)| {
            (
                name.clone(),
                json!({
                    "in_flight": p.in_flight,
                    "next_due": p.next_due,
                    "last_success": p.last_success,
                    "unconverged": p.unconverged,
                    "last_error": p.last_error,
                    "passes_converged": p.passes_converged,
                    "passes_unconverged": p.passes_unconverged,
                }),
            )
        })
        .collect();
    Json(json!({
        "policies": rows,
        "daemon": daemon,
        "github": api.shared.ctx.github.identities(),
    }))
    .into_response()
}

async fn plan(State(api): State<Arc<Api>>) -> Response {
    let (reply, answer) = tokio::sync::oneshot::channel();
    if api.inbox.send(Inbound::Plan { reply }).is_err() {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the daemon is shutting down",
        );
    }
    match tokio::time::timeout(RUN_TIMEOUT, answer).await {
        Ok(Ok(plan)) => Json(plan).into_response(),
        Ok(Err(_)) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the daemon is shutting down",
        ),
        Err(_) => error(StatusCode::GATEWAY_TIMEOUT, "planning took too long"),
    }
}
