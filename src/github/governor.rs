//! The governor: keeps each credential's requests inside GitHub's limits — requests in
//! flight, points per minute, the hourly primary budget, the pauses GitHub asks for, and an
//! optional gap between writes — so that rotor runs at the edge of the budget, never past it.
//!
//! One bucket per credential ("identity"): GitHub counts every limit per token, or per App
//! installation. Each request is admitted in turn (first come, first served) and admission
//! waits, never refuses:
//!
//! 1. **Concurrency**: at most `max_concurrency` requests in flight (GitHub: 100).
//! 2. **Pauses**: a `retry-after` (or a primary reset) seen on any response pauses the whole
//!    bucket, not only the request that got it.
//! 3. **Primary budget**: `x-ratelimit-remaining` and `-reset` are read from every response
//!    and counted down locally for each request sent; at zero, admission waits for the reset
//!    (plus a margin) instead of sending a request GitHub would refuse.
//! 4. **Write gap**: an optional least time between two writes (GitHub's best-practice page
//!    asks for one second between mutative requests of one client).
//! 5. **Points per minute** (GitHub: 900; GET 1 point, PUT/POST/PATCH/DELETE 5): a sliding
//!    window log, the way GitHub (and the emulator) count. A request's points count from the
//!    moment its response arrives, which is never earlier than the moment the server counted
//!    it, so the log can only over-estimate what the server holds: in no window of
//!    `60 s / time_scale` does rotor send more than the budget.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::header::HeaderMap;
use reqwest::Method;
use serde::Serialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::headers;

/// GitHub's published secondary limit on points per minute for the REST API.
pub const GITHUB_POINTS_PER_MINUTE: u64 = 900;
/// GitHub's published secondary limit on concurrent requests.
pub const GITHUB_MAX_CONCURRENCY: usize = 100;
/// How often admission looks again while the whole budget is held by requests in flight.
const POLL: Duration = Duration::from_millis(5);
/// Clock differences below this are taken as noise of the `Date` header's whole seconds.
const SKEW_NOISE_SECS: f64 = 2.0;

/// What the governor keeps to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GovernorSettings {
    /// Most requests in flight at once, per identity.
    pub max_concurrency: usize,
    /// Points per minute (GET 1, other methods 5); `None`: no points budget.
    pub points_per_minute: Option<u64>,
    /// Least time between the starts of two writes; zero: none.
    pub min_write_gap: Duration,
    /// Whether to count down `x-ratelimit-remaining` and wait for `x-ratelimit-reset`.
    pub follow_primary: bool,
    /// Divides GitHub's windows (the minute of the points budget, the margin after a reset):
    /// 1 against GitHub; 60 against an emulator that compresses a minute into a second.
    pub time_scale: u32,
}

impl Default for GovernorSettings {
    fn default() -> Self {
        GovernorSettings {
            max_concurrency: GITHUB_MAX_CONCURRENCY,
            points_per_minute: Some(GITHUB_POINTS_PER_MINUTE),
            min_write_gap: Duration::ZERO,
            follow_primary: true,
            time_scale: 1,
        }
    }
}

impl GovernorSettings {
    /// The length of the points window: a minute, divided by the time scale.
    pub fn points_window(&self) -> Duration {
        Duration::from_secs(60) / self.time_scale.max(1)
    }

    /// Waited past a primary reset: a second, divided by the time scale (the header has
    /// whole-second resolution, and GitHub's hosts do not share one clock exactly).
    pub fn reset_margin(&self) -> Duration {
        Duration::from_secs(1) / self.time_scale.max(1)
    }
}

/// Points a request costs under GitHub's secondary limit.
pub fn points(method: &Method) -> u64 {
    if *method == Method::GET || *method == Method::HEAD || *method == Method::OPTIONS {
        1
    } else {
        5
    }
}

/// What one identity's admissions have cost in waiting, for reports and benchmarks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GovernorStats {
    /// Requests admitted.
    pub admitted: u64,
    /// Most requests in flight at once.
    pub peak_in_flight: u64,
    /// Time admissions spent waiting for the points budget.
    pub waited_points: Duration,
    /// Time spent waiting for a primary reset.
    pub waited_primary: Duration,
    /// Time spent waiting out pauses GitHub asked for (`retry-after`).
    pub waited_pause: Duration,
    /// Time spent keeping the gap between writes.
    pub waited_write_gap: Duration,
    /// Pauses GitHub asked for.
    pub pauses: u64,
}

/// One identity's bucket, for status pages: what it was admitted and what it waits for.
#[derive(Debug, Clone, serde::Serialize)]
pub struct IdentityStatus {
    /// `token`, `app`, `installation:{id}`.
    pub identity: String,
    pub admitted: u64,
    pub in_flight: u64,
    pub pauses: u64,
    /// GitHub's last `x-ratelimit-remaining` and `-limit` for it.
    pub remaining: Option<u64>,
    pub limit: Option<u64>,
    /// How long it is still paused (a `retry-after`), or waits for its primary window.
    pub paused_for_ms: Option<u64>,
    pub waiting_for_reset_ms: Option<u64>,
}

/// The governor: one bucket per identity. Cheap to share behind an `Arc`.
pub struct Governor {
    settings: GovernorSettings,
    buckets: Mutex<HashMap<String, Arc<Bucket>>>,
}

struct Bucket {
    permits: Arc<Semaphore>,
    /// Admission is one at a time, in arrival order; waits happen while holding it.
    turn: tokio::sync::Mutex<()>,
    state: Mutex<BucketState>,
}

/// Points charged to one request: pending until its response arrives.
struct Charge {
    id: u64,
    points: u64,
    done: Option<Instant>,
}

/// The primary window as last learned, counted down locally.
#[derive(Debug, Clone, Copy)]
struct Primary {
    remaining: u64,
    /// Requests per window (`x-ratelimit-limit`).
    limit: u64,
    /// When admission may go on after the budget is spent (reset plus margin); `None`
    /// once passed, until a response of the new window tells its reset.
    reset: Option<Instant>,
    reset_epoch: i64,
}

#[derive(Default)]
struct BucketState {
    log: VecDeque<Charge>,
    next_id: u64,
    last_write: Option<Instant>,
    primary: Option<Primary>,
    /// The newest primary window seen; older windows' headers are ignored.
    newest_reset_epoch: i64,
    paused_until: Option<Instant>,
    in_flight: u64,
    stats: GovernorStats,
}

/// Why admission waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    Pause,
    Primary,
    WriteGap,
    Points,
}

impl BucketState {
    /// How long the next request must wait, and why; `None`: it may go now.
    fn wait_for(
        &mut self,
        s: &GovernorSettings,
        cost: u64,
        write: bool,
        now: Instant,
    ) -> Option<(Duration, Reason)> {
        if let Some(until) = self.paused_until {
            if until > now {
                return Some((until - now, Reason::Pause));
            }
            self.paused_until = None;
        }
        if let Some(p) = self.primary.as_mut() {
            if p.reset.is_some_and(|r| now >= r) {
                // A new window: the whole limit, counted down until a response tells more.
                p.reset = None;
                p.remaining = p.limit;
            }
            if s.follow_primary && p.remaining == 0 {
                let wait = p.reset.map(|r| r - now).unwrap_or(POLL);
                return Some((wait, Reason::Primary));
            }
        }
        if write && !s.min_write_gap.is_zero() {
            if let Some(last) = self.last_write {
                let next = last + s.min_write_gap;
                if next > now {
                    return Some((next - now, Reason::WriteGap));
                }
            }
        }
        if let Some(budget) = s.points_per_minute.filter(|b| *b > 0) {
            let window = s.points_window();
            let expired = |c: &Charge| c.done.is_some_and(|d| now.duration_since(d) >= window);
            while self.log.front().is_some_and(expired) {
                self.log.pop_front();
            }
            let live = self.log.iter().filter(|c| !expired(c));
            let spent: u64 = live.map(|c| c.points).sum();
            // A request costing more than the whole budget still goes when nothing is spent.
            if spent > 0 && spent + cost > budget {
                // Wait until enough points leave the window; pending points never leave
                // before their response, so without any done we look again shortly.
                let mut done: Vec<(Instant, u64)> = self
                    .log
                    .iter()
                    .filter(|c| !expired(c))
                    .filter_map(|c| c.done.map(|d| (d + window, c.points)))
                    .collect();
                done.sort_by_key(|(t, _)| *t);
                let mut left = spent;
                for (at, p) in done {
                    left -= p;
                    if left + cost <= budget {
                        return Some((
                            at.saturating_duration_since(now).max(POLL / 5),
                            Reason::Points,
                        ));
                    }
                }
                return Some((POLL, Reason::Points));
            }
        }
        None
    }

    /// Charges one admitted request; returns its charge id.
    fn charge(&mut self, cost: u64, write: bool, now: Instant, s: &GovernorSettings) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        if s.points_per_minute.is_some_and(|b| b > 0) {
            self.log.push_back(Charge {
                id,
                points: cost,
                done: None,
            });
        }
        if write {
            self.last_write = Some(now);
        }
        if let Some(p) = self.primary.as_mut() {
            p.remaining = p.remaining.saturating_sub(1);
        }
        self.in_flight += 1;
        self.stats.admitted += 1;
        self.stats.peak_in_flight = self.stats.peak_in_flight.max(self.in_flight);
        id
    }

    fn complete(&mut self, id: u64, now: Instant) {
        if let Ok(i) = self.log.binary_search_by_key(&id, |c| c.id) {
            self.log[i].done = Some(now);
        }
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    /// Learns the primary window from a response's headers.
    fn learn(&mut self, h: &HeaderMap, s: &GovernorSettings, now: Instant, wall: SystemTime) {
        let resource = headers::string(h, "x-ratelimit-resource");
        if resource.as_deref().is_some_and(|r| r != "core") {
            return;
        }
        let (Some(remaining), Some(reset_epoch)) = (
            headers::u64(h, "x-ratelimit-remaining"),
            headers::u64(h, "x-ratelimit-reset").and_then(|r| i64::try_from(r).ok()),
        ) else {
            return;
        };
        let limit = headers::u64(h, "x-ratelimit-limit").unwrap_or(remaining);
        if reset_epoch < self.newest_reset_epoch {
            return;
        }
        let reset = reset_instant(h, reset_epoch, now, wall) + s.reset_margin();
        match self.primary.as_mut() {
            Some(p) if p.reset_epoch == reset_epoch => {
                // The same window; once waited out, a late answer from before its reset.
                if p.reset.is_some() {
                    p.remaining = p.remaining.min(remaining);
                }
            }
            known => {
                // A new window: requests still in flight may not be counted in it yet.
                let pending = self.in_flight.saturating_sub(1);
                let mut left = remaining.saturating_sub(pending);
                if let Some(p) = known.filter(|p| p.reset.is_none()) {
                    // Counted down from the limit since the reset: keep the lower count.
                    left = left.min(p.remaining);
                }
                self.primary = Some(Primary {
                    remaining: left,
                    limit,
                    reset: Some(reset),
                    reset_epoch,
                });
            }
        }
        self.newest_reset_epoch = reset_epoch;
    }
}

/// `x-ratelimit-reset` on this machine's monotonic clock. The server's `Date` corrects the
/// reset only when the clocks differ by more than the header's whole-second noise.
fn reset_instant(h: &HeaderMap, reset_epoch: i64, now: Instant, wall: SystemTime) -> Instant {
    let local = wall
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let mut until = reset_epoch as f64 - local;
    if let Some(server) = headers::date(h) {
        let skew = server.timestamp() as f64 - local;
        if skew.abs() > SKEW_NOISE_SECS {
            until -= skew;
        }
    }
    if until <= 0.0 || !until.is_finite() {
        now
    } else {
        now + Duration::from_secs_f64(until.min(86_400.0))
    }
}

/// One admitted request. Hold it while the request is in flight; `finish` with the
/// response's headers (dropping it counts as finished without headers).
pub struct Ticket {
    bucket: Arc<Bucket>,
    settings: GovernorSettings,
    id: u64,
    finished: bool,
    _permit: OwnedSemaphorePermit,
}

impl Ticket {
    /// The response arrived: its points start to age, and its rate-limit headers are learned.
    pub fn finish(mut self, headers: Option<&HeaderMap>) {
        let now = Instant::now();
        let mut st = lock(&self.bucket.state);
        st.complete(self.id, now);
        if let Some(h) = headers {
            st.learn(h, &self.settings, now, SystemTime::now());
        }
        self.finished = true;
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if !self.finished {
            lock(&self.bucket.state).complete(self.id, Instant::now());
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Governor {
    pub fn new(settings: GovernorSettings) -> Self {
        Governor {
            settings,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    pub fn settings(&self) -> &GovernorSettings {
        &self.settings
    }

    fn bucket(&self, identity: &str) -> Arc<Bucket> {
        let mut buckets = lock(&self.buckets);
        buckets
            .entry(identity.to_string())
            .or_insert_with(|| {
                Arc::new(Bucket {
                    permits: Arc::new(Semaphore::new(self.settings.max_concurrency.max(1))),
                    turn: tokio::sync::Mutex::new(()),
                    state: Mutex::new(BucketState::default()),
                })
            })
            .clone()
    }

    /// Waits until a request with `method` may be sent on behalf of `identity`.
    pub async fn admit(&self, identity: &str, method: &Method) -> Ticket {
        let bucket = self.bucket(identity);
        let permit = Arc::clone(&bucket.permits)
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let cost = points(method);
        let write = cost > 1;
        let turn = bucket.turn.lock().await;
        loop {
            let wait = lock(&bucket.state).wait_for(&self.settings, cost, write, Instant::now());
            let Some((d, reason)) = wait else { break };
            {
                let mut st = lock(&bucket.state);
                let slot = match reason {
                    Reason::Pause => &mut st.stats.waited_pause,
                    Reason::Primary => &mut st.stats.waited_primary,
                    Reason::WriteGap => &mut st.stats.waited_write_gap,
                    Reason::Points => &mut st.stats.waited_points,
                };
                *slot += d;
            }
            if reason == Reason::Primary {
                tracing::info!(
                    identity,
                    wait_ms = d.as_millis() as u64,
                    "GitHub's hourly budget is spent; waiting for its reset"
                );
            }
            tokio::time::sleep(d).await;
        }
        let id = lock(&bucket.state).charge(cost, write, Instant::now(), &self.settings);
        drop(turn);
        Ticket {
            bucket,
            settings: self.settings.clone(),
            id,
            finished: false,
            _permit: permit,
        }
    }

    /// GitHub asked `identity` to wait `wait` (a `retry-after`, a primary reset): no request
    /// of that identity is admitted before then.
    pub fn pause(&self, identity: &str, wait: Duration) {
        let bucket = self.bucket(identity);
        let mut st = lock(&bucket.state);
        let until = Instant::now() + wait;
        if st.paused_until.is_none_or(|u| u < until) {
            st.paused_until = Some(until);
        }
        st.stats.pauses += 1;
    }

    /// What admissions for `identity` have waited so far.
    /// Every identity's bucket as it is now (per token, per App installation), by name.
    pub fn identities(&self) -> Vec<IdentityStatus> {
        let buckets: Vec<(String, Arc<Bucket>)> = lock(&self.buckets)
            .iter()
            .map(|(k, b)| (k.clone(), Arc::clone(b)))
            .collect();
        let now = Instant::now();
        let mut out: Vec<IdentityStatus> = buckets
            .into_iter()
            .map(|(identity, b)| {
                let st = lock(&b.state);
                IdentityStatus {
                    identity,
                    admitted: st.stats.admitted,
                    in_flight: st.in_flight,
                    pauses: st.stats.pauses,
                    remaining: st.primary.as_ref().map(|p| p.remaining),
                    limit: st.primary.as_ref().map(|p| p.limit),
                    paused_for_ms: st
                        .paused_until
                        .filter(|u| *u > now)
                        .map(|u| (u - now).as_millis() as u64),
                    waiting_for_reset_ms: st
                        .primary
                        .as_ref()
                        .filter(|p| p.remaining == 0)
                        .and_then(|p| p.reset)
                        .filter(|r| *r > now)
                        .map(|r| (r - now).as_millis() as u64),
                }
            })
            .collect();
        out.sort_by(|a, b| a.identity.cmp(&b.identity));
        out
    }

    pub fn stats(&self, identity: &str) -> GovernorStats {
        lock(&self.bucket(identity).state).stats.clone()
    }
}

/// Reads a duration written `750ms`, `1s`, `2m`, or `0` (none).
pub fn parse_gap(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 750ms or 1s"))?;
    let ms = match unit {
        "ms" => Some(n),
        "s" => n.checked_mul(1_000),
        "m" => n.checked_mul(60_000),
        _ => return Err(format!("{text:?}: use ms, s or m, e.g. 750ms or 1s")),
    };
    ms.map(Duration::from_millis)
        .ok_or_else(|| format!("{text:?} is too long"))
}

#[cfg(test)]
mod tests;
