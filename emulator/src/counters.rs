//! Request counters: totals, per route template, per status, peak concurrency, rate-limit
//! refusals, and a log of when each request came.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// A snapshot of what the API has served (inspection routes are not counted).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Every API request, refused ones included.
    pub total: u64,
    /// By route template, e.g. `PUT /repos/{owner}/{repo}/actions/secrets/{secret_name}`;
    /// requests matching no route (a method the path does not take included) count under
    /// `unmatched`.
    pub by_route: BTreeMap<String, u64>,
    /// By response status.
    pub by_status: BTreeMap<u16, u64>,
    /// By route template, then status.
    pub by_route_status: BTreeMap<String, BTreeMap<u16, u64>>,
    /// Most requests in flight at once.
    pub peak_concurrent: u64,
    /// Requests in flight now.
    pub in_flight: u64,
    /// Requests refused by the primary (hourly) limit: 403 with `x-ratelimit-remaining: 0`.
    #[serde(default)]
    pub primary_limited: u64,
    /// Requests refused by a secondary limit (concurrency, points): 403 with `retry-after`.
    #[serde(default)]
    pub secondary_limited: u64,
}

/// One API request as it came: when (since the emulator started), what, and the answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// When the request arrived, since the emulator started.
    pub at: Duration,
    pub method: String,
    /// The path, without the query.
    pub path: String,
    pub status: u16,
}

/// The request log keeps at most this many records (the oldest are dropped).
pub const REQUEST_LOG_CAP: usize = 1_000_000;

impl Counters {
    /// Requests served on one route template (0 if none).
    pub fn route(&self, template: &str) -> u64 {
        self.by_route.get(template).copied().unwrap_or(0)
    }

    /// Requests on one route template answered with one status.
    pub fn route_status(&self, template: &str, status: u16) -> u64 {
        self.by_route_status
            .get(template)
            .and_then(|m| m.get(&status))
            .copied()
            .unwrap_or(0)
    }
}

#[derive(Default)]
struct Tallies {
    total: u64,
    by_route: BTreeMap<String, u64>,
    by_status: BTreeMap<u16, u64>,
    by_route_status: BTreeMap<String, BTreeMap<u16, u64>>,
}

/// The live counters.
pub(crate) struct CounterSet {
    in_flight: AtomicU64,
    peak: AtomicU64,
    primary_limited: AtomicU64,
    secondary_limited: AtomicU64,
    tallies: Mutex<Tallies>,
    started: Instant,
    log: Mutex<std::collections::VecDeque<RequestRecord>>,
}

impl Default for CounterSet {
    fn default() -> Self {
        CounterSet {
            in_flight: AtomicU64::new(0),
            peak: AtomicU64::new(0),
            primary_limited: AtomicU64::new(0),
            secondary_limited: AtomicU64::new(0),
            tallies: Mutex::new(Tallies::default()),
            started: Instant::now(),
            log: Mutex::new(Default::default()),
        }
    }
}

/// Marks one request in flight until dropped.
pub(crate) struct Busy<'a>(&'a CounterSet);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl CounterSet {
    pub fn enter(&self) -> Busy<'_> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        Busy(self)
    }

    /// The time since the emulator started, for the request log.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn primary_limited(&self) {
        self.primary_limited.fetch_add(1, Ordering::SeqCst);
    }

    pub fn secondary_limited(&self) {
        self.secondary_limited.fetch_add(1, Ordering::SeqCst);
    }

    /// Adds one request to the log.
    pub fn log(&self, record: RequestRecord) {
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        if log.len() >= REQUEST_LOG_CAP {
            log.pop_front();
        }
        log.push_back(record);
    }

    /// The request log, oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        let log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        log.iter().cloned().collect()
    }

    pub fn record(&self, route: &str, status: u16) {
        let mut t = self.tallies.lock().unwrap_or_else(|p| p.into_inner());
        t.total += 1;
        *t.by_route.entry(route.to_string()).or_default() += 1;
        *t.by_status.entry(status).or_default() += 1;
        *t.by_route_status
            .entry(route.to_string())
            .or_default()
            .entry(status)
            .or_default() += 1;
    }

    pub fn snapshot(&self) -> Counters {
        let t = self.tallies.lock().unwrap_or_else(|p| p.into_inner());
        Counters {
            total: t.total,
            by_route: t.by_route.clone(),
            by_status: t.by_status.clone(),
            by_route_status: t.by_route_status.clone(),
            peak_concurrent: self.peak.load(Ordering::SeqCst),
            in_flight: self.in_flight.load(Ordering::SeqCst),
            primary_limited: self.primary_limited.load(Ordering::SeqCst),
            secondary_limited: self.secondary_limited.load(Ordering::SeqCst),
        }
    }

    /// Zeroes everything but the requests in flight now.
    pub fn reset(&self) {
        *self.tallies.lock().unwrap_or_else(|p| p.into_inner()) = Tallies::default();
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.primary_limited.store(0, Ordering::SeqCst);
        self.secondary_limited.store(0, Ordering::SeqCst);
        self.peak
            .store(self.in_flight.load(Ordering::SeqCst), Ordering::SeqCst);
    }
}
