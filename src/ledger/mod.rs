//! The ledger: what rotor pushed where and when — source versions, key ids, times, failures.
//! Never a value.

pub mod journal;
pub mod record;

pub use journal::Ledger;
pub use record::*;
