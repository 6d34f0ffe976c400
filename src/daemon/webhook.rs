//! `POST /webhooks/github`: GitHub's deliveries, checked before anything else (the
//! signature over the raw body, constant-time; the size; redeliveries), answered within
//! GitHub's 10 s by queueing the work for the loop. Every refusal is logged with the
//! delivery id and counted; nothing happens for it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::mpsc::UnboundedSender;

use super::inbox::Inbound;
use super::shared::Shared;
use crate::webhook::{verify, Dedupe, Event, Refusal, MAX_BODY};

/// How long a `(delivery, hook)` pair is remembered: a redelivery within it is answered
/// 2xx and not acted on twice.
pub const DEDUPE_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// The receiver's settings and memory.
pub struct Receiver {
    secret: SecretString,
    dedupe: Mutex<Dedupe>,
    inbox: UnboundedSender<Inbound>,
    shared: Arc<Shared>,
}

impl Receiver {
    pub fn new(secret: SecretString, inbox: UnboundedSender<Inbound>, shared: Arc<Shared>) -> Self {
        Receiver {
            secret,
            dedupe: Mutex::new(Dedupe::new(DEDUPE_WINDOW, 100_000)),
            inbox,
            shared,
        }
    }

    fn count(&self, event: &'static str, result: &'static str) {
        *self
            .shared
            .status()
            .webhooks
            .entry((event, result))
            .or_default() += 1;
    }
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// The event name as a metric label: the ones rotor acts on, else `other`.
fn event_label(event: &str) -> &'static str {
    match event {
        "ping" => "ping",
        "installation" => "installation",
        "installation_repositories" => "installation_repositories",
        "repository" => "repository",
        _ => "other",
    }
}

fn answer(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "message": message }))).into_response()
}

pub async fn receive(State(rx): State<Arc<Receiver>>, headers: HeaderMap, body: Body) -> Response {
    let received = Instant::now();
    let delivery = header(&headers, "x-github-delivery")
        .unwrap_or("-")
        .to_string();
    let event = header(&headers, "x-github-event").unwrap_or("").to_string();
    let label = event_label(&event);
    let refuse = |why: Refusal| {
        tracing::warn!(delivery = %delivery, event = %event, reason = why.as_str(), "webhook delivery refused");
        rx.count(label, why.as_str());
        let status = match why {
            Refusal::Unsigned | Refusal::Malformed => StatusCode::UNAUTHORIZED,
            Refusal::Mismatch | Refusal::TooLarge => StatusCode::FORBIDDEN,
        };
        answer(
            status,
            "the delivery's signature does not check out; nothing was done",
        )
    };
    // Read at most one byte more than GitHub ever sends.
    let bytes = match axum::body::to_bytes(body, MAX_BODY + 1).await {
        Ok(b) if b.len() <= MAX_BODY => b,
        _ => return refuse(Refusal::TooLarge),
    };
    if let Err(why) = verify(
        rx.secret.expose_secret().as_bytes(),
        &bytes,
        header(&headers, "x-hub-signature-256"),
    ) {
        return refuse(why);
    }
    let hook = header(&headers, "x-github-hook-id").unwrap_or("-");
    let first = rx
        .dedupe
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .first_time(&delivery, hook, received);
    if !first {
        tracing::info!(delivery = %delivery, event = %event, "webhook redelivery already handled; ignored");
        rx.count(label, "duplicate");
        return answer(StatusCode::OK, "already handled");
    }
    let parsed = serde_json::from_slice::<serde_json::Value>(&bytes)
        .map_err(|e| format!("the body is not JSON: {e}"))
        .and_then(|v| Event::parse(&event, &v));
    let parsed = match parsed {
        Ok(e) => e,
        Err(why) => {
            tracing::warn!(delivery = %delivery, event = %event, error = %why, "webhook delivery unreadable; ignored");
            rx.count(label, "invalid");
            return answer(StatusCode::BAD_REQUEST, &why);
        }
    };
    let work = parsed.work();
    let what = parsed.label();
    if work.is_empty() {
        tracing::info!(delivery = %delivery, event = %what, "webhook delivery needs nothing");
        rx.count(label, "ignored");
        return answer(StatusCode::OK, "nothing to do");
    }
    tracing::info!(delivery = %delivery, event = %what, repos = work.reconcile.len() + work.withdraw.len(), "webhook delivery queued");
    if rx
        .inbox
        .send(Inbound::Webhook {
            work,
            label: what,
            received,
        })
        .is_err()
    {
        rx.count(label, "shutting_down");
        return answer(
            StatusCode::SERVICE_UNAVAILABLE,
            "the daemon is shutting down",
        );
    }
    rx.count(label, "accepted");
    answer(StatusCode::ACCEPTED, "queued")
}
