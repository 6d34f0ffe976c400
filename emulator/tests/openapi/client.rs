//! A client for one running emulator that checks every answer against the published
//! description as it arrives, and remembers what it checked (for the coverage test).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use base64::Engine as _;
use crypto_box::aead::OsRng;
use github_emulator::{AppKeyPair, Emulator, FleetSpec, ServerHandle};
use secrecy::ExposeSecret as _;
use serde_json::{json, Value};

use super::validate::{assert_conforms, template_matches, Spec};

/// A route, or a status of a route, the emulator answers but the description does not
/// document. Each entry says why the emulator answers it anyway.
pub struct Undocumented {
    pub method: &'static str,
    /// A path template in the description's style, e.g. `/orgs/{org}`. The segment `{app}`
    /// stands for each of `actions`, `dependabot` and `codespaces`: the entry is then three
    /// entries, each of which must be hit and none of which may be documented.
    pub template: &'static str,
    pub status: u16,
    pub why: &'static str,
}

/// The secrets apps `{app}` stands for.
pub const APPS: [&str; 3] = ["actions", "dependabot", "codespaces"];

/// One entry of the list with `{app}` replaced.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Known {
    pub method: &'static str,
    pub template: String,
    pub status: u16,
    pub why: &'static str,
}

impl std::fmt::Display for Known {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} {} ({})",
            self.method, self.template, self.status, self.why
        )
    }
}

/// The entries of `list`, `{app}` expanded.
pub fn expand(list: &[Undocumented]) -> Vec<Known> {
    let mut out = Vec::new();
    for u in list {
        assert!(
            !u.why.trim().is_empty(),
            "{} {}: say why",
            u.method,
            u.template
        );
        let apps: &[&str] = if u.template.contains("{app}") {
            &APPS
        } else {
            &[""]
        };
        for app in apps {
            out.push(Known {
                method: u.method,
                template: u.template.replace("{app}", app),
                status: u.status,
                why: u.why,
            });
        }
    }
    out
}

/// The entries of `known` the description documents: its operation is there and lists
/// the status (so the entry is stale).
pub fn documented_entries<'a>(spec: &Spec, known: &'a [Known]) -> Vec<&'a Known> {
    known
        .iter()
        .filter(|k| {
            spec.operation(k.method, &k.template)
                .is_some_and(|op| spec.response(&op, k.status).is_some())
        })
        .collect()
}

/// One answer, as it came.
pub struct Answer {
    pub status: u16,
    /// Lower-case names.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// Talks to one emulator; every answer is judged (see [`Api::send`]).
pub struct Api {
    http: reqwest::Client,
    pub url: String,
    pub spec: Spec,
    known: Vec<Known>,
    /// `(METHOD, template, status)` of every answer validated against the description.
    documented: Mutex<BTreeSet<(String, String, u16)>>,
    /// Indexes into `known` that some answer matched.
    used_known: Mutex<BTreeSet<usize>>,
    /// How many answers were judged: validated against the description, or matched to
    /// an entry of `known`.
    judged: Mutex<(u64, u64)>,
}

/// Starts an emulator holding `fleet` on a free loopback port.
pub async fn start(fleet: FleetSpec) -> (Emulator, ServerHandle) {
    let emu = Emulator::new(fleet);
    let addr = "127.0.0.1:0".parse().expect("loopback address");
    let handle = emu.serve(addr).await.expect("the emulator binds a port");
    (emu, handle)
}

impl Api {
    pub fn new(handle: &ServerHandle, spec: Spec, known: &[Undocumented]) -> Self {
        Api {
            // Redirects are answers to judge (the 302s of the log routes), not to follow.
            http: reqwest::Client::builder()
                .user_agent("openapi-conformance")
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client builds"),
            url: handle.url.clone(),
            spec,
            known: expand(known),
            documented: Mutex::default(),
            used_known: Mutex::default(),
            judged: Mutex::default(),
        }
    }

    /// Sends a request (a JSON body when given; extra headers when given), then judges
    /// the answer: an answer listed in the known undocumented ones is checked only as
    /// GitHub's error shape (4xx) or not at all (2xx); any other answer must conform to
    /// the description, or the test fails with the pointer and rule of every mismatch.
    pub async fn send(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let answer = self.raw(token, method, path, body, headers).await;
        self.judge(method, path, &answer);
        answer
    }

    /// Sends a request and returns the answer unjudged (for probes).
    pub async fn raw(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
        let mut rb = self
            .http
            .request(m, format!("{}{path}", self.url))
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", "2022-11-28");
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        if let Some(b) = body {
            rb = rb
                .header("content-type", "application/json")
                .body(serde_json::to_vec(b).expect("JSON"));
        }
        let resp = rb.send().await.expect("the emulator answers");
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    v.to_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        let body = resp.bytes().await.expect("a body").to_vec();
        Answer {
            status,
            headers,
            body,
        }
    }

    /// [`Api::send`] without extra headers.
    pub async fn call(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Answer {
        self.send(token, method, path, body, &[]).await
    }

    /// Like [`Api::call`], and the status must be `expected`.
    pub async fn expect(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: Option<&Value>,
        expected: u16,
    ) -> Value {
        let a = self.call(token, method, path, body).await;
        assert_eq!(
            a.status,
            expected,
            "{method} {path}: {}",
            String::from_utf8_lossy(&a.body)
        );
        a.json()
    }

    fn judge(&self, method: &str, path: &str, a: &Answer) {
        let bare = path.split('?').next().unwrap_or(path);
        let op = self.spec.operation(method, bare);
        let documented = op
            .as_ref()
            .is_some_and(|op| self.spec.response(op, a.status).is_some());
        // A documented answer is always validated against the description; the list is
        // only for the others (an entry no answer needs is reported by `unused_known`).
        let known = (!documented)
            .then(|| {
                self.known.iter().position(|k| {
                    k.method == method
                        && k.status == a.status
                        && template_matches(&k.template, bare)
                })
            })
            .flatten();
        if let Some(i) = known {
            self.used_known.lock().expect("lock").insert(i);
            self.judged.lock().expect("lock").1 += 1;
            if a.status >= 400 {
                // Not documented here, but GitHub's errors all share one shape.
                let schema = json!({"$ref": "#/components/schemas/basic-error"});
                let body: Value = serde_json::from_slice(&a.body).unwrap_or(Value::Null);
                let mut errs = Vec::new();
                self.spec.validate(&schema, &body, "", &mut errs);
                assert!(
                    errs.is_empty() && body["message"].is_string(),
                    "{method} {path} -> {}: not GitHub's error shape: {errs:?} {body}",
                    a.status
                );
            }
            return;
        }
        assert_conforms(&self.spec, method, bare, a.status, &a.headers, &a.body);
        self.judged.lock().expect("lock").0 += 1;
        let template = op.map(|o| o.template.to_string()).unwrap_or_default();
        self.documented
            .lock()
            .expect("lock")
            .insert((method.to_string(), template, a.status));
    }

    /// Every `(METHOD, template, status)` validated against the description so far.
    pub fn documented(&self) -> BTreeSet<(String, String, u16)> {
        self.documented.lock().expect("lock").clone()
    }

    /// `(validated against the description, listed as undocumented)`: answers so far.
    pub fn judged(&self) -> (u64, u64) {
        *self.judged.lock().expect("lock")
    }

    /// Known undocumented entries no answer matched.
    pub fn unused_known(&self) -> Vec<&Known> {
        let used = self.used_known.lock().expect("lock");
        self.known
            .iter()
            .enumerate()
            .filter(|(i, _)| !used.contains(i))
            .map(|(_, k)| k)
            .collect()
    }

    /// Known undocumented entries the description does document after all (the list has
    /// gone stale): the operation is there and lists the status.
    pub fn documented_known(&self) -> Vec<&Known> {
        documented_entries(&self.spec, &self.known)
    }

    /// Fetches `{secrets}/public-key` (validated like any answer), seals `value` with it and
    /// returns the body for a PUT, with `extra` fields merged in.
    pub async fn sealed_body(
        &self,
        token: &str,
        secrets: &str,
        value: &str,
        extra: Value,
    ) -> Value {
        let key = self
            .expect(
                Some(token),
                "GET",
                &format!("{secrets}/public-key"),
                None,
                200,
            )
            .await;
        let mut body = json!({
            "encrypted_value": seal(key["key"].as_str().expect("key"), value.as_bytes()),
            "key_id": key["key_id"],
        });
        if let (Some(b), Value::Object(more)) = (body.as_object_mut(), extra) {
            b.extend(more);
        }
        body
    }
}

/// base64(crypto_box_seal(value)) to a base64 X25519 public key, as GitHub's docs say.
pub fn seal(public_key_b64: &str, value: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    let bytes = b64.decode(public_key_b64).expect("public key is base64");
    let pk = crypto_box::PublicKey::from_slice(&bytes).expect("public key is 32 bytes");
    b64.encode(pk.seal(&mut OsRng, value).expect("sealing succeeds"))
}

/// An App JWT (RS256) for `app_id`, valid from a minute ago for nine minutes.
pub fn app_jwt(key: &AppKeyPair, app_id: u64) -> String {
    let now = chrono::Utc::now().timestamp();
    let enc = jsonwebtoken::EncodingKey::from_rsa_pem(key.private_pem.expose_secret().as_bytes())
        .expect("PKCS#8 PEM");
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &json!({"iat": now - 60, "exp": now + 540, "iss": app_id}),
        &enc,
    )
    .expect("signs")
}
