//! Self-hosted runner registration and remove tokens: `POST /orgs/{org}/actions/runners/
//! registration-token` (and `remove-token`, and the repository forms). 201 with a token
//! that expires after an hour; 403 without admin rights (installations: the organization's
//! "Self-hosted runners" permission, or the repository's "Administration", at write).
//! Every token handed out is kept for tests (`Emulator::runner_tokens`).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use crypto_box::aead::rand_core::RngCore;
use crypto_box::aead::OsRng;
use serde_json::json;

use super::auth::{Access, ReqCtx};
use super::errors::ApiError;
use super::extract::Params;
use super::guard::{not_accessible, readable_repo};
use super::server::{Emulator, Shared};
use super::state::rfc3339;

/// How long a runner token lives (GitHub: one hour).
pub const RUNNER_TOKEN_LIFETIME: chrono::TimeDelta = chrono::TimeDelta::hours(1);

/// A token the emulator handed out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunnerToken {
    /// `registration` or `remove`.
    pub kind: &'static str,
    /// `acme` or `acme/build-farm`.
    pub owner: String,
    pub token: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/orgs/{org}/actions/runners/registration-token",
            post(|s, c, p| org_token(s, c, p, "registration")),
        )
        .route(
            "/orgs/{org}/actions/runners/remove-token",
            post(|s, c, p| org_token(s, c, p, "remove")),
        )
        .route(
            "/repos/{owner}/{repo}/actions/runners/registration-token",
            post(|s, c, p| repo_token(s, c, p, "registration")),
        )
        .route(
            "/repos/{owner}/{repo}/actions/runners/remove-token",
            post(|s, c, p| repo_token(s, c, p, "remove")),
        )
}

fn needs(access: &Access, permission: &str) -> Result<(), ApiError> {
    if let Access::Installation(g) = access {
        if !g.has(permission, "write") {
            return Err(not_accessible(access).with_header(
                HeaderName::from_static("x-accepted-github-permissions"),
                format!("{permission}=write"),
            ));
        }
    }
    Ok(())
}

async fn org_token(
    State(sh): State<Arc<Shared>>,
    Extension(ctx): Extension<ReqCtx>,
    params: Params,
    kind: &'static str,
) -> Result<Response, ApiError> {
    let org = params.get("org")?.to_string();
    let access = ctx.access();
    let login = {
        let st = sh.state_read();
        st.org(&org).ok_or_else(ApiError::not_found)?.login.clone()
    };
    if matches!(access, Access::App { .. }) || !access.manages_org(&login) {
        return Err(not_accessible(access));
    }
    needs(access, "organization_self_hosted_runners")?;
    Ok(issue(&sh, kind, login))
}

async fn repo_token(
    State(sh): State<Arc<Shared>>,
    Extension(ctx): Extension<ReqCtx>,
    params: Params,
    kind: &'static str,
) -> Result<Response, ApiError> {
    let (owner, repo) = (params.get("owner")?, params.get("repo")?);
    let access = ctx.access();
    let full = {
        let st = sh.state_read();
        let (o, r) = readable_repo(&st, access, owner, repo)?;
        if matches!(access, Access::App { .. }) || !access.manages_repo(&o.login, &r.name) {
            return Err(not_accessible(access));
        }
        format!("{}/{}", o.login, r.name)
    };
    needs(access, "administration")?;
    Ok(issue(&sh, kind, full))
}

fn issue(sh: &Shared, kind: &'static str, owner: String) -> Response {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bytes = [0u8; 29];
    OsRng.fill_bytes(&mut bytes);
    let token: String = bytes
        .iter()
        .map(|b| ALPHABET[(*b as usize) % ALPHABET.len()] as char)
        .collect();
    let now = chrono::Utc::now();
    let expires_at = chrono::DateTime::from_timestamp((now + RUNNER_TOKEN_LIFETIME).timestamp(), 0)
        .unwrap_or(now);
    sh.runner_tokens
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(RunnerToken {
            kind,
            owner,
            token: token.clone(),
            expires_at,
        });
    (
        StatusCode::CREATED,
        Json(json!({ "token": token, "expires_at": rfc3339(&expires_at) })),
    )
        .into_response()
}

impl Emulator {
    /// Every runner registration and remove token handed out, oldest first.
    pub fn runner_tokens(&self) -> Vec<RunnerToken> {
        self.shared
            .runner_tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}
