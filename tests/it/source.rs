//! source tests
