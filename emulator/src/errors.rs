//! GitHub-shaped error responses, and the errors of setting an emulator up.

use std::path::PathBuf;

use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// Where GitHub's error bodies point when no page is more specific.
pub(crate) const DOCS_URL: &str = "https://docs.github.com/rest";
/// Where GitHub's rate-limit error bodies point.
pub(crate) const RATE_LIMIT_DOCS_URL: &str =
    "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api";

/// One error answered the way GitHub answers it: a status code and a body
/// `{"message", "documentation_url", "status"}`, plus `errors` for some 422s.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub documentation_url: &'static str,
    pub errors: Vec<Value>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            documentation_url: DOCS_URL,
            errors: Vec::new(),
            headers: Vec::new(),
        }
    }

    /// 404 `Not Found`: also what GitHub answers for things the caller may not see.
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "Not Found")
    }

    pub fn unauthorized(message: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }

    /// 400 `Problems parsing JSON`.
    pub fn bad_json() -> Self {
        Self::new(StatusCode::BAD_REQUEST, "Problems parsing JSON")
    }

    /// 422 for a body that breaks the endpoint's JSON schema:
    /// `Invalid request.\n\n<detail>`, GitHub's wording for schema failures.
    pub fn invalid_request(detail: impl AsRef<str>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("Invalid request.\n\n{}", detail.as_ref()),
        )
    }

    /// 422 `Validation Failed` with one entry in `errors`.
    pub fn validation(resource: &str, field: &str, code: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        let mut err = Self::new(StatusCode::UNPROCESSABLE_ENTITY, message.clone());
        err.errors.push(json!({
            "resource": resource,
            "field": field,
            "code": code,
            "message": message,
        }));
        err
    }

    pub fn with_docs(mut self, url: &'static str) -> Self {
        self.documentation_url = url;
        self
    }

    pub fn with_header(mut self, name: HeaderName, value: impl ToString) -> Self {
        if let Ok(v) = HeaderValue::from_str(&value.to_string()) {
            self.headers.push((name, v));
        }
        self
    }

    /// The JSON body GitHub sends with this error.
    pub fn body(&self) -> Value {
        let mut body = json!({
            "message": self.message,
            "documentation_url": self.documentation_url,
            "status": self.status.as_u16().to_string(),
        });
        if !self.errors.is_empty() {
            body["errors"] = Value::Array(self.errors.clone());
        }
        body
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.body();
        let mut resp = (self.status, axum::Json(body)).into_response();
        for (name, value) in self.headers {
            resp.headers_mut().insert(name, value);
        }
        resp
    }
}

/// Why a fleet could not be loaded or built.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("cannot read fleet file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("fleet file {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("fleet is not valid: {0}")]
    Invalid(String),
}
