//! Apply's progress on stderr: a progress bar on a terminal (targets done, failed, ETA),
//! plain periodic lines otherwise (logs, CI), nothing for runs shorter than one period.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use rotor::apply::Progress;

/// How often a line is written when stderr is not a terminal.
pub const LINE_PERIOD: Duration = Duration::from_secs(10);

/// The progress sink for this process: a bar when stderr is a terminal, else lines.
pub fn for_stderr() -> Box<dyn Progress> {
    if std::io::stderr().is_terminal() {
        Box::new(Bar::new())
    } else {
        Box::new(Lines::new(LINE_PERIOD, |line| eprintln!("{line}")))
    }
}

/// A progress bar on stderr.
pub struct Bar {
    bar: ProgressBar,
    failed: AtomicU64,
}

impl Bar {
    pub fn new() -> Self {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix} [{bar:30}] {pos}/{len} targets, {msg} failed, {per_sec}, ETA {eta}",
            )
            .expect("the template is valid")
            .progress_chars("=> "),
        );
        bar.set_message("0");
        Bar {
            bar,
            failed: AtomicU64::new(0),
        }
    }
}

impl Default for Bar {
    fn default() -> Self {
        Self::new()
    }
}

impl Progress for Bar {
    fn policy(&self, policy: &str, targets: usize) {
        self.bar.set_prefix(policy.to_string());
        self.bar.inc_length(targets as u64);
    }

    fn target_done(&self, ok: bool) {
        if !ok {
            let n = self.failed.fetch_add(1, Ordering::Relaxed) + 1;
            self.bar.set_message(n.to_string());
        }
        self.bar.inc(1);
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// Plain lines, at most one per period: `apply: 4200/10000 targets done, 3 failed, 58/s, ETA 1m40s`.
pub struct Lines<F: Fn(&str) + Send + Sync> {
    write: F,
    period: Duration,
    started: Instant,
    total: AtomicU64,
    done: AtomicU64,
    failed: AtomicU64,
    last: Mutex<Instant>,
}

impl<F: Fn(&str) + Send + Sync> Lines<F> {
    pub fn new(period: Duration, write: F) -> Self {
        let now = Instant::now();
        Lines {
            write,
            period,
            started: now,
            total: AtomicU64::new(0),
            done: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            last: Mutex::new(now),
        }
    }

    fn line(&self) -> String {
        let done = self.done.load(Ordering::Relaxed);
        let total = self.total.load(Ordering::Relaxed);
        let failed = self.failed.load(Ordering::Relaxed);
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = done as f64 / secs;
        let eta = if rate > 0.0 {
            format_secs(total.saturating_sub(done) as f64 / rate)
        } else {
            "unknown".to_string()
        };
        format!("apply: {done}/{total} targets done, {failed} failed, {rate:.0}/s, ETA {eta}")
    }
}

fn format_secs(secs: f64) -> String {
    let s = secs.round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

impl<F: Fn(&str) + Send + Sync> Progress for Lines<F> {
    fn policy(&self, _policy: &str, targets: usize) {
        self.total.fetch_add(targets as u64, Ordering::Relaxed);
    }

    fn target_done(&self, ok: bool) {
        self.done.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
        let now = Instant::now();
        let due = {
            let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
            if now.duration_since(*last) >= self.period {
                *last = now;
                true
            } else {
                false
            }
        };
        if due {
            (self.write)(&self.line());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn lines_come_once_a_period_with_counts_and_an_eta() {
        let out = Arc::new(Mutex::new(Vec::<String>::new()));
        let sink = {
            let out = Arc::clone(&out);
            Lines::new(Duration::from_millis(50), move |l| {
                out.lock().unwrap().push(l.to_string())
            })
        };
        sink.policy("p", 10);
        sink.target_done(true);
        assert!(
            out.lock().unwrap().is_empty(),
            "nothing before the first period"
        );
        std::thread::sleep(Duration::from_millis(60));
        sink.target_done(false);
        sink.target_done(true);
        let lines = out.lock().unwrap().clone();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].starts_with("apply: 2/10 targets done, 1 failed, "),
            "{}",
            lines[0]
        );
        assert!(lines[0].contains("ETA "), "{}", lines[0]);
        assert_eq!(format_secs(100.0), "1m40s");
    }
}
