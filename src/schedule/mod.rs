//! Cadence: when each policy is next due. Pure time arithmetic, right across DST changes.

pub mod clock;
pub mod next;

pub use next::next_due;
