//! KV v2: the current version (from metadata, or from the latest read when the token may
//! not read metadata), reading one version, and writing a new one with check-and-set.

use std::collections::BTreeMap;

use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::Value;
use vaultrs::error::ClientError;
use vaultrs::kv2;
use zeroize::Zeroizing;

use super::wire::{
    into_secrets, read_body, request_error, status_error, vault_error, wipe, Exposed,
};
use super::{trim, KvVersionInfo, Vault};
use crate::source::error::SourceError;

impl Vault {
    /// The current version of a KV v2 secret, from its metadata; `None` when the path has
    /// never been written. A token allowed to read `data/` but not `metadata/` still gets an
    /// answer: the version then comes from the envelope of the latest read (the value read
    /// alongside is wiped unused).
    pub async fn current_version(
        &self,
        mount: &str,
        path: &str,
    ) -> Result<Option<u64>, SourceError> {
        Ok(self
            .current_version_meta(mount, path)
            .await?
            .map(|v| v.version))
    }

    /// As `current_version`, with the time the current version was written (from KV
    /// metadata; `None` when Vault does not say).
    pub async fn current_version_meta(
        &self,
        mount: &str,
        path: &str,
    ) -> Result<Option<KvVersionInfo>, SourceError> {
        self.with_login(|| self.current_version_meta_once(mount, path))
            .await
    }

    async fn current_version_meta_once(
        &self,
        mount: &str,
        path: &str,
    ) -> Result<Option<KvVersionInfo>, SourceError> {
        let (mount, path) = (trim(mount), trim(path));
        let kv = self.kv().await?;
        match kv2::read_metadata(kv.as_ref(), mount, path).await {
            Ok(meta) => Ok((meta.current_version > 0).then(|| KvVersionInfo {
                version: meta.current_version,
                created_time: meta
                    .versions
                    .get(&meta.current_version.to_string())
                    .and_then(|v| parse_time(&v.created_time)),
            })),
            Err(ClientError::APIError { code: 404, .. }) => Ok(None),
            Err(ClientError::APIError { code: 403, .. }) => {
                self.latest_version_from_data(mount, path).await
            }
            Err(e) => Err(vault_error(
                "read metadata",
                format!("{mount}/metadata/{path}"),
                &e,
            )),
        }
    }

    /// Reads one version of a KV v2 secret. Each field's value is wrapped in a secret at
    /// once; a value that is not a JSON string becomes its JSON text (`42`, `true`, `{..}`).
    pub async fn read_version(
        &self,
        mount: &str,
        path: &str,
        version: u64,
    ) -> Result<BTreeMap<String, SecretString>, SourceError> {
        self.with_login(|| self.read_version_once(mount, path, version))
            .await
    }

    async fn read_version_once(
        &self,
        mount: &str,
        path: &str,
        version: u64,
    ) -> Result<BTreeMap<String, SecretString>, SourceError> {
        let (mount, path) = (trim(mount), trim(path));
        let where_ = format!("{mount}/data/{path}");
        // rotor's own request: the body lands in a buffer that is wiped, and the value is
        // wrapped in secrets straight from it (no client library keeps a copy).
        let response = self
            .send(
                reqwest::Method::GET,
                &where_,
                Some(&format!("version={version}")),
                None,
            )
            .await
            .map_err(|e| request_error("read", &where_, &e))?;
        let status = response.status();
        let body = read_body(response, "read", &where_).await?;
        if status == StatusCode::NOT_FOUND {
            return Err(SourceError::Vault {
                op: "read",
                path: where_,
                status: Some(404),
                message: format!(
                    "version {version} not found (never written, deleted or destroyed)"
                ),
            });
        }
        if !status.is_success() {
            return Err(status_error("read", &where_, status, &body));
        }
        let envelope = parse_envelope(&body, status, &where_)?;
        match envelope.data.map(|d| d.data) {
            Some(Value::Object(map)) => Ok(into_secrets(map)),
            other => {
                if let Some(mut other) = other {
                    wipe(&mut other);
                }
                Err(SourceError::Vault {
                    op: "read",
                    path: where_,
                    status: None,
                    message: format!("version {version} holds no key/value map"),
                })
            }
        }
    }

    /// Writes `fields` as a new version of a KV v2 secret with check-and-set: the write
    /// happens only if `cas` is the current version (`0`: only if the path holds no
    /// version yet). Returns the new version. A stale `cas` is a `CasConflict`, and nothing
    /// is written. The whole secret is replaced: fields not given are not kept.
    pub async fn write_cas(
        &self,
        mount: &str,
        path: &str,
        fields: &BTreeMap<String, SecretString>,
        cas: u64,
    ) -> Result<u64, SourceError> {
        self.with_login(|| self.write_cas_once(mount, path, fields, cas))
            .await
    }

    async fn write_cas_once(
        &self,
        mount: &str,
        path: &str,
        fields: &BTreeMap<String, SecretString>,
        cas: u64,
    ) -> Result<u64, SourceError> {
        let (mount, path) = (trim(mount), trim(path));
        let where_ = format!("{mount}/data/{path}");
        // The request body is serialized into a buffer that is wiped once sent.
        let body = Zeroizing::new(
            serde_json::to_vec(&WriteBody {
                options: WriteOptions { cas },
                data: Exposed(fields),
            })
            .map_err(|e| SourceError::Vault {
                op: "write",
                path: where_.clone(),
                status: None,
                message: format!("the value cannot be serialized: {e}"),
            })?,
        );
        let response = self
            .send(reqwest::Method::POST, &where_, None, Some(&body))
            .await
            .map_err(|e| request_error("write", &where_, &e))?;
        drop(body);
        let status = response.status();
        let answer = read_body(response, "write", &where_).await?;
        if status == StatusCode::BAD_REQUEST {
            let err = status_error("write", &where_, status, &answer);
            if let SourceError::Vault { message, .. } = &err {
                if message.contains("check-and-set") {
                    return Err(SourceError::CasConflict {
                        mount: mount.to_string(),
                        path: path.to_string(),
                        expected: cas,
                    });
                }
            }
            return Err(err);
        }
        if !status.is_success() {
            return Err(status_error("write", &where_, status, &answer));
        }
        serde_json::from_slice::<WriteAnswer>(&answer)
            .ok()
            .and_then(|a| a.data)
            .map(|d| d.version)
            .ok_or_else(|| SourceError::Vault {
                op: "write",
                path: where_,
                status: Some(status.as_u16()),
                message: "the answer names no new version".to_string(),
            })
    }

    /// The latest version number, read from the envelope of `GET {mount}/data/{path}`.
    async fn latest_version_from_data(
        &self,
        mount: &str,
        path: &str,
    ) -> Result<Option<KvVersionInfo>, SourceError> {
        let where_ = format!("{mount}/data/{path}");
        let response = self
            .get(&where_)
            .await
            .map_err(|e| request_error("read", &where_, &e))?;
        let status = response.status();
        let body = read_body(response, "read", &where_).await?;
        if status == StatusCode::NOT_FOUND {
            // 404 also answers for a deleted latest version; its metadata still counts.
            return Ok(serde_json::from_slice::<KvEnvelope>(&body)
                .ok()
                .and_then(|e| e.data)
                .map(|d| d.metadata.info())
                .filter(|v| v.version > 0));
        }
        if !status.is_success() {
            return Err(status_error("read", &where_, status, &body));
        }
        let envelope = parse_envelope(&body, status, &where_)?;
        let mut data = envelope.data.ok_or_else(|| SourceError::Vault {
            op: "read",
            path: where_.clone(),
            status: Some(status.as_u16()),
            message: "the response holds no data".to_string(),
        })?;
        wipe(&mut data.data);
        Ok(Some(data.metadata.info()).filter(|v| v.version > 0))
    }
}

/// A successful KV v2 data read's envelope; a body of another shape is an error that does
/// not quote it.
fn parse_envelope(body: &[u8], status: StatusCode, path: &str) -> Result<KvEnvelope, SourceError> {
    serde_json::from_slice(body).map_err(|_| SourceError::Vault {
        op: "read",
        path: path.to_string(),
        status: Some(status.as_u16()),
        message: "the response is not a KV v2 secret".to_string(),
    })
}

/// `POST {mount}/data/{path}`: `{"options": {"cas": N}, "data": {...}}`.
#[derive(serde::Serialize)]
struct WriteBody<'a> {
    options: WriteOptions,
    data: Exposed<'a>,
}

#[derive(serde::Serialize)]
struct WriteOptions {
    cas: u64,
}

/// The answer to a write: the new version's metadata.
#[derive(serde::Deserialize)]
struct WriteAnswer {
    data: Option<WriteMeta>,
}

#[derive(serde::Deserialize)]
struct WriteMeta {
    version: u64,
}

/// Vault's RFC 3339 time stamps (`2026-11-25T10:00:00.123456789Z`).
fn parse_time(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

/// The envelope of a KV v2 data read: `data.data` (the value) and `data.metadata`.
#[derive(serde::Deserialize)]
struct KvEnvelope {
    data: Option<KvData>,
}

#[derive(serde::Deserialize)]
struct KvData {
    #[serde(default)]
    data: Value,
    metadata: KvVersion,
}

#[derive(serde::Deserialize)]
struct KvVersion {
    version: u64,
    #[serde(default)]
    created_time: String,
}

impl KvVersion {
    fn info(&self) -> KvVersionInfo {
        KvVersionInfo {
            version: self.version,
            created_time: parse_time(&self.created_time),
        }
    }
}
