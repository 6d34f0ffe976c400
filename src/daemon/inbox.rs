//! What the HTTP listener hands the daemon's loop: webhook work to carry out, and runs the
//! control API asks for. The listener answers at once (a webhook within GitHub's 10 s);
//! the loop does the work in a pass of its own.

use std::time::Instant;

use tokio::sync::oneshot;

use crate::webhook::Work;

/// One message for the loop.
pub enum Inbound {
    /// A verified webhook delivery's work. `label` names the event (`repository.created`).
    Webhook {
        work: Work,
        label: String,
        received: Instant,
    },
    /// `POST /v1/policies/{name}/rotate` (`force`) or `/apply`: run the policy's pass now
    /// and answer with what it did.
    Run {
        policy: String,
        force: bool,
        reply: oneshot::Sender<RunAnswer>,
    },
    /// `GET /v1/plan`: what a pass of every policy would do now (the plan's JSON).
    Plan {
        reply: oneshot::Sender<serde_json::Value>,
    },
}

/// What a pass asked for through the API did (JSON for the API's answer).
#[derive(Debug)]
pub enum RunAnswer {
    /// The pass ran: its policy report and whether every target converged.
    Done {
        converged: bool,
        report: serde_json::Value,
    },
    /// No policy of that name is loaded.
    Unknown,
    /// The daemon is shutting down.
    ShuttingDown,
}
