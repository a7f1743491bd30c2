//! The counters of one call-tree node on one thread, and their merged form. Only the owning thread writes
//! them, so an update is a relaxed load and store (plain moves on x86-64), never a read-modify-write.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::hist::{AtomicHistogram, Histogram};

/// Adds `value` to a counter only its owning thread writes, saturating rather than wrapping.
#[inline(always)]
pub(crate) fn bump(counter: &AtomicU64, value: u64) {
    counter.store(counter.load(Relaxed).saturating_add(value), Relaxed);
}

/// `min` before the first call, so that a call's time is compared with it and nothing else.
const NO_MIN: u64 = u64::MAX;

/// One call path's counters on one thread, in ticks.
pub(crate) struct NodeCounters {
    count: AtomicU64,
    /// Inclusive ticks of calls that are not inside another call of the same name.
    total: AtomicU64,
    self_ticks: AtomicU64,
    min: AtomicU64,
    max: AtomicU64,
    /// For `async fn`: first poll to completion, summed over completed calls.
    wall: AtomicU64,
    cancelled: AtomicU64,
    /// Call durations.
    histogram: AtomicHistogram,
}

impl NodeCounters {
    /// Zeroed counters, with the histogram allocated now (when a call path is first seen), not on the hot path.
    pub fn new() -> Self {
        let zero = || AtomicU64::new(0);
        NodeCounters {
            count: zero(),
            total: zero(),
            self_ticks: zero(),
            min: AtomicU64::new(NO_MIN),
            max: zero(),
            wall: zero(),
            cancelled: zero(),
            histogram: AtomicHistogram::new(),
        }
    }

    /// Adds a closed frame's time: `outermost` is false inside another call of the same name.
    #[inline(always)]
    pub fn add_time(&self, elapsed: u64, self_ticks: u64, outermost: bool) {
        if outermost {
            bump(&self.total, elapsed);
        }
        bump(&self.self_ticks, self_ticks);
    }

    /// Counts one completed call that took `ticks`.
    #[inline(always)]
    pub fn add_call(&self, ticks: u64) {
        self.add_call_later(ticks);
        self.add_duration(ticks);
    }

    /// Counts one completed call that took `ticks`, but leaves its duration for `add_duration` to count.
    #[inline(always)]
    fn add_call_later(&self, ticks: u64) {
        // Wrapping, not saturating: a count of calls does not reach 2^64.
        self.count.store(self.count.load(Relaxed).wrapping_add(1), Relaxed);
        if ticks < self.min.load(Relaxed) {
            self.min.store(ticks, Relaxed);
        }
        if ticks > self.max.load(Relaxed) {
            self.max.store(ticks, Relaxed);
        }
    }

    /// Counts one completed call of an ordinary span that is not inside another call of its name: the
    /// common case, kept short. Its duration goes to the histogram later, through `add_duration`. Sums of
    /// ticks wrap rather than saturate, as a `u64` of ticks lasts centuries.
    #[inline(always)]
    pub fn add_span(&self, elapsed: u64, self_ticks: u64) {
        self.total.store(self.total.load(Relaxed).wrapping_add(elapsed), Relaxed);
        self.self_ticks.store(self.self_ticks.load(Relaxed).wrapping_add(self_ticks), Relaxed);
        self.add_call_later(elapsed);
    }

    /// Counts a call's duration in the histogram.
    #[inline(always)]
    pub fn add_duration(&self, ticks: u64) {
        self.histogram.record(ticks);
    }

    /// Counts a completed `async fn` call: `busy` ticks of polls, `wall` ticks from first poll.
    pub fn add_async_call(&self, busy: u64, wall: u64) {
        self.add_call(busy);
        bump(&self.wall, wall);
    }

    pub fn add_cancelled(&self) {
        bump(&self.cancelled, 1);
    }

    pub fn clear(&self) {
        for counter in [&self.count, &self.total, &self.self_ticks, &self.max, &self.wall, &self.cancelled] {
            counter.store(0, Relaxed);
        }
        self.min.store(NO_MIN, Relaxed);
        self.histogram.clear();
    }

    pub fn read(&self) -> Totals {
        let (count, min, max) = (self.count.load(Relaxed), self.min.load(Relaxed), self.max.load(Relaxed));
        let mut histogram = Histogram::default();
        self.histogram.add_to(&mut histogram);
        Totals {
            histogram,
            count,
            total: self.total.load(Relaxed),
            self_ticks: self.self_ticks.load(Relaxed),
            // `min` may not be written yet when a report reads the first call's count.
            min: if count == 0 { 0 } else { min.min(max) },
            max,
            wall: self.wall.load(Relaxed),
            cancelled: self.cancelled.load(Relaxed),
        }
    }
}

/// Merged counters (of a node over threads, or of a span name over nodes), in ticks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    pub histogram: Histogram,
    pub count: u64,
    pub total: u64,
    pub self_ticks: u64,
    pub min: u64,
    pub max: u64,
    pub wall: u64,
    pub cancelled: u64,
}

impl Totals {
    pub fn is_empty(&self) -> bool {
        self.count == 0 && self.cancelled == 0 && self.self_ticks == 0
    }

    pub fn merge(&mut self, other: &Totals) {
        if other.is_empty() {
            return;
        }
        self.min = match (self.count, other.count) {
            (0, _) => other.min,
            (_, 0) => self.min,
            _ => self.min.min(other.min),
        };
        self.max = self.max.max(other.max);
        self.count = self.count.saturating_add(other.count);
        self.total = self.total.saturating_add(other.total);
        self.self_ticks = self.self_ticks.saturating_add(other.self_ticks);
        self.wall = self.wall.saturating_add(other.wall);
        self.cancelled = self.cancelled.saturating_add(other.cancelled);
        self.histogram.merge(&other.histogram);
    }
}
