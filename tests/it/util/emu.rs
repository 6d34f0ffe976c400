//! Emulator harness: the in-process GitHub emulator on a free loopback port, and a small
//! client that talks to it the way a careful GitHub client does (User-Agent, token, version).

use base64::Engine as _;
use crypto_box::aead::OsRng;
use reqwest::{Method, RequestBuilder, Response};
use serde_json::Value;

pub use github_emulator::{Emulator, FleetSpec, ServerHandle, DEFAULT_TOKEN};

/// Starts an emulator holding `spec` on 127.0.0.1 with a free port.
pub async fn start(spec: FleetSpec) -> (Emulator, ServerHandle) {
    let emu = Emulator::new(spec);
    let addr = "127.0.0.1:0".parse().expect("loopback address");
    let handle = emu
        .serve(addr)
        .await
        .expect("the emulator binds a loopback port");
    (emu, handle)
}

/// Seals `value` to a base64 public key, as GitHub's docs describe: base64(crypto_box_seal).
pub fn seal(public_key_b64: &str, value: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    let bytes = b64.decode(public_key_b64).expect("public key is base64");
    let pk = crypto_box::PublicKey::from_slice(&bytes).expect("public key is 32 bytes");
    b64.encode(pk.seal(&mut OsRng, value).expect("sealing succeeds"))
}

/// A GitHub client for one emulator and one token (or none).
#[derive(Clone)]
pub struct Gh {
    pub http: reqwest::Client,
    pub url: String,
    pub token: Option<String>,
}

impl Gh {
    /// A client with the default token.
    pub fn new(handle: &ServerHandle) -> Self {
        Self::with_token(handle, Some(DEFAULT_TOKEN))
    }

    pub fn with_token(handle: &ServerHandle, token: Option<&str>) -> Self {
        Gh {
            http: reqwest::Client::builder()
                .user_agent("rotor-tests")
                .build()
                .expect("client builds"),
            url: handle.url.clone(),
            token: token.map(String::from),
        }
    }

    /// A request to `path` (relative to the API root, or a full URL) with the usual headers.
    pub fn req(&self, method: Method, path: &str) -> RequestBuilder {
        self.req_version(method, path, "2022-11-28")
    }

    /// Like [`Gh::req`], with another `X-GitHub-Api-Version`.
    pub fn req_version(&self, method: Method, path: &str, version: &str) -> RequestBuilder {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.url)
        };
        let mut rb = self
            .http
            .request(method, url)
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", version);
        if let Some(t) = &self.token {
            rb = rb.bearer_auth(t);
        }
        rb
    }

    pub async fn get(&self, path: &str) -> Response {
        self.req(Method::GET, path)
            .send()
            .await
            .expect("request is answered")
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let resp = self.get(path).await;
        assert_eq!(resp.status(), 200, "GET {path}");
        resp.json().await.expect("JSON body")
    }

    pub async fn put_json(&self, path: &str, body: &Value) -> Response {
        self.req(Method::PUT, path)
            .json(body)
            .send()
            .await
            .expect("request is answered")
    }

    pub async fn delete(&self, path: &str) -> Response {
        self.req(Method::DELETE, path)
            .send()
            .await
            .expect("request is answered")
    }

    /// `(key_id, key)` from `{secrets_path}/public-key`.
    pub async fn public_key(&self, secrets_path: &str) -> (String, String) {
        let v = self.get_json(&format!("{secrets_path}/public-key")).await;
        (
            v["key_id"].as_str().expect("key_id").to_string(),
            v["key"].as_str().expect("key").to_string(),
        )
    }

    /// Fetches the scope's key, seals `value` and PUTs it; `extra` fields (visibility...)
    /// are merged into the body.
    pub async fn put_secret_with(
        &self,
        secrets_path: &str,
        name: &str,
        value: &str,
        extra: Value,
    ) -> Response {
        let (key_id, key) = self.public_key(secrets_path).await;
        let mut body = serde_json::json!({
            "encrypted_value": seal(&key, value.as_bytes()),
            "key_id": key_id,
        });
        if let (Some(b), Value::Object(more)) = (body.as_object_mut(), extra) {
            b.extend(more);
        }
        self.put_json(&format!("{secrets_path}/{name}"), &body)
            .await
    }

    pub async fn put_secret(&self, secrets_path: &str, name: &str, value: &str) -> Response {
        self.put_secret_with(secrets_path, name, value, Value::Null)
            .await
    }
}

/// The `rel="next"` URL of a `Link` header, if any.
pub fn next_link(resp: &Response) -> Option<String> {
    let link = resp.headers().get("link")?.to_str().ok()?;
    link.split(", ").find_map(|part| {
        let (url, rel) = part.split_once("; ")?;
        (rel == "rel=\"next\"").then(|| {
            url.trim_start_matches('<')
                .trim_end_matches('>')
                .to_string()
        })
    })
}
