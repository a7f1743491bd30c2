//! The hot path: a thread's stack of open spans and what an ordinary span needs to open and close, in a
//! `const`-initialised thread-local of plain cells. It has no destructor, so reaching it is one
//! thread-pointer-relative address, with no lazy initialisation, registration or borrow flag to check.
//!
//! A span opens here when its call site's ids fit the tables, the thread is registered in the current
//! epoch at granularity `Detailed` without timeline capture (all folded into one `key` compared with the
//! global state), the stack has room and the edge from the caller's node is in the cache; the thread's
//! outermost step opens here too. It closes here when it is on top of the stack and needs nothing special
//! (no batch, poll or capture; a step when its totals can take it; a recursive call, by a second try before
//! the slow one). Everything else goes to the
//! slow path in `record`, which keeps the same stack.
//!
//! A phase's time is the self time of its spans (their time less that of the timed calls they made and,
//! as calibrated, of those calls' instrumentation, which goes to overhead): one addition per span.

use std::cell::Cell;
use std::ptr::NonNull;

use crate::record::budget::Sampler;
use crate::record::callsite::{self, FAST, FAST_NAMES, FAST_PHASES};
use crate::record::charge::{self, Close};
use crate::store::allocs::{self, AllocTable};
use crate::store::counters::{NodeCounters, UNUSED};
use crate::store::hist::AtomicHistogram;
use crate::store::steps::{self, StepTotals};

/// Frames the fast stack holds, the root sentinel at index 0 included; deeper frames are kept by the slow
/// path.
pub(crate) const FAST_DEPTH: usize = 64;
/// Entries in the cache of call-tree edges: enough for the paths of an optimizer's hot loop.
const CACHE: usize = 512;
const CACHE_BITS: u32 = CACHE.trailing_zeros();
/// A `key` no state equals: the fast path is off for this thread.
pub(crate) const POISON: u64 = u64::MAX;

/// Why a frame must close on the slow path; a frame with none of these closes on the fast path.
pub(crate) mod flags {
    /// Inside an open call of the same name, which holds its inclusive time already.
    pub const FOLDED: u32 = 1;
    /// The outermost step on the thread.
    pub const STEP: u32 = 1 << 1;
    /// The outermost batch on the thread.
    pub const BATCH: u32 = 1 << 2;
    /// One poll of an `async fn`.
    pub const POLL: u32 = 1 << 3;
    /// Captured as a timeline event when it closes.
    pub const TIMELINE: u32 = 1 << 4;
    /// Not recorded beyond its role (granularity below `Detailed`).
    pub const COARSE: u32 = 1 << 5;
    /// No counters of its own (the thread's tree is full).
    pub const UNCOUNTED: u32 = 1 << 6;
    /// Its name or phase id is beyond the fast tables.
    pub const LARGE_ID: u32 = 1 << 7;
    /// Counted, not timed (under an overhead budget): its start is 0 and its time its node's estimate.
    pub const UNTIMED: u32 = 1 << 8;
    /// Timed under an overhead budget: its close also moves its node's estimate.
    pub const SAMPLED: u32 = 1 << 9;
}

/// Set in a guard's depth when its frame is untimed, so that closing it reads no clock.
pub(crate) const UNTIMED_GUARD: u32 = 1 << 31;

/// An open span.
#[derive(Clone, Copy)]
pub(crate) struct Frame {
    pub start: u64,
    /// Ticks of the timed calls made inside this one, and of their instrumentation.
    pub children: u64,
    /// The counters of the node the call entered.
    pub counters: &'static NodeCounters,
    /// The call-tree node the call entered; `NO_NODE` when not recorded.
    pub node: u32,
    pub name: u32,
    /// The innermost phase on the stack, this frame's own or inherited; 0 for none.
    pub phase: u32,
    pub flags: u32,
}

/// A frame as cells, each field read and written on its own.
pub(crate) struct FrameCells {
    start: Cell<u64>,
    children: Cell<u64>,
    counters: Cell<&'static NodeCounters>,
    node: Cell<u32>,
    name: Cell<u32>,
    phase: Cell<u32>,
    flags: Cell<u32>,
}

impl FrameCells {
    pub(crate) const fn new() -> Self {
        FrameCells {
            start: Cell::new(0),
            children: Cell::new(0),
            counters: Cell::new(&UNUSED),
            node: Cell::new(0),
            name: Cell::new(0),
            phase: Cell::new(0),
            flags: Cell::new(0),
        }
    }

    /// The span name and phase ids, as one word: all the counting allocator's counters depend on.
    #[inline(always)]
    pub fn key(&self) -> u64 {
        u64::from(self.name.get()) | u64::from(self.phase.get()) << 32
    }

    pub fn get(&self) -> Frame {
        Frame {
            start: self.start.get(),
            children: self.children.get(),
            counters: self.counters.get(),
            node: self.node.get(),
            name: self.name.get(),
            phase: self.phase.get(),
            flags: self.flags.get(),
        }
    }

    pub fn set(&self, frame: Frame) {
        self.start.set(frame.start);
        self.children.set(frame.children);
        self.counters.set(frame.counters);
        self.node.set(frame.node);
        self.name.set(frame.name);
        self.phase.set(frame.phase);
        self.flags.set(frame.flags);
    }

    /// Adds a closed child's ticks and `charged` ticks of its instrumentation to this frame's.
    #[inline(always)]
    pub fn add_child(&self, ticks: u64, charged: u64) {
        self.children.set(self.children.get().wrapping_add(ticks).wrapping_add(charged));
    }
}

impl Frame {
    /// Adds a closed child's ticks and `charged` ticks of its instrumentation to this frame's.
    pub fn add_child(&mut self, ticks: u64, charged: u64) {
        self.children = self.children.wrapping_add(ticks).wrapping_add(charged);
    }
}

/// Where the frames beyond the inline ones are: a slice of the recorder's, set by it.
struct DeepFrames {
    start: Cell<NonNull<FrameCells>>,
    len: Cell<usize>,
}

/// A cached edge: the node a call of a name from a node enters, and its counters.
struct CachedEdge {
    /// `parent << 32 | name`; 0 matches nothing, as no span name has id 0.
    key: Cell<u64>,
    node: Cell<u32>,
    counters: Cell<&'static NodeCounters>,
}

/// The thread's hot state.
pub(crate) struct Hot {
    /// The global state (granularity, timeline flag, epoch) for which the fast path may run, or `POISON`.
    pub key: Cell<u64>,
    /// Open frames; frame `depth` is the innermost, frame 0 the root.
    pub depth: Cell<u32>,
    pub frames: [FrameCells; FAST_DEPTH],
    /// Frames beyond `frames`: frame `FAST_DEPTH + i` is `deep[i]`, in the recorder's storage, which the
    /// slow path grows (and points this at) as a stack first gets that deep. Recursion a thousand calls
    /// deep runs on the hot path there, out of line, as recursive closes do.
    deep: DeepFrames,
    cache: [CachedEdge; CACHE],
    /// Open calls by span name id.
    pub open: [Cell<u32>; FAST_NAMES],
    /// Phase time of the step in progress by phase id: the self time of its spans.
    pub phase_ticks: [Cell<u64>; FAST_PHASES],
    /// The histogram whose latest duration is not yet counted: the bucket is a function of the clock
    /// reading, and a store to an address that waits for `rdtsc` held every span up by a third of its
    /// cost. Counted at the next close, when the address has long been known, and by every slow path;
    /// reports count it meanwhile (`AtomicHistogram::hold`).
    held_durations: Cell<Option<&'static AtomicHistogram>>,
    /// Ticks are TSC counts: the hot path reads the clock with `rdtsc` alone. Set with `key`.
    pub tsc: Cell<bool>,
    /// A step is open on this thread.
    pub step_active: Cell<bool>,
    /// Where steps closed on the hot path are counted; `None` when steps must close on the slow path (no
    /// slot yet, or the batch in progress keeps a record of each step).
    pub step_totals: Cell<Option<&'static StepTotals>>,
    /// The phase ticks of the latest step, by phase id.
    pub step_phases: [Cell<u64>; FAST_PHASES],
    /// The latest step's ticks while they are held back from the step histogram until the next step ends,
    /// for the reason durations are (see `held_durations`).
    held_step: Cell<Option<u64>>,
    /// Steps completed on this thread: the step index of timeline events, and a batch's count of steps.
    pub steps_done: Cell<u64>,
    /// The tick the step being finished ended at: set by whoever closes it, so that `finish_step` takes no
    /// seventh argument (on the stack, and a few more instructions a span for every step).
    pub step_end: Cell<u64>,
    /// Where a counting allocator counts this thread's allocations: the slot's table, when one is installed.
    /// Set through `set_alloc_table`.
    pub alloc_table: Cell<Option<&'static AllocTable>>,
    /// Which calls are timed, under an overhead budget (set by the recorder with the key).
    pub sampler: Cell<Option<&'static Sampler>>,
}

thread_local! {
    static HOT: Hot = const { Hot::new() };
}

/// Runs `f` on this thread's hot state. `LocalKey::with` with the hot path in its closure is too large for
/// the compiler to inline, which would leave an indirect call to the key's accessor on every span; taking
/// the address is small enough to inline to one thread-pointer-relative address.
#[inline(always)]
pub(crate) fn with_hot<R>(f: impl FnOnce(&Hot) -> R) -> R {
    let hot = HOT.with(std::ptr::from_ref);
    #[allow(unsafe_code)]
    // SAFETY: `HOT` has no destructor, so its storage is valid for as long as the thread runs (thread-local
    // destructors included), and `Hot` is not `Sync`, so the reference cannot reach another thread; it lives
    // only as long as `f`.
    f(unsafe { &*hot })
}

#[inline(always)]
fn cache_index(key: u64) -> usize {
    // Fibonacci hashing: the top bits of the product spread small consecutive ids.
    (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - CACHE_BITS)) as usize
}

#[inline(always)]
fn edge_key(parent: u32, name: u32) -> u64 {
    u64::from(parent) << 32 | u64::from(name)
}

/// Ticks kept as a signed difference in a `u64` (see `Hot::pop`), as none when below zero.
#[inline(always)]
pub(crate) fn non_negative(ticks: u64) -> u64 {
    if ticks > u64::MAX / 2 { 0 } else { ticks }
}

#[inline(always)]
fn add(cell: &Cell<u64>, ticks: u64) {
    cell.set(cell.get().wrapping_add(ticks));
}

impl Hot {
    const fn new() -> Self {
        Hot {
            key: Cell::new(POISON),
            depth: Cell::new(0),
            frames: [const { FrameCells::new() }; FAST_DEPTH],
            deep: DeepFrames { start: Cell::new(NonNull::dangling()), len: Cell::new(0) },
            cache: [const { CachedEdge { key: Cell::new(0), node: Cell::new(0), counters: Cell::new(&UNUSED) } };
                CACHE],
            open: [const { Cell::new(0) }; FAST_NAMES],
            phase_ticks: [const { Cell::new(0) }; FAST_PHASES],
            held_durations: Cell::new(None),
            tsc: Cell::new(false),
            step_active: Cell::new(false),
            step_totals: Cell::new(None),
            step_phases: [const { Cell::new(0) }; FAST_PHASES],
            held_step: Cell::new(None),
            steps_done: Cell::new(0),
            step_end: Cell::new(0),
            alloc_table: Cell::new(None),
            sampler: Cell::new(None),
        }
    }

    /// Sets where a counting allocator counts this thread's allocations.
    pub fn set_alloc_table(&self, table: Option<&'static AllocTable>) {
        self.alloc_table.set(table);
        allocs::forget_place();
    }

    /// Marks a step open or not; allocations from now on count in its phases or not. Returns what it was.
    #[inline(always)]
    pub fn set_step_active(&self, active: bool) -> bool {
        allocs::forget_place();
        self.step_active.replace(active)
    }

    /// Points the frames beyond the inline ones at `frames`, which must stay where they are, unchanged in
    /// length, until the next call (the recorder calls it whenever it moves or frees them).
    pub fn set_deep_frames(&self, frames: &[FrameCells]) {
        // The counting allocator may hold where a frame among the old ones keeps its start.
        allocs::forget_place();
        self.deep.start.set(NonNull::from(frames).cast());
        self.deep.len.set(frames.len());
    }

    /// The frame at `index` (0 is the root), inline or beyond, if the thread has storage for it.
    #[inline(always)]
    pub fn frame_cells(&self, index: usize) -> Option<&FrameCells> {
        match self.frames.get(index) {
            Some(cells) => Some(cells),
            None => self.deep_frames().get(index - FAST_DEPTH),
        }
    }

    #[inline(always)]
    fn deep_frames(&self) -> &[FrameCells] {
        #[allow(unsafe_code)]
        // SAFETY: `start` and `len` are a dangling pointer and 0, or those of the recorder's frames, which it
        // sets again whenever they move or are freed (`set_deep_frames`). The recorder changes its frames'
        // storage only inside `with_recorder`, with the thread's key poisoned (so that no hot-path function
        // reaches the frames meanwhile, even from a timed call inside an allocator) and its allocations quiet
        // (so that the counting allocator does not read them); every borrow of the slice, here or through
        // `frame_cells` in the recorder, ends before such a change. The cells are not `Sync`, as `Hot` is
        // not, so the slice never leaves the thread.
        unsafe {
            std::slice::from_raw_parts(self.deep.start.get().as_ptr(), self.deep.len.get())
        }
    }

    /// The frame at `parent`, and the one above it; for the inline frames only unless `DEEP`, so that the
    /// common path tests one bound and indexes without a second test.
    #[inline(always)]
    fn frame_pair<const DEEP: bool>(&self, parent: usize) -> Option<(&FrameCells, &FrameCells)> {
        if DEEP {
            return Some((self.frame_cells(parent)?, self.frame_cells(parent.wrapping_add(1))?));
        }
        if parent >= FAST_DEPTH - 1 {
            return None;
        }
        // In bounds, as tested; the remainders tell the compiler so.
        Some((&self.frames[parent % FAST_DEPTH], &self.frames[(parent + 1) % FAST_DEPTH]))
    }

    /// Holds `ticks` back from `counters`' durations until the next close, counting the one held before.
    pub fn hold_duration(&self, counters: &'static NodeCounters, ticks: u64) {
        self.count_held();
        self.hold_counted(counters, ticks);
    }

    /// Holds `ticks` back as `hold_duration` does, the one held before being counted already.
    #[inline(always)]
    fn hold_counted(&self, counters: &'static NodeCounters, ticks: u64) {
        let durations = counters.durations();
        durations.hold(ticks);
        // Last: stored before the held counters' pending duration is read, it made that read wait in some
        // processes (leaf spans at 28-30 ns instead of 19 in about one run in five). Why is not known; not 4
        // KiB aliasing, which would slow every process of a build alike: the addresses' page offsets were the
        // same in each of 64 processes logged.
        self.held_durations.set(Some(durations));
    }

    /// Counts the held-back duration, if any, in its histogram.
    #[inline(always)]
    pub fn count_held(&self) {
        if let Some(durations) = self.held_durations.take() {
            durations.count_pending();
        }
    }

    /// The name and phase ids of the innermost open span; `None` outside every span.
    #[inline(always)]
    pub fn innermost(&self) -> Option<(u32, u32)> {
        let depth = self.depth.get() as usize;
        let frame = self.frame_cells(depth).filter(|_| depth > 0)?;
        Some((frame.name.get(), frame.phase.get()))
    }

    /// The self time so far of the innermost open span, at `now`, and the ticks of the timed calls it made
    /// (with what they charged it); `None` outside every span. For the calibration, whose parent span is the
    /// thread's only one.
    pub fn open_self_and_children(&self, now: u64) -> Option<(u64, u64)> {
        let depth = self.depth.get() as usize;
        let frame = self.frame_cells(depth).filter(|_| depth > 0)?.get();
        Some((now.saturating_sub(frame.start).saturating_sub(frame.children), frame.children))
    }

    /// The ticks so far of the innermost open span, at `now`; `None` outside every span.
    pub fn open_elapsed(&self, now: u64) -> Option<u64> {
        let depth = self.depth.get() as usize;
        let frame = self.frame_cells(depth).filter(|_| depth > 0)?.get();
        Some(now.saturating_sub(frame.start))
    }

    /// Opens the outermost step of the thread as `try_enter` opens a span: its phase tables start at zero.
    #[inline(always)]
    pub fn try_enter_step(&self, packed: u64, state: u64, now: impl FnOnce() -> u64) -> Option<(u32, u32)> {
        let phases = callsite::phase_count();
        // Phases beyond the tables are zeroed by the slow path.
        if self.step_active.get() || packed & FAST == 0 || state != self.key.get() || phases > FAST_PHASES {
            return None;
        }
        self.zero_phase_ticks(phases);
        let frame = self.try_push::<false>(packed, flags::STEP, now)?;
        self.set_step_active(true);
        Some(frame)
    }

    /// Zeroes the phase time of the `phases` phase ids in the tables, as a step starts: spans add phase time
    /// whether a step is open or not.
    #[inline(always)]
    pub fn zero_phase_ticks(&self, phases: usize) {
        for ticks in self.phase_ticks.iter().take(phases) {
            ticks.set(0);
        }
    }

    /// Opens an ordinary span with call site ids `packed`, its start read with `now`, and returns its depth
    /// and the low bits of its start tick, or `None` for the slow path.
    #[inline(always)]
    pub fn try_enter(&self, packed: u64, state: u64, now: impl FnOnce() -> u64) -> Option<(u32, u32)> {
        if packed & FAST == 0 || state != self.key.get() {
            return None;
        }
        self.try_push::<false>(packed, 0, now)
    }

    /// Opens an ordinary span as `try_enter` does, at any depth the thread has frames for: for a stack
    /// beyond the inline frames, out of line, reached when `try_enter` fails.
    #[inline(never)]
    pub fn try_enter_deep(&self, packed: u64, state: u64, now: impl FnOnce() -> u64) -> Option<(u32, u32)> {
        if packed & FAST == 0 || state != self.key.get() {
            return None;
        }
        self.try_push::<true>(packed, 0, now)
    }

    #[inline(always)]
    fn try_push<const DEEP: bool>(
        &self,
        packed: u64,
        frame_flags: u32,
        now: impl FnOnce() -> u64,
    ) -> Option<(u32, u32)> {
        let depth = self.depth.get() as usize;
        let (parent, frame) = self.frame_pair::<DEEP>(depth)?;
        #[allow(clippy::cast_possible_truncation)]
        let (name, own_phase) = (packed as u32, (packed >> 32) as u32 & (FAST_PHASES as u32 - 1));
        let key = edge_key(parent.node.get(), name);
        let edge = &self.cache[cache_index(key)];
        if edge.key.get() != key {
            return None;
        }
        let open = &self.open[name as usize % FAST_NAMES];
        let outer = open.get();
        open.set(outer.wrapping_add(1));
        frame.counters.set(edge.counters.get());
        frame.children.set(0);
        frame.node.set(edge.node.get());
        frame.name.set(name);
        frame.phase.set(if own_phase != 0 { own_phase } else { parent.phase.get() });
        frame.flags.set(frame_flags | if outer != 0 { flags::FOLDED } else { 0 });
        // `depth` came from a `u32`, and a frame beyond `u32::MAX` has no storage.
        #[allow(clippy::cast_possible_truncation)]
        let depth = (depth as u32).wrapping_add(1);
        self.depth.set(depth);
        // Last, so that the bookkeeping above is not counted in the span.
        let start = now();
        frame.start.set(start);
        #[allow(clippy::cast_possible_truncation)]
        Some((depth, start as u32))
    }

    /// Opens an ordinary span under an overhead budget as `try_enter` opens one: a call that opens a phase
    /// (its own, not its caller's already) timed and counted as exact, any other timed when its name's
    /// countdown is out (and marked, so that its close moves the estimate), otherwise counted untimed
    /// (`try_untimed`).
    #[inline(always)]
    pub fn try_enter_sampled(&self, packed: u64, state: u64, now: impl FnOnce() -> u64) -> Option<(u32, u32)> {
        if packed & FAST == 0 || state != self.key.get() {
            return None;
        }
        let sampler = self.sampler.get()?;
        #[allow(clippy::cast_possible_truncation)]
        let (name, own_phase) = (packed as u32, (packed >> 32) as u32 & (FAST_PHASES as u32 - 1));
        // A call that opens a phase is timed; one whose phase is its caller's already (a recursive call of a
        // phased function, say) opens none.
        if own_phase != 0 && self.frame_cells(self.depth.get() as usize).is_none_or(|top| top.phase.get() != own_phase)
        {
            sampler.count_exact();
            return self.try_push::<false>(packed, 0, now);
        }
        if sampler.untimed(name) {
            if let Some(frame) = self.try_untimed(packed) {
                return Some(frame);
            }
        }
        self.try_push::<false>(packed, flags::SAMPLED, now)
    }

    /// Counts a call that is not timed, at its path's estimate: on the spot, with no frame, for a leaf (no
    /// timed call of the path has made timed calls) when no counting allocator needs to know where the call
    /// allocates, returning the depth 0 of a guard with nothing to close; otherwise as a frame without a
    /// clock reading, closed by `try_exit_untimed`, its depth with `UNTIMED_GUARD` set. Only where its edge
    /// is cached and its path has an estimate (a timed call of the path came first).
    #[inline(always)]
    pub fn try_untimed(&self, packed: u64) -> Option<(u32, u32)> {
        let depth = self.depth.get() as usize;
        let (parent, frame) = self.frame_pair::<false>(depth)?;
        #[allow(clippy::cast_possible_truncation)]
        let name = packed as u32;
        let key = edge_key(parent.node.get(), name);
        let edge = &self.cache[cache_index(key)];
        let counters = edge.counters.get();
        let estimate = counters.estimate();
        let (ticks, self_ticks) = (estimate.ticks, estimate.self_ticks);
        if edge.key.get() != key || ticks == 0 {
            return None;
        }
        let open = &self.open[name as usize % FAST_NAMES];
        let outer = open.get();
        // The outermost call of a recursion is timed: the estimate is of the inner ones.
        if estimate.recursive && outer == 0 {
            return None;
        }
        if estimate.leaf && self.alloc_table.get().is_none() {
            // All ones for a call of its own, none for a recursive one.
            let own = u64::from(outer != 0).wrapping_sub(1);
            counters.add_untimed(ticks & own, self_ticks);
            // Its caller gives up what its phase gains: the phase's time stays what was spent in it.
            parent.add_child(self_ticks, charge::charged_ticks(Close::Untimed));
            add(&self.phase_ticks[parent.phase.get() as usize % FAST_PHASES], self_ticks);
            return Some((0, 0));
        }
        open.set(outer.wrapping_add(1));
        frame.counters.set(counters);
        frame.children.set(0);
        frame.node.set(edge.node.get());
        frame.name.set(name);
        frame.phase.set(parent.phase.get());
        frame.flags.set(flags::UNTIMED | if outer != 0 { flags::FOLDED } else { 0 });
        frame.start.set(0);
        // Below `FAST_DEPTH`, as `frame_pair` found room.
        #[allow(clippy::cast_possible_truncation)]
        let depth = (depth as u32).wrapping_add(1);
        self.depth.set(depth);
        Some((depth | UNTIMED_GUARD, 0))
    }

    /// Closes the untimed frame at `depth` if it is on top and `state` is the key: counts the call as taking
    /// its path's estimated self time and what the calls it made took (timed, or estimated alike), which its
    /// caller takes as a timed call's ticks (with the untimed call's own cost) and its phase as self time.
    /// Built from the calls it made rather than from the path's estimate of a whole call, so that each
    /// estimated self time is taken from its caller exactly once: a phase's time stays what was spent in it
    /// (a recursion's inner calls, which share one path, take very different times by depth).
    #[inline(always)]
    pub fn try_exit_untimed(&self, depth: u32, state: u64) -> bool {
        if self.depth.get() != depth || state != self.key.get() {
            return false;
        }
        let Some((parent, frame)) = self.frame_pair::<false>((depth as usize).wrapping_sub(1)) else {
            return false;
        };
        let frame_flags = frame.flags.get();
        if frame_flags & !flags::FOLDED != flags::UNTIMED {
            return false;
        }
        self.depth.set(depth - 1);
        let counters = frame.counters.get();
        let self_ticks = counters.estimate().self_ticks;
        let ticks = frame.children.get().wrapping_add(self_ticks);
        // All ones for a call of its own, none for a recursive one.
        let own = u64::from(frame_flags & flags::FOLDED).wrapping_sub(1);
        // Its inclusive time as a timed call's would be, with the instrumentation inside its clock reads.
        counters.add_untimed(ticks.wrapping_add(charge::inside_ticks()) & own, self_ticks);
        parent.add_child(ticks, charge::charged_ticks(Close::UntimedFramed));
        add(&self.phase_ticks[frame.phase.get() as usize % FAST_PHASES], self_ticks);
        let open = &self.open[frame.name.get() as usize % FAST_NAMES];
        open.set(open.get().wrapping_sub(1));
        true
    }

    /// Marks the path a call with ids `packed` takes from the innermost frame as one whose calls make timed
    /// calls, if its edge is cached: for the calibration of an untimed call with a frame.
    pub fn mark_not_leaf(&self, packed: u64) {
        let Some(parent) = self.frame_cells(self.depth.get() as usize) else { return };
        #[allow(clippy::cast_possible_truncation)]
        let key = edge_key(parent.node.get(), packed as u32);
        let edge = &self.cache[cache_index(key)];
        if edge.key.get() == key {
            edge.counters.get().mark_not_leaf();
        }
    }

    /// Closes a span timed under an overhead budget as `try_exit` closes one, and moves its node's estimate
    /// towards it; adapts the thread's rates when they are due. Out of line: one call in N comes here.
    #[inline(never)]
    pub fn try_exit_sampled(&self, depth: u32, stamp: u32, now: u64, state: u64) -> bool {
        let Some((frame, elapsed, self_ticks)) = self.pop::<true, false>(depth, stamp, now, state, flags::SAMPLED)
        else {
            return false;
        };
        add(&self.phase_ticks[frame.phase.get() as usize % FAST_PHASES], self_ticks);
        let (parent, folded) = (frame.children.get() != 0, frame.flags.get() & flags::FOLDED != 0);
        frame.counters.get().update_estimate(elapsed, self_ticks, parent, folded);
        if let Some(sampler) = self.sampler.get() {
            sampler.adapt_if_due(now, self.steps_done.get());
        }
        true
    }

    /// Closes the frame at `depth` whose start tick has low bits `stamp`, if it is on top of the stack and
    /// needs nothing special, and the global `state` is still the one the hot path runs under (no reset,
    /// no frame with a large phase id open below); says whether it did. A recursive call (inside an open call
    /// of its name) closes here too, adding nothing to the inclusive time, which the outer call holds: taken
    /// apart by a mask rather than a second try, it costs the common close 3 instructions and saves a
    /// recursive one about 60 (the second try came after the common one and the step's had failed).
    #[inline(always)]
    pub fn try_exit(&self, depth: u32, stamp: u32, now: u64, state: u64) -> bool {
        self.close_frame::<false>(depth, stamp, now, state)
    }

    /// Closes a frame beyond the inline ones, recursive or not, as `try_exit` closes a span; reached when
    /// `try_exit` fails.
    #[inline(never)]
    pub fn try_exit_deep(&self, depth: u32, stamp: u32, now: u64, state: u64) -> bool {
        self.close_frame::<true>(depth, stamp, now, state)
    }

    #[inline(always)]
    fn close_frame<const DEEP: bool>(&self, depth: u32, stamp: u32, now: u64, state: u64) -> bool {
        let Some((frame, _, self_ticks)) = self.pop::<true, DEEP>(depth, stamp, now, state, 0) else {
            return false;
        };
        add(&self.phase_ticks[frame.phase.get() as usize % FAST_PHASES], self_ticks);
        true
    }

    /// Closes the thread's outermost step as `try_exit` closes a span, and counts the step, when it is on top
    /// of the stack, needs nothing special and every phase id fits the tables.
    #[inline(always)]
    pub fn try_exit_step(&self, depth: u32, stamp: u32, now: u64, state: u64) -> bool {
        let Some(totals) = self.step_totals.get() else { return false };
        let phases = callsite::phase_count();
        if phases > FAST_PHASES {
            return false;
        }
        let Some((frame, elapsed, self_ticks)) = self.pop::<false, false>(depth, stamp, now, state, flags::STEP) else {
            return false;
        };
        self.step_end.set(now);
        self.finish_step(totals, elapsed, self_ticks, frame.phase.get(), phases);
        true
    }

    /// Takes the frame at `depth` off the stack and counts its call, if it is on top, has start tick low bits
    /// `stamp` and exactly `frame_flags` (or those with `FOLDED`, a recursive call, if `FOLD`), and `state` is
    /// the key; returns it, its ticks and its self ticks. Beyond the inline frames only if `DEEP`. The self
    /// ticks are a signed difference, kept in a `u64`: under a budget, the estimates of the calls a call made
    /// may add up to more than it took, and clamping each call's at zero biased self times up (by a
    /// microsecond a call, on a loop of short calls); timing every call, a call's clock reads may have cost
    /// it less than the calibrated cost that is left out of it. Sums of them are right either way; each step
    /// takes a phase's sum below zero as none.
    #[inline(always)]
    fn pop<const FOLD: bool, const DEEP: bool>(
        &self,
        depth: u32,
        stamp: u32,
        now: u64,
        state: u64,
        frame_flags: u32,
    ) -> Option<(&FrameCells, u64, u64)> {
        if self.depth.get() != depth || state != self.key.get() {
            return None;
        }
        let (parent, frame) = self.frame_pair::<DEEP>((depth as usize).wrapping_sub(1))?;
        let start = frame.start.get();
        let unfolded = if FOLD { frame.flags.get() & !flags::FOLDED } else { frame.flags.get() };
        #[allow(clippy::cast_possible_truncation)]
        if start as u32 != stamp || unfolded != frame_flags {
            return None;
        }
        // Counted here, before anything changes, so that an octave not yet allocated sends this close to the
        // slow path (which allocates it) rather than put a call, and the registers it must save, on this one.
        if let Some(held) = self.held_durations.get() {
            if !held.try_count_pending() {
                return None;
            }
        }
        self.depth.set(depth - 1);
        // 1 for a recursive call, whose time is in its outer call's inclusive time already; else 0. Read again
        // rather than kept from the test above: kept, it took a register that two more saves paid for.
        let folded = if FOLD { frame.flags.get() & flags::FOLDED } else { 0 };
        let elapsed = now.saturating_sub(start);
        let counters = frame.counters.get();
        let spent = frame.children.get().wrapping_add(charge::inside_ticks());
        let self_ticks = elapsed.wrapping_sub(spent);
        // All ones for a call of its own, none for a recursive one.
        let own = u64::from(folded).wrapping_sub(1);
        counters.add_span(elapsed & own, elapsed, self_ticks);
        let close = if DEEP { Close::Deep as usize } else { folded as usize };
        parent.add_child(elapsed, charge::charged_ticks_of(close));
        self.hold_counted(counters, elapsed);
        let open = &self.open[frame.name.get() as usize % FAST_NAMES];
        open.set(open.get().wrapping_sub(1));
        Some((frame, elapsed, self_ticks))
    }

    /// Counts the step of `ticks` (`self_ticks` of them its own, of phase `step_phase`) that just closed, with
    /// `phases` phase ids, all below `FAST_PHASES`: its phase ticks go to `totals` and their spread
    /// histograms, and the step before's ticks to the step histogram. The step's phase ticks are left in
    /// `step_phases`.
    pub fn finish_step(&self, totals: &StepTotals, ticks: u64, self_ticks: u64, step_phase: u32, phases: usize) {
        self.set_step_active(false);
        // Phase 0 ("no phase") is not reported, so the step's own time may go there as well as anywhere.
        add(&self.phase_ticks[step_phase as usize % FAST_PHASES], self_ticks);
        let step_phases = self.step_phases.get(..phases).unwrap_or_default();
        // Slices of equal length from phase 1 on, so that the loop has no bounds to test.
        let (values, spans) =
            (step_phases.get(1..).unwrap_or_default(), self.phase_ticks.get(1..phases).unwrap_or_default());
        let mut in_phases = 0u64;
        for (value, spans) in values.iter().zip(spans) {
            // A sum of signed self times (see `pop`) below zero is none.
            let ticks = non_negative(spans.get());
            value.set(ticks);
            in_phases = in_phases.saturating_add(ticks);
        }
        if in_phases > ticks {
            steps::fit_phases(step_phases, ticks, in_phases);
        }
        // Quiet from here with a counting allocator: the spreads' first values allocate their histograms (and
        // octaves), which it must not charge to the user. Only with one, so that a step without pays nothing.
        let table = self.alloc_table.get();
        let _quiet = table.map(|_| allocs::Quiet::new());
        let held = self.held_step.replace(Some(ticks));
        let sequence = totals.begin_write();
        if let Some(held) = held {
            totals.add_step_spread(held);
        }
        totals.set_pending_step(Some(ticks));
        totals.add_step(ticks, self.step_end.get());
        // The phase spreads are counted at once: unlike the step's, their histograms' addresses do not wait
        // for the clock reading that ended the step (unless the step has a phase and time of its own).
        totals.add_phases(values);
        if let Some(table) = table {
            table.end_step(phases);
        }
        totals.end_write(sequence);
        self.steps_done.set(self.steps_done.get().wrapping_add(1));
    }

    /// Counts the held-back step, if any, in `totals`' step histogram.
    pub fn count_held_step(&self, totals: &StepTotals) {
        if let Some(ticks) = self.held_step.take() {
            let sequence = totals.begin_write();
            totals.set_pending_step(None);
            totals.add_step_spread(ticks);
            totals.end_write(sequence);
        }
    }

    /// Forgets the held-back step (it belongs to an epoch that ended).
    pub fn discard_held_step(&self) {
        self.held_step.set(None);
    }

    /// Remembers that a call of `name` from node `parent` enters `node` and counts in `counters`.
    pub fn cache_edge(&self, parent: u32, name: u32, node: u32, counters: &'static NodeCounters) {
        let key = edge_key(parent, name);
        let edge = &self.cache[cache_index(key)];
        edge.key.set(key);
        edge.node.set(node);
        edge.counters.set(counters);
    }
}
