//! The `Emulator` handle, its shared state, the router that puts every route together, and
//! serving it on a socket.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use axum::middleware::from_fn_with_state;
use axum::Router;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::apps::AppRegistry;
use super::auth::{Tokens, API_V3};
use super::counters::CounterSet;
use super::errors::FleetError;
use super::faults::Faults;
use super::fleet::FleetSpec;
use super::middleware::{gate, host_guard, method_not_allowed, not_found, track};
use super::ratelimit::RateLimiter;
use super::runs::RunStore;
use super::state::State;
use super::{
    inspect, routes_actions, routes_apps, routes_org_secrets, routes_repos, routes_secrets,
};

/// What every handler shares.
pub(crate) struct Shared {
    pub state: RwLock<State>,
    pub tokens: Tokens,
    pub apps: AppRegistry,
    pub limiter: Arc<RateLimiter>,
    pub faults: Faults,
    pub counters: CounterSet,
    /// Listing entries already rendered (see `routes_repos::RenderKey`).
    pub rendered:
        std::sync::Mutex<std::collections::HashMap<super::routes_repos::RenderKey, Arc<[u8]>>>,
    latency_micros: AtomicU64,
    request_seq: AtomicU64,
    started: u64,
    /// Whether `GET /_emulator/secrets` answers (see [`Emulator::expose_values`]).
    pub expose_values: AtomicBool,
    /// Workflow runs (locked after `state`, never before).
    pub runs: Mutex<RunStore>,
    /// Whether dispatches may answer 200 with the run (`limits.run_details`).
    pub run_details: bool,
    /// Log downloads refused because they carried an `Authorization` header.
    pub authorization_sent_to_log_host: AtomicU64,
    /// `Host` names answered besides loopback ones (see [`Emulator::allow_host`]).
    pub allowed_hosts: std::sync::RwLock<Vec<String>>,
    /// Webhook deliveries (see `webhooks.rs`).
    pub webhooks: super::webhooks::Webhooks,
    /// Runner registration and remove tokens handed out.
    pub runner_tokens: Mutex<Vec<super::runners::RunnerToken>>,
}

impl Shared {
    /// The state, to change it; held briefly, never across an await or a decryption.
    pub fn state(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The state, to read it: listings render their pages under this one, side by side
    /// (a page of 100 repositories is milliseconds of JSON that must not hold up others).
    pub fn state_read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The state to read and the runs, with every started run's environment secrets
    /// copied, and the time it was done at (millisecond precision).
    pub fn actions(
        &self,
    ) -> (
        RwLockReadGuard<'_, State>,
        MutexGuard<'_, RunStore>,
        chrono::DateTime<chrono::Utc>,
    ) {
        let st = self.state_read();
        let mut runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        let now = chrono::Utc::now();
        runs.advance(&st, now);
        (st, runs, now)
    }

    pub fn latency(&self) -> Duration {
        Duration::from_micros(self.latency_micros.load(Ordering::Relaxed))
    }

    pub fn set_latency(&self, d: Duration) {
        self.latency_micros.store(
            u64::try_from(d.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// An `x-github-request-id` in GitHub's shape, e.g. `C0DE:1A2B:3C4D5E:6F7081:65A1B2C3`.
    pub fn next_request_id(&self) -> String {
        let n = self.request_seq.fetch_add(1, Ordering::Relaxed);
        format!(
            "{:04X}:{:04X}:{:06X}:{:07X}:{:08X}",
            (self.started >> 16) & 0xFFFF,
            self.started & 0xFFFF,
            n & 0xFF_FFFF,
            (n.wrapping_mul(2_654_435_761)) & 0xFFF_FFFF,
            self.started & 0xFFFF_FFFF
        )
    }
}

/// A GitHub REST emulator: a fleet in memory, served over HTTP. Cheap to clone; every clone
/// is the same emulator.
#[derive(Clone)]
pub struct Emulator {
    pub(crate) shared: Arc<Shared>,
}

impl Emulator {
    /// Builds an emulator holding `spec`.
    ///
    /// # Panics
    /// When the fleet is not valid (duplicate names or ids, bad names); use
    /// [`Emulator::try_new`] for fleets that come from users.
    pub fn new(spec: FleetSpec) -> Self {
        match Self::try_new(spec) {
            Ok(emu) => emu,
            Err(e) => panic!("invalid emulator fleet: {e}"),
        }
    }

    /// Builds an emulator holding `spec`, or says why the fleet is not valid.
    pub fn try_new(spec: FleetSpec) -> Result<Self, FleetError> {
        let state = State::build(&spec)?;
        let apps = AppRegistry::build(&spec.apps, &state.repo_names())?;
        let started = chrono::Utc::now().timestamp().unsigned_abs();
        let shared = Shared {
            state: RwLock::new(state),
            tokens: Tokens::new(&spec.effective_tokens()),
            apps,
            limiter: Arc::new(RateLimiter::new(spec.limits.clone())),
            faults: Faults::default(),
            counters: CounterSet::default(),
            rendered: Default::default(),
            latency_micros: AtomicU64::new(0),
            request_seq: AtomicU64::new(1),
            started,
            expose_values: AtomicBool::new(false),
            runs: Mutex::new(RunStore::default()),
            run_details: spec.limits.run_details,
            authorization_sent_to_log_host: AtomicU64::new(0),
            allowed_hosts: std::sync::RwLock::new(Vec::new()),
            webhooks: Default::default(),
            runner_tokens: Mutex::new(Vec::new()),
        };
        if let Some(w) = &spec.webhook {
            shared.webhooks.configure(&w.url, &w.secret);
        }
        Ok(Emulator {
            shared: Arc::new(shared),
        })
    }

    /// Serves `GET /_emulator/secrets` (every decrypted value) over HTTP. Off by default: a
    /// test that wants values in-process calls [`Emulator::decrypted`] instead. Only for
    /// tests, and only on a loopback address (`rotor emulate --expose-values` refuses others).
    pub fn expose_values(self, on: bool) -> Self {
        self.shared.expose_values.store(on, Ordering::Relaxed);
        self
    }

    /// Answers requests whose `Host` is `name` (a host name or address, without port)
    /// besides the loopback names it always answers (`localhost`, `*.localhost`,
    /// `127.0.0.0/8`, `[::1]`). Anything else is refused with 421, so that a web page
    /// rebinding its own name to 127.0.0.1 cannot read the emulator's decrypted values.
    pub fn allow_host(self, name: &str) -> Self {
        self.shared
            .allowed_hosts
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(
                name.trim()
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_ascii_lowercase(),
            );
        self
    }

    /// Adds a fixed delay to every API response (not to `/_emulator` routes).
    pub fn with_latency(self, d: Duration) -> Self {
        self.shared.set_latency(d);
        self
    }

    /// Changes the delay added to every API response.
    pub fn set_latency(&self, d: Duration) {
        self.shared.set_latency(d);
    }

    /// The whole HTTP surface: the REST API at `/` and again under `/api/v3` (where GitHub
    /// Enterprise Server clients look for it), and the inspection routes under `/_emulator`.
    pub fn router(&self) -> Router {
        let shared = Arc::clone(&self.shared);
        let api = routes_repos::routes()
            .merge(routes_secrets::routes())
            .merge(routes_org_secrets::routes())
            .merge(routes_apps::routes())
            .merge(routes_actions::routes())
            .merge(super::runners::routes())
            .method_not_allowed_fallback(method_not_allowed)
            .route_layer(from_fn_with_state(Arc::clone(&shared), gate));
        Router::new()
            .merge(api.clone())
            .nest(API_V3, api)
            .merge(inspect::routes())
            .merge(super::events::routes())
            .merge(routes_actions::log_routes())
            .fallback(not_found)
            .layer(from_fn_with_state(Arc::clone(&shared), track))
            .layer(from_fn_with_state(Arc::clone(&shared), host_guard))
            .with_state(shared)
    }

    /// Serves on `addr` (port 0: any free port) until the handle is shut down or dropped.
    pub async fn serve(&self, addr: SocketAddr) -> std::io::Result<ServerHandle> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let router = self.router();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        let shown = if addr.ip().is_unspecified() {
            SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), addr.port())
        } else {
            addr
        };
        Ok(ServerHandle {
            url: format!("http://{shown}"),
            addr,
            stop: Some(stop),
            task: Some(task),
        })
    }
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.shared.state();
        let repos: usize = st.orgs.values().map(|o| o.repos.len()).sum();
        f.debug_struct("Emulator")
            .field("orgs", &st.orgs.len())
            .field("repos", &repos)
            .field("latency", &self.shared.latency())
            .finish_non_exhaustive()
    }
}

/// A running server. Stops when shut down or dropped.
pub struct ServerHandle {
    /// `http://127.0.0.1:PORT`: the API root to give clients.
    pub url: String,
    /// The socket it listens on.
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl ServerHandle {
    /// Stops accepting connections; requests in flight finish.
    pub fn shutdown(mut self) {
        self.signal();
    }

    /// Stops and waits until the server has finished its requests.
    pub async fn stop(mut self) {
        self.signal();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    fn signal(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.signal();
    }
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle")
            .field("url", &self.url)
            .field("addr", &self.addr)
            .finish()
    }
}
