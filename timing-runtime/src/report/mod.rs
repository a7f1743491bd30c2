//! From the store to the public model: a summary merged over threads, the timeline with names and
//! nanoseconds, and the comparison of two runs. Reads `store`, asks `record` to hand over what the
//! calling thread holds back, and builds `model` types; it never writes what a thread records (see
//! `docs/architecture.md`).

pub(crate) mod compare;
#[cfg(feature = "timing")]
mod estimate;
mod stats;
#[cfg(feature = "timing")]
pub(crate) mod summary;
#[cfg(feature = "timing")]
pub(crate) mod timeline;

pub use compare::{
    CONFIDENCE, Change, CompareSettings, Comparison, DEFAULT_MIN_CHANGE_PCT, DEFAULT_NOISE_PCT, SINGLE_RUN_NOISE_PCT,
    Verdict,
};
