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

/// Keeps the CPU busy for `micros` microseconds (a sleep would measure the scheduler, not the code).
pub fn spin(micros: u64) {
    let until = Instant::now() + Duration::from_micros(micros);
    while Instant::now() < until {
        std::hint::spin_loop();
    }
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
