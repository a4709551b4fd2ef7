//! The fuzz targets' entry functions (one per target in fuzz_targets/), kept in `entries.rs`
//! so the stable test suite runs the very same code over the corpus (tests/fuzz_corpus.rs).

mod entries;
pub use entries::*;
