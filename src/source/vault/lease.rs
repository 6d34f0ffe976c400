//! Leases of dynamic credentials: revoke (`PUT sys/leases/revoke`), renew
//! (`PUT sys/leases/renew`) and look up (`PUT sys/leases/lookup`). A lease id is not a
//! secret; the bodies here carry none.

use serde_json::{json, Value};

use super::wire::{read_body, request_error, status_error};
use super::Vault;
use crate::source::error::SourceError;

/// What `sys/leases/lookup` says of a lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseLookup {
    /// Seconds left; 0 once expired or revoked.
    pub ttl_secs: u64,
    pub renewable: bool,
}

impl Vault {
    /// Revokes a lease at once. Revoking a lease Vault no longer knows is not an error
    /// (Vault answers 204 for it too): a resumed run may revoke again safely.
    pub async fn revoke_lease(&self, lease_id: &str) -> Result<(), SourceError> {
        self.with_login(|| async {
            self.lease_call("sys/leases/revoke", json!({ "lease_id": lease_id }))
                .await
                .map(|_| ())
        })
        .await
    }

    /// Renews a lease by `increment_secs`; returns the TTL Vault granted (it may grant less,
    /// up to the lease's max TTL).
    pub async fn renew_lease(
        &self,
        lease_id: &str,
        increment_secs: u64,
    ) -> Result<u64, SourceError> {
        let body = self
            .with_login(|| {
                self.lease_call(
                    "sys/leases/renew",
                    json!({ "lease_id": lease_id, "increment": increment_secs }),
                )
            })
            .await?;
        Ok(body
            .get("lease_duration")
            .and_then(Value::as_u64)
            .unwrap_or(0))
    }

    /// Looks a lease up; a revoked or unknown lease is an error with Vault's message.
    pub async fn lookup_lease(&self, lease_id: &str) -> Result<LeaseLookup, SourceError> {
        let body = self
            .with_login(|| self.lease_call("sys/leases/lookup", json!({ "lease_id": lease_id })))
            .await?;
        let data = body.get("data").cloned().unwrap_or(Value::Null);
        Ok(LeaseLookup {
            ttl_secs: data.get("ttl").and_then(Value::as_u64).unwrap_or(0),
            renewable: data
                .get("renewable")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        })
    }

    async fn lease_call(&self, path: &'static str, body: Value) -> Result<Value, SourceError> {
        self.ensure_token().await?;
        let mut request = self
            .http
            .put(self.url(path))
            .header("X-Vault-Request", "true")
            .header("X-Vault-Token", self.token_header())
            .json(&body);
        if let Some(ns) = self.namespace.as_ref() {
            request = request.header("X-Vault-Namespace", ns);
        }
        let response = request
            .send()
            .await
            .map_err(|e| request_error("lease", path, &e))?;
        let status = response.status();
        let bytes = read_body(response, "lease", path).await?;
        if !status.is_success() {
            return Err(status_error("lease", path, status, &bytes));
        }
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }
}
