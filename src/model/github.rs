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

/// What `POST …/actions/workflows/{id}/dispatches` answers with `return_run_details` (and
/// always from API version 2026-03-10 on): the run it queued.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DispatchedRun {
    #[serde(rename = "workflow_run_id")]
    pub run_id: u64,
    pub run_url: String,
    pub html_url: String,
}

/// A workflow run, with the fields verification reads.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct WorkflowRun {
    pub id: u64,
    #[serde(default)]
    pub workflow_id: u64,
    #[serde(default)]
    pub event: String,
    /// `requested`, `queued`, `pending`, `waiting`, `in_progress`, `completed`.
    #[serde(default)]
    pub status: Option<String>,
    /// Set once `completed`: `success`, `failure`, `cancelled`, `timed_out`,
    /// `startup_failure`, ...
    #[serde(default)]
    pub conclusion: Option<String>,
    #[serde(default)]
    pub html_url: String,
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub run_attempt: Option<u64>,
}

impl WorkflowRun {
    pub fn is_completed(&self) -> bool {
        self.status.as_deref() == Some("completed")
    }
}

/// One job of a run, with its steps.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Job {
    pub id: u64,
    pub name: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub conclusion: Option<String>,
    #[serde(default)]
    pub html_url: Option<String>,
    #[serde(default)]
    pub steps: Vec<JobStep>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct JobStep {
    pub name: String,
    pub number: u64,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub conclusion: Option<String>,
}
