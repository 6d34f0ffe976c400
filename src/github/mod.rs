//! The GitHub client: the only module that knows GitHub's HTTP and JSON.

pub mod types;

pub use types::*;
