//! The wake-up ticker: tokio-cron-scheduler runs a job every second that wakes the
//! scheduler loop. It only wakes the loop. What runs, and when, is decided by rotor's own
//! time math against the ledger (`slots`), and the loop also sleeps until the next due
//! time by itself, so a late, lost or doubled tick (or a ticker that never started)
//! changes nothing but latency.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_cron_scheduler::{Job, JobScheduler, JobSchedulerError};

/// How often the ticker wakes the loop.
pub const TICK: Duration = Duration::from_secs(1);

pub struct Ticker {
    scheduler: Option<JobScheduler>,
}

impl Ticker {
    /// Starts ticking into `wake`; a ticker that cannot start is logged, not fatal.
    pub async fn start(wake: Arc<Notify>) -> Ticker {
        match Self::try_start(wake).await {
            Ok(s) => Ticker { scheduler: Some(s) },
            Err(e) => {
                tracing::warn!(error = %e, "the wake-up ticker did not start; the scheduler wakes on its own timer");
                Ticker { scheduler: None }
            }
        }
    }

    async fn try_start(wake: Arc<Notify>) -> Result<JobScheduler, JobSchedulerError> {
        let scheduler = JobScheduler::new().await?;
        let job = Job::new_repeated_async(TICK, move |_id, _scheduler| {
            let wake = Arc::clone(&wake);
            Box::pin(async move { wake.notify_one() })
        })?;
        scheduler.add(job).await?;
        scheduler.start().await?;
        Ok(scheduler)
    }

    /// Stops ticking. tokio-cron-scheduler's shutdown does not wait for running jobs; the
    /// daemon does not rely on it for draining (its own task tracker does that).
    pub async fn stop(&mut self) {
        if let Some(mut s) = self.scheduler.take() {
            if let Err(e) = s.shutdown().await {
                tracing::debug!(error = %e, "stopping the wake-up ticker");
            }
        }
    }
}
