//! Dynamic secrets: a generic read of any path (`database/creds/app`, `aws/creds/deploy`)
//! that keeps the lease id `vaultrs` would drop.

use std::collections::BTreeMap;

use secrecy::SecretString;
use serde_json::{Map, Value};

use super::wire::{into_secrets, read_body, request_error, status_error};
use super::{trim, Vault};
use crate::source::error::SourceError;
use crate::source::value::Lease;

impl Vault {
    /// Reads an arbitrary path (`GET /v1/{path}`), as dynamic secrets engines serve fresh
    /// credentials (`database/creds/app`, `aws/creds/deploy`). Returns the fields of `data`
    /// and the lease id, if the answer carries one.
    ///
    /// With `params`, the credential is issued by a write instead (`POST /v1/{path}` with
    /// the parameters as its JSON body), as engines that take arguments do
    /// (`pki/issue/{role}` with `common_name`, `ssh/creds/{role}`).
    pub async fn read_dynamic(
        &self,
        path: &str,
        params: &BTreeMap<String, String>,
    ) -> Result<(BTreeMap<String, SecretString>, Option<Lease>), SourceError> {
        self.with_login(|| self.read_dynamic_once(path, params))
            .await
    }

    async fn read_dynamic_once(
        &self,
        path: &str,
        params: &BTreeMap<String, String>,
    ) -> Result<(BTreeMap<String, SecretString>, Option<Lease>), SourceError> {
        let path = trim(path);
        let sent = if params.is_empty() {
            self.get(path).await
        } else {
            self.post_json(path, params).await
        };
        let response = sent.map_err(|e| request_error("read", path, &e))?;
        let status = response.status();
        let body = read_body(response, "read", path).await?;
        if !status.is_success() {
            return Err(status_error("read", path, status, &body));
        }
        let envelope: Envelope = serde_json::from_slice(&body).map_err(|_| SourceError::Vault {
            op: "read",
            path: path.to_string(),
            status: Some(status.as_u16()),
            message: "the response is not a Vault secret (JSON with `data`)".to_string(),
        })?;
        match envelope.into_fields() {
            Some(read) => Ok(read),
            None => Err(SourceError::Vault {
                op: "read",
                path: path.to_string(),
                status: Some(status.as_u16()),
                message: "the response holds no data".to_string(),
            }),
        }
    }
}

/// The generic envelope of a Vault read.
#[derive(serde::Deserialize)]
struct Envelope {
    #[serde(default)]
    lease_id: String,
    #[serde(default)]
    lease_duration: u64,
    #[serde(default)]
    renewable: bool,
    data: Option<Map<String, Value>>,
}

impl Envelope {
    /// The fields of `data` as secrets, and the lease unless its id is empty; `None`
    /// without data.
    fn into_fields(self) -> Option<(BTreeMap<String, SecretString>, Option<Lease>)> {
        let lease = Some(self.lease_id)
            .filter(|l| !l.is_empty())
            .map(|id| Lease {
                id,
                duration_secs: self.lease_duration,
                renewable: self.renewable,
            });
        self.data.map(|map| (into_secrets(map), lease))
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn a_dynamic_answer_yields_its_fields_and_its_lease_id() {
        // The shape `database/creds/ROLE` answers with.
        let body = br#"{"request_id":"r","lease_id":"database/creds/app/h8Q2","renewable":true,
            "lease_duration":3600,"data":{"username":"v-app-x1","password":"A1a-pw"},
            "wrap_info":null,"warnings":null,"auth":null}"#;
        let envelope: Envelope = serde_json::from_slice(body).unwrap();
        let (fields, lease) = envelope.into_fields().unwrap();
        let lease = lease.unwrap();
        assert_eq!(lease.id, "database/creds/app/h8Q2");
        assert_eq!((lease.duration_secs, lease.renewable), (3600, true));
        assert_eq!(fields["username"].expose_secret(), "v-app-x1");
        assert_eq!(fields["password"].expose_secret(), "A1a-pw");

        let empty: Envelope = serde_json::from_slice(br#"{"lease_id":"","data":null}"#).unwrap();
        assert!(empty.into_fields().is_none());
    }
}
