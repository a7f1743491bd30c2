//! What a timed call charges its caller for instrumentation: the cost the calibration measured, or nothing
//! while it is unmeasured or subtraction is off. Read by every closing span, so it is one relaxed load.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use crate::record::clock;

/// Ticks a closed span adds to its caller's self time; 0 until measured, or when subtraction is off.
static CHARGED: AtomicU64 = AtomicU64::new(0);
static SUBTRACT: AtomicBool = AtomicBool::new(true);
static MEASURED: OnceLock<u64> = OnceLock::new();

/// The ticks to leave out of a caller's self time for each closed timed call it made.
#[inline(always)]
pub(crate) fn charged_ticks() -> u64 {
    CHARGED.load(Relaxed)
}

/// Measures the cost with `measure` once per process (other threads that ask meanwhile wait for it).
pub(crate) fn measure_once(measure: impl FnOnce() -> u64) {
    MEASURED.get_or_init(|| {
        let ticks = measure();
        if SUBTRACT.load(Relaxed) {
            CHARGED.store(ticks, Relaxed);
        }
        ticks
    });
}

/// The measured cost per timed call in nanoseconds, if it has been measured.
pub(crate) fn measured_ns() -> Option<f64> {
    #[allow(clippy::cast_precision_loss)]
    MEASURED.get().map(|ticks| clock::to_ns(*ticks * 1_000) as f64 / 1_000.0)
}

pub(crate) fn set_subtract(on: bool) {
    SUBTRACT.store(on, Relaxed);
    CHARGED.store(if on { MEASURED.get().copied().unwrap_or(0) } else { 0 }, Relaxed);
}

pub(crate) fn subtracting() -> bool {
    SUBTRACT.load(Relaxed)
}
