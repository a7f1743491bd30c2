//! The runtime's own cost, as a timed function's caller sees it: each timed call adds the work of opening and
//! closing its span (outside the span's own clock reads) to the caller's self time. It is measured once, on
//! a thread of its own at the first timed call of the process, by timing calls that do nothing inside a
//! parent span; then each closing span charges that cost to nobody instead of to its caller (unless
//! switched off), so that a phase made of many tiny calls is not inflated by the instrumentation.

use std::cell::Cell;

use crate::record::callsite::{Callsite, Kind};
use crate::record::hot::with_hot;
use crate::record::{charge, clock};

const CHILDREN: u32 = 256;
const ROUNDS: usize = 9;

thread_local! {
    /// Set on the calibration thread, whose recorder keeps its spans out of every report.
    static CALIBRATING: Cell<bool> = const { Cell::new(false) };
}

/// Measures the cost once per process (other threads that ask meanwhile wait for it: about a millisecond).
pub(crate) fn ensure() {
    charge::measure_once(|| {
        std::thread::Builder::new()
            .name("timing-calibration".into())
            .spawn(measure)
            .ok()
            .and_then(|thread| thread.join().ok())
            .unwrap_or(0)
    });
}

/// Whether this is the calibration thread.
pub(crate) fn is_calibrating() -> bool {
    CALIBRATING.try_with(Cell::get).unwrap_or(false)
}

/// Runs on the calibration thread, whose recorder keeps its spans to itself: the parent's self time over
/// `CHILDREN` empty timed calls, the least of `ROUNDS` rounds (interruptions only ever add). Nothing is
/// charged yet, so the self time is the calls' instrumentation. The first round also fills the caches the
/// hot path needs.
fn measure() -> u64 {
    static PARENT: Callsite = Callsite::new("timing calibration", None, Kind::Span, "", "", 0);
    static CHILD: Callsite = Callsite::new("timing calibration call", None, Kind::Span, "", "", 0);
    CALIBRATING.with(|calibrating| calibrating.set(true));
    let mut best = u64::MAX;
    for _ in 0..ROUNDS {
        let parent = PARENT.enter_detailed();
        for _ in 0..CHILDREN {
            std::hint::black_box(CHILD.enter_detailed()).close_detailed();
        }
        if let Some(self_ticks) = with_hot(|hot| hot.open_self_ticks(clock::now())) {
            best = best.min(self_ticks / u64::from(CHILDREN));
        }
        parent.close_detailed();
    }
    if best == u64::MAX { 0 } else { best }
}

#[cfg(test)]
mod tests {
    use crate::record::guard::slow_closes;
    use crate::store::hist::grown;

    /// Slow-path closes on a thread that measures the cost with the timeline `on` or off, less those that
    /// only made a histogram octave for a duration the hot path had no octave for (one each, at most 39 per
    /// span name: the first round of a measurement makes most, and the least round is taken).
    fn slow_closes_measuring(timeline: bool) -> u64 {
        std::thread::spawn(move || {
            crate::set_timeline(if timeline { 1_000 } else { 0 });
            let (closes, octaves) = (slow_closes::so_far(), grown::so_far());
            let ticks = super::measure();
            assert!(ticks > 0);
            (slow_closes::so_far() - closes).saturating_sub(grown::so_far() - octaves)
        })
        .join()
        .unwrap_or(u64::MAX)
    }

    #[test]
    fn the_cost_is_measured_on_the_hot_path_whatever_the_settings() {
        // Timeline capture sends user spans to the slow path; the calibration must not follow them there.
        let with_timeline = slow_closes_measuring(true);
        crate::set_timeline(0);
        assert_eq!(with_timeline, 0);
        assert_eq!(slow_closes_measuring(false), 0);
    }
}
