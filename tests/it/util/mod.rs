//! Test harness: real OpenBao, real PostgreSQL, the in-process GitHub emulator, and the rotor
//! binary.
#![allow(dead_code)]
pub mod bao;
pub mod daemon;
pub mod emu;
pub mod fake;
pub mod pg;
pub mod rotor;
