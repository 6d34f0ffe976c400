//! emulator harness
