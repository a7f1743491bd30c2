//! The counters of one call-tree node on one thread, and their merged form.
//! Only the owning thread writes them, so an update is a relaxed load and store (plain moves on x86-64),
//! never a read-modify-write.
//!
//! Counters live for the process, in slabs of 64 that a thread takes whole from a pool as it first sees
//! call paths and gives back, cleared, when its slot is dropped (after it exits and no report reads it any
//! more). So the hot path holds plain `&'static` references, memory is bounded by the call paths of the
//! threads alive at once (64 bytes a node, one cache line), and the neighbours of a thread's counters are
//! its own. Durations go to the histogram of the node's span name on the thread,
//! which every node of that name shares (percentiles are reported per name), so a call path costs no
//! histogram of its own.

use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering::Relaxed};

use parking_lot::Mutex;

use crate::store::arena;

use crate::store::hist::AtomicHistogram;

/// Adds `value` to a counter only its owning thread writes, saturating rather than wrapping.
#[inline(always)]
pub(crate) fn bump(counter: &AtomicU64, value: u64) {
    counter.store(counter.load(Relaxed).saturating_add(value), Relaxed);
}

/// `min` before the first call, so that a call's time is compared with it and nothing else.
const NO_MIN: u64 = u64::MAX;

/// One node's counters on one thread, in ticks: one cache line. Two threads' counters never share a line,
/// nor a pair of lines (adjacent lines are fetched together on x86-64), as a slab belongs to one thread.
#[repr(align(64))]
pub(crate) struct NodeCounters {
    count: AtomicU64,
    /// Ticks of calls that are not inside another call of the same name (inclusive time).
    total: AtomicU64,
    /// Ticks of calls less those of the timed calls they made and of their instrumentation.
    self_ticks: AtomicU64,
    min: AtomicU64,
    max: AtomicU64,
    /// Where call durations go: the histogram of the node's span name on the owning thread, always one
    /// that lives for the process (set when the counters are taken).
    durations: AtomicPtr<AtomicHistogram>,
    /// Under an overhead budget: what a call of this node takes, as its timed calls tell it (a moving
    /// average of their ticks in the low 32 bits, of their self ticks in the next 30; 0 before the first),
    /// which each call not timed is counted as, and in the top bits whether they were recursive and whether
    /// they made timed calls.
    estimate: AtomicU64,
    /// Calls counted but not timed (among `count`).
    untimed: AtomicU64,
}

/// The weight of the latest timed call in a node's estimate: 1/2^`ESTIMATE_SHIFT`, so that the estimate
/// follows a call that got slower or faster within a few timed calls, and is the mean of the last ten or
/// so, not one call's.
const ESTIMATE_SHIFT: u32 = 3;
/// The estimate's self ticks, above its ticks.
const SELF_MASK: u64 = (1 << 30) - 1;
/// Set in the estimate once a timed call of the node was inside a call of its name.
const RECURSIVE: u64 = 1 << 62;
/// Set in the estimate once a timed call of the node has made timed calls: its untimed calls need frames.
const NOT_LEAF: u64 = 1 << 63;

/// The ticks of a signed difference kept in a `u64` (two's complement), as a signed number.
#[allow(clippy::cast_possible_wrap)]
const fn signed(ticks: u64) -> i64 {
    ticks as i64
}

/// A signed number of ticks as the `u64` sums keep it (two's complement).
#[allow(clippy::cast_sign_loss)]
const fn unsigned(ticks: i64) -> u64 {
    ticks as u64
}

/// A node's estimate, as `NodeCounters::estimate` reads it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Estimated {
    pub ticks: u64,
    pub self_ticks: u64,
    pub leaf: bool,
    pub recursive: bool,
}

/// Where the durations of `UNUSED` would go; never written, as `UNUSED` is never closed.
static NO_DURATIONS: AtomicHistogram = AtomicHistogram::new();

/// Where frames and cache entries without counters of their own point; never written, as such frames are
/// never closed on the short path.
pub(crate) static UNUSED: NodeCounters = NodeCounters::new();

/// Counters in a slab: 4 KiB.
pub(crate) const PER_SLAB: usize = 64;

/// Counters taken and given back together by one thread; aligned to a pair of lines, so that no slab
/// shares one with another thread's.
#[repr(align(128))]
pub(crate) struct Slab([NodeCounters; PER_SLAB]);

static POOL: Mutex<Vec<&'static Slab>> = Mutex::new(Vec::new());

/// Zeroed counters that live for the process: a given-back slab if there is one, otherwise a new one.
pub(crate) fn take_slab() -> &'static Slab {
    let reused = POOL.lock().pop();
    reused.unwrap_or_else(|| arena::leak(Slab([const { NodeCounters::new() }; PER_SLAB])))
}

/// Gives slabs back for another thread to use; the caller guarantees that nothing writes or reads them.
pub(crate) fn give_back(slabs: impl Iterator<Item = &'static Slab>) {
    let slabs: Vec<_> = slabs.collect();
    for slab in &slabs {
        slab.0.iter().for_each(NodeCounters::clear);
    }
    POOL.lock().extend(slabs);
}

impl Slab {
    /// The counters at `index` of the slab, their durations going to `durations`.
    pub fn counters(&'static self, index: usize, durations: &'static AtomicHistogram) -> Option<&'static NodeCounters> {
        let counters = self.0.get(index)?;
        counters.durations.store(std::ptr::from_ref(durations).cast_mut(), Relaxed);
        Some(counters)
    }
}

impl NodeCounters {
    pub const fn new() -> Self {
        NodeCounters {
            count: AtomicU64::new(0),
            total: AtomicU64::new(0),
            self_ticks: AtomicU64::new(0),
            min: AtomicU64::new(NO_MIN),
            max: AtomicU64::new(0),
            durations: AtomicPtr::new(std::ptr::from_ref(&NO_DURATIONS).cast_mut()),
            estimate: AtomicU64::new(0),
            untimed: AtomicU64::new(0),
        }
    }

    /// What each call of this node that is not timed counts as: `(ticks, self ticks)`, `(0, 0)` before the
    /// first timed call has set them; whether no timed call of the node has made a timed call of its own (a
    /// leaf, whose untimed calls need no frame); and whether some were recursive (inside a call of their
    /// name), in which case the estimate is of those only.
    #[inline(always)]
    pub fn estimate(&self) -> Estimated {
        let estimate = self.estimate.load(Relaxed);
        // The self ticks are signed, in 30 bits: sign-extended from there.
        let self_ticks = signed(((estimate >> 32) & SELF_MASK) << 34) >> 34;
        Estimated {
            ticks: estimate & u64::from(u32::MAX),
            self_ticks: unsigned(self_ticks),
            leaf: estimate & NOT_LEAF == 0,
            recursive: estimate & RECURSIVE != 0,
        }
    }

    /// Whether a timed call has set the estimate.
    #[inline(always)]
    pub fn has_estimate(&self) -> bool {
        self.estimate.load(Relaxed) & u64::from(u32::MAX) != 0
    }

    /// Moves the estimate towards a timed call of `ticks`, `self_ticks` of them its own (a signed difference,
    /// as a `u64`: see `Hot::pop`), which made timed calls if `parent`, and was inside a call of its
    /// name if `folded` (owner only). Once a node has had a recursive call, its estimate is of its recursive
    /// calls only: the outermost ones take the whole recursion's time, are timed whatever the budget (see
    /// `Hot::try_untimed`) and would weigh the estimate of the inner ones up. Self ticks stay signed: a
    /// call's may be below zero when its untimed calls' estimates took more than they did, and clamping them
    /// weighed the estimate up (by 60% for a recursion whose depths differ). Ticks saturate at `u32::MAX`
    /// (over a second), self ticks at ±2^29: a call that slow is never worth not timing.
    pub fn update_estimate(&self, ticks: u64, self_ticks: u64, parent: bool, folded: bool) {
        let old = self.estimate.load(Relaxed);
        let known = self.estimate();
        if known.recursive && !folded {
            return;
        }
        // The first estimate, or the first of the recursive calls.
        let first = !self.has_estimate() || (folded && !known.recursive);
        let toward = |old: u64, new: u64, most: u64| {
            let new = new.min(most);
            if first { new } else { (old - (old >> ESTIMATE_SHIFT)) + (new >> ESTIMATE_SHIFT) }
        };
        // At least 1 tick, so that a set estimate is never read as none.
        let ticks = toward(known.ticks, ticks, u64::from(u32::MAX)).max(1);
        let limit = 1i64 << 29;
        let new_self = signed(self_ticks).clamp(-limit, limit - 1);
        let old_self = signed(known.self_ticks);
        let self_ticks = if first { new_self } else { old_self + ((new_self - old_self) >> ESTIMATE_SHIFT) };
        let self_ticks = unsigned(self_ticks) & SELF_MASK;
        let flags =
            (old & (NOT_LEAF | RECURSIVE)) | if parent { NOT_LEAF } else { 0 } | if folded { RECURSIVE } else { 0 };
        self.estimate.store(ticks | self_ticks << 32 | flags, Relaxed);
    }

    /// Marks the node as one whose calls make timed calls (owner only).
    pub fn mark_not_leaf(&self) {
        self.estimate.store(self.estimate.load(Relaxed) | NOT_LEAF, Relaxed);
    }

    /// Counts a call that was not timed, as `inclusive` new ticks of inclusive time (0 inside a call of its
    /// name) and `self_ticks` of self time (owner only).
    #[inline(always)]
    pub fn add_untimed(&self, inclusive: u64, self_ticks: u64) {
        self.count.store(self.count.load(Relaxed).wrapping_add(1), Relaxed);
        self.untimed.store(self.untimed.load(Relaxed).wrapping_add(1), Relaxed);
        self.total.store(self.total.load(Relaxed).wrapping_add(inclusive), Relaxed);
        self.self_ticks.store(self.self_ticks.load(Relaxed).wrapping_add(self_ticks), Relaxed);
    }

    /// Counts a completed call of `ticks`, `inclusive` of them new to the inclusive time (0 inside a call of
    /// its name), all but its duration, which the caller holds in `durations`: the short path. Sums of ticks wrap rather than saturate, as a `u64`
    /// of ticks lasts centuries, and a count of calls does not reach 2^64.
    #[inline(always)]
    pub fn add_span(&self, inclusive: u64, ticks: u64, self_ticks: u64) {
        self.total.store(self.total.load(Relaxed).wrapping_add(inclusive), Relaxed);
        self.self_ticks.store(self.self_ticks.load(Relaxed).wrapping_add(self_ticks), Relaxed);
        self.add_call_but_duration(ticks);
    }

    /// The histogram of this node's span name on the owning thread.
    #[inline(always)]
    pub fn durations(&self) -> &'static AtomicHistogram {
        let durations = self.durations.load(Relaxed);
        #[allow(unsafe_code)]
        // SAFETY: `durations` only ever holds pointers made from `&'static AtomicHistogram` (`NO_DURATIONS`,
        // or the histogram given to `Slab::counters`, which is leaked and pooled, never freed), so it is valid for the
        // rest of the process; `AtomicHistogram` is `Sync`, so a shared reference may be used from any thread.
        unsafe {
            &*durations
        }
    }

    /// Adds a closed span's ticks: `outermost` is false inside another call of the same name.
    pub fn add_time(&self, ticks: u64, self_ticks: u64, outermost: bool) {
        if outermost {
            bump(&self.total, ticks);
        }
        // Wrapping: a self time may be a signed difference (see `Hot::pop`).
        self.self_ticks.store(self.self_ticks.load(Relaxed).wrapping_add(self_ticks), Relaxed);
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

    pub fn clear(&self) {
        for counter in [&self.count, &self.total, &self.self_ticks, &self.max, &self.estimate, &self.untimed] {
            counter.store(0, Relaxed);
        }
        self.min.store(NO_MIN, Relaxed);
    }

    pub fn read(&self) -> Totals {
        let (count, min, max) = (self.count.load(Relaxed), self.min.load(Relaxed), self.max.load(Relaxed));
        Totals {
            count,
            total: self.total.load(Relaxed),
            // A sum of signed self times (see `Hot::pop`) below zero is none.
            self_ticks: {
                let self_ticks = self.self_ticks.load(Relaxed);
                if signed(self_ticks) < 0 { 0 } else { self_ticks }
            },
            // `min` may not be written yet when a report reads the first call's count.
            min: if count == 0 { 0 } else { min.min(max) },
            max,
            untimed: self.untimed.load(Relaxed),
            // A node's untimed calls had frames if it is no leaf (or, which the report knows, while
            // allocations were counted).
            untimed_framed: if self.estimate().leaf { 0 } else { self.untimed.load(Relaxed) },
            ..Totals::default()
        }
    }
}

/// Merged counters (of a node over threads, or of a span name over nodes), in ticks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    pub count: u64,
    pub total: u64,
    pub self_ticks: u64,
    pub min: u64,
    pub max: u64,
    /// For `async fn`: first poll to completion, summed over completed calls.
    pub wall: u64,
    /// For `async fn`: calls dropped before they completed, and the ticks of their polls (in no other sum).
    pub cancelled: u64,
    pub cancelled_ticks: u64,
    /// Calls counted but not timed, under an overhead budget (among `count`; their times are estimates).
    pub untimed: u64,
    /// Those of them that had frames.
    pub untimed_framed: u64,
}

impl Totals {
    pub fn is_empty(&self) -> bool {
        self.count == 0 && self.cancelled == 0 && self.cancelled_ticks == 0 && self.self_ticks == 0 && self.total == 0
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
        self.cancelled_ticks = self.cancelled_ticks.saturating_add(other.cancelled_ticks);
        self.untimed = self.untimed.saturating_add(other.untimed);
        self.untimed_framed = self.untimed_framed.saturating_add(other.untimed_framed);
    }
}
