//! Webhook deliveries: what GitHub sends an App's (or an organization's) webhook when a
//! repository is created, archived or deleted, an installation gains or loses
//! repositories, or an App is installed or suspended. Each delivery is signed with the
//! configured secret (`X-Hub-Signature-256`), carries GitHub's headers, is POSTed in the
//! background, and is recorded (with the status the receiver answered) for tests; any
//! delivery can be sent again (`redeliver`, same GUID, as GitHub's "Redeliver" does).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::Value;
use sha2::Sha256;

/// Where deliveries go.
#[derive(Clone)]
struct Target {
    url: String,
    secret: Arc<str>,
    hook_id: u64,
}

/// One delivery as the emulator sent it.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    /// `X-GitHub-Delivery`.
    pub guid: String,
    /// `X-GitHub-Event` and the payload's `action`.
    pub event: String,
    pub action: Option<String>,
    /// `X-GitHub-Hook-ID`.
    pub hook_id: u64,
    /// What the receiver answered (`None` while in flight or when it could not be reached).
    pub status: Option<u16>,
    /// When it was queued, relative to the emulator's start, and how long the receiver took.
    pub queued_ms: u64,
    pub took_ms: Option<u64>,
    /// Sent again on request.
    pub redelivery: bool,
    #[serde(skip)]
    body: Arc<Vec<u8>>,
    #[serde(skip)]
    target_type: &'static str,
    #[serde(skip)]
    target_id: u64,
}

/// The webhook configuration and every delivery made.
pub(crate) struct Webhooks {
    target: RwLock<Option<Target>>,
    log: Arc<Mutex<Vec<Delivery>>>,
    http: reqwest::Client,
    seq: AtomicU64,
    started: Instant,
}

impl Default for Webhooks {
    fn default() -> Self {
        Webhooks {
            target: RwLock::new(None),
            log: Arc::default(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
            seq: AtomicU64::new(1),
            started: Instant::now(),
        }
    }
}

/// `sha256=` and the hex HMAC-SHA256 of `body` with `secret`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

impl Webhooks {
    pub fn configure(&self, url: &str, secret: &str) {
        *self.target.write().unwrap_or_else(|p| p.into_inner()) = Some(Target {
            url: url.to_string(),
            secret: Arc::from(secret),
            hook_id: 470_000_001,
        });
    }

    fn target(&self) -> Option<Target> {
        self.target
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Queues `payload` as event `event` (nothing happens without a configured target).
    pub fn send(&self, event: &str, payload: Value, target_type: &'static str, target_id: u64) {
        let Some(target) = self.target() else { return };
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let guid = format!(
            "{:08x}-0000-4000-8000-{:012x}",
            0x7e57_0000u32 + n as u32,
            n
        );
        let delivery = Delivery {
            guid,
            event: event.to_string(),
            action: payload
                .get("action")
                .and_then(Value::as_str)
                .map(str::to_string),
            hook_id: target.hook_id,
            status: None,
            queued_ms: self.started.elapsed().as_millis() as u64,
            took_ms: None,
            redelivery: false,
            body: Arc::new(serde_json::to_vec(&payload).unwrap_or_default()),
            target_type,
            target_id,
        };
        self.post(target, delivery);
    }

    /// Sends delivery `guid` again; `false` if there is none.
    pub fn redeliver(&self, guid: &str) -> bool {
        let Some(target) = self.target() else {
            return false;
        };
        let found = self
            .log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|d| d.guid == guid)
            .cloned();
        let Some(mut d) = found else { return false };
        d.redelivery = true;
        d.status = None;
        d.took_ms = None;
        d.queued_ms = self.started.elapsed().as_millis() as u64;
        self.post(target, d);
        true
    }

    fn post(&self, target: Target, delivery: Delivery) {
        let index = {
            let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
            log.push(delivery.clone());
            log.len() - 1
        };
        let log = Arc::clone(&self.log);
        let http = self.http.clone();
        let send = async move {
            let started = Instant::now();
            let mut request = http
                .post(&target.url)
                .header("content-type", "application/json")
                .header("user-agent", "GitHub-Hookshot/emulator")
                .header("x-github-event", &delivery.event)
                .header("x-github-delivery", &delivery.guid)
                .header("x-github-hook-id", target.hook_id.to_string())
                .header(
                    "x-github-hook-installation-target-type",
                    delivery.target_type,
                )
                .header(
                    "x-github-hook-installation-target-id",
                    delivery.target_id.to_string(),
                )
                .header(
                    "x-hub-signature-256",
                    signature(target.secret.as_bytes(), &delivery.body),
                );
            request = request.body(delivery.body.as_ref().clone());
            let status = request.send().await.ok().map(|r| r.status().as_u16());
            let mut log = log.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(d) = log.get_mut(index) {
                d.status = status;
                d.took_ms = Some(started.elapsed().as_millis() as u64);
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(h) => {
                h.spawn(send);
            }
            Err(_) => tracing_less_warn(),
        }
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Outside a Tokio runtime nothing can be sent; the delivery stays recorded, unsent.
fn tracing_less_warn() {
    eprintln!("github-emulator: a webhook delivery was queued outside a Tokio runtime; not sent");
}
