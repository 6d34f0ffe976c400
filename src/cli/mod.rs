//! The command line: flags -> settings -> library calls; errors -> exit codes.
//! Parsing never acts; each command lives in its own file.

pub mod args;
pub mod commands;
pub mod progress;
pub mod settings;

pub use args::{Cli, Command};

/// Exit codes (DESIGN.md): 0 done, 1 some target failed, 2 bad input.
pub mod exit {
    pub const OK: u8 = 0;
    pub const FAILED: u8 = 1;
    pub const BAD_INPUT: u8 = 2;
}
