//! The governor's tests: budgets, headers, waits and `parse_gap`.

use super::*;
use reqwest::header::HeaderValue;

fn settings(points: Option<u64>) -> GovernorSettings {
    GovernorSettings {
        max_concurrency: 100,
        points_per_minute: points,
        min_write_gap: Duration::ZERO,
        follow_primary: true,
        time_scale: 60,
    }
}

fn h(pairs: &[(&str, String)]) -> HeaderMap {
    let mut m = HeaderMap::new();
    for (k, v) in pairs {
        m.insert(
            reqwest::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    m
}

/// Simulates a server that counts points on arrival in a sliding window and a client
/// that sends as fast as the governor lets it, with every response `latency` later.
/// Returns the send times and the most points the server saw in any window.
fn simulate(budget: u64, requests: &[u64], latency: Duration) -> (Vec<Duration>, u64) {
    let s = settings(Some(budget));
    let window = s.points_window();
    let start = Instant::now();
    let mut st = BucketState::default();
    let mut now = start;
    let mut sent: Vec<(Instant, u64)> = Vec::new();
    let mut pending: VecDeque<(u64, Instant)> = VecDeque::new();
    for &cost in requests {
        loop {
            while pending.front().is_some_and(|(_, at)| *at <= now) {
                let (id, at) = pending.pop_front().unwrap();
                st.complete(id, at);
            }
            match st.wait_for(&s, cost, cost > 1, now) {
                None => break,
                Some((d, _)) => {
                    // Never jump past the next response.
                    let next = pending.front().map(|(_, at)| *at).unwrap_or(now + d);
                    now = (now + d).min(next.max(now + Duration::from_micros(1)));
                }
            }
        }
        let id = st.charge(cost, cost > 1, now, &s);
        pending.push_back((id, now + latency));
        sent.push((now, cost));
    }
    let mut worst = 0;
    for (i, (t0, _)) in sent.iter().enumerate() {
        let sum: u64 = sent[i..]
            .iter()
            .take_while(|(t, _)| t.duration_since(*t0) < window)
            .map(|(_, p)| p)
            .sum();
        worst = worst.max(sum);
    }
    (
        sent.iter().map(|(t, _)| t.duration_since(start)).collect(),
        worst,
    )
}

#[test]
fn the_sliding_window_never_holds_more_than_the_budget() {
    // Mixed reads and writes, with and without latency.
    let mut costs = Vec::new();
    for i in 0..2_000u64 {
        costs.push(if i % 3 == 0 { 1 } else { 5 });
    }
    for latency in [Duration::ZERO, Duration::from_millis(50)] {
        let (times, worst) = simulate(900, &costs, latency);
        assert!(
            worst <= 900,
            "latency {latency:?}: {worst} points in one window"
        );
        // It is also not idle: 2,000 requests of ~7,330 points need 8 windows, and the
        // governor uses the budget as soon as points leave the window.
        let total: u64 = costs.iter().sum();
        let windows = total.div_ceil(900) - 1;
        let last = *times.last().unwrap();
        let bound = settings(None).points_window() * windows as u32;
        assert!(last >= bound, "{last:?} before the bound {bound:?}");
        let slack = (settings(None).points_window() + latency) * (windows as u32 + 1);
        assert!(last <= slack, "{last:?} later than {slack:?}");
    }
}

#[test]
fn the_first_budget_goes_at_once_and_the_next_request_waits_for_the_oldest_points() {
    let s = settings(Some(10));
    let mut st = BucketState::default();
    let t0 = Instant::now();
    let a = st.charge(5, true, t0, &s);
    assert_eq!(st.wait_for(&s, 5, true, t0), None);
    let b = st.charge(5, true, t0, &s);
    // Both pending: the points never leave before the responses.
    assert_eq!(st.wait_for(&s, 1, false, t0), Some((POLL, Reason::Points)));
    st.complete(a, t0 + Duration::from_millis(100));
    st.complete(b, t0 + Duration::from_millis(200));
    let (wait, why) = st
        .wait_for(&s, 1, false, t0 + Duration::from_millis(300))
        .unwrap();
    assert_eq!(why, Reason::Points);
    // The first charge leaves the 1 s window at 1.1 s.
    assert_eq!(wait, Duration::from_millis(800));
    assert_eq!(
        st.wait_for(&s, 5, true, t0 + Duration::from_millis(1_100)),
        None
    );
}

#[test]
fn a_spent_primary_budget_waits_for_the_reset_and_then_starts_a_new_window() {
    let s = settings(None);
    let mut st = BucketState::default();
    let now = Instant::now();
    let wall = SystemTime::now();
    let epoch = wall.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let id = st.charge(1, false, now, &s);
    st.learn(
        &h(&[
            ("x-ratelimit-remaining", "2".into()),
            ("x-ratelimit-reset", (epoch + 30).to_string()),
        ]),
        &s,
        now,
        wall,
    );
    st.complete(id, now);
    st.charge(1, false, now, &s);
    st.charge(1, false, now, &s);
    let (wait, why) = st.wait_for(&s, 1, false, now).expect("spent");
    assert_eq!(why, Reason::Primary);
    assert!(
        wait > Duration::from_secs(28) && wait <= Duration::from_secs(31),
        "{wait:?}"
    );
    assert_eq!(st.wait_for(&s, 1, false, now + wait), None);
    // After the reset the limit (2) counts down again until a response tells more.
    st.charge(1, false, now + wait, &s);
    st.charge(1, false, now + wait, &s);
    assert_eq!(
        st.wait_for(&s, 1, false, now + wait),
        Some((POLL, Reason::Primary)),
        "the new window's reset is not known yet"
    );
    st.primary.as_mut().unwrap().remaining = 1;
    // A late answer from the old window does not bring the wait back.
    st.learn(
        &h(&[
            ("x-ratelimit-remaining", "0".into()),
            ("x-ratelimit-reset", (epoch + 30).to_string()),
        ]),
        &s,
        now + wait,
        wall + wait,
    );
    assert_eq!(st.wait_for(&s, 1, false, now + wait), None);
}

#[test]
fn requests_in_flight_are_subtracted_from_a_new_windows_remaining() {
    let s = settings(None);
    let mut st = BucketState::default();
    let now = Instant::now();
    let wall = SystemTime::now();
    let epoch = wall.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    for _ in 0..5 {
        st.charge(1, false, now, &s);
    }
    st.learn(
        &h(&[
            ("x-ratelimit-remaining", "4".into()),
            ("x-ratelimit-reset", (epoch + 60).to_string()),
        ]),
        &s,
        now,
        wall,
    );
    // Four other requests may not be counted yet: nothing is left to send.
    assert_eq!(st.primary.unwrap().remaining, 0);
    assert_eq!(
        st.wait_for(&s, 1, false, now).map(|w| w.1),
        Some(Reason::Primary)
    );
}

#[test]
fn limits_off_never_waits_for_points_or_the_primary_budget() {
    let s = GovernorSettings {
        points_per_minute: None,
        follow_primary: false,
        ..settings(None)
    };
    let mut st = BucketState::default();
    let now = Instant::now();
    let epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    st.learn(
        &h(&[
            ("x-ratelimit-remaining", "0".into()),
            ("x-ratelimit-reset", (epoch + 600).to_string()),
        ]),
        &s,
        now,
        SystemTime::now(),
    );
    for _ in 0..10_000 {
        assert_eq!(st.wait_for(&s, 5, true, now), None);
        st.charge(5, true, now, &s);
    }
}

#[test]
fn writes_keep_their_gap_and_reads_do_not() {
    let s = GovernorSettings {
        min_write_gap: Duration::from_millis(750),
        ..settings(None)
    };
    let mut st = BucketState::default();
    let t0 = Instant::now();
    st.charge(5, true, t0, &s);
    assert_eq!(st.wait_for(&s, 1, false, t0), None);
    assert_eq!(
        st.wait_for(&s, 5, true, t0 + Duration::from_millis(250)),
        Some((Duration::from_millis(500), Reason::WriteGap))
    );
}

#[test]
fn a_clock_skewed_server_has_its_reset_moved_onto_our_clock() {
    let now = Instant::now();
    let wall = SystemTime::now();
    let epoch = wall.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let ahead = chrono::DateTime::from_timestamp(epoch + 3600, 0).unwrap();
    let headers = h(&[(
        "date",
        ahead.format("%a, %d %b %Y %H:%M:%S GMT").to_string(),
    )]);
    let at = reset_instant(&headers, epoch + 3610, now, wall);
    let d = at - now;
    assert!(
        d > Duration::from_secs(8) && d < Duration::from_secs(12),
        "{d:?}"
    );
}

#[tokio::test]
async fn a_pause_holds_every_request_of_the_identity_and_no_other() {
    let g = Governor::new(settings(None));
    g.pause("token", Duration::from_millis(300));
    let started = Instant::now();
    drop(g.admit("other", &Method::GET).await);
    assert!(started.elapsed() < Duration::from_millis(100));
    drop(g.admit("token", &Method::GET).await);
    assert!(started.elapsed() >= Duration::from_millis(290));
    assert_eq!(g.stats("token").pauses, 1);
}

#[test]
fn gaps_read_with_their_units() {
    assert_eq!(parse_gap("750ms"), Ok(Duration::from_millis(750)));
    assert_eq!(parse_gap("1s"), Ok(Duration::from_secs(1)));
    assert_eq!(parse_gap("0"), Ok(Duration::ZERO));
    assert!(parse_gap("soon").is_err());
    assert!(parse_gap("5h").is_err());
}
