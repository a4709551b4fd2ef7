//! Bad-input corpus: every case asserts its exact error and that the daemon kept serving.
