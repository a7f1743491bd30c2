//! The counters of one call-tree node on one thread, and their merged form.
//! Only the owning thread writes them, so an update is a relaxed load and store (plain moves on x86-64),
//! never a read-modify-write.
//!
//! Counters live for the process: a thread's are taken from a pool when it first sees a call path and
//! given back, cleared, when its slot is dropped (after it exits and no report reads it any more). So the
//! hot path holds plain `&'static` references, and memory is bounded by the call paths of the threads
//! alive at once.

use std::sync::atomic::{AtomicU64, Ordering::Acquire, Ordering::Relaxed, Ordering::Release, fence};

use parking_lot::Mutex;

use crate::store::hist::{AtomicHistogram, Histogram};

/// Adds `value` to a counter only its owning thread writes, saturating rather than wrapping.
#[inline(always)]
pub(crate) fn bump(counter: &AtomicU64, value: u64) {
    counter.store(counter.load(Relaxed).saturating_add(value), Relaxed);
}

/// `min` before the first call, so that a call's time is compared with it and nothing else.
const NO_MIN: u64 = u64::MAX;

/// One node's counters on one thread, in ticks. Aligned to a pair of cache lines, so that two threads'
/// counters never share one (adjacent lines are fetched together on x86-64).
#[repr(align(128))]
pub(crate) struct NodeCounters {
    count: AtomicU64,
    /// Ticks of calls that are not inside another call of the same name (inclusive time).
    total: AtomicU64,
    /// Ticks of calls less those of the timed calls they made and of their instrumentation.
    self_ticks: AtomicU64,
    min: AtomicU64,
    max: AtomicU64,
    /// The latest call's duration plus one, not yet in the histogram (0 for none): the thread counts it at
    /// its next close, as counting it at once would wait for the clock (see `Hot`), and reports count it
    /// from here meanwhile, so that an idle thread's last call is not missing from them.
    pending: AtomicU64,
    /// For `async fn`: first poll to completion, summed over completed calls.
    wall: AtomicU64,
    cancelled: AtomicU64,
    /// Call durations.
    histogram: AtomicHistogram,
}

/// Where frames and cache entries without counters of their own point; never written, as such frames are
/// never closed on the short path.
pub(crate) static UNUSED: NodeCounters = NodeCounters::new();

static POOL: Mutex<Vec<&'static NodeCounters>> = Mutex::new(Vec::new());

/// Zeroed counters: given back ones if there are any, otherwise new ones that live for the process.
pub(crate) fn take() -> &'static NodeCounters {
    let reused = POOL.lock().pop();
    reused.unwrap_or_else(|| Box::leak(Box::new(NodeCounters::new())))
}

/// Gives counters back for another thread to use; the caller guarantees that nothing writes or reads them.
pub(crate) fn give_back(counters: impl Iterator<Item = &'static NodeCounters>) {
    let counters: Vec<_> = counters.filter(|counters| !std::ptr::eq(*counters, &UNUSED)).collect();
    counters.iter().for_each(|counters| counters.clear());
    POOL.lock().extend(counters);
}

impl NodeCounters {
    pub const fn new() -> Self {
        NodeCounters {
            count: AtomicU64::new(0),
            total: AtomicU64::new(0),
            self_ticks: AtomicU64::new(0),
            min: AtomicU64::new(NO_MIN),
            max: AtomicU64::new(0),
            pending: AtomicU64::new(0),
            wall: AtomicU64::new(0),
            cancelled: AtomicU64::new(0),
            histogram: AtomicHistogram::new(),
        }
    }

    /// Counts a completed call that is not inside a call of its name, all but its duration, which the
    /// caller passes to `hold_duration`: the short path. Sums of ticks wrap rather than saturate, as a `u64`
    /// of ticks lasts centuries, and a count of calls does not reach 2^64.
    #[inline(always)]
    pub fn add_span(&self, ticks: u64, self_ticks: u64) {
        self.total.store(self.total.load(Relaxed).wrapping_add(ticks), Relaxed);
        self.self_ticks.store(self.self_ticks.load(Relaxed).wrapping_add(self_ticks), Relaxed);
        self.add_call_but_duration(ticks);
    }

    /// Makes `ticks` the pending duration, to be counted by `count_pending`. Wrapping: a call of 2^64 - 1
    /// ticks (two centuries at 3 GHz) would be left out of the histogram rather than take an extra test.
    #[inline(always)]
    pub fn hold_duration(&self, ticks: u64) {
        self.pending.store(ticks.wrapping_add(1), Relaxed);
    }

    /// Counts the pending duration, if any, in the histogram.
    #[inline(always)]
    pub fn count_pending(&self) {
        let pending = self.pending.load(Relaxed);
        self.pending.store(0, Relaxed);
        // Cleared before it is counted, and seen in that order (with the fence in `read`): a report may miss
        // it for a moment, but never counts it twice.
        fence(Release);
        if pending != 0 {
            self.histogram.record(pending - 1);
        }
    }

    /// Adds a closed span's ticks: `outermost` is false inside another call of the same name.
    pub fn add_time(&self, ticks: u64, self_ticks: u64, outermost: bool) {
        if outermost {
            bump(&self.total, ticks);
        }
        bump(&self.self_ticks, self_ticks);
    }

    /// Counts one completed call that took `ticks`, all but its duration (its time is added by `add_time`).
    #[inline(always)]
    pub fn add_call_but_duration(&self, ticks: u64) {
        self.count.store(self.count.load(Relaxed).wrapping_add(1), Relaxed);
        // Branches rather than conditional moves: after warm-up they are nearly never taken.
        if ticks < self.min.load(Relaxed) {
            self.min.store(ticks, Relaxed);
        }
        if ticks > self.max.load(Relaxed) {
            self.max.store(ticks, Relaxed);
        }
    }

    /// Counts a completed `async fn` call, all but its duration: `busy` ticks of polls, `wall` ticks from
    /// first poll.
    pub fn add_async_call_but_duration(&self, busy: u64, wall: u64) {
        self.add_call_but_duration(busy);
        bump(&self.wall, wall);
    }

    pub fn add_cancelled(&self) {
        bump(&self.cancelled, 1);
    }

    pub fn clear(&self) {
        for counter in
            [&self.count, &self.total, &self.self_ticks, &self.max, &self.pending, &self.wall, &self.cancelled]
        {
            counter.store(0, Relaxed);
        }
        self.min.store(NO_MIN, Relaxed);
        self.histogram.clear();
    }

    pub fn read(&self) -> Totals {
        let mut histogram = Histogram::default();
        self.histogram.add_to(&mut histogram);
        fence(Acquire);
        let pending = self.pending.load(Relaxed);
        if pending != 0 {
            histogram.record(pending - 1);
        }
        let (count, min, max) = (self.count.load(Relaxed), self.min.load(Relaxed), self.max.load(Relaxed));
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
        self.count == 0 && self.cancelled == 0 && self.self_ticks == 0 && self.total == 0
    }

    pub fn merge(&mut self, other: &Totals) {
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
