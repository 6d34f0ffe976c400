//! GitHub's rate limits per caller: the hourly primary limit with its `x-ratelimit-*`
//! headers, and the secondary limits on concurrent requests and points per minute.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue};

use super::auth::Caller;
use super::fleet::LimitsSpec;

const WINDOW_SECS: f64 = 3_600.0;
const POINTS_WINDOW: Duration = Duration::from_secs(60);
const CONCURRENCY_RETRY_SECS: u64 = 60;

/// One caller's standing in the current primary window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RateInfo {
    pub limit: u64,
    pub remaining: u64,
    pub used: u64,
    /// UTC epoch seconds at which the window resets.
    pub reset: i64,
}

impl RateInfo {
    /// Sets the five `x-ratelimit-*` headers GitHub sends on every response.
    pub fn apply(&self, headers: &mut HeaderMap) {
        let mut set = |name: &'static str, value: String| {
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.insert(name, v);
            }
        };
        set("x-ratelimit-limit", self.limit.to_string());
        set("x-ratelimit-remaining", self.remaining.to_string());
        set("x-ratelimit-used", self.used.to_string());
        set("x-ratelimit-reset", self.reset.to_string());
        set("x-ratelimit-resource", "core".to_string());
    }
}

/// Why a request was turned away.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Refusal {
    /// The hourly budget is spent: 403 with `x-ratelimit-remaining: 0`.
    Primary(RateInfo),
    /// Too many concurrent requests or points: 403 with `retry-after`.
    Secondary { info: RateInfo, retry_after: u64 },
}

/// What one request costs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Charge {
    /// Counts against the primary limit (`GET /rate_limit` does not).
    pub counts: bool,
    /// Secondary-limit points: 1 for GET/HEAD/OPTIONS, 5 otherwise.
    pub points: u64,
}

impl Charge {
    pub fn for_method(method: &axum::http::Method, counts: bool) -> Self {
        use axum::http::Method;
        let points = if [Method::GET, Method::HEAD, Method::OPTIONS].contains(method) {
            1
        } else {
            5
        };
        Charge { counts, points }
    }
}

#[derive(Default)]
struct Bucket {
    reset: i64,
    used: u64,
    in_flight: u64,
    points: VecDeque<(Instant, u64)>,
}

/// Every caller's buckets.
pub(crate) struct RateLimiter {
    limits: LimitsSpec,
    buckets: Mutex<HashMap<String, Bucket>>,
}

/// Holds one concurrent-request slot; gives it back when dropped.
pub(crate) struct InFlight {
    limiter: Arc<RateLimiter>,
    key: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut buckets = self
            .limiter
            .buckets
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(b) = buckets.get_mut(&self.key) {
            b.in_flight = b.in_flight.saturating_sub(1);
        }
    }
}

/// Now, in UTC epoch seconds with a fraction.
fn epoch_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl InFlight {
    /// Gives back the primary-limit charge of this request (a `304 Not Modified` is free).
    pub fn refund(&self) {
        let mut buckets = self
            .limiter
            .buckets
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(b) = buckets.get_mut(&self.key) {
            b.used = b.used.saturating_sub(1);
        }
    }
}

impl RateLimiter {
    pub fn new(limits: LimitsSpec) -> Self {
        RateLimiter {
            limits,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn limit_for(&self, caller: &Caller) -> u64 {
        if caller.access.is_authenticated() {
            self.limits.requests_per_hour
        } else {
            self.limits.anonymous_requests_per_hour
        }
    }

    fn info(limit: u64, b: &Bucket) -> RateInfo {
        RateInfo {
            limit,
            remaining: limit.saturating_sub(b.used),
            used: b.used,
            reset: b.reset,
        }
    }

    fn scale(&self) -> f64 {
        f64::from(self.limits.time_scale.max(1))
    }

    /// The points window: a minute, time-scaled.
    fn points_window(&self) -> Duration {
        POINTS_WINDOW / self.limits.time_scale.max(1)
    }

    /// A new primary window starts when the old one has reset. Windows end on the nearest
    /// whole second, as `x-ratelimit-reset` can only say whole seconds (rounding up instead
    /// would lengthen every time-scaled window by up to a second).
    fn roll(&self, b: &mut Bucket, now: f64) {
        if b.reset == 0 || now >= b.reset as f64 {
            let end = (now + WINDOW_SECS / self.scale()).round();
            b.reset = (end as i64).max(now.floor() as i64 + 1);
            b.used = 0;
        }
    }

    /// Admits or refuses one request and, when admitted, charges it.
    pub fn admit(
        self: &Arc<Self>,
        caller: &Caller,
        charge: Charge,
    ) -> Result<(RateInfo, InFlight), Refusal> {
        let limit = self.limit_for(caller);
        let now = epoch_now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let b = buckets.entry(caller.key.clone()).or_default();
        self.roll(b, now);
        if charge.counts && b.used >= limit {
            return Err(Refusal::Primary(Self::info(limit, b)));
        }
        if let Some(max) = self.limits.max_concurrent {
            if b.in_flight >= max {
                let retry_after = (CONCURRENCY_RETRY_SECS as f64 / self.scale()).ceil() as u64;
                return Err(Refusal::Secondary {
                    info: Self::info(limit, b),
                    retry_after: retry_after.max(1),
                });
            }
        }
        if let Some(budget) = self.limits.points_per_minute {
            let instant = Instant::now();
            let window = self.points_window();
            while b
                .points
                .front()
                .is_some_and(|(t, _)| instant.duration_since(*t) >= window)
            {
                b.points.pop_front();
            }
            let spent: u64 = b.points.iter().map(|(_, p)| p).sum();
            if spent + charge.points > budget {
                // Wait until enough of the oldest points have left the window.
                let mut freed = 0;
                let mut wait = window;
                for (t, p) in &b.points {
                    freed += p;
                    if spent - freed + charge.points <= budget {
                        wait = window.saturating_sub(instant.duration_since(*t));
                        break;
                    }
                }
                let retry_after = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                return Err(Refusal::Secondary {
                    info: Self::info(limit, b),
                    retry_after: retry_after.max(1),
                });
            }
            b.points.push_back((instant, charge.points));
        }
        if charge.counts {
            b.used += 1;
        }
        b.in_flight += 1;
        let info = Self::info(limit, b);
        Ok((
            info,
            InFlight {
                limiter: Arc::clone(self),
                key: caller.key.clone(),
            },
        ))
    }

    /// The caller's standing without charging anything (for `GET /rate_limit` bodies).
    pub fn status(&self, caller: &Caller) -> RateInfo {
        let limit = self.limit_for(caller);
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let b = buckets.entry(caller.key.clone()).or_default();
        self.roll(b, epoch_now());
        Self::info(limit, b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Access;

    fn caller() -> Caller {
        Caller {
            user_id: 1,
            key: "token:1".into(),
            access: Arc::new(Access::All),
        }
    }

    #[test]
    fn the_primary_limit_refuses_once_the_budget_is_spent() {
        let limiter = Arc::new(RateLimiter::new(LimitsSpec {
            requests_per_hour: 2,
            ..Default::default()
        }));
        let get = Charge {
            counts: true,
            points: 1,
        };
        let (first, _a) = limiter.admit(&caller(), get).expect("first");
        assert_eq!((first.used, first.remaining), (1, 1));
        let (second, _b) = limiter.admit(&caller(), get).expect("second");
        assert_eq!(second.remaining, 0);
        match limiter.admit(&caller(), get) {
            Err(Refusal::Primary(info)) => assert_eq!(info.remaining, 0),
            _ => panic!("third request should be refused"),
        }
        assert!(limiter
            .admit(
                &caller(),
                Charge {
                    counts: false,
                    points: 1
                }
            )
            .is_ok());
    }

    #[test]
    fn concurrent_slots_are_given_back_when_requests_finish() {
        let limits = LimitsSpec {
            max_concurrent: Some(1),
            ..Default::default()
        };
        let limiter = Arc::new(RateLimiter::new(limits));
        let get = Charge {
            counts: true,
            points: 1,
        };
        let slot = limiter.admit(&caller(), get).expect("first");
        assert!(matches!(
            limiter.admit(&caller(), get),
            Err(Refusal::Secondary {
                retry_after: 60,
                ..
            })
        ));
        drop(slot);
        assert!(limiter.admit(&caller(), get).is_ok());
    }

    #[test]
    fn a_time_scale_shortens_the_windows_and_ends_them_on_whole_seconds() {
        let limiter = Arc::new(RateLimiter::new(LimitsSpec {
            requests_per_hour: 2,
            max_concurrent: Some(1),
            points_per_minute: Some(5),
            time_scale: 1800,
            ..Default::default()
        }));
        let get = Charge {
            counts: true,
            points: 1,
        };
        let (info, slot) = limiter.admit(&caller(), get).expect("first");
        let now = epoch_now();
        // An hour / 1800 = 2 s, ending on the nearest whole second.
        let reset = info.reset as f64;
        assert!(
            reset >= now + 1.5 - 0.01 && reset <= now + 2.5,
            "{reset} vs {now}"
        );
        match limiter.admit(&caller(), get) {
            Err(Refusal::Secondary { retry_after, .. }) => assert_eq!(retry_after, 1),
            _ => panic!("one request in flight at most"),
        }
        drop(slot);
        drop(limiter.admit(&caller(), get).expect("second"));
        assert!(matches!(
            limiter.admit(&caller(), get),
            Err(Refusal::Primary(_))
        ));
        std::thread::sleep(Duration::from_secs_f64(
            info.reset as f64 - epoch_now() + 0.01,
        ));
        assert!(
            limiter.admit(&caller(), get).is_ok(),
            "a new window after the reset"
        );
    }

    #[test]
    fn the_points_budget_counts_writes_as_five() {
        let limits = LimitsSpec {
            points_per_minute: Some(10),
            ..Default::default()
        };
        let limiter = Arc::new(RateLimiter::new(limits));
        let put = Charge {
            counts: true,
            points: 5,
        };
        let _a = limiter.admit(&caller(), put).expect("5 points");
        let _b = limiter.admit(&caller(), put).expect("10 points");
        match limiter.admit(
            &caller(),
            Charge {
                counts: true,
                points: 1,
            },
        ) {
            Err(Refusal::Secondary { retry_after, .. }) => assert!((1..=60).contains(&retry_after)),
            _ => panic!("over budget"),
        }
    }
}
