//! What GitHub says about a fleet: repositories, existing secrets, public keys, installations.
//! The client deserializes into these; the planner reads them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::Visibility;

/// A repository as the listing endpoints return it (fields rotor uses).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Repo {
    pub id: u64,
    pub name: String,
    pub full_name: String,
    #[serde(default)]
    pub archived: bool,
    #[serde(default)]
    pub disabled: bool,
    #[serde(default)]
    pub private: bool,
    #[serde(default)]
    pub visibility: Option<String>,
    #[serde(default)]
    pub topics: Vec<String>,
}

impl Repo {
    pub fn owner(&self) -> &str {
        self.full_name.split('/').next().unwrap_or("")
    }
}

/// A scope's public key: `key` is base64 of 32 bytes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PublicKey {
    pub key_id: String,
    pub key: String,
}

/// Metadata of an existing secret (GitHub never returns values).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SecretMeta {
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default)]
    pub visibility: Option<String>,
}

/// What a PUT did: 201 created, 204 updated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PutOutcome {
    Created,
    Updated,
}

/// The access part of an organization secret PUT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgAccess {
    pub visibility: Visibility,
    /// Sent only with `visibility: selected`.
    pub selected_repository_ids: Vec<u64>,
}

/// An installation of the App, as `GET /orgs/{org}/installation` describes it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Installation {
    pub id: u64,
    #[serde(default)]
    pub account: Option<Account>,
    /// `all` or `selected`.
    #[serde(default)]
    pub repository_selection: String,
    /// Permission name -> `read` / `write` / `admin`.
    #[serde(default)]
    pub permissions: BTreeMap<String, String>,
    #[serde(default)]
    pub suspended_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Account {
    pub login: String,
}

/// The repositories an installation can reach (`GET /installation/repositories`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallationRepos {
    pub installation: Installation,
    pub repos: Vec<Repo>,
}
