//! Alerts: a JSON message POSTed to the operator's webhook when a policy's pass fails or
//! its targets stay unconverged past a threshold. The URL may carry a credential (chat
//! webhooks do): it is never logged.

use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use super::slots::AlertNeed;

/// Deadline of one delivery attempt.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts per alert.
const ATTEMPTS: u32 = 3;

/// The JSON body of an alert. `text` repeats the essentials in one line, for chat
/// webhooks that show only that field.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AlertMessage {
    pub source: &'static str,
    /// `rotation_failed` or `unconverged`.
    pub kind: &'static str,
    pub policy: String,
    pub owner: Option<String>,
    pub message: String,
    pub unconverged_targets: usize,
    pub since: Option<DateTime<Utc>>,
    pub time: DateTime<Utc>,
    pub text: String,
}

impl AlertMessage {
    pub fn new(need: &AlertNeed, owner: Option<String>, now: DateTime<Utc>) -> AlertMessage {
        let kind = need.kind.as_str();
        AlertMessage {
            source: "rotor",
            kind,
            policy: need.policy.clone(),
            owner,
            message: need.message.clone(),
            unconverged_targets: need.unconverged,
            since: need.since,
            time: now,
            text: format!("rotor: policy {} {kind}: {}", need.policy, need.message),
        }
    }
}

/// Sends alerts to one webhook.
pub struct Alerter {
    http: reqwest::Client,
    url: SecretString,
}

impl Alerter {
    pub fn new(url: SecretString) -> Result<Alerter, String> {
        reqwest::Url::parse(url.expose_secret())
            .map_err(|e| format!("--alert-webhook is not a URL: {e}"))?;
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .user_agent(concat!("rotor/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("alert client: {e}"))?;
        Ok(Alerter { http, url })
    }

    /// POSTs the message, retrying twice on a transport error or a 5xx.
    pub async fn send(&self, message: &AlertMessage) -> Result<(), String> {
        let mut last = String::new();
        for attempt in 1..=ATTEMPTS {
            match self
                .http
                .post(self.url.expose_secret())
                .json(message)
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => return Ok(()),
                Ok(r) if r.status().is_client_error() => {
                    return Err(format!("the webhook answered {}", r.status()))
                }
                Ok(r) => last = format!("the webhook answered {}", r.status()),
                // Without the URL: it may hold a credential.
                Err(e) => last = format!("the webhook could not be reached: {}", e.without_url()),
            }
            if attempt < ATTEMPTS {
                tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
            }
        }
        Err(last)
    }
}
