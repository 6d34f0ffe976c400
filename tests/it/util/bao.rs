//! OpenBao dev server harness
