//! One integration test binary: `util` holds the harness (OpenBao, emulator, the rotor
//! binary); each other module covers one feature end to end over real HTTP.

mod util;

mod emulator;
mod policy;
mod source;
mod github;
mod rotation;
mod scale;
mod scopes;
mod app_auth;
mod daemon;
mod structure;
