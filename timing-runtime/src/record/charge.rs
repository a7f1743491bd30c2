//! What a timed call charges its caller for instrumentation: the cost the calibration measured for the way
//! the call closed, or nothing while it is unmeasured or subtraction is off. Read by every closing span, so
//! it is one relaxed load from an address known at compile time.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use parking_lot::Mutex;

use crate::record::clock;

/// How a timed call opened and closed, each way with a cost of its own: a recursive close counts no
/// inclusive time, a frame beyond the inline stack is reached out of line both ways, and the slow path
/// does much more. Charging each call the fast path's cost left a recursive phase a point or
/// two above what a sampling profile of the unannotated program shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Close {
    /// Opened and closed on the hot path.
    Fast = 0,
    /// A recursive call (inside an open call of its name), on the hot path.
    Recursive = 1,
    /// A frame beyond the inline stack, opened and closed by the second tries.
    Deep = 2,
    /// Closed by the slow path.
    Slow = 3,
    /// Counted but not timed, under an overhead budget, with no frame (a leaf): no clock read, so no floor
    /// either.
    Untimed = 4,
    /// Counted but not timed, with a frame (a call that makes timed calls, or any while allocations are
    /// counted).
    UntimedFramed = 5,
}

impl Close {
    pub const ALL: [Close; 6] =
        [Close::Fast, Close::Recursive, Close::Deep, Close::Slow, Close::Untimed, Close::UntimedFramed];
}

/// Ticks a closed span adds to its caller's self time, by `Close`; 0 until measured, or when subtraction is
/// off.
static CHARGED: [AtomicU64; 6] = [const { AtomicU64::new(0) }; 6];
/// Ticks of a timed call's own instrumentation inside its clock reads (from the end of its opening read to
/// its closing read, with nothing in between): left out of its own self time, so that a tiny function called
/// often does not carry into its phase the latency of the clock reads around it. 0 until measured, or when
/// subtraction is off.
static INSIDE: AtomicU64 = AtomicU64::new(0);
static SUBTRACT: AtomicBool = AtomicBool::new(true);
static FIRST: OnceLock<()> = OnceLock::new();
/// The measurements so far (the first, then the checks during the run), at most `KEPT`, and when the last
/// began; the costs in force are their medians.
static MEASURED: Mutex<Measurements> = Mutex::new(Measurements { costs: Vec::new(), last: None, checking: false });
const KEPT: usize = 15;

/// One measurement of the instrumentation's costs, in ticks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Costs {
    /// What a call adds to its caller's self time, by `Close`.
    pub outside: [u64; 6],
    /// What a call adds to its own time (see `INSIDE`).
    pub inside: u64,
    /// Two clock reads, one after the other: no timed call costs less.
    pub floor: u64,
}

impl Costs {
    /// The costs with each way of closing raised to the floor where the measurement fell below it (a clock
    /// read cut short by nothing can make a call cheaper than two reads: such a measurement was disturbed).
    fn at_least_the_floor(mut self) -> Costs {
        // An untimed call reads no clock: the floor is not its.
        for outside in &mut self.outside[..Close::Untimed as usize] {
            *outside = (*outside).max(self.floor.saturating_sub(self.inside));
        }
        self
    }
}

struct Measurements {
    costs: Vec<Costs>,
    /// The tick the last measurement was taken in.
    last: Option<u64>,
    checking: bool,
}

impl Measurements {
    /// The median of each figure over the measurements, the lower of the two middle ones when their number
    /// is even: a disturbance (the machine busy, the process not yet at speed) mostly adds to a measurement
    /// (one too low is raised to the floor, `at_least_the_floor`), so of a first measurement and its check,
    /// the lower is in force. (The upper one, as it
    /// was, kept a disturbed first measurement until a second check: 6 of 48 processes of the real-shaped
    /// workload reported 1.4 to 1.7 times what timing cost them.)
    fn median(&self) -> Option<Costs> {
        if self.costs.is_empty() {
            return None;
        }
        let median = |figure: &dyn Fn(&Costs) -> u64| {
            let mut values: Vec<u64> = self.costs.iter().map(figure).collect();
            values.sort_unstable();
            values[(values.len() - 1) / 2]
        };
        let outside = [0, 1, 2, 3, 4, 5].map(|kind| median(&|costs: &Costs| costs.outside[kind]));
        let costs = Costs { outside, inside: median(&|costs| costs.inside), floor: median(&|costs| costs.floor) };
        Some(costs.at_least_the_floor())
    }
}

/// The ticks to leave out of a caller's self time for each timed call it made that closed by `close`.
#[inline(always)]
pub(crate) fn charged_ticks(close: Close) -> u64 {
    CHARGED[close as usize].load(Relaxed)
}

/// `charged_ticks` of the `Close` whose discriminant is `close` (`Fast` or `Recursive` by a flag bit, on
/// the hot path, without a branch); 0 beyond them.
#[inline(always)]
pub(crate) fn charged_ticks_of(close: usize) -> u64 {
    CHARGED.get(close).map_or(0, |charged| charged.load(Relaxed))
}

/// The ticks to leave out of each timed call's own self time.
#[inline(always)]
pub(crate) fn inside_ticks() -> u64 {
    INSIDE.load(Relaxed)
}

/// Measures the costs with `measure` once per process (other threads that ask meanwhile wait for it).
pub(crate) fn measure_once(measure: impl FnOnce() -> Costs) {
    FIRST.get_or_init(|| add_measurement(measure()));
}

/// Takes in a measurement, and puts the medians in force.
pub(crate) fn add_measurement(costs: Costs) {
    let mut measured = MEASURED.lock();
    if measured.costs.len() == KEPT {
        measured.costs.remove(0);
    }
    measured.costs.push(costs);
    measured.checking = false;
    measured.last = Some(clock::now());
    if SUBTRACT.load(Relaxed) {
        store(measured.median());
    }
}

/// Whether the costs are due to be measured again: a first measurement may have been disturbed (the machine
/// busy, the process not yet at speed), so they are checked again 1 s after it, then at doubling intervals
/// up to a minute; at most one check at a time. Marks the check begun when it says yes.
pub(crate) fn check_due() -> bool {
    let mut measured = MEASURED.lock();
    let Some(last) = measured.last else { return false };
    let checks = measured.costs.len().saturating_sub(1).min(6);
    let interval_ns = (1_000_000_000u64 << checks).min(60_000_000_000);
    if measured.checking || clock::to_ns(clock::now().saturating_sub(last)) < interval_ns {
        return false;
    }
    measured.checking = true;
    true
}

/// Forgets a check that could not be made (no thread could be started for it).
pub(crate) fn check_abandoned() {
    MEASURED.lock().checking = false;
}

fn store(costs: Option<Costs>) {
    let costs = costs.unwrap_or_default();
    for (charged, ticks) in CHARGED.iter().zip(costs.outside) {
        charged.store(ticks, Relaxed);
    }
    INSIDE.store(costs.inside, Relaxed);
}

/// The costs in force, in ticks: the medians of the measurements so far.
pub(crate) fn costs() -> Option<Costs> {
    MEASURED.lock().median()
}

/// How many times the costs have been measured.
pub(crate) fn measurements() -> usize {
    MEASURED.lock().costs.len()
}

/// The measured cost per timed call closed by `close` in nanoseconds, inside and outside its clock reads, if
/// it has been measured.
pub(crate) fn measured_ns(close: Close) -> Option<f64> {
    costs().map(|costs| ticks_ns(costs.outside[close as usize] + costs.inside))
}

/// Ticks in nanoseconds, to a thousandth.
pub(crate) fn ticks_ns(ticks: u64) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let ns = clock::to_ns(ticks.saturating_mul(1_000)) as f64 / 1_000.0;
    ns
}

pub(crate) fn set_subtract(on: bool) {
    SUBTRACT.store(on, Relaxed);
    store(if on { costs() } else { None });
}

pub(crate) fn subtracting() -> bool {
    SUBTRACT.load(Relaxed)
}

#[cfg(test)]
mod tests {
    use super::{Costs, Measurements};

    #[test]
    fn the_costs_in_force_are_medians_never_below_the_floor() {
        let costs =
            |fast, inside, floor| Costs { outside: [fast, fast + 5, fast + 10, fast * 10, 2, 3], inside, floor };
        // A first measurement far below the floor (disturbed): raised to it.
        let mut measured = Measurements { costs: vec![costs(4, 10, 60)], last: None, checking: false };
        assert_eq!(measured.median().map(|costs| costs.outside[0] + costs.inside), Some(60));
        // Later checks outvote it.
        measured.costs.push(costs(55, 20, 60));
        measured.costs.push(costs(57, 21, 61));
        let median = measured.median().expect("measured");
        assert_eq!((median.outside[0], median.inside, median.floor), (55, 20, 60));
        assert_eq!(median.outside[3], 550);
        // Not raised: an untimed call reads no clock.
        assert_eq!((median.outside[4], median.outside[5]), (2, 3));
    }
}
