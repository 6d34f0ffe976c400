//! `/metrics` in the Prometheus text exposition format (version 0.0.4), written by hand:
//! a few counters and gauges per policy, GitHub's rate limit and Vault's state.

use std::collections::BTreeMap;
use std::fmt::Write;

use chrono::{DateTime, Utc};

use super::status::{PolicyStatus, Status};
use crate::github::RateLimitSnapshot;

/// The content type Prometheus expects for this format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Everything `/metrics` shows, besides the status.
pub struct Extra<'a> {
    pub rate_limit: Option<&'a RateLimitSnapshot>,
    /// AppRole logins so far, when Vault is configured.
    pub vault_logins: Option<u64>,
}

/// Renders the status as Prometheus text.
pub fn render(status: &Status, extra: &Extra<'_>) -> String {
    let mut m = Metrics::default();
    m.family("rotor_build_info", "gauge", "The running rotor version.");
    m.sample(
        "rotor_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1.0,
    );
    m.family("rotor_policies", "gauge", "Policies loaded.");
    m.sample("rotor_policies", &[], status.policies.len() as f64);

    let policies = &status.policies;
    m.per_policy(
        policies,
        "rotor_rotations_total",
        "counter",
        "Rotations (new source versions) by policy and result.",
        |p| {
            vec![
                (Some(("result", "success")), Some(p.rotations_ok as f64)),
                (Some(("result", "failure")), Some(p.rotations_failed as f64)),
            ]
        },
    );
    m.per_policy(
        policies,
        "rotor_pushes_total",
        "counter",
        "Secret pushes to targets by policy and result.",
        |p| {
            vec![
                (Some(("result", "created")), Some(p.pushes_created as f64)),
                (Some(("result", "updated")), Some(p.pushes_updated as f64)),
                (Some(("result", "failed")), Some(p.pushes_failed as f64)),
            ]
        },
    );
    m.per_policy(
        policies,
        "rotor_verification_runs_total",
        "counter",
        "Verification runs (verify) by policy and result.",
        |p| {
            vec![
                (Some(("result", "success")), Some(p.verifications_ok as f64)),
                (
                    Some(("result", "failure")),
                    Some(p.verifications_failed as f64),
                ),
            ]
        },
    );
    m.per_policy(
        policies,
        "rotor_transactions_failed_total",
        "counter",
        "Transactions that failed verification, by policy and what followed (rolled_back, halted).",
        |p| {
            vec![
                (Some(("outcome", "rolled_back")), Some(p.rollbacks as f64)),
                (Some(("outcome", "halted")), Some(p.halts as f64)),
            ]
        },
    );
    m.family(
        "rotor_transaction_state",
        "gauge",
        "1 for the state each policy's last transaction reached (the ledger's record until this daemon's own passes).",
    );
    for (policy, p) in policies {
        if let Some(state) = &p.txn_state {
            m.sample(
                "rotor_transaction_state",
                &[("policy", policy), ("state", state)],
                1.0,
            );
        }
    }
    m.per_policy(
        policies,
        "rotor_passes_total",
        "counter",
        "Passes (observe, plan, apply) by policy and whether every target converged (or the pass panicked).",
        |p| {
            vec![
                (
                    Some(("result", "converged")),
                    Some(p.passes_converged as f64),
                ),
                (
                    Some(("result", "unconverged")),
                    Some(p.passes_unconverged as f64),
                ),
                (Some(("result", "panicked")), Some(p.passes_panicked as f64)),
            ]
        },
    );
    m.per_policy(
        policies,
        "rotor_last_success_timestamp_seconds",
        "gauge",
        "When a pass last left every target of the policy converged (Unix time).",
        |p| vec![(None, p.last_success.map(seconds))],
    );
    m.per_policy(
        policies,
        "rotor_next_due_timestamp_seconds",
        "gauge",
        "When the policy next rotates on its cadence (Unix time).",
        |p| vec![(None, p.next_due.map(seconds))],
    );
    m.per_policy(
        policies,
        "rotor_unconverged_targets",
        "gauge",
        "Targets (secrets) behind the source's current version after the last pass.",
        |p| vec![(None, Some(p.unconverged as f64))],
    );
    m.per_policy(
        policies,
        "rotor_source_version",
        "gauge",
        "The source version the targets were last brought to.",
        |p| vec![(None, p.version.map(|v| v as f64))],
    );
    m.per_policy(
        policies,
        "rotor_pass_in_progress",
        "gauge",
        "1 while a pass for the policy runs.",
        |p| vec![(None, Some(f64::from(u8::from(p.in_flight))))],
    );

    if let Some(rl) = extra.rate_limit {
        let resource = rl.resource.as_deref().unwrap_or("core");
        m.family(
            "rotor_github_rate_limit_remaining",
            "gauge",
            "Requests left in GitHub's rate-limit window, as last reported.",
        );
        m.sample(
            "rotor_github_rate_limit_remaining",
            &[("resource", resource)],
            rl.remaining as f64,
        );
        m.family(
            "rotor_github_rate_limit_limit",
            "gauge",
            "Requests allowed per GitHub rate-limit window, as last reported.",
        );
        m.sample(
            "rotor_github_rate_limit_limit",
            &[("resource", resource)],
            rl.limit as f64,
        );
        m.family(
            "rotor_github_rate_limit_reset_timestamp_seconds",
            "gauge",
            "When GitHub's rate-limit window resets (Unix time).",
        );
        m.sample(
            "rotor_github_rate_limit_reset_timestamp_seconds",
            &[("resource", resource)],
            seconds(rl.reset),
        );
    }
    if let Some(up) = status.vault_up {
        m.family(
            "rotor_vault_up",
            "gauge",
            "1 when Vault answered the daemon's last request, 0 when it did not.",
        );
        m.sample("rotor_vault_up", &[], f64::from(u8::from(up)));
    }
    if let Some(logins) = extra.vault_logins {
        m.family(
            "rotor_vault_logins_total",
            "counter",
            "Vault AppRole logins.",
        );
        m.sample("rotor_vault_logins_total", &[], logins as f64);
    }
    if let Some(ttl) = status.vault_token_ttl {
        m.family(
            "rotor_vault_token_ttl_seconds",
            "gauge",
            "Time left on the Vault token at the last check.",
        );
        m.sample("rotor_vault_token_ttl_seconds", &[], ttl.as_secs_f64());
    }
    m.family(
        "rotor_reloads_total",
        "counter",
        "Policy reloads (SIGHUP) by result; a failed reload keeps the previous policies.",
    );
    m.sample(
        "rotor_reloads_total",
        &[("result", "success")],
        status.reloads_ok as f64,
    );
    m.sample(
        "rotor_reloads_total",
        &[("result", "failure")],
        status.reloads_failed as f64,
    );
    m.family(
        "rotor_alerts_total",
        "counter",
        "Alert webhook deliveries by kind and result.",
    );
    for kind in ["rotation_failed", "unconverged", "transaction_failed"] {
        for result in ["sent", "failed"] {
            let n = status.alerts.get(&(kind, result)).copied().unwrap_or(0);
            m.sample(
                "rotor_alerts_total",
                &[("kind", kind), ("result", result)],
                n as f64,
            );
        }
    }
    m.family(
        "rotor_webhook_deliveries_total",
        "counter",
        "GitHub webhook deliveries by event and result (refusals: unsigned, malformed_signature, bad_signature, too_large).",
    );
    for ((event, result), n) in &status.webhooks {
        m.sample(
            "rotor_webhook_deliveries_total",
            &[("event", event), ("result", result)],
            *n as f64,
        );
    }
    m.family(
        "rotor_targeted_passes_total",
        "counter",
        "Passes over the repositories of a webhook event, by result.",
    );
    for result in ["converged", "failed"] {
        let n = status.targeted.get(result).copied().unwrap_or(0);
        m.sample(
            "rotor_targeted_passes_total",
            &[("result", result)],
            n as f64,
        );
    }
    m.family(
        "rotor_targeted_pass_seconds",
        "summary",
        "Seconds from receiving a webhook delivery to the end of its targeted pass.",
    );
    m.sample(
        "rotor_targeted_pass_seconds_sum",
        &[],
        status.targeted_seconds.0,
    );
    m.sample(
        "rotor_targeted_pass_seconds_count",
        &[],
        status.targeted_seconds.1 as f64,
    );
    m.family(
        "rotor_shutting_down",
        "gauge",
        "1 once the daemon drains for shutdown.",
    );
    m.sample(
        "rotor_shutting_down",
        &[],
        f64::from(u8::from(status.shutting_down)),
    );
    m.0
}

fn seconds(t: DateTime<Utc>) -> f64 {
    t.timestamp_millis() as f64 / 1000.0
}

/// One sample of a per-policy family: an extra label (besides `policy`), and the value
/// (`None`: not shown).
type Series = Vec<(Option<(&'static str, &'static str)>, Option<f64>)>;

#[derive(Default)]
struct Metrics(String);

impl Metrics {
    fn per_policy(
        &mut self,
        policies: &BTreeMap<String, PolicyStatus>,
        name: &str,
        kind: &str,
        help: &str,
        series: impl Fn(&PolicyStatus) -> Series,
    ) {
        self.family(name, kind, help);
        for (policy, p) in policies {
            for (label, value) in series(p) {
                let Some(value) = value else { continue };
                match label {
                    Some((k, v)) => self.sample(name, &[("policy", policy), (k, v)], value),
                    None => self.sample(name, &[("policy", policy)], value),
                }
            }
        }
    }

    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(
            self.0,
            "# HELP {name} {}",
            help.replace('\\', "\\\\").replace('\n', "\\n")
        );
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let v = v
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n");
                let _ = write!(self.0, "{k}=\"{v}\"");
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_text_parses_as_prometheus_and_holds_every_policy_series() {
        let mut status = Status::default();
        let t = Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap();
        status.policies.insert(
            "deploy-token".into(),
            PolicyStatus {
                rotations_ok: 3,
                pushes_created: 10,
                pushes_updated: 20,
                pushes_failed: 1,
                last_success: Some(t),
                next_due: Some(t + chrono::Duration::days(30)),
                unconverged: 1,
                ..Default::default()
            },
        );
        status
            .policies
            .insert("never-ran".into(), PolicyStatus::default());
        status.vault_up = Some(true);
        let rl = RateLimitSnapshot {
            limit: 5000,
            remaining: 4990,
            used: Some(10),
            reset: t,
            resource: Some("core".into()),
        };
        let text = render(
            &status,
            &Extra {
                rate_limit: Some(&rl),
                vault_logins: Some(2),
            },
        );
        let scrape =
            prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
        let value = |name: &str, labels: &[(&str, &str)]| {
            scrape
                .samples
                .iter()
                .find(|s| {
                    s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
                })
                .map(|s| match s.value {
                    prometheus_parse::Value::Counter(v)
                    | prometheus_parse::Value::Gauge(v)
                    | prometheus_parse::Value::Untyped(v) => v,
                    _ => f64::NAN,
                })
        };
        assert_eq!(
            value(
                "rotor_rotations_total",
                &[("policy", "deploy-token"), ("result", "success")]
            ),
            Some(3.0)
        );
        assert_eq!(
            value(
                "rotor_rotations_total",
                &[("policy", "deploy-token"), ("result", "failure")]
            ),
            Some(0.0)
        );
        assert_eq!(
            value(
                "rotor_pushes_total",
                &[("policy", "deploy-token"), ("result", "failed")]
            ),
            Some(1.0)
        );
        assert_eq!(
            value(
                "rotor_last_success_timestamp_seconds",
                &[("policy", "deploy-token")]
            ),
            Some(seconds(t))
        );
        assert_eq!(
            value("rotor_unconverged_targets", &[("policy", "deploy-token")]),
            Some(1.0)
        );
        assert_eq!(
            value("rotor_github_rate_limit_remaining", &[]),
            Some(4990.0)
        );
        assert_eq!(value("rotor_vault_logins_total", &[]), Some(2.0));
        assert_eq!(
            value(
                "rotor_rotations_total",
                &[("policy", "never-ran"), ("result", "success")]
            ),
            Some(0.0)
        );
        assert_eq!(
            value(
                "rotor_next_due_timestamp_seconds",
                &[("policy", "never-ran")]
            ),
            None
        );
    }
}
