//! The ledger: what rotor pushed where and when — source versions, key ids, times, failures.
//! Never a value.

pub mod journal;
pub mod record;
pub mod status;
pub mod txn;

pub use journal::Ledger;
pub use record::*;
pub use status::{status_rows, StatusRow};
pub use txn::{HeldLease, LeaseInfo, LeaseRecord, TxnBook, TxnRecord, TxnState, TxnStatus};
