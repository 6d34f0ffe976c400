//! The generator: CSPRNG values of a given length and charset.
