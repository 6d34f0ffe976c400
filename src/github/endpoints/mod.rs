//! The endpoints rotor calls, one [`Client`](super::Client) method each: the route, the
//! request and the typed answer. How requests are sent is the transport's business; how
//! listings are read, the listing module's.

mod actions;
mod apps;
mod rate_limit;
mod repos;
mod runners;
mod secrets;

pub use actions::{ALWAYS_RETURNS_RUN, MAX_LOG_BYTES};
pub use runners::RunnerToken;
pub use secrets::PutReceipt;
