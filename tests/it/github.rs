//! github tests
