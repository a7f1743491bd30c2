//! A thread's allocation counts, written by the thread from inside the global allocator and read by
//! reports: per span name, outside every span, and per step by phase (histograms and totals).
//!
//! Written as the other counters are: only the owning thread writes, with a relaxed load and store (no
//! read-modify-write, no lock), so an allocation costs a few stores to lines no other thread writes. The
//! table never allocates through the global allocator, which is the one counting: its per-name blocks come
//! from `System` directly, and tables are pooled for the life of the process, as step totals are.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering::Acquire, Ordering::Relaxed, Ordering::Release};

use parking_lot::Mutex;

use crate::model::Allocations;
use crate::store::arena;
use crate::store::counters::bump;
use crate::store::hist::{AtomicHistogram, Histogram, LazyHistogram};
use crate::store::steps::FAST_PHASES;

/// Set by a counting allocator's first count: threads registered from then on get a table.
static COUNTING: AtomicBool = AtomicBool::new(false);

/// Whether a counting allocator is installed (it counted something).
#[inline(always)]
pub(crate) fn counting() -> bool {
    COUNTING.load(Relaxed)
}

/// Notes that a counting allocator is installed; a load before the store, so that the line stays shared.
#[inline(always)]
pub(crate) fn note_counting() {
    if !COUNTING.load(Relaxed) {
        COUNTING.store(true, Relaxed);
    }
}

/// Where the counting allocator charges a thread's allocations, found once for each innermost span rather
/// than at every allocation: that span's counters and those of its phase in the step in progress (or the
/// table's `no_step` outside steps), for the frame at `depth` with the span name and phase ids in `key`.
/// Those are all the counters depend on, besides whether a step is open and which table the thread has; so
/// while the innermost frame has that depth and key, the place is right, whichever frame it is and whatever
/// the clock, without the hot path touching it. Whatever changes the place otherwise (a step starting or
/// ending, another table, the frames moving, the runtime at work) forgets it, and the next allocation finds
/// it again. An allocation then costs a few comparisons and four additions over the allocator's own work,
/// where looking up a name's and a phase's counters each time cost it twice as many instructions.
pub(crate) struct Place {
    /// Above 0 while the runtime works on this thread (its slow path, a report, interning a name, a step's
    /// end): what it allocates then is its own, never counted against the user's spans.
    quiet: Cell<u32>,
    depth: Cell<u32>,
    key: Cell<u64>,
    /// The frame at `depth`, of a type this layer does not know (the recorder's); read only while `depth`
    /// is the innermost frame's.
    frame: Cell<NonNull<()>>,
    span: Cell<&'static AllocCounters>,
    step: Cell<&'static StepCounts>,
}

/// What a place holds before it is first found: never written, as a `depth` no frame has comes with it.
static NOWHERE: AllocCounters = AllocCounters::new();
static NO_STEP: StepCounts = [AtomicU64::new(0), AtomicU64::new(0)];

thread_local! {
    static PLACE: Place = const { Place::new() };
}

impl Place {
    /// A depth no thread's stack reaches.
    const FORGOTTEN: u32 = u32::MAX;

    const fn new() -> Self {
        Place {
            quiet: Cell::new(0),
            depth: Cell::new(Self::FORGOTTEN),
            key: Cell::new(0),
            frame: Cell::new(NonNull::dangling()),
            span: Cell::new(&NOWHERE),
            step: Cell::new(&NO_STEP),
        }
    }

    /// The counters found for the innermost frame, at `depth`, if they were found for a frame with the key
    /// that `key_of` reads from it (it is given the frame that was at `depth` then, which is still alive).
    #[inline(always)]
    pub fn get(
        &self,
        depth: u32,
        key_of: impl FnOnce(NonNull<()>) -> u64,
    ) -> Option<(&'static AllocCounters, &'static StepCounts)> {
        if self.depth.get() != depth {
            return None;
        }
        (key_of(self.frame.get()) == self.key.get()).then(|| (self.span.get(), self.step.get()))
    }

    /// Remembers the counters of `frame`, at `depth` with `key`, which must stay where it is until the place
    /// is forgotten.
    pub fn set(
        &self,
        depth: u32,
        frame: NonNull<()>,
        key: u64,
        span: &'static AllocCounters,
        step: &'static StepCounts,
    ) {
        self.depth.set(depth);
        self.key.set(key);
        self.frame.set(frame);
        self.span.set(span);
        self.step.set(step);
    }

    /// Makes the next allocation find its place again.
    #[inline(always)]
    fn forget(&self) {
        self.depth.set(Self::FORGOTTEN);
    }

    /// Whether the runtime is at work on this thread.
    pub fn is_quiet(&self) -> bool {
        self.quiet.get() != 0
    }
}

/// Runs `f` with this thread's place. Through the place's address, as `with_hot` reaches the hot state:
/// `LocalKey::with` around the allocator's check is too large to inline, which left a call in every
/// allocation and free.
#[inline(always)]
pub(crate) fn with_place<R>(f: impl FnOnce(&Place) -> R) -> R {
    let place = PLACE.with(std::ptr::from_ref);
    #[allow(unsafe_code)]
    // SAFETY: `PLACE` has no destructor, so its storage is valid for as long as the thread runs (thread-local
    // destructors included), and `Place` is not `Sync`, so the reference cannot reach another thread; it
    // lives only as long as `f`.
    f(unsafe { &*place })
}

/// Makes this thread's next allocation find where it counts again.
#[inline(always)]
pub(crate) fn forget_place() {
    PLACE.with(Place::forget);
}

/// Runs `f` with this thread's allocations left uncounted: the runtime's own.
pub(crate) fn quiet<R>(f: impl FnOnce() -> R) -> R {
    let _quiet = Quiet::new();
    f()
}

/// Marks the thread quiet for as long as it lives (a guard, so that a panic in between unmarks it).
pub(crate) struct Quiet(());

impl Quiet {
    #[inline(always)]
    pub fn new() -> Self {
        PLACE.with(|place| {
            place.quiet.set(place.quiet.get().wrapping_add(1));
            place.forget();
        });
        Quiet(())
    }
}

impl Drop for Quiet {
    #[inline(always)]
    fn drop(&mut self) {
        PLACE.with(|place| {
            place.quiet.set(place.quiet.get().wrapping_sub(1));
            place.forget();
        });
    }
}

/// Adds to a counter only its owning thread writes.
#[inline(always)]
fn add(counter: &AtomicU64, value: u64) {
    counter.store(counter.load(Relaxed).wrapping_add(value), Relaxed);
}

/// Span names per block of counters, and blocks: the names the hot path's tables hold.
const NAMES_PER_BLOCK: usize = 64;
const BLOCKS: usize = 64;

/// One place's allocation counts.
#[derive(Default)]
pub(crate) struct AllocCounters {
    count: AtomicU64,
    bytes: AtomicU64,
    frees: AtomicU64,
    freed_bytes: AtomicU64,
}

type Block = [AllocCounters; NAMES_PER_BLOCK];

/// One phase's allocations and bytes in the step in progress.
pub(crate) type StepCounts = [AtomicU64; 2];

/// Counts an allocation of `bytes` in a phase of the step in progress (owner only).
#[inline(always)]
pub(crate) fn add_to_step(counts: &StepCounts, bytes: u64) {
    let [count, size] = counts;
    add(count, 1);
    add(size, bytes);
}

impl AllocCounters {
    const fn new() -> Self {
        AllocCounters {
            count: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            frees: AtomicU64::new(0),
            freed_bytes: AtomicU64::new(0),
        }
    }

    /// Counts an allocation of `bytes` (owner only). Wrapping: a count of allocations does not reach 2^64,
    /// nor does a sum of their sizes in any run, and saturating cost a compare and a move each.
    #[inline(always)]
    pub fn add_allocation(&self, bytes: u64) {
        add(&self.count, 1);
        add(&self.bytes, bytes);
    }

    /// Counts a free of `bytes` (owner only).
    #[inline(always)]
    pub fn add_free(&self, bytes: u64) {
        add(&self.frees, 1);
        add(&self.freed_bytes, bytes);
    }

    fn read(&self) -> Allocations {
        Allocations {
            count: self.count.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
            frees: self.frees.load(Relaxed),
            freed_bytes: self.freed_bytes.load(Relaxed),
        }
    }

    fn zero(&self) {
        for counter in [&self.count, &self.bytes, &self.frees, &self.freed_bytes] {
            counter.store(0, Relaxed);
        }
    }
}

/// A thread's allocation counts.
pub(crate) struct AllocTable {
    /// By span name id, in blocks made on a name's first allocation; null until then.
    by_name: [AtomicPtr<Block>; BLOCKS],
    /// Span names beyond the blocks.
    other_names: AllocCounters,
    outside: AllocCounters,
    /// Steps whose allocations were counted.
    steps: AtomicU64,
    /// Allocations and bytes per step, by phase id, and their sums over the steps.
    phase_counts: [LazyHistogram; FAST_PHASES],
    phase_bytes: [LazyHistogram; FAST_PHASES],
    phase_totals: [[AtomicU64; 2]; FAST_PHASES],
    /// Allocations and bytes per step, the whole step, and their sums.
    step_counts: AtomicHistogram,
    step_bytes: AtomicHistogram,
    step_totals: [AtomicU64; 2],
    /// Allocations and bytes of the step in progress by phase id (owner only), and of the latest step,
    /// which its record reads.
    current: [StepCounts; FAST_PHASES],
    latest: [StepCounts; FAST_PHASES],
    /// Where allocations outside steps count in no step (written, never read).
    no_step: StepCounts,
    /// Where a span's allocations count when its name's block could not be had (written, never read).
    lost: AllocCounters,
}

/// Tables given back by slots that are gone, for new threads.
static POOL: Mutex<Vec<&'static AllocTable>> = Mutex::new(Vec::new());

/// A zeroed table that lives for the process, so that the allocator can hold a plain reference to it.
pub(crate) fn take() -> &'static AllocTable {
    let reused = POOL.lock().pop();
    reused.unwrap_or_else(|| arena::leak(AllocTable::new()))
}

/// Gives a table back once nothing writes or reads it.
pub(crate) fn give_back(table: &'static AllocTable) {
    table.zero();
    POOL.lock().push(table);
}

impl AllocTable {
    const fn new() -> Self {
        AllocTable {
            by_name: [const { AtomicPtr::new(std::ptr::null_mut()) }; BLOCKS],
            other_names: AllocCounters::new(),
            outside: AllocCounters::new(),
            steps: AtomicU64::new(0),
            phase_counts: [const { LazyHistogram::new() }; FAST_PHASES],
            phase_bytes: [const { LazyHistogram::new() }; FAST_PHASES],
            phase_totals: [const { [AtomicU64::new(0), AtomicU64::new(0)] }; FAST_PHASES],
            step_counts: AtomicHistogram::new(),
            step_bytes: AtomicHistogram::new(),
            step_totals: [AtomicU64::new(0), AtomicU64::new(0)],
            current: [const { [AtomicU64::new(0), AtomicU64::new(0)] }; FAST_PHASES],
            latest: [const { [AtomicU64::new(0), AtomicU64::new(0)] }; FAST_PHASES],
            no_step: [AtomicU64::new(0), AtomicU64::new(0)],
            lost: AllocCounters::new(),
        }
    }

    /// Where allocations in phase id `phase` of the step in progress count (owner only); a phase id beyond
    /// the table counts in the step's own (phase 0), in its figures as a whole but in no phase's.
    pub fn in_step(&self, phase: u32) -> &StepCounts {
        let phase = if (phase as usize) < FAST_PHASES { phase as usize } else { 0 };
        &self.current[phase % FAST_PHASES]
    }

    /// Where allocations outside every step count: nowhere.
    pub fn no_step(&self) -> &StepCounts {
        &self.no_step
    }

    /// Forgets what the step in progress counted, keeping it out of every step (owner only).
    pub fn discard_step(&self) {
        for [count, bytes] in &self.current {
            count.store(0, Relaxed);
            bytes.store(0, Relaxed);
        }
    }

    /// Ends the step in progress, of phase ids below `phases`: its counts go to the histograms and totals,
    /// and become the latest step's (owner only). Histograms may allocate: the caller keeps that from being
    /// counted.
    pub fn end_step(&self, phases: usize) {
        let (mut step_count, mut step_bytes) = (0u64, 0u64);
        for (id, (current, latest)) in self.current.iter().zip(&self.latest).enumerate().take(phases) {
            let (count, bytes) = (current[0].swap(0, Relaxed), current[1].swap(0, Relaxed));
            latest[0].store(count, Relaxed);
            latest[1].store(bytes, Relaxed);
            step_count = step_count.saturating_add(count);
            step_bytes = step_bytes.saturating_add(bytes);
            // Phase 0 ("no phase") is the step's own code: in the step's figures, in no phase's.
            if id == 0 {
                continue;
            }
            self.phase_counts[id].get_or_make().record(count);
            self.phase_bytes[id].get_or_make().record(bytes);
            bump(&self.phase_totals[id][0], count);
            bump(&self.phase_totals[id][1], bytes);
        }
        self.step_counts.record(step_count);
        self.step_bytes.record(step_bytes);
        bump(&self.step_totals[0], step_count);
        bump(&self.step_totals[1], step_bytes);
        bump(&self.steps, 1);
    }

    /// The latest step's allocations and bytes by phase id, below `phases` (owner only).
    pub fn latest_step(&self, phases: usize) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.latest.iter().take(phases).map(|[count, bytes]| (count.load(Relaxed), bytes.load(Relaxed)))
    }

    #[inline(always)]
    fn block(&self, index: usize) -> Option<&Block> {
        let block = self.by_name.get(index)?.load(Acquire);
        #[allow(unsafe_code)]
        // SAFETY: null, or a block from `System` made by `make_block`, zeroed (all-zero atomics are valid
        // counters) and never freed: tables live for the process, pooled with their blocks. The `Acquire` load
        // pairs with the `Release` store that published it.
        unsafe {
            block.as_ref()
        }
    }

    /// Where span name `name` counts (owner only); `None` when no block could be had (no memory).
    #[inline(always)]
    pub fn for_name(&self, name: u32) -> Option<&AllocCounters> {
        let (index, offset) = (name as usize / NAMES_PER_BLOCK, name as usize % NAMES_PER_BLOCK);
        if index >= BLOCKS {
            return Some(&self.other_names);
        }
        let block = match self.block(index) {
            Some(block) => block,
            None => self.make_block(index)?,
        };
        block.get(offset)
    }

    /// Makes block `index` from `System`, not the global allocator: this runs inside it.
    #[cold]
    #[inline(never)]
    fn make_block(&self, index: usize) -> Option<&Block> {
        let layout = Layout::new::<Block>();
        #[allow(unsafe_code)]
        // SAFETY: `Block` has a non-zero size, as `alloc_zeroed` requires.
        let block = unsafe { System.alloc_zeroed(layout) }.cast::<Block>();
        if block.is_null() {
            return None;
        }
        self.by_name.get(index)?.store(block, Release);
        self.block(index)
    }

    /// Where allocations with no span open count.
    pub fn outside(&self) -> &AllocCounters {
        &self.outside
    }

    /// Where span name `name` counts, or a sink when its block could not be had (no memory).
    pub fn for_name_or_lost(&self, name: u32) -> &AllocCounters {
        self.for_name(name).unwrap_or(&self.lost)
    }

    /// Zeroes everything (owner only, or once nothing writes), keeping the blocks.
    pub fn zero(&self) {
        for index in 0..BLOCKS {
            if let Some(block) = self.block(index) {
                block.iter().for_each(AllocCounters::zero);
            }
        }
        self.other_names.zero();
        self.outside.zero();
        self.steps.store(0, Relaxed);
        for histogram in self.phase_counts.iter().chain(&self.phase_bytes).filter_map(LazyHistogram::get) {
            histogram.clear();
        }
        let totals = self.phase_totals.iter().chain(&self.current).chain(&self.latest).flatten();
        totals.chain(&self.step_totals).for_each(|total| total.store(0, Relaxed));
        self.step_counts.clear();
        self.step_bytes.clear();
    }

    /// Adds what the table holds to `account`.
    pub fn add_to(&self, account: &mut AllocAccount) {
        for index in 0..BLOCKS {
            let Some(block) = self.block(index) else { continue };
            for (offset, counters) in block.iter().enumerate() {
                let counts = counters.read();
                if !counts.is_empty() {
                    let name = index * NAMES_PER_BLOCK + offset;
                    if account.by_name.len() <= name {
                        account.by_name.resize(name + 1, Allocations::default());
                    }
                    account.by_name[name].add(&counts);
                }
            }
        }
        account.other_names.add(&self.other_names.read());
        account.outside.add(&self.outside.read());
        account.steps = account.steps.saturating_add(self.steps.load(Relaxed));
        for (id, ((counts, bytes), totals)) in
            self.phase_counts.iter().zip(&self.phase_bytes).zip(&self.phase_totals).enumerate()
        {
            let (Some(counts), Some(bytes)) = (counts.get(), bytes.get()) else { continue };
            if account.phases.len() <= id {
                account.phases.resize(id + 1, PerStepAccount::default());
            }
            let phase = &mut account.phases[id];
            counts.add_to(&mut phase.counts);
            bytes.add_to(&mut phase.bytes);
            phase.count_total = phase.count_total.saturating_add(totals[0].load(Relaxed));
            phase.bytes_total = phase.bytes_total.saturating_add(totals[1].load(Relaxed));
        }
        self.step_counts.add_to(&mut account.step.counts);
        self.step_bytes.add_to(&mut account.step.bytes);
        account.step.count_total = account.step.count_total.saturating_add(self.step_totals[0].load(Relaxed));
        account.step.bytes_total = account.step.bytes_total.saturating_add(self.step_totals[1].load(Relaxed));
    }
}

/// Allocations per step of one phase (or of whole steps), merged.
#[derive(Clone, Debug, Default)]
pub(crate) struct PerStepAccount {
    pub counts: Histogram,
    pub bytes: Histogram,
    pub count_total: u64,
    pub bytes_total: u64,
}

impl PerStepAccount {
    fn merge(&mut self, other: &PerStepAccount) {
        self.counts.merge(&other.counts);
        self.bytes.merge(&other.bytes);
        self.count_total = self.count_total.saturating_add(other.count_total);
        self.bytes_total = self.bytes_total.saturating_add(other.bytes_total);
    }
}

/// Allocation counts of many threads, merged: what a report reads.
#[derive(Clone, Debug, Default)]
pub(crate) struct AllocAccount {
    /// By span name id.
    pub by_name: Vec<Allocations>,
    pub other_names: Allocations,
    pub outside: Allocations,
    /// Steps counted.
    pub steps: u64,
    /// By phase id.
    pub phases: Vec<PerStepAccount>,
    pub step: PerStepAccount,
}

impl AllocAccount {
    pub fn merge(&mut self, other: &AllocAccount) {
        if self.by_name.len() < other.by_name.len() {
            self.by_name.resize(other.by_name.len(), Allocations::default());
        }
        for (mine, theirs) in self.by_name.iter_mut().zip(&other.by_name) {
            mine.add(theirs);
        }
        self.other_names.add(&other.other_names);
        self.outside.add(&other.outside);
        self.steps = self.steps.saturating_add(other.steps);
        if self.phases.len() < other.phases.len() {
            self.phases.resize(other.phases.len(), PerStepAccount::default());
        }
        for (mine, theirs) in self.phases.iter_mut().zip(&other.phases) {
            mine.merge(theirs);
        }
        self.step.merge(&other.step);
    }
}
