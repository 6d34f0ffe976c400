//! One integration test binary: `util` holds the harness (OpenBao, emulator, the rotor
//! binary); each other module covers one feature end to end over real HTTP.

mod util;

mod app_auth;
mod authoring;
mod daemon;
mod emulator;
mod examples;
mod github;
mod hardening;
mod lease;
mod login;
mod partner;
mod policy;
mod rotation;
mod runners;
mod sandbox;
mod scale;
mod schema;
mod scopes;
mod source;
mod structure;
mod transaction;
