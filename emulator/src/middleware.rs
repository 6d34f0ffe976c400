//! What happens around every API request: counting, request ids, the User-Agent, version
//! and token checks, rate limits, injected faults, latency, and the headers GitHub adds.

use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::auth::{require_user_agent, ApiVersion, BaseUrl, ReqCtx, API_V3};
use super::counters::RequestRecord;
use super::errors::{ApiError, RATE_LIMIT_DOCS_URL};
use super::faults::Hit;
use super::ratelimit::{Charge, InFlight, RateInfo, Refusal};
use super::server::Shared;

/// The route template a response was served by, for the counters.
#[derive(Clone)]
struct RouteTemplate(String);

/// This request's `x-github-request-id`.
#[derive(Clone)]
struct RequestId(String);

/// Marks the answer to a method its path does not take: no route served it.
#[derive(Clone)]
struct NoRoute;

/// Marks a response whose connection is closed before it completes.
#[derive(Clone)]
struct Closed;

/// A response that never completes: its body fails at once, so the server drops the
/// connection, and the client sees a broken exchange rather than an answer.
fn closed_connection() -> Response {
    let failing = futures::stream::once(async {
        Err::<axum::body::Bytes, std::io::Error>(std::io::Error::other("fault: connection closed"))
    });
    let mut resp = axum::body::Body::from_stream(failing).into_response();
    resp.extensions_mut().insert(Closed);
    resp
}

/// Outermost: counts every API request (by route and status), tracks concurrency and
/// stamps `x-github-request-id`. Inspection routes pass straight through.
/// Refuses a request whose `Host` header names neither this machine (loopback names and
/// addresses) nor a host allowed with `Emulator::allow_host`: DNS rebinding would let a
/// web page in a browser on this machine read the emulator (and its decrypted values).
/// A request without `Host` (HTTP/1.0) is answered.
pub(crate) async fn host_guard(
    State(sh): State<Arc<Shared>>,
    req: Request,
    next: Next,
) -> Response {
    let host = req
        .headers()
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().host().map(str::to_string));
    let Some(host) = host else {
        return next.run(req).await;
    };
    let name = host_name(&host);
    let allowed = is_loopback_name(&name)
        || sh
            .allowed_hosts
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&name);
    if allowed {
        next.run(req).await
    } else {
        ApiError::new(
            axum::http::StatusCode::MISDIRECTED_REQUEST,
            format!("this emulator answers loopback names only, not Host {name:?} (rotor emulate --allow-host NAME adds one)"),
        )
        .into_response()
    }
}

/// The name part of a `Host` header, lowercased: `[::1]:8080` -> `::1`, `a:1` -> `a`.
fn host_name(host: &str) -> String {
    let host = host.trim();
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else if host.matches(':').count() == 1 {
        host.split(':').next().unwrap_or("")
    } else {
        host
    };
    name.trim_end_matches('.').to_ascii_lowercase()
}

fn is_loopback_name(name: &str) -> bool {
    name == "localhost"
        || name.ends_with(".localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

pub(crate) async fn track(State(sh): State<Arc<Shared>>, mut req: Request, next: Next) -> Response {
    if req.uri().path().starts_with("/_emulator") {
        return next.run(req).await;
    }
    let _busy = sh.counters.enter();
    let at = sh.counters.elapsed();
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let rid = sh.next_request_id();
    let base = BaseUrl::from_request(req.headers(), req.uri());
    req.extensions_mut().insert(base);
    req.extensions_mut().insert(RequestId(rid.clone()));
    let mut resp = next.run(req).await;
    if let Ok(v) = HeaderValue::from_str(&rid) {
        resp.headers_mut().insert("x-github-request-id", v);
    }
    let route = resp
        .extensions()
        .get::<RouteTemplate>()
        .map(|r| r.0.clone())
        .unwrap_or_else(|| "unmatched".to_string());
    // A closed connection has no status: it is counted as 0.
    let status = if resp.extensions().get::<Closed>().is_some() {
        0
    } else {
        resp.status().as_u16()
    };
    sh.counters.record(&route, status);
    sh.counters.log(RequestRecord {
        at,
        method,
        path,
        status,
    });
    resp
}

/// Around each matched route: admission checks, faults, latency, then the handler.
pub(crate) async fn gate(State(sh): State<Arc<Shared>>, mut req: Request, next: Next) -> Response {
    let template = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| {
            let path = m.as_str();
            let path = path
                .strip_prefix(API_V3)
                .filter(|p| p.starts_with('/'))
                .unwrap_or(path);
            format!("{} {}", req.method(), path)
        })
        .unwrap_or_else(|| "unmatched".to_string());
    let mut resp = match admit(&sh, &req) {
        Err(resp) => *resp,
        Ok(admission) => {
            req.extensions_mut().insert(admission.ctx.clone());
            let fault = sh.faults.take(req.method(), req.uri().path());
            let resp = match fault {
                None => next.run(req).await,
                Some(Hit::Answer(err)) => err.into_response(),
                Some(Hit::AnswerAfterHandling(err)) => {
                    drop(next.run(req).await);
                    err.into_response()
                }
                Some(Hit::Close) => closed_connection(),
                Some(Hit::Stall(d)) => {
                    tokio::time::sleep(d).await;
                    next.run(req).await
                }
            };
            admission.finish(&sh, resp).await
        }
    };
    // A method the path does not take matched no route: counted under `unmatched`, so
    // `by_route` names only routes the emulator serves.
    let template = match resp.extensions().get::<NoRoute>() {
        Some(NoRoute) => "unmatched".to_string(),
        None => template,
    };
    resp.extensions_mut().insert(RouteTemplate(template));
    resp
}

/// Paths no route knows: checked like any request, then 404 `Not Found`.
pub(crate) async fn not_found(State(sh): State<Arc<Shared>>, req: Request) -> Response {
    match admit(&sh, &req) {
        Err(resp) => *resp,
        Ok(admission) => {
            admission
                .finish(&sh, ApiError::not_found().into_response())
                .await
        }
    }
}

/// A known path with a method it does not take: GitHub answers 404 there too.
pub(crate) async fn method_not_allowed(State(sh): State<Arc<Shared>>, req: Request) -> Response {
    let mut resp = if req.extensions().get::<ReqCtx>().is_some() {
        ApiError::not_found().into_response()
    } else {
        not_found(State(sh), req).await
    };
    resp.extensions_mut().insert(NoRoute);
    resp
}

/// An admitted request: its context, its rate standing and its concurrency slot.
struct Admission {
    ctx: ReqCtx,
    rate: RateInfo,
    slot: InFlight,
    /// When the request was admitted: the latency counts from here, so the time the
    /// handler itself takes is part of it (a 50 ms server answers in 50 ms, not 50 ms
    /// plus its work).
    admitted: tokio::time::Instant,
}

impl Admission {
    /// Applies latency (holding the concurrency slot, like a slow server) and adds the
    /// rate-limit and version headers.
    async fn finish(mut self, sh: &Shared, mut resp: Response) -> Response {
        let latency = sh.latency();
        if !latency.is_zero() {
            tokio::time::sleep_until(self.admitted + latency).await;
        }
        if resp.status() == axum::http::StatusCode::NOT_MODIFIED {
            // "Making a conditional request does not count against your primary rate limit
            // if a 304 response is returned."
            self.slot.refund();
            self.rate.used = self.rate.used.saturating_sub(1);
            self.rate.remaining = self.rate.limit.saturating_sub(self.rate.used);
        }
        self.rate.apply(resp.headers_mut());
        let is_json = resp
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes() == b"application/json");
        if is_json {
            set(
                resp.headers_mut(),
                "content-type",
                "application/json; charset=utf-8",
            );
        }
        set(
            resp.headers_mut(),
            "x-github-api-version-selected",
            self.ctx.version.as_str(),
        );
        set(
            resp.headers_mut(),
            "x-github-media-type",
            "github.v3; format=json",
        );
        drop(self.slot);
        resp
    }
}

fn set(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(HeaderName::from_static(name), v);
    }
}

/// The checks GitHub makes before any handler, in its order: User-Agent (403), API version
/// (400), credentials (401), then the primary and secondary rate limits (403).
fn admit(sh: &Arc<Shared>, req: &Request) -> Result<Admission, Box<Response>> {
    let refuse = |e: ApiError| Box::new(e.into_response());
    let headers = req.headers();
    require_user_agent(headers).map_err(refuse)?;
    let version = ApiVersion::from_headers(headers).map_err(refuse)?;
    let caller = match sh.apps.identify(headers) {
        Some(app_caller) => app_caller,
        None => sh.tokens.identify(headers),
    }
    .map_err(refuse)?;
    let base = req
        .extensions()
        .get::<BaseUrl>()
        .cloned()
        .unwrap_or_else(|| BaseUrl::from_request(headers, req.uri()));
    let rid = req
        .extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    let counts = !(req.method() == Method::GET && req.uri().path() == "/rate_limit");
    match sh
        .limiter
        .admit(&caller, Charge::for_method(req.method(), counts))
    {
        Ok((rate, slot)) => Ok(Admission {
            ctx: ReqCtx {
                caller,
                version,
                base,
            },
            rate,
            slot,
            admitted: tokio::time::Instant::now(),
        }),
        Err(Refusal::Primary(info)) => {
            sh.counters.primary_limited();
            let who = if caller.access.is_authenticated() {
                format!("user ID {}", caller.user_id)
            } else {
                "your IP address".to_string()
            };
            let err = ApiError::forbidden(format!(
                "API rate limit exceeded for {who}. If you reach out to GitHub Support for help, please include the request ID {rid}."
            ))
            .with_docs(RATE_LIMIT_DOCS_URL);
            let mut resp = err.into_response();
            info.apply(resp.headers_mut());
            Err(Box::new(resp))
        }
        Err(Refusal::Secondary { info, retry_after }) => {
            sh.counters.secondary_limited();
            let err = ApiError::forbidden(format!(
                "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID {rid}."
            ))
            .with_docs(RATE_LIMIT_DOCS_URL)
            .with_header(HeaderName::from_static("retry-after"), retry_after);
            let mut resp = err.into_response();
            info.apply(resp.headers_mut());
            Err(Box::new(resp))
        }
    }
}
