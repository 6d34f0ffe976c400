//! Sealing: libsodium sealed boxes with a target's X25519 public key.
