//! The runtime's own cost, as a timed function's caller sees it: each timed call adds the work of opening and
//! closing its span (outside the span's own clock reads) to the caller's self time. It is measured once, on
//! a thread of its own at the first timed call of the process, by timing calls that do nothing inside a
//! parent span; then each closing span charges that cost to nobody instead of to its caller (unless
//! switched off), so that a phase made of many tiny calls is not inflated by the instrumentation.

use std::cell::Cell;

use crate::record::callsite::{Callsite, Kind};
use crate::record::charge::{self, Close, Costs};
use crate::record::clock;
use crate::record::hot::{FAST_DEPTH, POISON, with_hot};

const CHILDREN: u32 = 256;
const ROUNDS: usize = 9;

thread_local! {
    /// Set on the calibration thread, whose recorder keeps its spans out of every report.
    static CALIBRATING: Cell<bool> = const { Cell::new(false) };
    /// Set on the calibration thread while it measures an untimed call: its calls are then sampled.
    static UNTIMED: Cell<bool> = const { Cell::new(false) };
}

/// Measures the costs once per process (other threads that ask meanwhile wait for it: a few milliseconds).
pub(crate) fn ensure() {
    charge::measure_once(|| {
        std::thread::Builder::new()
            .name("timing-calibration".into())
            .spawn(measure)
            .ok()
            .and_then(|thread| thread.join().ok())
            .unwrap_or_default()
    });
}

/// Measures the costs again on a thread of its own, in the background, when a check is due (see
/// `charge::check_due`); called at the end of a batch, off the hot path. Nobody waits for it.
pub(crate) fn check() {
    if !charge::check_due() {
        return;
    }
    let started =
        std::thread::Builder::new().name("timing-calibration".into()).spawn(|| charge::add_measurement(measure()));
    if started.is_err() {
        charge::check_abandoned();
    }
}

/// Whether this is the calibration thread measuring an untimed call.
pub(crate) fn calibrating_untimed() -> bool {
    UNTIMED.try_with(Cell::get).unwrap_or(false)
}

/// Whether this is the calibration thread.
pub(crate) fn is_calibrating() -> bool {
    CALIBRATING.try_with(Cell::get).unwrap_or(false)
}

/// Runs on the calibration thread, whose recorder keeps its spans to itself: the cost of each way a call
/// can close, by `Close`, what a call adds to its own time, and the floor.
fn measure() -> Costs {
    CALIBRATING.with(|calibrating| calibrating.set(true));
    let measured = Close::ALL.map(measure_close);
    Costs { outside: measured.map(|(outside, _)| outside), inside: measured[0].1, floor: floor() }
}

static PARENT: Callsite = Callsite::new("timing calibration", None, Kind::Span, "", "", 0);
static CHILD: Callsite = Callsite::new("timing calibration call", None, Kind::Span, "", "", 0);
static RECURSIVE: Callsite = Callsite::new("timing calibration recursion", None, Kind::Span, "", "", 0);
static FILLER: Callsite = Callsite::new("timing calibration stack", None, Kind::Span, "", "", 0);

/// The cost of calls that close by `close`, outside their clock reads and inside them: from a parent's self
/// time and its children's time over `CHILDREN` empty timed calls, the median of `ROUNDS` rounds. Not the
/// least: a round that ran with everything in cache and every branch predicted is what no real program's
/// call costs, and the least of nine undercut what separate processes measured on the real-shaped workload
/// by a quarter; the median still ignores up to four rounds an interruption lengthened. The first round
/// also fills the caches the hot path needs.
fn measure_close(close: Close) -> (u64, u64) {
    let rounds = (0..ROUNDS).filter_map(|_| match close {
        Close::Fast | Close::Slow => children_of(&PARENT, &CHILD, close),
        Close::Untimed => untimed_children(false),
        Close::UntimedFramed => untimed_children(true),
        Close::Recursive => children_of(&RECURSIVE, &RECURSIVE, close),
        // Recursion is what makes a stack that deep.
        Close::Deep => beneath(FAST_DEPTH, || children_of(&RECURSIVE, &RECURSIVE, close)),
    });
    let (mut outside, mut inside): (Vec<u64>, Vec<u64>) = rounds.unzip();
    (median(&mut outside), median(&mut inside))
}

/// The middle value (the lower middle of an even count), or 0 of none.
fn median(values: &mut [u64]) -> u64 {
    values.sort_unstable();
    values.get(values.len().saturating_sub(1) / 2).copied().unwrap_or(0)
}

/// Ticks of two clock reads, one after the other, the least of `ROUNDS` rounds of `CHILDREN` pairs: what
/// the two reads of any timed call cost at the least.
fn floor() -> u64 {
    (0..ROUNDS)
        .map(|_| {
            let start = clock::now();
            for _ in 0..CHILDREN {
                std::hint::black_box(clock::now());
                std::hint::black_box(clock::now());
            }
            clock::now().saturating_sub(start) / u64::from(CHILDREN)
        })
        .min()
        .unwrap_or(0)
}

/// Runs `f` beneath `frames` open spans.
fn beneath<T>(frames: usize, f: impl FnOnce() -> Option<T>) -> Option<T> {
    if frames == 0 {
        return f();
    }
    let filler = FILLER.enter_detailed();
    let result = beneath(frames - 1, f);
    filler.close_detailed();
    result
}

/// The self ticks and the children's ticks per child of a span of `parent` over `CHILDREN` calls of
/// `child`; each on the slow path if `slow` (the hot path is switched off for each, as the recorder switches
/// it on again after each). A check during the run measures with the costs in force charged: they are
/// added back.
fn children_of(parent: &'static Callsite, child: &'static Callsite, close: Close) -> Option<(u64, u64)> {
    let slow = close == Close::Slow;
    let slow_path = || {
        if slow {
            with_hot(|hot| hot.key.set(POISON));
        }
    };
    let parent = parent.enter_detailed();
    for _ in 0..CHILDREN {
        slow_path();
        let guard = std::hint::black_box(if matches!(close, Close::Untimed | Close::UntimedFramed) {
            child.enter_sampled_detailed()
        } else {
            child.enter_detailed()
        });
        slow_path();
        guard.close_detailed();
    }
    let now = clock::now();
    let (self_ticks, children) = with_hot(|hot| hot.open_self_and_children(now))?;
    let elapsed = with_hot(|hot| hot.open_elapsed(now))?;
    parent.close_detailed();
    let calls = u64::from(CHILDREN);
    if matches!(close, Close::Untimed | Close::UntimedFramed) {
        // An untimed call of an empty function took no time of its own that a clock read saw (what it
        // charged its caller, an estimate, is no measure of it): all the caller saw of it is its cost.
        return Some((elapsed / calls, 0));
    }
    // What each child charged its parent is in `children` (it is what a check measures again): outside.
    let charged = charge::charged_ticks(close);
    Some((self_ticks / calls + charged, (children / calls).saturating_sub(charged)))
}

/// `children_of` for untimed calls, through the path they take under a budget: the calibration thread
/// samples while it measures them, with one timed call of `CHILD` first (it sets the estimate that untimed
/// calls need) and every later one untimed, with a frame if `framed` (its path marked as one whose calls
/// make timed calls). The hot path is switched off at each change, so that the recorder takes the change
/// into the thread's key.
fn untimed_children(framed: bool) -> Option<(u64, u64)> {
    UNTIMED.with(|untimed| untimed.set(true));
    with_hot(|hot| hot.key.set(POISON));
    let first = PARENT.enter_detailed();
    CHILD.enter_sampled_detailed().close_detailed();
    if framed {
        with_hot(|hot| hot.mark_not_leaf(CHILD.packed_ids()));
    }
    first.close_detailed();
    if let (Some(sampler), ids) = (with_hot(|hot| hot.sampler.get()), CHILD.packed_ids()) {
        #[allow(clippy::cast_possible_truncation)]
        sampler.force_untimed(ids as u32);
    }
    let close = if framed { Close::UntimedFramed } else { Close::Untimed };
    let measured = children_of(&PARENT, &CHILD, close);
    UNTIMED.with(|untimed| untimed.set(false));
    with_hot(|hot| hot.key.set(POISON));
    measured
}

#[cfg(test)]
mod tests {
    use crate::record::charge::Close;
    use crate::record::guard::slow_closes;
    use crate::store::hist::grown;

    /// Slow-path closes on a thread that measures the cost of `close` with the timeline `on` or off, less
    /// those that only made a histogram octave for a duration the hot path had no octave for (one each, at
    /// most 39 per span name: the first round of a measurement makes most, and the least round is taken).
    fn slow_closes_measuring(close: Close, timeline: bool) -> u64 {
        std::thread::spawn(move || {
            crate::set_timeline(if timeline { 1_000 } else { 0 });
            let (closes, octaves) = (slow_closes::so_far(), grown::so_far());
            // What it measures may be 0 here: other tests' calls had the costs measured and charged already.
            std::hint::black_box(super::measure_close(close));
            (slow_closes::so_far() - closes).saturating_sub(grown::so_far() - octaves)
        })
        .join()
        .unwrap_or(u64::MAX)
    }

    #[test]
    fn each_cost_is_measured_on_its_own_path_whatever_the_settings() {
        let _settings = crate::record::SETTINGS_LOCK.lock();
        // Timeline capture sends user spans to the slow path; the calibration must not follow them there.
        let with_timeline: Vec<u64> = Close::ALL.map(|close| slow_closes_measuring(close, true)).to_vec();
        crate::set_timeline(0);
        let without: Vec<u64> = Close::ALL.map(|close| slow_closes_measuring(close, false)).to_vec();
        for closes in [with_timeline, without] {
            assert_eq!([closes[0], closes[1], closes[2], closes[4], closes[5]], [0, 0, 0, 0, 0]);
            // Less those that made an octave (at most 39 a name).
            assert!(closes[3] + 39 >= u64::from(super::CHILDREN) * super::ROUNDS as u64, "{closes:?}");
        }
    }
}
