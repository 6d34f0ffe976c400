//! Looking inside and steering the emulator, for tests and sandboxes: what every secret
//! holds (decrypted), counters, faults, adding and removing repositories, key rotation and
//! drift. Rust methods on `Emulator`, and the same over HTTP under `/_emulator` (no token
//! needed: test-only, never expose it).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::scope::Visibility;
use crate::scope::{PublicKey, Scope};

use super::counters::{Counters, RequestRecord};
use super::errors::{ApiError, FleetError};
use super::extract::{Body, Params};
use super::faults::FaultRule;
use super::fleet::RepoSpec;
use super::server::{Emulator, Shared};
use super::state::{now, rfc3339, SecretEntry, State as World};

/// What the emulator knows about one secret, without its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecretInfo {
    pub scope: Scope,
    /// Upper-case, as stored.
    pub name: String,
    /// The key id the last value was sealed with.
    pub key_id: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Accepted PUTs (creation included).
    pub writes: u64,
    /// Accepted PUTs that changed the value (creation included).
    pub value_changes: u64,
    /// Organization secrets only.
    pub visibility: Option<Visibility>,
    /// Organization secrets with `selected` visibility: the repositories, by id.
    pub selected_repository_ids: Vec<u64>,
}

/// One secret with its decrypted value (kept in a `SecretString`; nothing here prints it).
#[derive(Clone)]
pub struct SecretRecord {
    pub info: SecretInfo,
    pub value: SecretString,
}

fn info_of(scope: &Scope, e: &SecretEntry) -> SecretInfo {
    SecretInfo {
        scope: scope.clone(),
        name: e.name.clone(),
        key_id: e.key_id.clone(),
        created_at: e.created_at,
        updated_at: e.updated_at,
        writes: e.writes,
        value_changes: e.value_changes,
        visibility: e.access.as_ref().map(|a| a.visibility),
        selected_repository_ids: e
            .access
            .as_ref()
            .map(|a| a.selected.iter().copied().collect())
            .unwrap_or_default(),
    }
}

fn find<'a>(st: &'a World, scope: &Scope, name: &str) -> Option<&'a SecretEntry> {
    st.scope_data(scope)?
        .secrets
        .get(&name.to_ascii_uppercase())
}

impl Emulator {
    /// The decrypted value of a secret, as last written.
    pub fn decrypted(&self, scope: &Scope, name: &str) -> Option<String> {
        let st = self.shared.state();
        find(&st, scope, name).map(|e| e.value.expose_secret().to_string())
    }

    /// A secret's metadata: key id used, times, write count, access.
    pub fn secret_info(&self, scope: &Scope, name: &str) -> Option<SecretInfo> {
        let st = self.shared.state();
        find(&st, scope, name).map(|e| info_of(scope, e))
    }

    /// Every secret, with its decrypted value.
    pub fn secrets(&self) -> Vec<SecretRecord> {
        let st = self.shared.state();
        st.scopes_with_secrets()
            .into_iter()
            .flat_map(|(scope, data)| {
                data.secrets
                    .values()
                    .map(|e| SecretRecord {
                        info: info_of(&scope, e),
                        value: e.value.clone(),
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// The scope's current public key (made now if it had none), as the API would return it.
    pub fn public_key(&self, scope: &Scope) -> Option<PublicKey> {
        let mut st = self.shared.state();
        let key = st.scope_data_mut(scope)?.key();
        Some(PublicKey {
            key_id: key.key_id.clone(),
            key: key.public_b64.clone(),
        })
    }

    /// Every API request since start (or the last counter reset): when it came, what it
    /// was, and the status answered (0: the connection was closed without an answer).
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.counters.requests()
    }

    /// Request counters since start (or the last reset).
    pub fn counters(&self) -> Counters {
        self.shared.counters.snapshot()
    }

    pub fn reset_counters(&self) {
        self.shared.counters.reset();
    }

    /// Adds a fault rule; earlier rules win when several match.
    pub fn add_fault(&self, rule: FaultRule) {
        self.shared.faults.add(rule);
    }

    pub fn clear_faults(&self) {
        self.shared.faults.clear();
    }

    /// The fault rules still in force.
    pub fn faults(&self) -> Vec<FaultRule> {
        self.shared.faults.list()
    }

    /// Adds a repository (and its organization if new) and returns its id.
    ///
    /// # Panics
    /// When the repository exists or its names are not valid; see [`Emulator::try_add_repo`].
    pub fn add_repo(&self, org: &str, repo: RepoSpec) -> u64 {
        match self.try_add_repo(org, repo) {
            Ok(id) => id,
            Err(e) => panic!("cannot add repository: {e}"),
        }
    }

    /// Adds a repository (and its organization if new) and returns its id.
    pub fn try_add_repo(&self, org: &str, repo: RepoSpec) -> Result<u64, FleetError> {
        self.shared.state().add_repo(org, &repo)
    }

    /// Removes a repository and its secrets; `false` if there was none.
    pub fn remove_repo(&self, org: &str, name: &str) -> bool {
        self.shared.state().remove_repo(org, name).is_some()
    }

    /// A repository's id.
    pub fn repo_id(&self, owner: &str, repo: &str) -> Option<u64> {
        self.shared.state().repo(owner, repo).map(|r| r.id)
    }

    /// Gives the scope a new key pair and key id; values sealed to the old key are refused
    /// from now on. Returns the new key id, or `None` if the scope does not exist.
    pub fn rotate_key(&self, scope: &Scope) -> Option<String> {
        Some(self.shared.state().scope_data_mut(scope)?.rotate())
    }

    /// Marks a secret as changed outside rotor (drift): `updated_at` moves to now, and at
    /// least one second forward so the change shows at GitHub's precision. The value and
    /// the write count stay. `false` if there is no such secret.
    pub fn touch(&self, scope: &Scope, name: &str) -> bool {
        self.with_secret(scope, name, |e| {
            e.updated_at = now().max(e.updated_at + chrono::Duration::seconds(1));
        })
    }

    /// Runs `f` on the stored secret; `false` if there is no such secret.
    fn with_secret(&self, scope: &Scope, name: &str, f: impl FnOnce(&mut SecretEntry)) -> bool {
        let mut st = self.shared.state();
        let entry = st
            .scope_data_mut(scope)
            .and_then(|d| d.secrets.get_mut(&name.to_ascii_uppercase()));
        entry.map(f).is_some()
    }

    /// Sets a secret's `updated_at`, as GitHub would show a change made at `at` (to stand
    /// for a change made outside rotor minutes after rotor's own). The value and the write
    /// count stay. `false` if there is no such secret.
    pub fn set_updated_at(&self, scope: &Scope, name: &str, at: DateTime<Utc>) -> bool {
        self.with_secret(scope, name, |e| {
            e.updated_at = DateTime::from_timestamp(at.timestamp(), 0).unwrap_or(at);
        })
    }

    /// Stores a secret directly, as if someone had set it outside rotor (organization
    /// secrets get visibility `all`). `false` if the scope does not exist or the name breaks
    /// GitHub's rules.
    pub fn insert_secret(&self, scope: &Scope, name: &str, value: &str) -> bool {
        let Ok(name) = super::validate::secret_name(name) else {
            return false;
        };
        let mut st = self.shared.state();
        let Some(data) = st.scope_data_mut(scope) else {
            return false;
        };
        let key_id = data.key().key_id.clone();
        let t = now();
        let is_org = matches!(scope, Scope::Org { .. });
        let entry = data
            .secrets
            .entry(name.clone())
            .or_insert_with(|| SecretEntry {
                name,
                value: SecretString::from(String::new()),
                key_id: key_id.clone(),
                created_at: t,
                updated_at: t,
                writes: 0,
                value_changes: 0,
                access: is_org.then(|| super::state::OrgAccessState {
                    visibility: Visibility::All,
                    selected: Default::default(),
                }),
            });
        if entry.value.expose_secret() != value {
            entry.value_changes += 1;
        }
        entry.value = SecretString::from(value.to_string());
        entry.key_id = key_id;
        entry.updated_at = t;
        true
    }
}

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/_emulator/health", get(health))
        .route("/_emulator/secrets", get(http_secrets))
        .route(
            "/_emulator/counters",
            get(http_counters).delete(http_reset_counters),
        )
        .route("/_emulator/requests", get(http_requests))
        .route(
            "/_emulator/faults",
            get(http_faults)
                .post(http_add_fault)
                .delete(http_clear_faults),
        )
        .route("/_emulator/repos", post(http_add_repo))
        .route("/_emulator/repos/{org}/{name}", delete(http_remove_repo))
        .route("/_emulator/keys/rotate", post(http_rotate))
        .route("/_emulator/touch", post(http_touch))
        .route("/_emulator/latency", put(http_latency))
}

fn emulator(sh: Arc<Shared>) -> Emulator {
    Emulator { shared: sh }
}

fn parse<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        if e.is_syntax() || e.is_eof() {
            ApiError::bad_json()
        } else {
            ApiError::invalid_request(e.to_string())
        }
    })
}

async fn health() -> Json<Value> {
    Json(json!({ "ok": true }))
}

/// Every secret with its decrypted value. Test-only: answers 404 unless the emulator was
/// built with [`Emulator::expose_values`] (`rotor emulate --expose-values`).
async fn http_secrets(State(sh): State<Arc<Shared>>) -> Result<Json<Value>, ApiError> {
    if !sh.expose_values.load(std::sync::atomic::Ordering::Relaxed) {
        return Err(ApiError::not_found());
    }
    let items: Vec<Value> = emulator(sh)
        .secrets()
        .into_iter()
        .map(|r| {
            json!({
                "scope": r.info.scope,
                "scope_key": r.info.scope.key(),
                "name": r.info.name,
                "value": r.value.expose_secret(),
                "key_id": r.info.key_id,
                "created_at": rfc3339(&r.info.created_at),
                "updated_at": rfc3339(&r.info.updated_at),
                "writes": r.info.writes,
                "visibility": r.info.visibility,
                "selected_repository_ids": r.info.selected_repository_ids,
            })
        })
        .collect();
    Ok(Json(Value::Array(items)))
}

async fn http_counters(State(sh): State<Arc<Shared>>) -> Json<Counters> {
    Json(sh.counters.snapshot())
}

async fn http_requests(State(sh): State<Arc<Shared>>) -> Json<Vec<RequestRecord>> {
    Json(sh.counters.requests())
}

async fn http_reset_counters(State(sh): State<Arc<Shared>>) -> StatusCode {
    sh.counters.reset();
    StatusCode::NO_CONTENT
}

async fn http_faults(State(sh): State<Arc<Shared>>) -> Json<Vec<FaultRule>> {
    Json(sh.faults.list())
}

async fn http_add_fault(
    State(sh): State<Arc<Shared>>,
    Body(bytes): Body,
) -> Result<Response, ApiError> {
    let rule: FaultRule = parse(&bytes)?;
    if !rule.is_valid() {
        return Err(ApiError::invalid_request(
            "status must be an HTTP status and method an HTTP method.",
        ));
    }
    sh.faults.add(rule.clone());
    Ok((StatusCode::CREATED, Json(rule)).into_response())
}

async fn http_clear_faults(State(sh): State<Arc<Shared>>) -> StatusCode {
    sh.faults.clear();
    StatusCode::NO_CONTENT
}

/// `{"org": "acme", "name": "new-svc", "topics": [...], "archived": false, ...}`: the
/// organization plus the fields of a fleet file's repository entry.
async fn http_add_repo(
    State(sh): State<Arc<Shared>>,
    Body(bytes): Body,
) -> Result<Response, ApiError> {
    let mut obj: serde_json::Map<String, Value> = parse(&bytes)?;
    let org = match obj.remove("org") {
        Some(Value::String(org)) => org,
        _ => return Err(ApiError::invalid_request("\"org\" wasn't supplied.")),
    };
    let repo: RepoSpec = serde_json::from_value(Value::Object(obj))
        .map_err(|e| ApiError::invalid_request(e.to_string()))?;
    match emulator(sh).create_repo(&org, repo) {
        Ok(id) => Ok((StatusCode::CREATED, Json(json!({ "id": id }))).into_response()),
        Err(e) => Err(ApiError::invalid_request(e.to_string())),
    }
}

async fn http_remove_repo(
    State(sh): State<Arc<Shared>>,
    params: Params,
) -> Result<StatusCode, ApiError> {
    if emulator(sh).delete_repo(params.get("org")?, params.get("name")?) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScopeBody {
    scope: Scope,
    #[serde(default)]
    name: Option<String>,
}

async fn http_rotate(
    State(sh): State<Arc<Shared>>,
    Body(bytes): Body,
) -> Result<Json<Value>, ApiError> {
    let req: ScopeBody = parse(&bytes)?;
    let key_id = emulator(sh)
        .rotate_key(&req.scope)
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(json!({ "key_id": key_id })))
}

async fn http_touch(
    State(sh): State<Arc<Shared>>,
    Body(bytes): Body,
) -> Result<StatusCode, ApiError> {
    let req: ScopeBody = parse(&bytes)?;
    let name = req
        .name
        .ok_or_else(|| ApiError::invalid_request("\"name\" wasn't supplied."))?;
    if emulator(sh).touch(&req.scope, &name) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LatencyBody {
    millis: u64,
}

async fn http_latency(
    State(sh): State<Arc<Shared>>,
    Body(bytes): Body,
) -> Result<StatusCode, ApiError> {
    let req: LatencyBody = parse(&bytes)?;
    sh.set_latency(Duration::from_millis(req.millis));
    Ok(StatusCode::NO_CONTENT)
}
