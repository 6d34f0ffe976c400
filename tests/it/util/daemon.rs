//! Runs `rotor run` as a child process of the test: a free loopback port for its HTTP
//! listener, its log in a file, signals sent by pid, and `/metrics` read with a Prometheus
//! text parser. The child is killed when the handle is dropped.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus_parse::{Scrape, Value};

use super::rotor::Workspace;

pub struct Daemon {
    child: tokio::process::Child,
    pub pid: i32,
    /// `http://127.0.0.1:PORT` of the listener.
    pub url: String,
    log: PathBuf,
    http: reqwest::Client,
}

/// An operator's alert webhook on a loopback port: records every JSON body POSTed to
/// `/hook`. Returns its URL and what it received so far.
pub async fn alert_sink() -> (String, Arc<Mutex<Vec<serde_json::Value>>>) {
    let received: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let app = axum::Router::new()
        .route(
            "/hook",
            axum::routing::post(
                |axum::extract::State(r): axum::extract::State<
                    Arc<Mutex<Vec<serde_json::Value>>>,
                >,
                 axum::Json(v): axum::Json<serde_json::Value>| async move {
                    r.lock().unwrap().push(v);
                    axum::http::StatusCode::NO_CONTENT
                },
            ),
        )
        .with_state(Arc::clone(&received));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let hook = format!("http://{}/hook", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (hook, received)
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    l.local_addr().expect("a local address").port()
}

impl Workspace {
    /// Starts `rotor run --listen 127.0.0.1:PORT ARGS` (logging at info unless the
    /// workspace sets `RUST_LOG`); its stderr goes to `daemon-N.log` in the workspace.
    pub fn spawn_daemon(&self, args: &[&str]) -> Daemon {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let mut all = vec!["run", "--listen", &listen];
        all.extend_from_slice(args);
        let n = (0..)
            .find(|i| !self.path().join(format!("daemon-{i}.log")).exists())
            .expect("a free log name");
        let log = self.path().join(format!("daemon-{n}.log"));
        let file = std::fs::File::create(&log).expect("create the daemon log");
        let mut cmd = self.command(&all);
        if !self.extra_env.iter().any(|(k, _)| k == "RUST_LOG") {
            cmd.env(
                "RUST_LOG",
                std::env::var("ROTOR_TEST_LOG").unwrap_or_else(|_| {
                    "info,tokio_cron_scheduler=warn,vaultrs=off,rustify=off".into()
                }),
            );
        }
        cmd.stdout(Stdio::null())
            .stderr(Stdio::from(file))
            .kill_on_drop(true);
        let child = cmd.spawn().expect("start rotor run");
        let pid = child.id().expect("a running child has a pid") as i32;
        Daemon {
            child,
            pid,
            url: format!("http://{listen}"),
            log,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("an HTTP client"),
        }
    }
}

impl Daemon {
    /// What the daemon logged so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) with a pid this test started and still holds (not yet reaped).
        let rc = unsafe { libc::kill(self.pid, sig) };
        assert_eq!(rc, 0, "kill({}, {sig}) failed", self.pid);
    }

    /// `GET path`: status and body, or `None` when nothing answers.
    pub async fn get(&self, path: &str) -> Option<(u16, String)> {
        let r = self
            .http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .ok()?;
        let status = r.status().as_u16();
        Some((status, r.text().await.ok()?))
    }

    /// `/metrics`, parsed as Prometheus does; `None` while nothing answers.
    pub async fn scrape(&self) -> Option<Scrape> {
        let (status, body) = self.get("/metrics").await?;
        assert_eq!(status, 200, "/metrics answered {status}: {body}");
        Some(parse(&body))
    }

    /// Polls `/metrics` every 100 ms until `done` holds; panics with the daemon's log after
    /// `timeout`.
    pub async fn wait_for(
        &mut self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&Scrape) -> bool,
    ) -> Scrape {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "rotor run exited ({status}) while waiting for {what}; its log:\n{}",
                    self.logs()
                );
            }
            if let Some(scrape) = self.scrape().await {
                if done(&scrape) {
                    return scrape;
                }
            }
            if Instant::now() > deadline {
                let last = self
                    .get("/metrics")
                    .await
                    .map(|(_, b)| b)
                    .unwrap_or_default();
                panic!("timed out after {timeout:?} waiting for {what}\n--- metrics\n{last}\n--- log\n{}", self.logs());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits for the process to exit (panics with its log after `timeout`).
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(status) => status.expect("wait for rotor run"),
            Err(_) => panic!(
                "rotor run did not exit within {timeout:?}; its log:\n{}",
                self.logs()
            ),
        }
    }

    /// SIGKILL, and reap.
    pub async fn kill9(&mut self) {
        self.signal(libc::SIGKILL);
        let _ = self.child.wait().await;
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

pub fn parse(text: &str) -> Scrape {
    Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("/metrics is Prometheus text")
}

/// The value of the sample `name` whose labels include `labels`.
pub fn metric(s: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    s.samples
        .iter()
        .find(|x| x.metric == name && labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
        .map(|x| match x.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
            _ => f64::NAN,
        })
}

/// `metric`, or 0 when absent.
pub fn value(s: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    metric(s, name, labels).unwrap_or(0.0)
}

pub fn rotations(s: &Scrape, policy: &str) -> f64 {
    value(
        s,
        "rotor_rotations_total",
        &[("policy", policy), ("result", "success")],
    )
}
