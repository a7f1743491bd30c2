//! The clock: raw ticks on the hot path, nanoseconds when a record is made.
//!
//! On x86-64 a tick is one count of the time-stamp counter (read with `rdtsc`, ~7 ns here against ~25 ns for
//! `Instant::now()`), used only when the CPU says the counter runs at a constant rate through sleep states
//! (the invariant-TSC bit); otherwise, and on other targets, a tick is a nanosecond of a monotonic clock.
//! Ticks are turned into nanoseconds with a rate measured against the monotonic clock: first over a short
//! spin when the clock starts, then refined over the whole run whenever a record is made.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
use web_time::Instant;
#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
use std::time::Instant;

/// When the clock was started, in both units, and whether the TSC is used at all.
struct Anchor {
    instant: Instant,
    ticks: u64,
    tsc: bool,
}

static ANCHOR: OnceLock<Anchor> = OnceLock::new();
/// Nanoseconds per tick as `f64` bits; the last refinement wins.
static NS_PER_TICK: AtomicU64 = AtomicU64::new(0);
/// The tick at which the rate was last refined, so that it is refined at most every `REFINE_EVERY_NS`.
static REFINED_AT: AtomicU64 = AtomicU64::new(0);
const REFINE_EVERY_NS: f64 = 100_000_000.0;
const FIRST_SPIN_NS: u128 = 200_000;

#[inline(always)]
fn anchor() -> &'static Anchor {
    ANCHOR.get_or_init(start)
}

#[cold]
fn start() -> Anchor {
    let tsc = tsc_is_invariant();
    let instant = Instant::now();
    let ticks = if tsc { read_tsc() } else { 0 };
    let anchor = Anchor { instant, ticks, tsc };
    if tsc {
        // The first records of a run would otherwise be converted with no rate at all.
        while anchor.instant.elapsed().as_nanos() < FIRST_SPIN_NS {
            std::hint::spin_loop();
        }
        store_rate(&anchor, read_tsc(), Instant::now());
    } else {
        NS_PER_TICK.store(1f64.to_bits(), Relaxed);
    }
    anchor
}

/// Starts the clock if it has not been started, so that the first timed call does not pay for it.
pub(crate) fn init() {
    anchor();
}

/// The current time in ticks. Never goes backwards on one thread; across threads, compare with
/// `saturating_sub`.
#[inline(always)]
pub(crate) fn now() -> u64 {
    let anchor = anchor();
    if anchor.tsc {
        read_tsc()
    } else {
        u64::try_from(anchor.instant.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// Nanoseconds in `ticks`, with the best rate known.
pub(crate) fn to_ns(ticks: u64) -> u64 {
    let rate = ns_per_tick();
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
    let ns = (ticks as f64 * rate).round() as u64;
    ns
}

/// Nanoseconds per tick, refined against the monotonic clock if the last refinement is old.
pub(crate) fn ns_per_tick() -> f64 {
    let anchor = anchor();
    if anchor.tsc {
        let rate = f64::from_bits(NS_PER_TICK.load(Relaxed));
        let ticks = read_tsc();
        #[allow(clippy::cast_precision_loss)]
        let since_refined = ticks.saturating_sub(REFINED_AT.load(Relaxed)) as f64 * rate;
        if since_refined >= REFINE_EVERY_NS {
            store_rate(anchor, ticks, Instant::now());
        }
    }
    f64::from_bits(NS_PER_TICK.load(Relaxed))
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
    REFINED_AT.store(ticks, Relaxed);
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
    let highest_extended = __cpuid(0x8000_0000).eax;
    highest_extended >= 0x8000_0007 && __cpuid(0x8000_0007).edx & INVARIANT_TSC != 0
}

#[cfg(not(all(target_arch = "x86_64", not(miri))))]
fn tsc_is_invariant() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_convert_to_the_monotonic_clocks_nanoseconds() {
        let start_instant = Instant::now();
        let start = now();
        while start_instant.elapsed().as_millis() < 20 {
            std::hint::spin_loop();
        }
        let ticks = now() - start;
        let measured = to_ns(ticks);
        let reference = u64::try_from(start_instant.elapsed().as_nanos()).unwrap();
        let error = measured.abs_diff(reference);
        assert!(error < reference / 50, "{measured} ns by ticks, {reference} ns by Instant");
    }
}
