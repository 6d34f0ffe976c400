//! `Context`: what a pass and an apply need to reach the outside world, in one place.
//!
//! It owns its parts: whoever runs passes builds one (`rotor apply` for one run, the daemon
//! for its lifetime, inside its shared state) and lends it out; `Pass` and `Applier` only
//! borrow it (`&Context`), so a new part is declared here once and every user sees it.

use std::sync::Mutex;

use tokio_util::sync::CancellationToken;

use crate::audit::AuditLog;
use crate::github::Client;
use crate::ledger::Ledger;
use crate::model::plan::PollSettings;
use crate::source::Sources;

/// The GitHub client, the sources, the ledger, the audit log and the stop signal that a
/// pass (observe, plan, apply) works with.
pub struct Context {
    pub github: Client,
    pub sources: Sources,
    pub ledger: Mutex<Ledger>,
    /// Requests (listings, keys, pushes) in flight at once; apply pushes this many targets
    /// at once (the GitHub client bounds requests on its own too).
    pub concurrency: usize,
    /// Where rotations and pushes are recorded for auditors, when enabled. A push's record
    /// is on disk before the push is recorded in the ledger.
    pub audit: Option<AuditLog>,
    /// Once cancelled, no new rotation or push starts; pushes already sent finish. A token
    /// nobody cancels (`CancellationToken::new()`) lets every apply run to its end.
    pub stop: CancellationToken,
    /// How often verification runs are polled (a transactional rotation's `verify`).
    pub verify_poll: PollSettings,
}

impl Context {
    /// A context without an audit log and with a stop token nobody cancels yet.
    pub fn new(github: Client, sources: Sources, ledger: Ledger, concurrency: usize) -> Context {
        Context {
            github,
            sources,
            ledger: Mutex::new(ledger),
            concurrency,
            audit: None,
            stop: CancellationToken::new(),
            verify_poll: PollSettings::default(),
        }
    }

    /// The same context, recording in `audit`.
    pub fn with_audit(mut self, audit: AuditLog) -> Context {
        self.audit = Some(audit);
        self
    }

    /// True once the stop token is cancelled: start nothing new.
    pub fn stopping(&self) -> bool {
        self.stop.is_cancelled()
    }
}
