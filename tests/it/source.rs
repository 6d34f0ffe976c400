//! Sources against a real OpenBao dev server: KV v2 check-and-set, versions, dynamic reads,
//! configuration and the absence of values in errors and logs.
//!
//! Dynamic reads use engines a dev server runs without outside services: `totp` (a code
//! minted at each read of `totp/code/NAME`, the shape of a dynamic engine) and a KV v1
//! mount (a plain `GET` envelope with `data`, as `database/creds/...` answers).

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use reqwest::Method;
use rotor::policy::{Charset, KvRef, SourceSpec};
use rotor::source::{SourceError, SourceValue, Sources, Vault, VaultConfig};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use crate::util::bao::Bao;

fn sources(bao: &Bao) -> Sources {
    Sources::new(Some(bao.vault_config())).expect("valid settings")
}

fn kv(mount: &str, path: &str, key: Option<&str>) -> KvRef {
    KvRef {
        mount: mount.to_string(),
        path: path.to_string(),
        key: key.map(str::to_string),
    }
}

fn stored_generator(path: &str, key: Option<&str>) -> SourceSpec {
    SourceSpec::Generate {
        length: 32,
        charset: Charset::Alphanumeric,
        prefix: None,
        store: Some(kv("secret", path, key)),
    }
}

fn value_of(v: &SourceValue, field: &str) -> String {
    v.fields
        .get(field)
        .unwrap_or_else(|| panic!("field {field} in {v:?}"))
        .expose_secret()
        .to_string()
}

#[tokio::test]
async fn a_stored_generator_writes_version_1_then_version_2_with_check_and_set() {
    let bao = Bao::start();
    let sources = sources(&bao);
    let spec = stored_generator("ci/deploy-token", None);

    assert_eq!(sources.current_version(&spec).await.unwrap(), None);
    let first = sources.rotate(&spec, None, 0).await.unwrap();
    assert_eq!(first.version, 1);
    assert_eq!(sources.current_version(&spec).await.unwrap(), Some(1));
    let (version, data) = bao.kv_get("secret", "ci/deploy-token").await;
    assert_eq!(version, 1);
    assert_eq!(data, json!({ "value": value_of(&first, "value") }));

    let second = sources.rotate(&spec, Some(1), 0).await.unwrap();
    assert_eq!(second.version, 2);
    assert_ne!(value_of(&first, "value"), value_of(&second, "value"));
    assert_eq!(sources.current_version(&spec).await.unwrap(), Some(2));

    let again = sources.read(&spec, 1).await.unwrap();
    assert_eq!(again.version, 1);
    assert_eq!(value_of(&again, "value"), value_of(&first, "value"));
    let latest = sources.read(&spec, 2).await.unwrap();
    assert_eq!(value_of(&latest, "value"), value_of(&second, "value"));
}

#[tokio::test]
async fn a_writer_with_a_stale_version_gets_a_cas_conflict_and_clobbers_nothing() {
    let bao = Bao::start();
    let spec = stored_generator("ci/shared", None);
    let a = sources(&bao);
    let b = sources(&bao);

    let a1 = a.rotate(&spec, None, 0).await.unwrap();
    let err = b.rotate(&spec, None, 0).await.unwrap_err();
    assert!(
        matches!(&err, SourceError::CasConflict { mount, path, expected: 0 } if mount == "secret" && path == "ci/shared"),
        "{err}"
    );

    let a2 = a.rotate(&spec, Some(a1.version), 0).await.unwrap();
    assert_eq!(a2.version, 2);
    let err = b.rotate(&spec, Some(1), 0).await.unwrap_err();
    assert!(
        matches!(err, SourceError::CasConflict { expected: 1, .. }),
        "{err}"
    );

    let (version, data) = bao.kv_get("secret", "ci/shared").await;
    assert_eq!(version, 2, "the stale writer added no version");
    assert_eq!(data, json!({ "value": value_of(&a2, "value") }));
}

#[tokio::test]
async fn a_stored_generator_uses_the_store_key_and_yields_it_as_value() {
    let bao = Bao::start();
    let sources = sources(&bao);
    let spec = stored_generator("ci/npm", Some("token"));

    let made = sources.rotate(&spec, None, 0).await.unwrap();
    let (_, data) = bao.kv_get("secret", "ci/npm").await;
    assert_eq!(data, json!({ "token": value_of(&made, "value") }));
    let read = sources.read(&spec, made.version).await.unwrap();
    assert_eq!(read.fields.keys().collect::<Vec<_>>(), ["value"]);
    assert_eq!(value_of(&read, "value"), value_of(&made, "value"));

    // Someone overwrote the path without the field rotor stores to.
    let v2 = bao
        .kv_put("secret", "ci/npm", json!({ "other": "x" }))
        .await;
    let err = sources.read(&spec, v2).await.unwrap_err();
    assert!(
        matches!(&err, SourceError::MissingField { path, field } if path == "secret/ci/npm" && field == "token"),
        "{err}"
    );
}

#[tokio::test]
async fn vault_kv_follows_the_versions_written_by_hand() {
    let bao = Bao::start();
    let sources = sources(&bao);
    let spec = SourceSpec::VaultKv(kv("secret", "ci/registry", None));

    assert_eq!(sources.current_version(&spec).await.unwrap(), None);
    bao.kv_put(
        "secret",
        "ci/registry",
        json!({ "user": "ci", "password": "one" }),
    )
    .await;
    assert_eq!(sources.current_version(&spec).await.unwrap(), Some(1));
    bao.kv_put(
        "secret",
        "ci/registry",
        json!({ "user": "ci", "password": "two", "port": 5000 }),
    )
    .await;
    assert_eq!(sources.current_version(&spec).await.unwrap(), Some(2));

    let current = sources.rotate(&spec, Some(1), 0).await.unwrap();
    assert_eq!(
        current.version, 2,
        "rotate yields the version Vault holds now"
    );
    assert_eq!(value_of(&current, "password"), "two");
    assert_eq!(
        value_of(&current, "port"),
        "5000",
        "non-strings come as JSON text"
    );

    let old = sources.read(&spec, 1).await.unwrap();
    assert_eq!(old.version, 1);
    assert_eq!(value_of(&old, "password"), "one");
    assert_eq!(old.fields.len(), 2);
}

#[tokio::test]
async fn vault_kv_with_a_key_yields_only_that_field_or_says_it_is_missing() {
    let bao = Bao::start();
    let sources = sources(&bao);
    bao.kv_put("secret", "ci/pair", json!({ "id": "abc", "secret": "s1" }))
        .await;

    let spec = SourceSpec::VaultKv(kv("secret", "ci/pair", Some("secret")));
    let value = sources.rotate(&spec, None, 0).await.unwrap();
    assert_eq!(value.fields.keys().collect::<Vec<_>>(), ["secret"]);
    assert_eq!(value_of(&value, "secret"), "s1");

    let spec = SourceSpec::VaultKv(kv("secret", "ci/pair", Some("nope")));
    let err = sources.read(&spec, 1).await.unwrap_err();
    assert!(
        matches!(&err, SourceError::MissingField { path, field } if path == "secret/ci/pair" && field == "nope"),
        "{err}"
    );
}

#[tokio::test]
async fn a_path_never_written_has_no_version_and_cannot_be_rotated_from() {
    let bao = Bao::start();
    let sources = sources(&bao);
    let spec = SourceSpec::VaultKv(kv("secret", "nothing/here", None));

    assert_eq!(sources.current_version(&spec).await.unwrap(), None);
    let err = sources.rotate(&spec, None, 0).await.unwrap_err();
    assert!(
        matches!(&err, SourceError::NoVersion { mount, path } if mount == "secret" && path == "nothing/here"),
        "{err}"
    );
    let err = sources.read(&spec, 3).await.unwrap_err();
    assert!(
        matches!(
            err,
            SourceError::Vault {
                status: Some(404),
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn a_version_that_was_deleted_reads_as_404_and_the_metadata_still_counts_it() {
    let bao = Bao::start();
    let sources = sources(&bao);
    let spec = SourceSpec::VaultKv(kv("secret", "ci/gone", None));
    bao.kv_put("secret", "ci/gone", json!({ "v": "1" })).await;
    bao.kv_put("secret", "ci/gone", json!({ "v": "2" })).await;
    let (status, body) = bao
        .api(
            Method::POST,
            "secret/delete/ci/gone",
            Some(json!({ "versions": [2] })),
        )
        .await;
    assert_eq!(status, 204, "{body}");

    assert_eq!(sources.current_version(&spec).await.unwrap(), Some(2));
    let err = sources.read(&spec, 2).await.unwrap_err();
    assert!(
        matches!(
            &err,
            SourceError::Vault {
                status: Some(404),
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("version 2"), "{err}");
    assert_eq!(value_of(&sources.read(&spec, 1).await.unwrap(), "v"), "1");
}

#[tokio::test]
async fn a_token_that_may_read_data_but_not_metadata_still_learns_the_version() {
    let bao = Bao::start();
    bao.kv_put("secret", "ci/app", json!({ "k": "v1" })).await;
    bao.kv_put("secret", "ci/app", json!({ "k": "v2" })).await;
    let token = bao
        .token_with_policy(
            "data-only",
            r#"path "secret/data/*" { capabilities = ["read"] }"#,
        )
        .await;
    let sources = Sources::new(Some(bao.vault_config_with_token(&token))).unwrap();

    let spec = SourceSpec::VaultKv(kv("secret", "ci/app", None));
    assert_eq!(sources.current_version(&spec).await.unwrap(), Some(2));
    let missing = SourceSpec::VaultKv(kv("secret", "ci/none", None));
    assert_eq!(sources.current_version(&missing).await.unwrap(), None);
    assert_eq!(
        value_of(&sources.rotate(&spec, None, 0).await.unwrap(), "k"),
        "v2"
    );
}

#[tokio::test]
async fn without_vault_settings_vault_sources_are_not_configured() {
    let sources = Sources::new(None).unwrap();
    let specs = [
        SourceSpec::VaultKv(kv("secret", "x", None)),
        SourceSpec::VaultRead {
            path: "database/creds/app".into(),
            params: Default::default(),
        },
        stored_generator("x", None),
    ];
    for spec in &specs {
        let err = sources.rotate(spec, None, 1).await.unwrap_err();
        assert!(
            matches!(err, SourceError::NotConfigured { .. }),
            "{spec:?}: {err}"
        );
        assert!(err.to_string().contains("Vault is not configured"), "{err}");
    }
    let err = sources.current_version(&specs[0]).await.unwrap_err();
    assert!(matches!(err, SourceError::NotConfigured { .. }), "{err}");
}

#[tokio::test]
async fn a_dynamic_read_yields_fresh_credentials_from_the_engine() {
    let bao = Bao::start();
    bao.enable_engine("totp", "totp", json!({})).await;
    let (status, body) = bao
        .api(
            Method::POST,
            "totp/keys/ci",
            Some(json!({ "generate": true, "issuer": "rotor", "account_name": "ci" })),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let sources = sources(&bao);
    let spec = SourceSpec::VaultRead {
        path: "totp/code/ci".into(),
        params: Default::default(),
    };
    assert_eq!(sources.current_version(&spec).await.unwrap(), None);
    let value = sources.rotate(&spec, None, 12).await.unwrap();
    assert_eq!(value.version, 12, "rotor counts dynamic versions itself");
    let code = value_of(&value, "code");
    assert!(
        code.len() == 6 && code.chars().all(|c| c.is_ascii_digit()),
        "a TOTP code"
    );
    assert!(matches!(
        sources.read(&spec, 12).await,
        Err(SourceError::Unversioned { kind: "vault_read" })
    ));
}

#[tokio::test]
async fn a_dynamic_read_returns_every_field_of_data_and_no_lease_when_there_is_none() {
    let bao = Bao::start();
    bao.enable_engine("kv1", "kv", json!({ "version": "1" }))
        .await;
    let (status, body) = bao
        .api(
            Method::POST,
            "kv1/db/app",
            Some(json!({ "username": "app", "password": "pw-1", "port": 5432, "tls": true })),
        )
        .await;
    assert_eq!(status, 204, "{body}");

    let vault = Vault::new(&bao.vault_config()).unwrap();
    let (fields, lease) = vault
        .read_dynamic("kv1/db/app", &Default::default())
        .await
        .unwrap();
    assert_eq!(lease, None, "a KV v1 answer carries an empty lease id");
    let shown: BTreeMap<&str, &str> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.expose_secret()))
        .collect();
    assert_eq!(
        shown,
        BTreeMap::from([
            ("password", "pw-1"),
            ("port", "5432"),
            ("tls", "true"),
            ("username", "app")
        ])
    );

    let err = vault
        .read_dynamic("kv1/db/none", &Default::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            SourceError::Vault {
                op: "read",
                status: Some(404),
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn health_passes_for_a_live_server_and_fails_for_a_bad_token_or_no_server() {
    let bao = Bao::start();
    sources(&bao).health().await.unwrap();

    let bad = Sources::new(Some(bao.vault_config_with_token("not-a-token"))).unwrap();
    let err = bad.health().await.unwrap_err();
    assert!(
        matches!(
            err,
            SourceError::Vault {
                status: Some(403),
                ..
            }
        ),
        "{err}"
    );

    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = VaultConfig {
        addr: format!("http://127.0.0.1:{port}"),
        token: SecretString::from("t"),
        namespace: None,
        cacert: None,
        login: None,
        tls: Default::default(),
    };
    let err = Sources::new(Some(config))
        .unwrap()
        .health()
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            SourceError::Vault {
                op: "health",
                status: None,
                ..
            }
        ),
        "{err}"
    );
}

/// Collects everything logged on this thread (a `#[tokio::test]` runs on one thread).
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test]
async fn values_and_the_token_appear_in_no_error_and_no_trace_log() {
    let bao = Bao::start();
    let canary = "canary-4f1d9e3b";
    bao.kv_put("secret", "ci/canary", json!({ "value": canary, "n": 1 }))
        .await;
    bao.enable_engine("kv1", "kv", json!({ "version": "1" }))
        .await;
    let (status, _) = bao
        .api(Method::POST, "kv1/canary", Some(json!({ "value": canary })))
        .await;
    assert_eq!(status, 204);

    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);

    let sources = sources(&bao);
    let mut errors: Vec<SourceError> = Vec::new();
    let mut seen: Vec<String> = Vec::new();

    // Successful reads and writes, each handing the canary or a generated value to rotor.
    let kv_spec = SourceSpec::VaultKv(kv("secret", "ci/canary", None));
    let read = sources.rotate(&kv_spec, None, 0).await.unwrap();
    assert_eq!(value_of(&read, "value"), canary);
    let stored = stored_generator("ci/generated", None);
    let made = sources.rotate(&stored, None, 0).await.unwrap();
    seen.push(value_of(&made, "value"));
    let dynamic = sources
        .rotate(
            &SourceSpec::VaultRead {
                path: "kv1/canary".into(),
                params: Default::default(),
            },
            None,
            1,
        )
        .await
        .unwrap();
    assert_eq!(value_of(&dynamic, "value"), canary);

    // Failures on paths that hold the canary, or while writing a value.
    errors.push(
        sources
            .read(
                &SourceSpec::VaultKv(kv("secret", "ci/canary", Some("absent"))),
                1,
            )
            .await
            .unwrap_err(),
    );
    // A stale writer: check-and-set conflict.
    errors.push(sources.rotate(&stored, None, 0).await.unwrap_err());
    // A KV v1 mount read as KV v2.
    errors.push(
        sources
            .read(&SourceSpec::VaultKv(kv("kv1", "canary", None)), 1)
            .await
            .unwrap_err(),
    );
    // No such version.
    errors.push(sources.read(&kv_spec, 9).await.unwrap_err());
    // A token that may read none of it.
    let denied = bao
        .token_with_policy(
            "nothing",
            r#"path "secret/data/other" { capabilities = ["read"] }"#,
        )
        .await;
    let limited = Sources::new(Some(bao.vault_config_with_token(&denied))).unwrap();
    errors.push(limited.read(&kv_spec, 1).await.unwrap_err());
    errors.push(
        limited
            .rotate(
                &SourceSpec::VaultRead {
                    path: "kv1/canary".into(),
                    params: Default::default(),
                },
                None,
                1,
            )
            .await
            .unwrap_err(),
    );
    errors.push(limited.rotate(&stored, Some(1), 0).await.unwrap_err());

    drop(guard);
    assert!(
        errors[4]
            .to_string()
            .ends_with("status 403: permission denied"),
        "{}",
        errors[4]
    );
    let log = captured.text();
    assert!(
        log.contains("TRACE") && log.contains("ci/canary"),
        "the capture works:\n{log}"
    );

    let mut secrets = vec![canary.to_string(), bao.token.clone(), denied.clone()];
    secrets.extend(seen);
    for err in &errors {
        let shown = format!("{err} / {err:?}");
        for secret in &secrets {
            assert!(
                !shown.contains(secret.as_str()),
                "an error shows a secret: {shown}"
            );
        }
    }
    for secret in &secrets {
        assert!(
            !log.contains(secret.as_str()),
            "the log shows a secret:\n{log}"
        );
    }
    assert!(!format!("{read:?} {made:?} {sources:?}").contains(canary));
}

#[tokio::test]
async fn an_https_server_is_trusted_through_vault_cacert_and_refused_without_it() {
    let bao = Bao::start_tls();
    assert!(bao.addr.starts_with("https://"));
    let sources = sources(&bao);
    sources.health().await.unwrap();
    let spec = stored_generator("ci/over-tls", None);
    let made = sources.rotate(&spec, None, 0).await.unwrap();
    assert_eq!(made.version, 1);
    assert_eq!(sources.current_version(&spec).await.unwrap(), Some(1));
    assert_eq!(
        value_of(&sources.read(&spec, 1).await.unwrap(), "value"),
        value_of(&made, "value")
    );

    let mut untrusted = bao.vault_config();
    untrusted.cacert = None;
    let sources = Sources::new(Some(untrusted)).unwrap();
    let err = sources.health().await.unwrap_err();
    assert!(
        matches!(err, SourceError::Vault { status: None, .. }),
        "{err}"
    );
    let err = sources.current_version(&spec).await.unwrap_err();
    assert!(
        matches!(err, SourceError::Vault { status: None, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn a_namespace_scopes_every_request() {
    let bao = Bao::start();
    let (status, body) = bao
        .api(Method::POST, "sys/namespaces/team", Some(json!({})))
        .await;
    assert_eq!(status, 200, "{body}");
    for (path, version) in [("kv", "2"), ("dyn", "1")] {
        let (status, body) = bao
            .api(
                Method::POST,
                &format!("team/sys/mounts/{path}"),
                Some(json!({ "type": "kv", "options": { "version": version } })),
            )
            .await;
        assert_eq!(status, 204, "{body}");
    }
    let (status, _) = bao
        .api(
            Method::POST,
            "team/dyn/creds",
            Some(json!({ "password": "in-team" })),
        )
        .await;
    assert_eq!(status, 204);

    let mut config = bao.vault_config();
    config.namespace = Some("team".to_string());
    let sources = Sources::new(Some(config)).unwrap();
    sources.health().await.unwrap();
    let spec = SourceSpec::Generate {
        length: 20,
        charset: Charset::Hex,
        prefix: None,
        store: Some(kv("kv/", "/app/", None)),
    };
    let made = sources.rotate(&spec, None, 0).await.unwrap();
    assert_eq!(sources.current_version(&spec).await.unwrap(), Some(1));
    // The root namespace reaches it only through the namespace's path.
    let (version, data) = bao.kv_get("team/kv", "app").await;
    assert_eq!(
        (version, data),
        (1, json!({ "value": value_of(&made, "value") }))
    );
    let (status, _) = bao.api(Method::GET, "kv/data/app", None).await;
    assert_eq!(status, 404, "nothing was written outside the namespace");

    let dynamic = sources
        .rotate(
            &SourceSpec::VaultRead {
                path: "dyn/creds".into(),
                params: Default::default(),
            },
            None,
            1,
        )
        .await
        .unwrap();
    assert_eq!(value_of(&dynamic, "password"), "in-team");
}

/// AppRole settings for `bao`'s role `name` (see `Bao::approle`).
fn approle_config(bao: &Bao, role_id: &str, secret_id: &str) -> VaultConfig {
    VaultConfig::from_lookup(|name| match name {
        "VAULT_ADDR" => Some(bao.addr.clone()),
        "VAULT_ROLE_ID" => Some(role_id.to_string()),
        "VAULT_SECRET_ID" => Some(secret_id.to_string()),
        _ => None,
    })
    .expect("complete AppRole settings")
}

const KV_ACL: &str = r#"
path "secret/data/*" { capabilities = ["create", "read", "update"] }
path "secret/metadata/*" { capabilities = ["read"] }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approle_client_logs_in_at_first_use_and_again_when_vault_refuses_its_token() {
    let bao = Bao::start();
    let (role_id, secret_id) = bao.approle("rotor", KV_ACL, "1h", "2h").await;
    bao.kv_put("secret", "ci/app", json!({ "value": "v1" }))
        .await;
    let sources = Sources::new(Some(approle_config(&bao, &role_id, &secret_id))).unwrap();
    let vault = sources.vault().expect("Vault configured");
    assert!(!vault.has_token(), "no token before the first request");

    let spec = stored_generator("ci/app", None);
    assert_eq!(sources.current_version(&spec).await.unwrap(), Some(1));
    assert_eq!(vault.logins(), 1);

    // Every token the role handed out is revoked: the next request is refused, logs in
    // again, and succeeds.
    let (status, body) = bao
        .api(Method::PUT, "sys/leases/revoke-prefix/auth/approle", None)
        .await;
    assert!(status == 204 || status == 200, "{status} {body}");
    let value = sources
        .read(&spec, 1)
        .await
        .expect("read after a new login");
    assert_eq!(value.fields["value"].expose_secret(), "v1");
    assert_eq!(vault.logins(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refreshing_a_short_approle_token_renews_it_then_logs_in_again_near_its_maximum_ttl() {
    use rotor::source::TokenAction;
    use std::time::{Duration, Instant};
    let bao = Bao::start();
    // Tokens live 3 s, renewable up to 7 s after their login.
    let (role_id, secret_id) = bao.approle("rotor", KV_ACL, "3s", "7s").await;
    let sources = Sources::new(Some(approle_config(&bao, &role_id, &secret_id))).unwrap();
    let vault = sources.vault().expect("Vault configured");

    // Keep the token alive as the daemon does, for longer than the maximum TTL.
    let start = Instant::now();
    let mut actions = Vec::new();
    while start.elapsed() < Duration::from_millis(8500) {
        let state = vault.refresh_token().await.expect("refresh");
        vault
            .check_token()
            .await
            .expect("the token in use is always accepted");
        actions.push(state.action);
        assert!(state.check_again_in <= Duration::from_secs(1), "{state:?}");
        tokio::time::sleep(state.check_again_in).await;
    }
    assert_eq!(actions[0], TokenAction::LoggedIn);
    let renewed = actions
        .iter()
        .position(|a| *a == TokenAction::Renewed)
        .expect("a renewal");
    assert!(
        actions[renewed..].contains(&TokenAction::LoggedIn),
        "a new login once renewals no longer give the full TTL: {actions:?}"
    );
    assert!(vault.logins() >= 2);
}

/// A PKI role with `generate_lease: true`: each issue is a dynamic credential with a lease,
/// on a dev server without outside services.
#[tokio::test]
async fn a_pki_lease_is_looked_up_refused_renewal_and_revoked_in_openbao() {
    let bao = Bao::start();
    bao.pki_with_leases().await;
    let sources = sources(&bao);
    // PKI issues on a write (`vault_read` reads with GET), so the certificate is issued
    // with the API helper; the lease calls under test are rotor's.
    let (status, body) = bao
        .api(
            Method::POST,
            "pki/issue/ci",
            Some(json!({ "common_name": "a.rotor.test" })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let lease_id = body["lease_id"].as_str().unwrap().to_string();
    assert!(lease_id.starts_with("pki/issue/ci/"), "{lease_id}");
    let duration = body["lease_duration"].as_u64().unwrap();
    assert!((3500..=3600).contains(&duration), "{duration}");

    let vault = sources.vault().unwrap();
    let before = vault.lookup_lease(&lease_id).await.unwrap();
    assert!(
        before.ttl_secs > 3000 && before.ttl_secs <= 3600,
        "{before:?}"
    );
    // A certificate's lease cannot be renewed (its notAfter is fixed): OpenBao says so, and
    // rotor reports it with OpenBao's words.
    assert!(!before.renewable, "{before:?}");
    let err = sources.renew_lease(&lease_id, 7200).await.unwrap_err();
    assert!(err.to_string().contains("not renewable"), "{err}");

    sources.revoke_lease(&lease_id).await.unwrap();
    assert!(
        vault.lookup_lease(&lease_id).await.is_err(),
        "a revoked lease is gone from OpenBao"
    );
    // Revoking again (a resumed run) is not an error.
    sources.revoke_lease(&lease_id).await.unwrap();
}

#[tokio::test]
async fn restore_writes_an_old_version_back_as_the_current_one_with_check_and_set() {
    let bao = Bao::start();
    let sources = sources(&bao);
    let spec = stored_generator("ci/restore", None);
    let v1 = sources.rotate(&spec, None, 1).await.unwrap();
    let v2 = sources.rotate(&spec, Some(1), 2).await.unwrap();
    assert_eq!((v1.version, v2.version), (1, 2));
    // A stale expectation writes nothing.
    assert!(matches!(
        sources.restore(&spec, 1, 1).await,
        Err(SourceError::CasConflict { .. })
    ));
    let v3 = sources.restore(&spec, 1, 2).await.unwrap();
    assert_eq!(v3, 3);
    let now = sources.read(&spec, 3).await.unwrap();
    assert_eq!(
        now.fields["value"].expose_secret(),
        v1.fields["value"].expose_secret(),
        "Vault's current version holds the old value again"
    );
    assert_ne!(
        now.fields["value"].expose_secret(),
        v2.fields["value"].expose_secret()
    );
    // Nothing to restore for a value stored nowhere.
    let unstored = SourceSpec::Generate {
        length: 16,
        charset: Charset::Hex,
        prefix: None,
        store: None,
    };
    assert!(matches!(
        sources.restore(&unstored, 1, 1).await,
        Err(SourceError::Unversioned { .. })
    ));
}
