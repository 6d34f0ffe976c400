//! rotation tests
