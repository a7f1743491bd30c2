//! The calibration of the instrumentation's own cost, disturbed on purpose: a first measurement far below
//! what a call costs (as one cut short would give) is corrected by the checks made during the run, from
//! batch ends, and until then the report's cost per call is never below two clock reads. A process of its
//! own (an integration test binary), as the costs are process-wide.

#![cfg(feature = "timing")]

use std::hint::black_box;
use std::time::{Duration, Instant};

use timing_runtime::timed;

#[timed(phase = "work")]
fn leaf(x: u64) -> u64 {
    black_box(x).wrapping_mul(31)
}

#[timed(step)]
fn step(x: u64) -> u64 {
    (0..8).fold(x, |acc, i| acc ^ leaf(acc + i))
}

#[timed(batch)]
fn batch(steps: u64) -> u64 {
    (0..steps).fold(0, |acc, i| acc ^ step(i))
}

#[test]
fn a_disturbed_first_calibration_is_corrected_during_the_run() {
    // One tick a call for every way of closing, none inside, no floor: far below any real call's cost.
    timing_runtime::__private::disturb_calibration(1);
    black_box(batch(1_000));
    assert_eq!(timing_runtime::__private::calibrations(), 1);
    let disturbed = timing_runtime::summary().instrumentation_ns_per_call;
    // Checks follow 1 s and 3 s after the first measurement, started from batch ends, in the background.
    let start = Instant::now();
    while timing_runtime::__private::calibrations() < 3 && start.elapsed() < Duration::from_secs(30) {
        black_box(batch(1_000));
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(timing_runtime::__private::calibrations() >= 3, "no check ran during the run");
    let corrected = timing_runtime::summary().instrumentation_ns_per_call;
    // Two measurements out of three are real now: their median is in force. A timed call costs at least
    // two clock reads, several nanoseconds on any machine; the disturbed one said a tick (a nanosecond on the
    // monotonic clock, a fraction of one on the TSC).
    assert!(disturbed <= 1.0, "{disturbed}");
    assert!(corrected > 3.0, "{disturbed} -> {corrected}");
}
