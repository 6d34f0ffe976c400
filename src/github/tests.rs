//! HTTP behaviour of the client against tiny, scripted local servers (one per test).
//!
//! Each server records every request and answers from the test's script; a request the
//! script does not expect gets a 418 whose message names it, so the test fails readably.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::Router;
use reqwest::header::HeaderMap;
use secrecy::SecretString;

use super::*;
use crate::model::{App, OrgAccess, PutOutcome, SecretScope, Visibility};

const TOKEN: &str = "ghp_TestTokenThatMustNeverLeak0123456789";

// ---- the tiny server -------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Seen {
    method: String,
    /// Path and query exactly as received (percent-encoding intact).
    path: String,
    headers: HeaderMap,
    body: String,
    at: Instant,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body of {} {} is not JSON: {e}", self.method, self.path))
    }

    fn is(&self, method: &str, path: &str) -> bool {
        self.method == method && self.path == path
    }
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
    delay: Duration,
}

impl Reply {
    fn json(status: u16, body: serde_json::Value) -> Self {
        Reply {
            status,
            headers: vec![],
            body: body.to_string(),
            delay: Duration::ZERO,
        }
        .with("content-type", "application/json; charset=utf-8")
    }

    fn empty(status: u16) -> Self {
        Reply {
            status,
            headers: vec![],
            body: String::new(),
            delay: Duration::ZERO,
        }
    }

    fn with(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    fn unexpected(seen: &Seen) -> Self {
        Reply::json(
            418,
            serde_json::json!({ "message": format!("test server did not expect {} {}", seen.method, seen.path) }),
        )
    }
}

/// What the script sees: the request, its 0-based index, and the server's base URL.
type Script = dyn Fn(&Seen, usize, &str) -> Reply + Send + Sync;

struct ServerState {
    script: Box<Script>,
    base: String,
    seen: Mutex<Vec<Seen>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

struct TestServer {
    /// Base URL including the path prefix (empty, or e.g. `/api/v3`).
    base: String,
    state: Arc<ServerState>,
}

impl TestServer {
    fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().expect("log lock").clone()
    }

    fn paths(&self) -> Vec<String> {
        self.seen()
            .iter()
            .map(|s| format!("{} {}", s.method, s.path))
            .collect()
    }

    fn client(&self) -> Client {
        self.client_with(|_| {})
    }

    fn client_with(&self, tweak: impl FnOnce(&mut GitHubConfig)) -> Client {
        let mut config = GitHubConfig {
            api_url: self.base.clone(),
            token: Some(SecretString::from(TOKEN)),
            timeout: Duration::from_secs(5),
            ..GitHubConfig::default()
        };
        tweak(&mut config);
        Client::new(config).expect("client builds")
    }
}

async fn serve(
    prefix: &str,
    script: impl Fn(&Seen, usize, &str) -> Reply + Send + Sync + 'static,
) -> TestServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let base = format!(
        "http://{}{prefix}",
        listener.local_addr().expect("local addr")
    );
    let state = Arc::new(ServerState {
        script: Box::new(script),
        base: base.clone(),
        seen: Mutex::new(Vec::new()),
        in_flight: AtomicUsize::new(0),
        max_in_flight: AtomicUsize::new(0),
    });
    let app = Router::new().fallback(handle).with_state(state.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    TestServer { base, state }
}

async fn handle(State(state): State<Arc<ServerState>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let seen = Seen {
        method: parts.method.to_string(),
        path: parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default(),
        headers: parts.headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        at: Instant::now(),
    };
    let index = {
        let mut log = state.seen.lock().expect("log lock");
        log.push(seen.clone());
        log.len() - 1
    };
    let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    state.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let reply = (state.script)(&seen, index, &state.base);
    tokio::time::sleep(reply.delay).await;
    state.in_flight.fetch_sub(1, Ordering::SeqCst);
    let mut response = Response::builder().status(reply.status);
    for (k, v) in &reply.headers {
        response = response.header(k.as_str(), v.as_str());
    }
    response
        .body(Body::from(reply.body))
        .expect("valid test response")
}

// ---- fixtures ----------------------------------------------------------------------------

fn repo_json(id: u64, name: &str) -> serde_json::Value {
    serde_json::json!({
        "id": id, "node_id": "R_x", "name": name, "full_name": format!("acme/{name}"),
        "private": true, "archived": false, "disabled": false, "visibility": "private",
        "topics": ["pci"], "owner": { "login": "acme" }
    })
}

fn secret_json(name: &str) -> serde_json::Value {
    serde_json::json!({ "name": name, "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-02-01T00:00:00Z" })
}

fn public_key_json() -> serde_json::Value {
    serde_json::json!({ "key_id": "568250167242549743", "key": "hBT5WZEj8ZoOv6TYJsfWq7MxTEQopZO5/IT3ZCVQPzs=" })
}

fn repo_scope() -> SecretScope {
    SecretScope::Repo {
        owner: "acme".into(),
        repo: "api".into(),
        app: App::Actions,
    }
}

fn http_date(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

// ---- headers and auth --------------------------------------------------------------------

#[tokio::test]
async fn every_request_carries_accept_version_user_agent_and_bearer_token() {
    let server = serve("", |seen, _, _| {
        if seen.is("GET", "/repos/acme/api") {
            Reply::json(200, repo_json(1, "api"))
        } else {
            Reply::unexpected(seen)
        }
    })
    .await;
    let repo = server
        .client()
        .get_repo("acme", "api")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(repo.full_name, "acme/api");
    let seen = &server.seen()[0];
    assert_eq!(seen.header("accept"), Some("application/vnd.github+json"));
    assert_eq!(seen.header("x-github-api-version"), Some("2022-11-28"));
    assert_eq!(
        seen.header("user-agent"),
        Some(format!("rotor/{}", env!("CARGO_PKG_VERSION")).as_str())
    );
    assert_eq!(
        seen.header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
}

#[tokio::test]
async fn no_authorization_header_is_sent_without_a_token() {
    let server = serve("", |_, _, _| Reply::json(200, repo_json(1, "api"))).await;
    let client = server.client_with(|c| c.token = None);
    client
        .get_repo("acme", "api")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(server.seen()[0].header("authorization"), None);
}

// ---- pagination ----------------------------------------------------------------------------

#[tokio::test]
async fn org_repos_follow_link_next_exactly_as_given() {
    // Page URLs the client could never build itself: a different path and an opaque cursor.
    let server = serve("", |seen, _, base| match seen.path.as_str() {
        "/orgs/acme/repos?per_page=100&type=all" => Reply::json(200, serde_json::json!([repo_json(1, "a"), repo_json(2, "b")]))
            .with("link", format!(r#"<{base}/organizations/77/repos?per_page=100&type=all&page=2&cursor=Y3Vy>; rel="next", <{base}/organizations/77/repos?per_page=100&type=all&page=3>; rel="last""#)),
        "/organizations/77/repos?per_page=100&type=all&page=2&cursor=Y3Vy" => Reply::json(200, serde_json::json!([repo_json(3, "c")]))
            .with("link", format!(r#"<{base}/organizations/77/repos?per_page=100&type=all&page=1>; rel="prev", <{base}/organizations/77/repos?per_page=100&type=all&page=3>; rel="next""#)),
        "/organizations/77/repos?per_page=100&type=all&page=3" => Reply::json(200, serde_json::json!([repo_json(4, "d")]))
            .with("link", format!(r#"<{base}/organizations/77/repos?per_page=100&type=all&page=2>; rel="prev""#)),
        _ => Reply::unexpected(seen),
    })
    .await;
    let repos = server
        .client()
        .list_org_repos("acme")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = repos.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "c", "d"]);
    assert_eq!(
        server.paths(),
        [
            "GET /orgs/acme/repos?per_page=100&type=all",
            "GET /organizations/77/repos?per_page=100&type=all&page=2&cursor=Y3Vy",
            "GET /organizations/77/repos?per_page=100&type=all&page=3",
        ]
    );
}

#[tokio::test]
async fn an_unchanged_listing_is_asked_for_with_its_etags_and_reused_from_a_304() {
    let server = serve("", |seen, _, base| {
        let page = |etag: &str, body: serde_json::Value, next: Option<String>| {
            if seen.header("if-none-match") == Some(etag) {
                return Reply::empty(304).with("etag", etag);
            }
            let r = Reply::json(200, body).with("etag", etag);
            match next {
                Some(n) => r.with("link", format!(r#"<{n}>; rel="next""#)),
                None => r,
            }
        };
        match seen.path.as_str() {
            "/orgs/acme/repos?per_page=100&type=all" => page(
                "W/\"p1\"",
                serde_json::json!([repo_json(1, "a")]),
                Some(format!(
                    "{base}/orgs/acme/repos?per_page=100&type=all&page=2"
                )),
            ),
            "/orgs/acme/repos?per_page=100&type=all&page=2" => {
                page("W/\"p2\"", serde_json::json!([repo_json(2, "b")]), None)
            }
            _ => Reply::unexpected(seen),
        }
    })
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("listings.json");
    let client = server.client_with(|c| c.listing_cache = Some(file.clone()));
    let first = client
        .list_org_repos("acme")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // A new client (the next run) reads the cache file and asks conditionally.
    let client = server.client_with(|c| c.listing_cache = Some(file.clone()));
    let second = client
        .list_org_repos("acme")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(first, second);
    assert_eq!(second.len(), 2);
    let seen = server.seen();
    assert_eq!(seen.len(), 4);
    assert_eq!(seen[0].header("if-none-match"), None);
    // Both pages asked for at once, each with its own ETag.
    let mut conditional: Vec<(String, Option<&str>)> = seen[2..]
        .iter()
        .map(|s| (s.path.clone(), s.header("if-none-match")))
        .collect();
    conditional.sort();
    assert_eq!(
        conditional,
        [
            (
                "/orgs/acme/repos?per_page=100&type=all".to_string(),
                Some("W/\"p1\"")
            ),
            (
                "/orgs/acme/repos?per_page=100&type=all&page=2".to_string(),
                Some("W/\"p2\"")
            ),
        ]
    );
}

#[tokio::test]
async fn a_listing_whose_pages_no_longer_link_up_is_read_again_page_after_page() {
    use std::sync::atomic::AtomicBool;
    let grown = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&grown);
    let server = serve("", move |seen, _, base| {
        let grown = flag.load(Ordering::SeqCst);
        let page = |etag: &str, body: serde_json::Value, next: Option<String>| {
            if seen.header("if-none-match") == Some(etag) {
                return Reply::empty(304).with("etag", etag);
            }
            let r = Reply::json(200, body).with("etag", etag);
            match next {
                Some(n) => r.with("link", format!(r#"<{n}>; rel="next""#)),
                None => r,
            }
        };
        let p2 = format!("{base}/orgs/acme/repos?per_page=100&type=all&page=2");
        let p3 = format!("{base}/orgs/acme/repos?per_page=100&type=all&page=3");
        match (seen.path.as_str(), grown) {
            ("/orgs/acme/repos?per_page=100&type=all", _) => {
                page("W/\"p1\"", serde_json::json!([repo_json(1, "a")]), Some(p2))
            }
            ("/orgs/acme/repos?per_page=100&type=all&page=2", false) => {
                page("W/\"p2\"", serde_json::json!([repo_json(2, "b")]), None)
            }
            ("/orgs/acme/repos?per_page=100&type=all&page=2", true) => page(
                "W/\"p2b\"",
                serde_json::json!([repo_json(2, "b")]),
                Some(p3),
            ),
            ("/orgs/acme/repos?per_page=100&type=all&page=3", true) => {
                page("W/\"p3\"", serde_json::json!([repo_json(3, "c")]), None)
            }
            _ => Reply::unexpected(seen),
        }
    })
    .await;
    let client = server.client();
    assert_eq!(
        client
            .list_org_repos("acme")
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .len(),
        2
    );
    grown.store(true, Ordering::SeqCst);
    // The cached chain ends at page 2, but page 2 now links to page 3: read again in order.
    let repos = client
        .list_org_repos("acme")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = repos.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "c"]);
    // The new chain is cached: the third listing is three 304s.
    let before = server.seen().len();
    assert_eq!(
        client
            .list_org_repos("acme")
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .len(),
        3
    );
    assert_eq!(server.seen().len() - before, 3);
}

#[tokio::test]
async fn pages_are_handed_over_once_each_in_order_even_when_a_relisting_falls_back() {
    use std::sync::atomic::AtomicBool;
    let grown = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&grown);
    let server = serve("", move |seen, _, base| {
        let grown = flag.load(Ordering::SeqCst);
        let page = |etag: &str, body: serde_json::Value, next: Option<String>| {
            if seen.header("if-none-match") == Some(etag) {
                return Reply::empty(304).with("etag", etag);
            }
            let r = Reply::json(200, body).with("etag", etag);
            match next {
                Some(n) => r.with("link", format!(r#"<{n}>; rel="next""#)),
                None => r,
            }
        };
        let p2 = format!("{base}/orgs/acme/repos?per_page=100&type=all&page=2");
        let p3 = format!("{base}/orgs/acme/repos?per_page=100&type=all&page=3");
        match (seen.path.as_str(), grown) {
            ("/orgs/acme/repos?per_page=100&type=all", _) => page(
                "W/\"p1\"",
                serde_json::json!([repo_json(1, "a"), repo_json(2, "b")]),
                Some(p2),
            ),
            ("/orgs/acme/repos?per_page=100&type=all&page=2", false) => {
                page("W/\"p2\"", serde_json::json!([repo_json(3, "c")]), None)
            }
            ("/orgs/acme/repos?per_page=100&type=all&page=2", true) => page(
                "W/\"p2b\"",
                serde_json::json!([repo_json(3, "c")]),
                Some(p3),
            ),
            ("/orgs/acme/repos?per_page=100&type=all&page=3", true) => {
                page("W/\"p3\"", serde_json::json!([repo_json(4, "d")]), None)
            }
            _ => Reply::unexpected(seen),
        }
    })
    .await;
    let client = server.client();
    let pages = |client: Client| async move {
        let mut pages: Vec<Vec<String>> = Vec::new();
        client
            .list_org_repos_pages("acme", |page| {
                pages.push(page.iter().map(|r| r.name.clone()).collect())
            })
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        pages
    };
    assert_eq!(pages(client.clone()).await, [vec!["a", "b"], vec!["c"]]);
    grown.store(true, Ordering::SeqCst);
    // The relisting finds the chain changed and reads again page after page: nothing twice.
    assert_eq!(
        pages(client.clone()).await,
        [vec!["a", "b"], vec!["c"], vec!["d"]]
    );
    // The same listing, collected, is the pages in order.
    let names: Vec<String> = client
        .list_org_repos("acme")
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, ["a", "b", "c", "d"]);
}

#[tokio::test]
async fn an_enterprise_server_base_path_is_kept_for_requests_and_links() {
    let server = serve("/api/v3", |seen, _, base| match seen.path.as_str() {
        "/api/v3/repos/acme/api/actions/secrets?per_page=100" => Reply::json(
            200,
            serde_json::json!({ "total_count": 2, "secrets": [secret_json("ONE")] }),
        )
        .with(
            "link",
            format!(r#"<{base}/repositories/42/actions/secrets?per_page=100&page=2>; rel="next""#),
        ),
        "/api/v3/repositories/42/actions/secrets?per_page=100&page=2" => Reply::json(
            200,
            serde_json::json!({ "total_count": 2, "secrets": [secret_json("TWO")] }),
        ),
        _ => Reply::unexpected(seen),
    })
    .await;
    assert!(server.base.ends_with("/api/v3"));
    // A trailing slash, as users write it, is trimmed; the base path is kept.
    let client = server.client_with(|c| c.api_url = format!("{}/", c.api_url));
    assert_eq!(client.api_url(), server.base);
    let secrets = client
        .list_secrets(&repo_scope())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = secrets.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["ONE", "TWO"]);
    assert_eq!(
        secrets[0].updated_at.to_rfc3339(),
        "2026-02-01T00:00:00+00:00"
    );
}

#[tokio::test]
async fn errors_show_paths_relative_to_an_enterprise_base() {
    let server = serve("/api/v3", |_, _, _| {
        Reply::json(404, serde_json::json!({ "message": "Not Found" }))
    })
    .await;
    let err = server
        .client()
        .get_repo("acme", "gone")
        .await
        .expect_err("404");
    assert_eq!(err.path, "/repos/acme/gone");
    assert_eq!(err.to_string(), "GET /repos/acme/gone: 404 Not Found");
}

#[tokio::test]
async fn a_pagination_link_to_another_origin_is_refused_and_not_followed() {
    let server = serve("", |_, _, _| {
        Reply::json(200, serde_json::json!([repo_json(1, "a")])).with(
            "link",
            r#"<https://collector.example/orgs/acme/repos?page=2>; rel="next""#,
        )
    })
    .await;
    let err = server
        .client()
        .list_org_repos("acme")
        .await
        .expect_err("foreign link");
    assert_eq!(err.kind, ErrorKind::Decode);
    assert!(
        err.to_string().contains("leads off the API origin"),
        "{err}"
    );
    assert_eq!(server.seen().len(), 1);
}

#[tokio::test]
async fn a_pagination_link_that_loops_is_refused() {
    let server = serve("", |_, _, base| {
        Reply::json(200, serde_json::json!([repo_json(1, "a")])).with(
            "link",
            format!(r#"<{base}/orgs/acme/repos?per_page=100&type=all>; rel="next""#),
        )
    })
    .await;
    let err = server
        .client()
        .list_org_repos("acme")
        .await
        .expect_err("loop");
    assert!(err.to_string().contains("loops back"), "{err}");
    assert_eq!(server.seen().len(), 1);
}

#[tokio::test]
async fn environments_are_listed_by_name_and_their_names_are_percent_encoded() {
    let server = serve("", |seen, _, _| match seen.path.as_str() {
        "/repos/acme/api/environments?per_page=100" => Reply::json(
            200,
            serde_json::json!({ "total_count": 2, "environments": [
                { "id": 1, "name": "production" }, { "id": 2, "name": "pre prod" } ] }),
        ),
        "/repos/acme/api/environments/pre%20prod/secrets/public-key" => {
            Reply::json(200, public_key_json())
        }
        _ => Reply::unexpected(seen),
    })
    .await;
    let client = server.client();
    let envs = client
        .list_environments("acme", "api")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(envs, ["production", "pre prod"]);
    let scope = SecretScope::Environment {
        owner: "acme".into(),
        repo: "api".into(),
        environment: envs[1].clone(),
    };
    let key = client
        .public_key(&scope)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(key.key_id, "568250167242549743");
}

#[tokio::test]
async fn a_renamed_repository_is_followed_through_its_301() {
    let server = serve("", |seen, _, base| match seen.path.as_str() {
        "/repos/acme/old-name" => Reply::json(
            301,
            serde_json::json!({ "message": "Moved Permanently", "url": format!("{base}/repositories/7") }),
        )
        .with("location", format!("{base}/repositories/7")),
        "/repositories/7" => Reply::json(200, repo_json(7, "new-name")),
        _ => Reply::unexpected(seen),
    })
    .await;
    let repo = server
        .client()
        .get_repo("acme", "old-name")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((repo.id, repo.name.as_str()), (7, "new-name"));
    let seen = server.seen();
    assert_eq!(
        seen[1].header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
}

// ---- writes --------------------------------------------------------------------------------

#[tokio::test]
async fn put_secret_with_meta_returns_githubs_request_id_for_the_audit() {
    let server = serve("", |seen, _, _| match seen.method.as_str() {
        "PUT" => Reply::empty(204).with("x-github-request-id", "C0DE:1A2B:3C4D5E:6F7081:65A1B2C3"),
        _ => Reply::unexpected(seen),
    })
    .await;
    let receipt = server
        .client()
        .put_secret_with_meta(&repo_scope(), "X", "c2VhbGVk", "k1", None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(receipt.outcome, PutOutcome::Updated);
    assert_eq!(
        receipt.request_id.as_deref(),
        Some("C0DE:1A2B:3C4D5E:6F7081:65A1B2C3")
    );
}

#[tokio::test]
async fn put_secret_maps_201_to_created_and_204_to_updated() {
    let server = serve("", |seen, index, _| {
        match (seen.method.as_str(), seen.path.as_str(), index) {
            ("PUT", "/repos/acme/api/dependabot/secrets/NPM_TOKEN", 0) => {
                Reply::json(201, serde_json::json!({}))
            }
            ("PUT", "/repos/acme/api/dependabot/secrets/NPM_TOKEN", 1) => Reply::empty(204),
            _ => Reply::unexpected(seen),
        }
    })
    .await;
    let client = server.client();
    let scope = SecretScope::Repo {
        owner: "acme".into(),
        repo: "api".into(),
        app: App::Dependabot,
    };
    let first = client
        .put_secret(&scope, "NPM_TOKEN", "c2VhbGVk", "568250167242549743", None)
        .await;
    let second = client
        .put_secret(&scope, "NPM_TOKEN", "c2VhbGVk", "568250167242549743", None)
        .await;
    assert_eq!(first.unwrap_or_else(|e| panic!("{e}")), PutOutcome::Created);
    assert_eq!(
        second.unwrap_or_else(|e| panic!("{e}")),
        PutOutcome::Updated
    );
    let seen = server.seen();
    assert_eq!(seen[0].header("content-type"), Some("application/json"));
    assert_eq!(
        seen[0].json(),
        serde_json::json!({ "encrypted_value": "c2VhbGVk", "key_id": "568250167242549743" })
    );
}

#[tokio::test]
async fn org_secrets_send_visibility_and_repository_ids_only_when_selected() {
    let server = serve("", |seen, _, _| {
        if seen.method == "PUT" && seen.path.starts_with("/orgs/acme/actions/secrets/") {
            Reply::empty(204)
        } else {
            Reply::unexpected(seen)
        }
    })
    .await;
    let client = server.client();
    let scope = SecretScope::Org {
        org: "acme".into(),
        app: App::Actions,
    };
    let selected = OrgAccess {
        visibility: Visibility::Selected,
        selected_repository_ids: vec![11, 12],
    };
    let private = OrgAccess {
        visibility: Visibility::Private,
        selected_repository_ids: vec![11],
    };
    client
        .put_secret(&scope, "A", "c2VhbGVk", "k1", Some(&selected))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    client
        .put_secret(&scope, "B", "c2VhbGVk", "k1", Some(&private))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let seen = server.seen();
    assert_eq!(
        seen[0].json(),
        serde_json::json!({ "encrypted_value": "c2VhbGVk", "key_id": "k1", "visibility": "selected", "selected_repository_ids": [11, 12] })
    );
    assert_eq!(
        seen[1].json(),
        serde_json::json!({ "encrypted_value": "c2VhbGVk", "key_id": "k1", "visibility": "private" })
    );
}

#[tokio::test]
async fn mismatched_access_is_refused_before_any_request() {
    let server = serve("", |seen, _, _| Reply::unexpected(seen)).await;
    let client = server.client();
    let org = SecretScope::Org {
        org: "acme".into(),
        app: App::Actions,
    };
    let err = client
        .put_secret(&org, "A", "c2VhbGVk", "k1", None)
        .await
        .expect_err("no visibility");
    assert_eq!(err.kind, ErrorKind::InvalidInput);
    let access = OrgAccess {
        visibility: Visibility::All,
        selected_repository_ids: vec![],
    };
    let err = client
        .put_secret(&repo_scope(), "A", "c2VhbGVk", "k1", Some(&access))
        .await
        .expect_err("repo with visibility");
    assert_eq!(err.kind, ErrorKind::InvalidInput);
    assert!(server.seen().is_empty());
}

#[tokio::test]
async fn selected_repositories_are_replaced_and_409_means_conflict() {
    let server = serve("", |seen, index, _| match (seen.path.as_str(), index) {
        ("/orgs/acme/dependabot/secrets/NPM_TOKEN/repositories", 0) => Reply::empty(204),
        ("/orgs/acme/dependabot/secrets/NPM_TOKEN/repositories", 1) => Reply::json(
            409,
            serde_json::json!({ "message": "Visibility must be set to selected" }),
        ),
        _ => Reply::unexpected(seen),
    })
    .await;
    let client = server.client();
    client
        .set_selected_repos("acme", App::Dependabot, "NPM_TOKEN", &[5, 6])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let err = client
        .set_selected_repos("acme", App::Dependabot, "NPM_TOKEN", &[5])
        .await
        .expect_err("409");
    assert_eq!(err.kind, ErrorKind::Conflict);
    assert_eq!(
        err.to_string(),
        "PUT /orgs/acme/dependabot/secrets/NPM_TOKEN/repositories: 409 Conflict: Visibility must be set to selected"
    );
    let seen = server.seen();
    assert_eq!(seen[0].method, "PUT");
    assert_eq!(
        seen[0].json(),
        serde_json::json!({ "selected_repository_ids": [5, 6] })
    );
    assert_eq!(seen.len(), 2, "a 409 is not retried");
}

// ---- errors and retries --------------------------------------------------------------------

#[tokio::test]
async fn githubs_error_body_becomes_a_readable_error_without_retrying() {
    let server = serve("", |_, _, _| {
        Reply::json(
            404,
            serde_json::json!({ "message": "Not Found", "documentation_url": "https://docs.github.com/rest/actions/secrets#get-a-repository-public-key", "status": "404" }),
        )
        .with("x-github-request-id", "CAFE:1234:5678")
    })
    .await;
    let err = server
        .client()
        .public_key(&repo_scope())
        .await
        .expect_err("404");
    assert_eq!(err.kind, ErrorKind::NotFound);
    assert_eq!(err.status, Some(404));
    assert_eq!(err.request_id.as_deref(), Some("CAFE:1234:5678"));
    assert_eq!(
        err.documentation_url.as_deref(),
        Some("https://docs.github.com/rest/actions/secrets#get-a-repository-public-key")
    );
    assert_eq!(
        err.to_string(),
        "GET /repos/acme/api/actions/secrets/public-key: 404 Not Found (request id CAFE:1234:5678)"
    );
    assert!(!format!("{err} {err:?}").contains(TOKEN));
    assert_eq!(server.seen().len(), 1);
}

#[tokio::test]
async fn a_stale_key_id_is_refused_with_422_and_its_details() {
    let server = serve("", |_, _, _| {
        Reply::json(
            422,
            serde_json::json!({ "message": "Validation Failed", "errors": [{ "resource": "Secret", "field": "key_id", "code": "invalid" }] }),
        )
    })
    .await;
    let err = server
        .client()
        .put_secret(&repo_scope(), "X", "c2VhbGVk", "old", None)
        .await
        .expect_err("422");
    assert_eq!(err.kind, ErrorKind::Validation);
    assert!(
        err.to_string()
            .ends_with("422 Unprocessable Entity: Validation Failed [Secret.key_id invalid]"),
        "{err}"
    );
    assert_eq!(server.seen().len(), 1);
}

#[tokio::test]
async fn a_503_is_retried_and_then_succeeds() {
    let server = serve("", |_, index, _| match index {
        0 => Reply::json(503, serde_json::json!({ "message": "Service Unavailable" })),
        _ => Reply::json(200, public_key_json()),
    })
    .await;
    let key = server
        .client()
        .public_key(&repo_scope())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(key.key, "hBT5WZEj8ZoOv6TYJsfWq7MxTEQopZO5/IT3ZCVQPzs=");
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    // Full jitter on the first retry: below the 500 ms base.
    assert!(seen[1].at - seen[0].at < Duration::from_millis(1_000));
}

#[tokio::test]
async fn a_put_that_timed_out_is_sent_again() {
    let server = serve("", |_, index, _| match index {
        0 => Reply::empty(204).after(Duration::from_secs(2)),
        _ => Reply::empty(204),
    })
    .await;
    let client = server.client_with(|c| c.timeout = Duration::from_millis(300));
    let outcome = client
        .put_secret(&repo_scope(), "X", "c2VhbGVk", "k1", None)
        .await;
    assert_eq!(
        outcome.unwrap_or_else(|e| panic!("{e}")),
        PutOutcome::Updated
    );
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[0].body, seen[1].body,
        "the retry resends the same body"
    );
}

#[tokio::test]
async fn retries_stop_after_max_retries_with_the_last_error() {
    let server = serve("", |_, _, _| {
        Reply::json(502, serde_json::json!({ "message": "Server Error" }))
    })
    .await;
    let client = server.client_with(|c| c.max_retries = 2);
    let err = client
        .get_repo("acme", "api")
        .await
        .expect_err("always 502");
    assert_eq!(err.kind, ErrorKind::Server);
    assert_eq!(err.attempts, 3);
    assert_eq!(server.seen().len(), 3);
    assert_eq!(
        err.to_string(),
        "GET /repos/acme/api: 502 Bad Gateway: Server Error after 3 attempts"
    );
}

#[tokio::test]
async fn retry_after_is_honoured_before_the_next_attempt() {
    let server = serve("", |_, index, _| match index {
        0 => Reply::json(
            429,
            serde_json::json!({ "message": "You have exceeded a secondary rate limit." }),
        )
        .with("retry-after", "1"),
        _ => Reply::json(200, repo_json(1, "api")),
    })
    .await;
    let started = Instant::now();
    server
        .client()
        .get_repo("acme", "api")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert!(
        seen[1].at - seen[0].at >= Duration::from_secs(1),
        "waited {:?}",
        seen[1].at - seen[0].at
    );
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[tokio::test]
async fn a_primary_limit_waits_for_the_reset_on_the_servers_clock() {
    // The server's clock runs an hour ahead; its reset is "now" on its clock. Read naively
    // the reset is an hour away (beyond max_retry_wait); corrected by Date it is due now,
    // so the client waits only the one-second margin.
    let server = serve("", |_, index, _| match index {
        0 => {
            let server_now = chrono::Utc::now() + chrono::Duration::hours(1);
            Reply::json(
                403,
                serde_json::json!({ "message": "API rate limit exceeded for user ID 1." }),
            )
            .with("x-ratelimit-limit", "5000")
            .with("x-ratelimit-remaining", "0")
            .with("x-ratelimit-reset", server_now.timestamp().to_string())
            .with("date", http_date(server_now))
        }
        _ => Reply::json(200, repo_json(1, "api")),
    })
    .await;
    server
        .client()
        .get_repo("acme", "api")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    let waited = seen[1].at - seen[0].at;
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(4),
        "waited {waited:?}"
    );
}

#[tokio::test]
async fn a_rate_limit_longer_than_max_retry_wait_is_returned_at_once() {
    let server = serve("", |_, _, _| {
        Reply::json(
            403,
            serde_json::json!({ "message": "You have exceeded a secondary rate limit." }),
        )
        .with("retry-after", "3600")
    })
    .await;
    let started = Instant::now();
    let err = server
        .client()
        .get_repo("acme", "api")
        .await
        .expect_err("rate limited");
    assert_eq!(
        err.kind,
        ErrorKind::RateLimited {
            retry_after: Some(Duration::from_secs(3600)),
            reset: None
        }
    );
    assert_eq!(server.seen().len(), 1);
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(
        err.to_string().contains(
            "403 Forbidden: You have exceeded a secondary rate limit. (retry after 3600s)"
        ),
        "{err}"
    );
}

#[tokio::test]
async fn a_refused_connection_is_a_transport_error_and_is_retried() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);
    let client = Client::new(GitHubConfig {
        api_url: base,
        token: Some(SecretString::from(TOKEN)),
        max_retries: 1,
        ..GitHubConfig::default()
    })
    .expect("client builds");
    let err = client
        .get_repo("acme", "api")
        .await
        .expect_err("nothing listens");
    assert_eq!(err.kind, ErrorKind::Transport);
    assert_eq!(err.attempts, 2);
    let shown = err.to_string();
    assert!(
        shown.starts_with("GET /repos/acme/api: transport error"),
        "{shown}"
    );
    assert!(!shown.contains(TOKEN));
}

// ---- concurrency and rate-limit state ------------------------------------------------------

#[tokio::test]
async fn requests_in_flight_never_exceed_max_concurrency() {
    let server = serve("", |_, _, _| {
        Reply::json(200, repo_json(1, "api")).after(Duration::from_millis(100))
    })
    .await;
    let client = server.client_with(|c| c.max_concurrency = 2);
    let calls = (0..8).map(|i| {
        let client = client.clone();
        async move { client.get_repo("acme", &format!("r{i}")).await }
    });
    for result in futures::future::join_all(calls).await {
        result.unwrap_or_else(|e| panic!("{e}"));
    }
    assert_eq!(server.seen().len(), 8);
    assert_eq!(server.state.max_in_flight.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn the_last_rate_limit_headers_are_kept_and_rate_limit_reads_core() {
    let server = serve("", |seen, _, _| match seen.path.as_str() {
        "/repos/acme/api" => Reply::json(200, repo_json(1, "api"))
            .with("x-ratelimit-limit", "5000")
            .with("x-ratelimit-remaining", "4990")
            .with("x-ratelimit-used", "10")
            .with("x-ratelimit-reset", "1800000000")
            .with("x-ratelimit-resource", "core"),
        "/rate_limit" => Reply::json(
            200,
            serde_json::json!({
                "resources": {
                    "core": { "limit": 5000, "remaining": 4989, "reset": 1800000000, "used": 11 },
                    "search": { "limit": 30, "remaining": 30, "reset": 1800000000, "used": 0 }
                },
                "rate": { "limit": 5000, "remaining": 4989, "reset": 1800000000, "used": 11 }
            }),
        ),
        _ => Reply::unexpected(seen),
    })
    .await;
    let client = server.client();
    assert_eq!(client.last_rate_limit(), None);
    client
        .get_repo("acme", "api")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let last = client.last_rate_limit().expect("headers were sent");
    assert_eq!(
        (last.limit, last.remaining, last.used),
        (5000, 4990, Some(10))
    );
    assert_eq!(last.resource.as_deref(), Some("core"));
    let core = client.rate_limit().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (core.remaining, core.used, core.reset.timestamp()),
        (4989, Some(11), 1_800_000_000)
    );
    // /rate_limit sent no headers: the last snapshot is unchanged, shared by clones.
    assert_eq!(client.clone().last_rate_limit(), Some(last));
}

#[tokio::test]
async fn an_unexpected_request_fails_with_a_readable_message() {
    let server = serve("", |seen, _, _| Reply::unexpected(seen)).await;
    let err = server
        .client()
        .get_repo("acme", "api")
        .await
        .expect_err("418");
    assert_eq!(err.kind, ErrorKind::UnexpectedStatus);
    assert!(
        err.to_string()
            .contains("test server did not expect GET /repos/acme/api"),
        "{err}"
    );
}
