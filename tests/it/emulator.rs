//! emulator tests
