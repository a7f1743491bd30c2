//! The clock: raw ticks on the hot path, nanoseconds when a record is made.
//!
//! On x86-64 a tick is one count of the time-stamp counter (read with `rdtsc`, ~7 ns here against ~25 ns for
//! `Instant::now()`), used only when the CPU says the counter runs at a constant rate through sleep states
//! (the invariant-TSC bit); otherwise, and on other targets, a tick is a nanosecond of a monotonic clock.
//! Ticks are turned into nanoseconds with a rate measured against the monotonic clock over a 1 ms spin
//! when the clock starts (once per process, before the first timed call reads it). The rate is never
//! changed afterwards, so that every record of a run, early or late, is converted alike.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Acquire, Ordering::Relaxed, Ordering::Release};

#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
use std::time::Instant;
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
use web_time::Instant;

/// When the clock was started, in both units, and whether the TSC is used at all.
struct Anchor {
    instant: Instant,
    ticks: u64,
    tsc: bool,
}

static ANCHOR: OnceLock<Anchor> = OnceLock::new();
/// Set once the TSC is calibrated and chosen: then `now` is a flag test and `rdtsc`.
static TSC_READY: AtomicBool = AtomicBool::new(false);
/// Nanoseconds per tick as `f64` bits, set once by `start`.
static NS_PER_TICK: AtomicU64 = AtomicU64::new(0);
/// Long enough that the two `Instant` reads (~30 ns each) are a 0.01% error.
const CALIBRATION_NS: u128 = 1_000_000;

#[inline(always)]
fn anchor() -> &'static Anchor {
    ANCHOR.get_or_init(start)
}

#[cold]
fn start() -> Anchor {
    let tsc = tsc_is_invariant();
    if !tsc {
        NS_PER_TICK.store(1f64.to_bits(), Relaxed);
        return Anchor { instant: Instant::now(), ticks: 0, tsc };
    }
    let (ticks, instant) = paired_reading();
    let anchor = Anchor { instant, ticks, tsc };
    while anchor.instant.elapsed().as_nanos() < CALIBRATION_NS {
        std::hint::spin_loop();
    }
    let (ticks, instant) = paired_reading();
    store_rate(&anchor, ticks, instant);
    TSC_READY.store(true, Release);
    anchor
}

/// A tick count and an `Instant` read at the same moment, as nearly as can be: of several tries, the one
/// whose two TSC reads around the `Instant` read are closest together, so that a thread preempted between
/// the reads (common on a loaded machine) does not skew the rate.
fn paired_reading() -> (u64, Instant) {
    let mut best: Option<(u64, u64, Instant)> = None;
    for _ in 0..16 {
        let before = read_tsc();
        let instant = Instant::now();
        let after = read_tsc();
        let width = after.saturating_sub(before);
        if best.is_none_or(|(best_width, _, _)| width < best_width) {
            best = Some((width, before + width / 2, instant));
        }
    }
    best.map_or_else(|| (read_tsc(), Instant::now()), |(_, ticks, instant)| (ticks, instant))
}

/// Starts the clock if it has not been started, so that the first timed call does not pay for it.
pub(crate) fn init() {
    anchor();
}

/// The current time in ticks. Never goes backwards on one thread; across threads, compare with
/// `saturating_sub`.
#[inline(always)]
pub(crate) fn now() -> u64 {
    #[cfg(test)]
    if let Some(ticks) = fake::now() {
        return ticks;
    }
    if TSC_READY.load(Acquire) {
        return read_tsc();
    }
    monotonic_ticks()
}

/// Whether ticks are TSC counts, for good: once the clock has started, this never changes.
pub(crate) fn tsc_ready() -> bool {
    TSC_READY.load(Acquire)
}

/// The current time in ticks once `tsc_ready` has said so: `rdtsc` alone, without the test of `now`.
#[inline(always)]
pub(crate) fn tsc_now() -> u64 {
    #[cfg(test)]
    if let Some(ticks) = fake::now() {
        return ticks;
    }
    read_tsc()
}

#[cold]
#[inline(never)]
fn monotonic_ticks() -> u64 {
    let anchor = anchor();
    if anchor.tsc { read_tsc() } else { u64::try_from(anchor.instant.elapsed().as_nanos()).unwrap_or(u64::MAX) }
}

/// The tick at which the clock started: the origin of timeline timestamps.
pub(crate) fn origin() -> u64 {
    anchor().ticks
}

/// Nanoseconds in `ticks`, with the best rate known.
pub(crate) fn to_ns(ticks: u64) -> u64 {
    anchor();
    let rate = f64::from_bits(NS_PER_TICK.load(Relaxed));
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
    let ns = (ticks as f64 * rate).round() as u64;
    ns
}

fn store_rate(anchor: &Anchor, ticks: u64, instant: Instant) {
    let elapsed_ticks = ticks.saturating_sub(anchor.ticks);
    let elapsed_ns = instant.saturating_duration_since(anchor.instant).as_nanos();
    if elapsed_ticks == 0 || elapsed_ns == 0 {
        return;
    }
    #[allow(clippy::cast_precision_loss)]
    let rate = elapsed_ns as f64 / elapsed_ticks as f64;
    NS_PER_TICK.store(rate.to_bits(), Relaxed);
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
#[allow(unsafe_code)]
fn read_tsc() -> u64 {
    // SAFETY: `rdtsc` has no preconditions on x86-64; it only reads a counter.
    unsafe { core::arch::x86_64::_rdtsc() }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn read_tsc() -> u64 {
    0
}

#[cfg(all(target_arch = "x86_64", not(miri)))]
fn tsc_is_invariant() -> bool {
    use core::arch::x86_64::__cpuid;
    const INVARIANT_TSC: u32 = 1 << 8;
    if std::env::var_os("TIMING_NO_TSC").is_some() {
        return false;
    }
    // `__cpuid` is safe from Rust 1.87 on and `unsafe` before it; the block keeps both compiling.
    #[allow(unsafe_code, unused_unsafe)]
    // SAFETY: `cpuid` exists on every x86-64 CPU and only reads identification registers.
    let (highest_extended, power) = unsafe { (__cpuid(0x8000_0000).eax, __cpuid(0x8000_0007).edx) };
    highest_extended >= 0x8000_0007 && power & INVARIANT_TSC != 0
}

#[cfg(not(all(target_arch = "x86_64", not(miri))))]
fn tsc_is_invariant() -> bool {
    false
}

/// A clock the unit tests set by hand, per thread, to make time stand still or go backwards.
#[cfg(test)]
pub(crate) mod fake {
    use std::cell::Cell;

    thread_local! {
        static TICKS: Cell<Option<u64>> = const { Cell::new(None) };
    }

    pub(crate) fn now() -> Option<u64> {
        TICKS.with(Cell::get)
    }

    /// From now on, this thread's clock reads `ticks`; `None` gives it back the real clock.
    pub(crate) fn set(ticks: Option<u64>) {
        TICKS.with(|cell| cell.set(ticks));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_convert_to_the_monotonic_clocks_nanoseconds() {
        init();
        let (start, start_instant) = if anchor().tsc { paired_reading() } else { (now(), Instant::now()) };
        while start_instant.elapsed().as_millis() < 20 {
            std::hint::spin_loop();
        }
        let (end, end_instant) = if anchor().tsc { paired_reading() } else { (now(), Instant::now()) };
        let measured = to_ns(end - start);
        let reference = u64::try_from((end_instant - start_instant).as_nanos()).unwrap();
        let error = measured.abs_diff(reference);
        assert!(error < reference / 1000, "{measured} ns by ticks, {reference} ns by Instant");
    }
}
