//! A thread's step totals, written by the thread at every step end without a lock and read whole by reports.
//!
//! A lock per step cost 31 ns a step (its two atomic read-modify-writes wait for every store before them;
//! 3.5 ns a span of the nine-span benchmark step), so the totals are a sequence lock instead: the owner makes the sequence odd, writes, and
//! makes it even again, all with plain stores; a report reads between two even, equal sequence numbers, and
//! so sees each step whole or not at all. Phase ids beyond the fixed table, and the spread histograms, are
//! not part of the whole-step guarantee's hot path: the former go through the slot's lock (only when a step
//! has such a phase), the latter are only counted, never summed against the totals.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering::Acquire, Ordering::Relaxed, Ordering::Release, fence};

use parking_lot::Mutex;

use crate::store::account::StepAccount;
use crate::store::arena;
use crate::store::counters::bump;
use crate::store::hist::{AtomicHistogram, Histogram, LazyHistogram};

/// Phase ids with a place in the thread's fixed tables (the hot path's and the totals'); a step with a
/// phase beyond them is counted on the slow path.
pub(crate) const FAST_PHASES: usize = 256;

/// Totals given back by slots that are gone, for new threads.
static POOL: Mutex<Vec<&'static StepTotals>> = Mutex::new(Vec::new());

/// Zeroed totals that live for the process, so that the hot path can hold a plain reference to them.
pub(crate) fn take() -> &'static StepTotals {
    let reused = POOL.lock().pop();
    reused.unwrap_or_else(|| arena::leak(StepTotals::new()))
}

/// Gives totals back once nothing writes or reads them.
pub(crate) fn give_back(totals: &'static StepTotals) {
    totals.zero();
    POOL.lock().push(totals);
}

/// Scales phase ticks down to `ticks` when they add up to more (`in_phases`), as phases never exceed their
/// step: a span whose calls' calibrated cost exceeds its own time counts no self time rather than a negative
/// one, and clock reads on a thread that moved between cores can disagree by a few ticks.
#[cold]
pub(crate) fn fit_phases(phase_ticks: &[Cell<u64>], ticks: u64, in_phases: u64) {
    for value in phase_ticks.iter().skip(1) {
        let scaled = u128::from(value.get()) * u128::from(ticks) / u128::from(in_phases.max(1));
        value.set(u64::try_from(scaled).unwrap_or(0));
    }
}

/// Tries before a report takes the totals as they are: about a second of waiting for a writer that was
/// preempted in a write (a write itself takes nanoseconds), so that a report never hangs.
const READ_TRIES: usize = 20_000;

pub(crate) struct StepTotals {
    /// Odd while the owner writes.
    sequence: AtomicU64,
    steps: AtomicU64,
    step_ticks: AtomicU64,
    /// The tick the thread's first step began at (0 before it) and the tick its latest step ended at: the
    /// wall time the thread's steps span.
    first_start: AtomicU64,
    last_end: AtomicU64,
    /// By phase id, below `FAST_PHASES`.
    phase_ticks: [AtomicU64; FAST_PHASES],
    /// Step times.
    step_histogram: AtomicHistogram,
    /// Ticks per step by phase id, below `FAST_PHASES`; allocated when a phase is first seen.
    phase_histograms: [LazyHistogram; FAST_PHASES],
    /// The latest step's ticks plus one (0 for none), not yet in the step histogram: the thread counts them
    /// when its next step ends (see `Hot::finish_step`), and reports count them from here meanwhile.
    /// Changed inside writes, so a report never counts them twice.
    pending_step: AtomicU64,
}

/// What a report reads of the totals.
pub(crate) struct StepReading {
    pub steps: u64,
    pub step_ticks: u64,
    /// By phase id, all phases.
    pub phase_ticks: Vec<u64>,
    /// The ticks of the step not yet in the step histogram.
    pub pending: Option<u64>,
    /// The first step's start and the latest step's end, in ticks.
    pub span: Option<(u64, u64)>,
}

impl StepTotals {
    pub const fn new() -> Self {
        StepTotals {
            sequence: AtomicU64::new(0),
            steps: AtomicU64::new(0),
            step_ticks: AtomicU64::new(0),
            first_start: AtomicU64::new(0),
            last_end: AtomicU64::new(0),
            phase_ticks: [const { AtomicU64::new(0) }; FAST_PHASES],
            step_histogram: AtomicHistogram::new(),
            phase_histograms: [const { LazyHistogram::new() }; FAST_PHASES],
            pending_step: AtomicU64::new(0),
        }
    }

    /// Starts a change that reports see whole or not at all (owner only); returns what `end_write` takes.
    pub fn begin_write(&self) -> u64 {
        let sequence = self.sequence.load(Relaxed);
        self.sequence.store(sequence.wrapping_add(1), Relaxed);
        // The odd number is seen before any of the writes that follow.
        fence(Release);
        sequence
    }

    pub fn end_write(&self, sequence: u64) {
        self.sequence.store(sequence.wrapping_add(2), Release);
    }

    /// Counts one more step of `ticks` that ended at tick `end`, inside a write (owner only).
    #[inline(always)]
    pub fn add_step(&self, ticks: u64, end: u64) {
        bump(&self.steps, 1);
        bump(&self.step_ticks, ticks);
        if self.first_start.load(Relaxed) == 0 {
            self.first_start.store(end.saturating_sub(ticks).max(1), Relaxed);
        }
        self.last_end.store(end, Relaxed);
    }

    /// Counts a step's time in the spread histogram (owner only).
    #[inline(always)]
    pub fn add_step_spread(&self, ticks: u64) {
        self.step_histogram.record(ticks);
    }

    /// Makes a step of `ticks` pending, inside a write (owner only).
    #[inline(always)]
    pub fn set_pending_step(&self, ticks: Option<u64>) {
        self.pending_step.store(ticks.map_or(0, |ticks| ticks.saturating_add(1)), Relaxed);
    }

    /// Adds a step's ticks by phase, from phase 1 on (all below `FAST_PHASES`), to the phases' totals, inside
    /// a write, and counts them in their spread histograms (owner only).
    #[inline(always)]
    pub fn add_phases(&self, from_phase_1: &[Cell<u64>]) {
        let totals = self.phase_ticks.iter().zip(&self.phase_histograms).skip(1);
        for ((total, histogram), ticks) in totals.zip(from_phase_1) {
            bump(total, ticks.get());
            histogram.get_or_make().record(ticks.get());
        }
    }

    /// Counts a step of `ticks` with `phase_ticks` by phase id, some beyond the table, in the totals and at
    /// once in the spread histograms (owner only); `account` takes the phases beyond the table.
    pub fn add_large_step(&self, ticks: u64, end: u64, phase_ticks: &[Cell<u64>], account: &Mutex<StepAccount>) {
        let sequence = self.begin_write();
        self.add_step(ticks, end);
        for (total, step) in self.phase_ticks.iter().zip(phase_ticks) {
            bump(total, step.get());
        }
        self.end_write(sequence);
        self.step_histogram.record(ticks);
        for (histogram, step) in self.phase_histograms.iter().zip(phase_ticks).skip(1) {
            histogram.get_or_make().record(step.get());
        }
        let Some(large) = phase_ticks.get(FAST_PHASES..).filter(|large| !large.is_empty()) else { return };
        let mut account = account.lock();
        if account.phase_ticks.len() < phase_ticks.len() {
            account.phase_ticks.resize(phase_ticks.len(), 0);
        }
        if account.phase_histograms.len() < phase_ticks.len() {
            account.phase_histograms.resize(phase_ticks.len(), Histogram::default());
        }
        let account = &mut *account;
        let totals = account.phase_ticks.iter_mut().skip(FAST_PHASES);
        let histograms = account.phase_histograms.iter_mut().skip(FAST_PHASES);
        for ((total, histogram), step) in totals.zip(histograms).zip(large) {
            *total = total.saturating_add(step.get());
            histogram.record(step.get());
        }
    }

    /// The step ticks so far and the phase ticks by id into `phases`, `count` phase ids in all (owner only:
    /// nothing changes them meanwhile); `account` holds those beyond the table.
    pub fn so_far(&self, count: usize, account: &Mutex<StepAccount>, phases: &mut Vec<u64>) -> u64 {
        phases.clear();
        phases.extend(self.phase_ticks.iter().take(count).map(|ticks| ticks.load(Relaxed)));
        if count > FAST_PHASES {
            let account = account.lock();
            phases.extend(account.phase_ticks.iter().skip(FAST_PHASES).take(count - FAST_PHASES));
        }
        self.step_ticks.load(Relaxed)
    }

    /// Zeroes everything (owner only), for a new epoch; the slot's account is begun again beside it.
    pub fn clear(&self) {
        let sequence = self.begin_write();
        self.zero();
        self.end_write(sequence);
    }

    fn zero(&self) {
        let counters =
            [&self.steps, &self.step_ticks, &self.pending_step, &self.first_start, &self.last_end].into_iter();
        for counter in counters.chain(&self.phase_ticks) {
            counter.store(0, Relaxed);
        }
        self.step_histogram.clear();
        self.phase_histograms.iter().filter_map(LazyHistogram::get).for_each(|histogram| histogram.clear());
    }

    /// The totals, each step whole; `account` holds phases beyond the table. Read after the histograms
    /// (`add_spread_to`), so that the pending step is in one or the other, never both.
    pub fn read(&self, account: &Mutex<StepAccount>) -> StepReading {
        let mut reading = StepReading { steps: 0, step_ticks: 0, phase_ticks: Vec::new(), pending: None, span: None };
        fence(Acquire);
        for attempt in 0..READ_TRIES {
            let before = self.sequence.load(Acquire);
            reading.steps = self.steps.load(Relaxed);
            reading.step_ticks = self.step_ticks.load(Relaxed);
            reading.phase_ticks.clear();
            reading.phase_ticks.extend(self.phase_ticks.iter().map(|ticks| ticks.load(Relaxed)));
            reading.pending = self.pending_step.load(Relaxed).checked_sub(1);
            let first_start = self.first_start.load(Relaxed);
            reading.span = (first_start != 0).then(|| (first_start, self.last_end.load(Relaxed)));
            {
                let account = account.lock();
                reading.phase_ticks.extend(account.phase_ticks.iter().skip(FAST_PHASES));
            }
            fence(Acquire);
            if before % 2 == 0 && self.sequence.load(Relaxed) == before {
                return reading;
            }
            // A write takes nanoseconds unless its thread was preempted in it: then wait for the scheduler.
            match attempt {
                0..64 => std::hint::spin_loop(),
                64..128 => std::thread::yield_now(),
                _ => std::thread::sleep(std::time::Duration::from_micros(50)),
            }
        }
        // Not one whole reading in a second: the totals as they are, and the pending step left out, as it
        // may be in the histograms already (a report may miss a step's spread, never count it twice).
        reading.pending = None;
        reading
    }

    /// Adds the spread histograms to `account`'s.
    pub fn add_spread_to(&self, account: &mut StepAccount) {
        self.step_histogram.add_to(&mut account.step_histogram);
        for (id, histogram) in self.phase_histograms.iter().enumerate() {
            if let Some(histogram) = histogram.get() {
                if account.phase_histograms.len() <= id {
                    account.phase_histograms.resize(id + 1, Histogram::default());
                }
                histogram.add_to(&mut account.phase_histograms[id]);
            }
        }
    }
}
