//! What the integration tests share: work of known duration and one lock, because the recorded data is
//! process-wide and tests of one binary run on parallel threads.

#![allow(dead_code)]

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

static EXCLUSIVE: Mutex<()> = Mutex::new(());

/// Runs one test at a time in this binary, from a clean slate.
pub fn exclusive() -> MutexGuard<'static, ()> {
    let guard = EXCLUSIVE.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    timing_runtime::set_granularity(timing_runtime::TimingGranularity::Detailed);
    timing_runtime::reset();
    guard
}

/// How far the runtime's nanoseconds may be from `Instant`'s: its ticks are turned into nanoseconds at a
/// rate measured against `Instant` over 1 ms when the clock starts, and `Instant` itself runs up to 500 ppm
/// fast or slow while NTP slews it. A CI run once recorded 299,973 ns for 300 µs spun (90 ppm).
pub const CLOCK_TOLERANCE: f64 = 0.001;

/// Keeps the CPU busy for `micros` microseconds (a sleep would measure the scheduler, not the code), and
/// [`CLOCK_TOLERANCE`] more, so that a test may expect the runtime to record at least `micros`.
pub fn spin(micros: u64) {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
    let nanos = (micros as f64 * 1_000.0 * (1.0 + CLOCK_TOLERANCE)).ceil() as u64;
    let until = Instant::now() + Duration::from_nanos(nanos);
    while Instant::now() < until {
        std::hint::spin_loop();
    }
}

/// Keeps the CPU busy for `nanos` nanoseconds, for calls shorter than a microsecond (no tolerance added: the
/// tests that use it bound what was recorded by the margins the runtime states).
pub fn spin_ns(nanos: u64) {
    let until = Instant::now() + Duration::from_nanos(nanos);
    while Instant::now() < until {
        std::hint::spin_loop();
    }
}

/// The nanoseconds since `start` by `Instant`, and [`CLOCK_TOLERANCE`] more: an upper bound on what the
/// runtime can have recorded in that time.
pub fn wall_since(start: Instant) -> u64 {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
    let ns = (start.elapsed().as_nanos() as f64 * (1.0 + CLOCK_TOLERANCE)).ceil() as u64;
    ns
}

/// `actual` is within `tolerance` (a fraction) of `expected`.
pub fn near(actual: f64, expected: f64, tolerance: f64) -> bool {
    (actual - expected).abs() <= expected.abs() * tolerance
}

/// An HTTP client for the servers tests start on loopback: it gives up after `seconds`, and hands back
/// error statuses as answers for the test to check.
pub fn http_agent(seconds: u64) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(seconds)))
        .http_status_as_error(false)
        .build()
        .into()
}
