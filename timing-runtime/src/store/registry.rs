//! What each recording thread shares with reports: its call tree, whose counters only the owning thread
//! writes, and a step account behind a lock taken once per step. Threads that exit fold their slot into
//! `retired`, so the registry stays as long as the live threads.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering::Acquire, Ordering::Relaxed, Ordering::Release};
use std::sync::{Arc, LazyLock, OnceLock};

use parking_lot::Mutex;

use crate::model::granularity::TimingGranularity;
use crate::store::account::StepAccount;
use crate::store::allocs::{self, AllocAccount, AllocTable};
use crate::store::batches;
use crate::store::events::ThreadEvents;
use crate::store::steps::{self, StepTotals};
use crate::store::tree::{MergedTree, SharedTree};

/// Everything recorded, merged: what a summary is made from.
#[derive(Clone, Debug, Default)]
pub(crate) struct Aggregate {
    pub tree: MergedTree,
    pub steps: StepAccount,
    pub threads: u64,
    /// What counting allocators counted (empty without one).
    pub allocs: AllocAccount,
    /// The batch series (filled by `collect`, empty in the retired totals).
    pub batch_points: Vec<batches::PointTicks>,
}

impl Aggregate {
    fn merge_slot(&mut self, slot: &ThreadSlot, epoch: u64) {
        if slot.epoch.load(Acquire) == epoch {
            self.tree.add_thread(&slot.tree);
            self.merge_slot_but_tree(slot, epoch);
        }
    }

    /// What `merge_slot` adds but the call tree: the steps, batches and allocations.
    fn merge_slot_but_tree(&mut self, slot: &ThreadSlot, epoch: u64) {
        if slot.epoch.load(Acquire) == epoch {
            let mut account = StepAccount { epoch, ..StepAccount::default() };
            slot.step_totals.add_spread_to(&mut account);
            let reading = slot.step_totals.read(&slot.steps);
            account.steps = reading.steps;
            account.step_ticks = reading.step_ticks;
            account.span = reading.span;
            account.phase_ticks = reading.phase_ticks;
            if let Some(ticks) = reading.pending {
                account.step_histogram.record(ticks);
            }
            {
                let locked = slot.steps.lock();
                if locked.epoch == epoch {
                    // Batches, slow steps and the spread of large phase ids; the reading has their ticks.
                    account.merge(&StepAccount { phase_ticks: Vec::new(), ..locked.clone() });
                }
            }
            self.steps.merge(&account);
            if let Some(table) = slot.allocs_if_any() {
                table.add_to(&mut self.allocs);
            }
            // Threads that recorded since the last reset; an idle or exiting thread of an earlier epoch is not one.
            self.threads += 1;
        }
    }

    fn merge(&mut self, other: &Aggregate) {
        self.steps.merge(&other.steps);
        self.tree.merge(&other.tree);
        self.threads += other.threads;
        self.allocs.merge(&other.allocs);
    }
}

/// A recording thread's shared state.
pub(crate) struct ThreadSlot {
    /// The thread's number in timelines, from 1.
    pub id: u64,
    /// The epoch the tree's counters belong to; counters of another epoch are not read.
    pub epoch: AtomicU64,
    /// Timeline events handed over by the thread.
    pub events: Mutex<ThreadEvents>,
    pub tree: SharedTree,
    pub step_totals: &'static StepTotals,
    pub steps: Mutex<StepAccount>,
    /// Allocation counts, once a counting allocator has counted (the owner attaches them).
    allocs: OnceLock<&'static AllocTable>,
}

impl ThreadSlot {
    fn new(epoch: u64, id: u64) -> Self {
        ThreadSlot {
            id,
            epoch: AtomicU64::new(epoch),
            events: Mutex::new(ThreadEvents::default()),
            tree: SharedTree::new(),
            step_totals: steps::take(),
            steps: Mutex::new(StepAccount { epoch, ..StepAccount::default() }),
            allocs: OnceLock::new(),
        }
    }

    /// Where the thread's allocations count, if a counting allocator is installed: made when first asked
    /// after it counted something, so that a process without one keeps no tables.
    pub fn allocs(&self) -> Option<&'static AllocTable> {
        match self.allocs.get() {
            Some(table) => Some(*table),
            None if allocs::counting() => Some(*self.allocs.get_or_init(allocs::take)),
            None => None,
        }
    }

    /// The allocation counts, if the thread has them, for reports.
    pub fn allocs_if_any(&self) -> Option<&'static AllocTable> {
        self.allocs.get().copied()
    }

    /// Called by the owning thread when it sees a new epoch: its counters start again from zero.
    #[cold]
    pub fn start_epoch(&self, epoch: u64) {
        self.tree.clear();
        self.step_totals.clear();
        if let Some(table) = self.allocs() {
            table.zero();
        }
        *self.steps.lock() = StepAccount { epoch, ..StepAccount::default() };
        self.epoch.store(epoch, Release);
    }
}

impl Drop for ThreadSlot {
    fn drop(&mut self) {
        steps::give_back(self.step_totals);
        if let Some(table) = self.allocs.get() {
            allocs::give_back(table);
        }
    }
}

struct Registry {
    live: Vec<Arc<ThreadSlot>>,
    retired: Aggregate,
    /// Timelines of exited threads, the latest `RETIRED_TIMELINES`.
    retired_events: VecDeque<(u64, ThreadEvents)>,
    next_thread: u64,
}

const RETIRED_TIMELINES: usize = 64;

static REGISTRY: LazyLock<Mutex<Registry>> = LazyLock::new(|| {
    Mutex::new(Registry {
        live: Vec::new(),
        retired: Aggregate::default(),
        retired_events: VecDeque::new(),
        next_thread: 1,
    })
});

/// The granularity in the low 2 bits and the reset epoch above them, read with one relaxed load per call.
static STATE: AtomicU64 = AtomicU64::new(TimingGranularity::Detailed.to_bits());
/// Set in `STATE` while timeline capture is on.
pub(crate) const TIMELINE: u64 = 1 << 2;
/// Set in `STATE` while an overhead budget is set: ordinary spans may then be sampled.
pub(crate) const SAMPLING: u64 = 1 << 3;
const EPOCH_SHIFT: u32 = 4;

/// The raw state: granularity in the low 2 bits, the timeline and sampling flags, then the epoch.
#[inline(always)]
pub(crate) fn raw_state() -> u64 {
    STATE.load(Relaxed)
}

#[inline(always)]
pub(crate) const fn epoch_of(state: u64) -> u64 {
    state >> EPOCH_SHIFT
}

/// The state under which a thread in `epoch` records on the hot path: granularity `Detailed`, no timeline,
/// and the `sampling` flag as given.
pub(crate) const fn fast_key(epoch: u64, sampling: u64) -> u64 {
    epoch << EPOCH_SHIFT | TimingGranularity::Detailed.to_bits() | sampling & SAMPLING
}

#[inline(always)]
pub(crate) fn state() -> (TimingGranularity, u64) {
    let state = STATE.load(Relaxed);
    (TimingGranularity::from_bits(state), epoch_of(state))
}

pub(crate) fn set_granularity(granularity: TimingGranularity) {
    let _ = STATE.fetch_update(Relaxed, Relaxed, |state| Some(state & !3 | granularity.to_bits()));
}

pub(crate) fn set_sampling(on: bool) {
    let _ = STATE.fetch_update(Relaxed, Relaxed, |state| Some(if on { state | SAMPLING } else { state & !SAMPLING }));
}

pub(crate) fn set_timeline(on: bool) {
    let _ = STATE.fetch_update(Relaxed, Relaxed, |state| Some(if on { state | TIMELINE } else { state & !TIMELINE }));
}

/// A new slot for the calling thread, in the registry until the thread exits.
#[cold]
pub(crate) fn register(epoch: u64) -> Arc<ThreadSlot> {
    let mut registry = REGISTRY.lock();
    let slot = Arc::new(ThreadSlot::new(epoch, registry.next_thread));
    registry.next_thread += 1;
    registry.live.push(Arc::clone(&slot));
    slot
}

/// A slot that no report reads (for the calibration thread).
pub(crate) fn detached(epoch: u64) -> Arc<ThreadSlot> {
    Arc::new(ThreadSlot::new(epoch, 0))
}

/// Folds an exiting thread's slot into the retired totals, in one step with its removal from the live list,
/// so that a report counts it exactly once.
pub(crate) fn retire(slot: &Arc<ThreadSlot>) {
    // Read before taking the registry lock, so that other threads and reports do not wait for it: the
    // exiting thread records nothing more, and a reset in between is seen below.
    let epoch = state().1;
    let mut retired = Aggregate::default();
    retired.merge_slot_but_tree(slot, epoch);
    let mut registry = REGISTRY.lock();
    if state().1 == epoch {
        registry.retired.merge(&retired);
        // The tree straight into the exited threads' totals: in work and memory that follow this thread's
        // own nodes, not the process's paths (see `SharedTree::add_totals_growing`).
        if slot.epoch.load(Acquire) == epoch {
            registry.retired.tree.add_exiting_thread(&slot.tree);
        }
    }
    registry.live.retain(|live| !Arc::ptr_eq(live, slot));
    let events = std::mem::take(&mut *slot.events.lock());
    if !events.events.is_empty() || events.dropped > 0 {
        if registry.retired_events.len() >= RETIRED_TIMELINES {
            registry.retired_events.pop_front();
        }
        registry.retired_events.push_back((slot.id, events));
    }
}

/// The timeline events of live and exited threads, as `(thread id, events)`.
pub(crate) fn collect_events() -> Vec<(u64, ThreadEvents)> {
    let copy = |events: &ThreadEvents| ThreadEvents { events: events.events.clone(), dropped: events.dropped };
    let (live, mut all) = {
        let registry = REGISTRY.lock();
        let retired: Vec<_> = registry.retired_events.iter().map(|(id, events)| (*id, copy(events))).collect();
        (registry.live.clone(), retired)
    };
    // One thread's lock at a time, and not the registry's: a recording thread waits at most for one copy.
    all.extend(live.iter().map(|slot| (slot.id, copy(&slot.events.lock()))));
    all
}

/// Everything recorded in the current epoch, on live and exited threads.
pub(crate) fn collect() -> Aggregate {
    let (live, mut total, epoch) = {
        let registry = REGISTRY.lock();
        (registry.live.clone(), registry.retired.clone(), state().1)
    };
    total.tree.refresh_paths();
    for slot in &live {
        total.merge_slot(slot, epoch);
    }
    total.batch_points = batches::read(epoch);
    total
}

/// Starts a new epoch: everything recorded so far stops counting, on every thread.
pub(crate) fn reset() {
    let mut registry = REGISTRY.lock();
    let epoch = epoch_of(STATE.fetch_add(1 << EPOCH_SHIFT, Relaxed)) + 1;
    batches::reset(epoch);
    registry.retired = Aggregate::default();
    registry.retired_events.clear();
    for slot in &registry.live {
        *slot.events.lock() = ThreadEvents::default();
    }
}
