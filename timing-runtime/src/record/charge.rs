//! What a timed call charges its caller for instrumentation: the cost the calibration measured for the way
//! the call closed, or nothing while it is unmeasured or subtraction is off. Read by every closing span, so
//! it is one relaxed load from an address known at compile time.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use crate::record::clock;

/// How a timed call opened and closed, each way with a cost of its own: a recursive close takes a second
/// try after the common one fails, a frame beyond the inline stack is reached out of line both ways, and
/// the slow path does much more. Charging each call the fast path's cost left a recursive phase a point or
/// two above what a sampling profile of the unannotated program shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Close {
    /// Opened and closed on the hot path.
    Fast = 0,
    /// A recursive call: opened on the hot path, closed by its second try.
    Recursive = 1,
    /// A frame beyond the inline stack, opened and closed by the second tries.
    Deep = 2,
    /// Closed by the slow path.
    Slow = 3,
}

impl Close {
    pub const ALL: [Close; 4] = [Close::Fast, Close::Recursive, Close::Deep, Close::Slow];

    /// The way a hot-path close with these properties took.
    #[inline(always)]
    pub const fn of(recursive: bool, deep: bool) -> Close {
        match (recursive, deep) {
            (_, true) => Close::Deep,
            (true, false) => Close::Recursive,
            (false, false) => Close::Fast,
        }
    }
}

/// Ticks a closed span adds to its caller's self time, by `Close`; 0 until measured, or when subtraction is
/// off.
static CHARGED: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];
static SUBTRACT: AtomicBool = AtomicBool::new(true);
static MEASURED: OnceLock<[u64; 4]> = OnceLock::new();

/// The ticks to leave out of a caller's self time for each timed call it made that closed by `close`.
#[inline(always)]
pub(crate) fn charged_ticks(close: Close) -> u64 {
    CHARGED[close as usize].load(Relaxed)
}

/// Measures the costs with `measure` once per process (other threads that ask meanwhile wait for it).
pub(crate) fn measure_once(measure: impl FnOnce() -> [u64; 4]) {
    MEASURED.get_or_init(|| {
        let ticks = measure();
        if SUBTRACT.load(Relaxed) {
            store(ticks);
        }
        ticks
    });
}

fn store(ticks: [u64; 4]) {
    for (charged, ticks) in CHARGED.iter().zip(ticks) {
        charged.store(ticks, Relaxed);
    }
}

/// The measured cost per timed call closed by `close` in nanoseconds, if it has been measured.
pub(crate) fn measured_ns(close: Close) -> Option<f64> {
    #[allow(clippy::cast_precision_loss)]
    MEASURED.get().map(|ticks| clock::to_ns(ticks[close as usize] * 1_000) as f64 / 1_000.0)
}

pub(crate) fn set_subtract(on: bool) {
    SUBTRACT.store(on, Relaxed);
    store(if on { MEASURED.get().copied().unwrap_or_default() } else { [0; 4] });
}

pub(crate) fn subtracting() -> bool {
    SUBTRACT.load(Relaxed)
}
