//! The slow path, which keeps what the hot path does not (frames beyond its stack, steps, batches, polls,
//! recursion, the timeline, the thread's call tree and its registration) in a thread-local that is told
//! when the thread exits. The guard and the entry points are in `guard`, the ends of steps and batches in
//! `finish`.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::model::{BatchTiming, TimingGranularity};
use crate::record::budget::{self, Sampler};
use crate::record::callsite::{self, Callsite, FAST_NAMES, FAST_PHASES, Ids, Kind};
use crate::record::charge::{self, Close};
use crate::record::hot::{FAST_DEPTH, Frame, FrameCells, Hot, POISON, flags, with_hot};
use crate::record::records::StepRecords;
use crate::record::{calibrate, clock, machine};
use crate::store::allocs;
use crate::store::counters::{NodeCounters, UNUSED};
use crate::store::events::{self, Event};
use crate::store::registry::{self, ThreadSlot};
use crate::store::tree::{self, AsyncTotals, LocalTree};

/// A closed span: its ticks, its self ticks, and whether it was outside every open call of its name.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Closed {
    pub elapsed: u64,
    pub self_ticks: u64,
    pub outermost: bool,
}

/// The polls of one `async fn` call so far: their ticks, self ticks and inclusive ticks (of the polls
/// outside every open call of the name), and the tick of the first.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct PollSums {
    pub busy: u64,
    pub self_ticks: u64,
    pub inclusive: u64,
    pub first_poll: u64,
}

impl PollSums {
    /// The sums with one more poll.
    #[must_use]
    pub fn with(self, poll: Closed) -> PollSums {
        PollSums {
            busy: self.busy.saturating_add(poll.elapsed),
            self_ticks: self.self_ticks.saturating_add(poll.self_ticks),
            inclusive: self.inclusive.saturating_add(if poll.outermost { poll.elapsed } else { 0 }),
            first_poll: self.first_poll,
        }
    }
}

#[derive(Default)]
pub(super) struct BatchState {
    pub(super) active: bool,
    /// The thread's count of steps done when the batch began.
    pub(super) first_step: u64,
    pub(super) records: Option<StepRecords>,
    /// Steps completed on other threads for this batch (through a `BatchHandle`).
    pub(super) elsewhere: Option<Arc<AtomicU64>>,
    /// The epoch the batch began in, and the thread's step ticks, and by phase id, then: what its point in
    /// the batch series is measured from (a reset since zeroes the totals, and the batch gets no point).
    pub(super) epoch: u64,
    pub(super) step_ticks: u64,
    pub(super) phase_ticks: Vec<u64>,
    /// The thread's CPU time and context switches when the batch began.
    pub(super) usage: Option<machine::Usage>,
}

/// The open batch of the thread it was taken on, for work that runs on other threads (a thread pool inside
/// the batch): steps those threads complete inside `in_scope` count to the batch. `Send`, `Sync` and
/// cheap to clone.
#[derive(Clone, Debug)]
pub struct BatchHandle {
    steps: Arc<AtomicU64>,
}

thread_local! {
    /// The handles whose `in_scope` is running on this thread, by address: a nested `in_scope` of one of them
    /// counts nothing more.
    static IN_SCOPE: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

impl BatchHandle {
    /// Runs `work` on this thread, counting the steps it completes here to the batch. On the batch's own
    /// thread, and inside another `in_scope` of the same batch, its steps are counted already, and
    /// nothing more is (a thread pool's caller runs some of the work itself).
    pub fn in_scope<R>(&self, work: impl FnOnce() -> R) -> R {
        let address = Arc::as_ptr(&self.steps) as usize;
        let counted = IN_SCOPE.try_with(|open| open.try_borrow().is_ok_and(|open| open.contains(&address)));
        let own_thread = with_recorder(|recorder, _| {
            recorder.batch.elsewhere.as_ref().is_some_and(|steps| Arc::ptr_eq(steps, &self.steps))
        });
        if counted.unwrap_or(true) || own_thread.unwrap_or(false) {
            return work();
        }
        let _ = allocs::quiet(|| IN_SCOPE.try_with(|open| open.try_borrow_mut().map(|mut open| open.push(address))));
        let before = with_hot(|hot| hot.steps_done.get());
        // Popped by a guard, so that a panicking `work` leaves no handle marked open on the thread.
        struct Close(u64, Arc<AtomicU64>, usize);
        impl Drop for Close {
            fn drop(&mut self) {
                let after = with_hot(|hot| hot.steps_done.get());
                self.1.fetch_add(after.wrapping_sub(self.0), Relaxed);
                let _ = IN_SCOPE
                    .try_with(|open| open.try_borrow_mut().map(|mut open| open.retain(|address| *address != self.2)));
            }
        }
        let _close = Close(before, Arc::clone(&self.steps), address);
        work()
    }
}

/// A handle to the batch open on this thread, if any.
pub(crate) fn batch_handle() -> Option<BatchHandle> {
    with_recorder(|recorder, _| {
        let batch = &mut recorder.batch;
        batch.active.then(|| BatchHandle { steps: Arc::clone(batch.elsewhere.get_or_insert_with(Arc::default)) })
    })
    .flatten()
}

/// What the slow path keeps for a thread.
pub(super) struct Recorder {
    pub(super) slot: Option<Arc<ThreadSlot>>,
    pub(super) epoch: u64,
    pub(super) tree: LocalTree,
    /// Frames deeper than the hot stack's inline ones: frame `FAST_DEPTH + i` is `deep[i]`. The hot state
    /// points at them, so that a deep stack opens and closes frames without this recorder; they grow as a
    /// stack first gets that deep, and are kept (the thread's deepest stack, 48 bytes a frame).
    pub(super) deep: Vec<FrameCells>,
    /// Open frames with a phase id beyond the hot tables; the hot path is off while there are any, as its
    /// spans would inherit that phase.
    pub(super) large_phases: u32,
    /// Phase ticks, as in the hot tables, for phase ids beyond them.
    pub(super) phase_overflow: Vec<u64>,
    /// Open calls by span name id, for ids beyond the hot table.
    pub(super) open_overflow: Vec<u32>,
    /// The phase ticks of the step that just ended, by phase id, when some phase id is beyond the hot tables
    /// or the batch keeps step records; kept so that a step allocates nothing.
    pub(super) step_phases: Vec<u64>,
    pub(super) batch: BatchState,
    /// The latest batch completed on this thread: its epoch, its timing without step records, and those.
    pub(super) last_batch: Option<(u64, BatchTiming, Option<StepRecords>)>,
    /// Batches completed on this thread.
    pub(super) batches_done: u64,
    /// The wall ticks of the thread's latest batch: what decides whether the next one reads the machine.
    pub(super) last_batch_ticks: u64,
    /// Words the last batch's step records took: room made for the next batch's at once.
    pub(super) records_room: usize,
    /// Buffers of batches gone, for the next batch: step records, and the phase ticks it starts from.
    pub(super) spare_records: Option<StepRecords>,
    pub(super) spare_phase_ticks: Vec<u64>,
    /// The phase ticks of the latest batch's point, kept for the next.
    pub(super) point_phase_ticks: Vec<u64>,
    /// Timeline events not yet handed over.
    pub(super) pending: Vec<Event>,
    /// Which calls are timed, taken at the first call under an overhead budget and kept for the thread.
    pub(super) sampler: Option<&'static Sampler>,
}

impl Drop for Recorder {
    fn drop(&mut self) {
        // Spans still open, and any opened from here on, are not recorded: the slot goes to the retired
        // totals now, and its counters to other threads once no report reads them.
        let current = self.epoch == registry::state().1;
        with_hot(|hot| {
            hot.key.set(POISON);
            hot.depth.set(0);
            // Before the frames it points at are freed.
            hot.set_deep_frames(&[]);
            // Before the slot's table goes back to the pool.
            hot.set_alloc_table(None);
            // Before the sampler goes back to the pool.
            hot.sampler.set(None);
            hot.count_held();
            hot.step_totals.set(None);
            match &self.slot {
                Some(slot) if current => hot.count_held_step(slot.step_totals),
                _ => hot.discard_held_step(),
            }
        });
        if let Some(sampler) = self.sampler.take() {
            budget::give_back(sampler);
        }
        if calibrate::is_calibrating() {
            return;
        }
        if current {
            self.flush_events();
        }
        if let Some(slot) = &self.slot {
            registry::retire(slot);
        }
    }
}

thread_local! {
    static RECORDER: RefCell<Recorder> = const {
        RefCell::new(Recorder {
            slot: None,
            epoch: 0,
            tree: LocalTree::new(),
            deep: Vec::new(),
            large_phases: 0,
            phase_overflow: Vec::new(),
            open_overflow: Vec::new(),
            step_phases: Vec::new(),
            batch: BatchState {
                active: false,
                first_step: 0,
                records: None,
                elsewhere: None,
                epoch: 0,
                step_ticks: 0,
                phase_ticks: Vec::new(),
                usage: None,
            },
            last_batch: None,
            batches_done: 0,
            last_batch_ticks: 0,
            records_room: 0,
            spare_records: None,
            spare_phase_ticks: Vec::new(),
            point_phase_ticks: Vec::new(),
            pending: Vec::new(),
            sampler: None,
        })
    };
}

/// Runs `f` on this thread's recorder and hot state unless the recorder is gone (thread teardown) or already
/// in use (a timed call made from inside the runtime), in which case nothing is recorded. The hot path is
/// off meanwhile, so that a timed call from inside `f` (an instrumented allocator) takes this way too.
pub(super) fn with_recorder<R>(f: impl FnOnce(&mut Recorder, &Hot) -> R) -> Option<R> {
    RECORDER
        .try_with(|recorder| {
            let mut recorder = recorder.try_borrow_mut().ok()?;
            Some(with_hot(|hot| {
                let _quiet = allocs::Quiet::new();
                hot.key.set(POISON);
                hot.count_held();
                let result = f(&mut recorder, hot);
                recorder.refresh_key(hot);
                result
            }))
        })
        .ok()
        .flatten()
}

impl Recorder {
    /// The key under which the hot path may run on this thread now, and where it may count steps.
    pub(super) fn refresh_key(&mut self, hot: &Hot) {
        let usable = self.slot.is_some() && self.large_phases == 0;
        // The calibration measures the paths calls take, whatever the budget: sampled only while it measures
        // an untimed call.
        let sampling = match calibrate::is_calibrating() {
            true if calibrate::calibrating_untimed() => registry::SAMPLING,
            true => 0,
            false => registry::raw_state() & registry::SAMPLING,
        };
        if sampling != 0 && self.sampler.is_none() {
            self.sampler = Some(budget::take());
        }
        if let Some(sampler) = self.sampler {
            sampler.refresh(self.epoch);
        }
        hot.sampler.set(self.sampler);
        hot.key.set(if usable { registry::fast_key(self.epoch, sampling) } else { POISON });
        // Final by now: the clock started before the thread's slot was made, and with it the choice of TSC.
        hot.tsc.set(clock::tsc_ready());
        let records = self.batch.active && self.batch.records.is_some();
        hot.step_totals.set(self.slot.as_ref().filter(|_| !records).map(|slot| slot.step_totals));
        hot.set_alloc_table(self.slot.as_ref().and_then(|slot| slot.allocs()));
    }

    pub(super) fn ensure_epoch(&mut self, epoch: u64) {
        if self.epoch != epoch || self.slot.is_none() {
            self.new_epoch(epoch);
        }
    }

    #[cold]
    #[inline(never)]
    pub(super) fn new_epoch(&mut self, epoch: u64) {
        // What is held back belongs to the epoch that ended.
        self.pending.clear();
        with_hot(Hot::discard_held_step);
        match &self.slot {
            Some(slot) => slot.start_epoch(epoch),
            None if calibrate::is_calibrating() => {
                clock::init();
                self.slot = Some(registry::detached(epoch));
            }
            None => {
                clock::init();
                budget::read_environment();
                calibrate::ensure();
                self.slot = Some(registry::register(epoch));
            }
        }
        self.epoch = epoch;
    }

    /// The frame at `depth` (0 is the root).
    pub(super) fn frame(&self, hot: &Hot, depth: usize) -> Option<Frame> {
        hot.frame_cells(depth).map(FrameCells::get)
    }

    /// Makes room for a frame at `depth`, growing the frames beyond the inline ones to reach it; `None`
    /// when they cannot grow (no memory).
    fn reserve_frame(&mut self, hot: &Hot, depth: usize) -> Option<()> {
        if hot.frame_cells(depth).is_none() {
            let needed = (depth + 1).checked_sub(FAST_DEPTH)?;
            // Doubled, so that a stack a thousand deep moves its frames a few times, not at every level.
            let more = needed.max(self.deep.len() * 2).max(FAST_DEPTH) - self.deep.len();
            // The counting allocator may hold one of the frames about to move (and is about to be called).
            allocs::forget_place();
            self.deep.try_reserve_exact(more).ok()?;
            self.deep.extend(std::iter::repeat_with(FrameCells::new).take(more));
            hot.set_deep_frames(&self.deep);
        }
        Some(())
    }

    /// Changes the frame at `depth` with `edit`, if there is one.
    pub(super) fn edit_frame(&mut self, hot: &Hot, depth: usize, edit: impl FnOnce(&mut Frame)) {
        if let Some(cells) = hot.frame_cells(depth) {
            let mut frame = cells.get();
            edit(&mut frame);
            cells.set(frame);
        }
    }

    /// The node a call of `name` from node `parent` enters and its counters, remembered in the hot
    /// cache when the hot path can use them.
    pub(super) fn child(&mut self, hot: &Hot, parent: u32, name: u32) -> (u32, &'static NodeCounters) {
        let Some(slot) = &self.slot else { return (tree::NO_NODE, &UNUSED) };
        let (node, counters) = self.tree.child(parent, name, &slot.tree);
        if node != tree::NO_NODE && parent != tree::NO_NODE && (name as usize) < FAST_NAMES {
            hot.cache_edge(parent, name, node, counters);
        }
        (node, counters)
    }

    /// Counts an open call of `name` and says whether one was open already.
    pub(super) fn open_call(&mut self, hot: &Hot, name: u32) -> bool {
        let count = match hot.open.get(name as usize) {
            Some(count) => count,
            None => {
                let index = name as usize - FAST_NAMES;
                if self.open_overflow.len() <= index {
                    self.open_overflow.resize(index + 1, 0);
                }
                let open = &mut self.open_overflow[index];
                *open = open.wrapping_add(1);
                return *open > 1;
            }
        };
        count.set(count.get().wrapping_add(1));
        count.get() > 1
    }

    pub(super) fn close_call(&mut self, hot: &Hot, name: u32) {
        match hot.open.get(name as usize) {
            Some(count) => count.set(count.get().wrapping_sub(1)),
            None => {
                if let Some(open) = self.open_overflow.get_mut(name as usize - FAST_NAMES) {
                    *open = open.wrapping_sub(1);
                }
            }
        }
    }

    /// Adds `ticks` (wrapping) to a phase's time in the step in progress.
    pub(super) fn add_phase(&mut self, hot: &Hot, phase: u32, ticks: u64) {
        let phase = phase as usize;
        if let Some(sum) = hot.phase_ticks.get(phase) {
            sum.set(sum.get().wrapping_add(ticks));
            return;
        }
        let index = phase - FAST_PHASES;
        if self.phase_overflow.len() <= index {
            self.phase_overflow.resize(index + 1, 0);
        }
        let sum = &mut self.phase_overflow[index];
        *sum = sum.wrapping_add(ticks);
    }

    pub(super) fn phase(&self, hot: &Hot, phase: usize) -> u64 {
        match hot.phase_ticks.get(phase) {
            Some(sum) => sum.get(),
            None => self.phase_overflow.get(phase - FAST_PHASES).copied().unwrap_or_default(),
        }
    }

    pub(super) fn start_step(&mut self, hot: &Hot) {
        hot.set_step_active(true);
        hot.zero_phase_ticks(callsite::phase_count());
        self.phase_overflow.iter_mut().for_each(|phase| *phase = 0);
    }

    pub(super) fn push(
        &mut self,
        hot: &Hot,
        callsite: &'static Callsite,
        ids: Ids,
        state: u64,
        poll: bool,
    ) -> Option<(u32, u32)> {
        let (granularity, epoch) = (TimingGranularity::from_bits(state), registry::epoch_of(state));
        self.ensure_epoch(epoch);
        let depth = hot.depth.get() as usize;
        let parent = self.frame(hot, depth)?;
        // First, so that a frame that finds no room changes nothing.
        let depth32 = u32::try_from(depth + 1).ok()?;
        self.reserve_frame(hot, depth + 1)?;
        let detailed = granularity == TimingGranularity::Detailed;
        let mut frame_flags = 0;
        let (node, counters) = if detailed {
            if self.open_call(hot, ids.name) {
                frame_flags |= flags::FOLDED;
            }
            self.child(hot, parent.node, ids.name)
        } else {
            frame_flags |= flags::COARSE;
            (tree::NO_NODE, &UNUSED)
        };
        if detailed && node == tree::NO_NODE {
            frame_flags |= flags::UNCOUNTED;
        }
        frame_flags |= match callsite.kind {
            _ if poll => flags::POLL,
            Kind::Span => 0,
            Kind::Step if !hot.step_active.get() => {
                self.start_step(hot);
                flags::STEP
            }
            Kind::Batch if !self.batch.active => {
                // The spares of the batch before: a batch allocates nothing that lives through its steps (see
                // `records`).
                let mut phase_ticks = std::mem::take(&mut self.spare_phase_ticks);
                phase_ticks.clear();
                let step_ticks = self
                    .slot
                    .as_ref()
                    .map_or(0, |slot| slot.step_totals.so_far(callsite::phase_count(), &slot.steps, &mut phase_ticks));
                self.batch = BatchState {
                    active: true,
                    first_step: hot.steps_done.get(),
                    records: (granularity >= TimingGranularity::Step).then(|| match self.spare_records.take() {
                        Some(mut records) => {
                            records.clear();
                            records
                        }
                        None => StepRecords::with_room(self.records_room),
                    }),
                    elsewhere: None,
                    epoch,
                    step_ticks,
                    phase_ticks,
                    usage: machine::worth_reading(self.last_batch_ticks, self.batches_done)
                        .then(machine::thread_usage)
                        .flatten(),
                };
                flags::BATCH
            }
            Kind::Step | Kind::Batch => 0,
        };
        let phase = if ids.phase != 0 { ids.phase } else { parent.phase };
        if detailed && state & registry::TIMELINE != 0 {
            frame_flags |= flags::TIMELINE;
        }
        if phase as usize >= FAST_PHASES {
            self.large_phases += 1;
            frame_flags |= flags::LARGE_ID;
        }
        if ids.name as usize >= FAST_NAMES {
            frame_flags |= flags::LARGE_ID;
        }
        let depth = depth + 1;
        let frame = Frame { start: 0, children: 0, counters, node, name: ids.name, phase, flags: frame_flags };
        self.edit_frame(hot, depth, |cells| *cells = frame);
        hot.depth.set(depth32);
        self.refresh_key(hot);
        // Last, so that the bookkeeping above is not counted in the span.
        let start = clock::now();
        self.edit_frame(hot, depth, |frame| frame.start = start);
        #[allow(clippy::cast_possible_truncation)]
        Some((depth32, start as u32))
    }

    /// Closes the guard's frame (at `depth`, with start tick low bits `stamp`) and every frame above it, and
    /// returns what the guard's frame took. Frames above it were left open by a leaked guard; they close
    /// now too. A frame that is not on the stack any more (closed with a frame below it) is left alone.
    pub(super) fn pop(
        &mut self,
        hot: &Hot,
        depth: u32,
        stamp: u32,
        epoch: u64,
        now: u64,
        completed: Option<PollSums>,
    ) -> Closed {
        if self.epoch != epoch {
            // A reset came while the frame was open: it closes into the new epoch, whole.
            self.new_epoch(epoch);
        }
        if depth == 0 || depth > hot.depth.get() {
            return Closed::default();
        }
        #[allow(clippy::cast_possible_truncation)]
        match self.frame(hot, depth as usize) {
            Some(frame) if frame.start as u32 == stamp => {}
            _ => return Closed::default(),
        }
        while hot.depth.get() > depth {
            self.close_top(hot, now, None);
        }
        self.close_top(hot, now, completed)
    }

    /// Closes the innermost frame: everything the hot path does, plus folding, polls, the timeline, steps and
    /// batches.
    pub(super) fn close_top(&mut self, hot: &Hot, now: u64, completed: Option<PollSums>) -> Closed {
        let depth = hot.depth.get() as usize;
        let (Some(frame), true) = (self.frame(hot, depth), depth > 0) else {
            return Closed::default();
        };
        #[allow(clippy::cast_possible_truncation)]
        hot.depth.set(depth as u32 - 1);
        if frame.flags & flags::UNTIMED != 0 {
            return self.close_untimed(hot, &frame, depth);
        }
        let elapsed = now.saturating_sub(frame.start);
        let spent = frame.children.wrapping_add(charge::inside_ticks());
        // A signed difference, as the hot path takes it (see `Hot::pop`), but for a poll, whose sums add up
        // one call's polls, and a step, whose self time is its unphased time.
        let signed = frame.flags & (flags::POLL | flags::STEP) == 0;
        let self_ticks = if signed { elapsed.wrapping_sub(spent) } else { elapsed.saturating_sub(spent) };
        if let Some(parent) = depth.checked_sub(1).filter(|parent| *parent > 0) {
            self.edit_frame(hot, parent, |frame| frame.add_child(elapsed, charge::charged_ticks(Close::Slow)));
        }
        if frame.flags & flags::SAMPLED != 0 {
            frame.counters.update_estimate(elapsed, self_ticks, frame.children != 0, frame.flags & flags::FOLDED != 0);
        }
        if frame.flags & flags::COARSE == 0 {
            self.close_call(hot, frame.name);
            if frame.flags & flags::UNCOUNTED == 0 {
                let outermost = frame.flags & flags::FOLDED == 0;
                match (frame.flags & flags::POLL != 0, completed) {
                    // A poll's time counts when its call completes, with its other polls, or apart if the call
                    // is dropped first: the sums of a span describe its completed calls only.
                    (true, None) => {}
                    (true, Some(sums)) => {
                        let sums = sums.with(Closed { elapsed, self_ticks, outermost });
                        frame.counters.add_time(sums.inclusive, sums.self_ticks, true);
                        frame.counters.add_call_but_duration(sums.busy);
                        hot.hold_duration(frame.counters, sums.busy);
                        let wall = now.saturating_sub(sums.first_poll);
                        self.add_async(frame.node, AsyncTotals { wall, ..AsyncTotals::default() });
                    }
                    (false, _) => {
                        frame.counters.add_time(elapsed, self_ticks, outermost);
                        frame.counters.add_call_but_duration(elapsed);
                        hot.hold_duration(frame.counters, elapsed);
                    }
                }
            }
            // A step's own time is taken when it ends; its caller is outside every step.
            if frame.flags & flags::STEP == 0 {
                self.add_phase(hot, frame.phase, self_ticks);
            }
            if frame.flags & flags::TIMELINE != 0 {
                self.capture(&frame, now);
            }
        }
        if frame.phase as usize >= FAST_PHASES {
            self.large_phases = self.large_phases.saturating_sub(1);
        }
        if frame.flags & flags::STEP != 0 {
            let step_phase = if frame.flags & flags::COARSE == 0 { frame.phase } else { 0 };
            self.finish_step(hot, elapsed, now, self_ticks, step_phase);
        }
        if frame.flags & flags::BATCH != 0 {
            self.finish_batch(hot, elapsed, now, frame.name);
        }
        Closed { elapsed, self_ticks, outermost: frame.flags & flags::FOLDED == 0 }
    }

    /// Closes an untimed frame taken off the stack at `depth` as the hot path does (`Hot::try_exit_untimed`).
    fn close_untimed(&mut self, hot: &Hot, frame: &Frame, depth: usize) -> Closed {
        let self_ticks = frame.counters.estimate().self_ticks;
        let elapsed = frame.children.wrapping_add(self_ticks);
        let outermost = frame.flags & flags::FOLDED == 0;
        if let Some(parent) = depth.checked_sub(1).filter(|parent| *parent > 0) {
            self.edit_frame(hot, parent, |frame| frame.add_child(elapsed, charge::charged_ticks(Close::UntimedFramed)));
        }
        self.close_call(hot, frame.name);
        let inclusive = elapsed.wrapping_add(charge::inside_ticks());
        frame.counters.add_untimed(if outermost { inclusive } else { 0 }, self_ticks);
        self.add_phase(hot, frame.phase, self_ticks);
        Closed { elapsed, self_ticks, outermost }
    }

    /// Adds to the `async fn` totals of `node`'s path.
    pub(super) fn add_async(&mut self, node: u32, add: AsyncTotals) {
        if let (Some((path, name)), Some(slot)) = (self.tree.path_and_name(node), &self.slot) {
            slot.tree.add_async(path, name, add);
        }
    }

    #[inline(never)]
    pub(super) fn capture(&mut self, frame: &Frame, now: u64) {
        let step = with_hot(|hot| if hot.step_active.get() { hot.steps_done.get() } else { u64::MAX });
        self.pending.push(Event { start: frame.start, end: now, name: frame.name, phase: frame.phase, step });
        if self.pending.len() >= events::BLOCK {
            self.flush_events();
        }
    }

    /// Hands the thread's captured events over to reports.
    pub(super) fn flush_events(&mut self) {
        if let Some(slot) = &self.slot {
            if !self.pending.is_empty() {
                slot.events.lock().extend(self.pending.drain(..));
            }
        }
    }
}

/// Batches completed on this thread, in any epoch: `batch` tells by it whether its batch opened.
/// Runs `work` with this thread's steps replayed rather than trained: a step called inside it is an ordinary
/// span (its calls and their phases are recorded as any span's) and no step of the run, so that replaying
/// does not add to the run's steps nor to its rate. Returns `work`'s result and the epoch it recorded in.
pub(crate) fn replaying<R>(work: impl FnOnce() -> R) -> (R, u64) {
    /// Puts the thread back as it was, also when `work` panics: a step was open around the replay, or none.
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            if !self.0 {
                with_hot(|hot| {
                    hot.set_step_active(false);
                    // What the replay allocated was counted as a step's: it belongs to no step.
                    if let Some(table) = hot.alloc_table.get() {
                        table.discard_step();
                    }
                });
            }
        }
    }
    // A step open makes every step called inside it an ordinary span, on the hot path and the slow one.
    let _restore = Restore(with_hot(|hot| hot.set_step_active(true)));
    let result = work();
    (result, registry::state().1)
}

pub(crate) fn batches_done() -> u64 {
    with_recorder(|recorder, _| recorder.batches_done).unwrap_or(0)
}

/// The latest batch completed on this thread in the current epoch.
pub(crate) fn last_batch() -> Option<BatchTiming> {
    let epoch = registry::state().1;
    with_recorder(|recorder, _| match &recorder.last_batch {
        Some((batch_epoch, timing, records)) if *batch_epoch == epoch => {
            let mut timing = timing.clone();
            timing.step_timings = records.as_ref().map(|records| records.timings(&callsite::names().1));
            Some(timing)
        }
        _ => None,
    })
    .flatten()
}

/// Hands over what the calling thread holds back (timeline events, the latest step's spread), so that a
/// report read now includes it.
pub(crate) fn flush_this_thread() {
    let epoch = registry::state().1;
    with_recorder(|recorder, hot| {
        if recorder.epoch == epoch {
            recorder.flush_events();
            recorder.count_held_step(hot);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::clock::fake;

    static STEP: Callsite = Callsite::new("backwards_step", None, Kind::Step, "m", "f", 1);
    static PHASE: Callsite = Callsite::new("backwards_phase", Some("backwards"), Kind::Span, "m", "f", 2);

    #[test]
    fn a_clock_that_goes_backwards_gives_zero_not_a_wrapped_number() {
        fake::set(Some(1_000_000));
        let step = STEP.enter();
        fake::set(Some(2_000_000));
        let phase = PHASE.enter();
        fake::set(Some(500));
        drop(phase);
        drop(step);
        fake::set(None);
        let run = crate::summary();
        let phase = run.span("backwards_phase").expect("recorded");
        assert_eq!((phase.count, phase.total_ns, phase.max_ns), (1, 0, 0));
        let step = run.span("backwards_step").expect("recorded");
        assert_eq!((step.count, step.total_ns), (1, 0));
        assert!(run.phase_breakdown.overhead_pct.is_finite());
    }

    /// Where the TSC is not used (no invariant TSC, or `TIMING_NO_TSC`), both sides are false and this proves
    /// little; CI's machines have one.
    #[test]
    fn a_thread_reads_the_clock_on_its_hot_path_as_the_process_does() {
        static SITE: Callsite = Callsite::new("clock_choice", None, Kind::Span, "m", "f", 3);
        let on_thread = std::thread::spawn(|| {
            drop(SITE.enter());
            with_hot(|hot| hot.tsc.get())
        });
        assert_eq!(on_thread.join().ok(), Some(clock::tsc_ready()));
    }

    static RECURSIVE: Callsite = Callsite::new("recursive_without_recorder", None, Kind::Span, "m", "f", 4);
    static DEEP: Callsite = Callsite::new("deep_without_recorder", None, Kind::Span, "m", "f", 5);
    static PING: Callsite = Callsite::new("ping_without_recorder", None, Kind::Span, "m", "f", 6);
    static PONG: Callsite = Callsite::new("pong_without_recorder", None, Kind::Span, "m", "f", 7);

    fn recurse(site: &'static Callsite, depth: u32) -> u32 {
        let _guard = site.enter();
        if depth == 0 { 0 } else { recurse(site, depth - 1) + 1 }
    }

    fn ping(depth: u32) -> u32 {
        let _guard = PING.enter();
        if depth == 0 { 0 } else { pong(depth - 1) + 1 }
    }

    fn pong(depth: u32) -> u32 {
        let _guard = PONG.enter();
        if depth == 0 { 0 } else { ping(depth - 1) + 1 }
    }

    /// Slow-path opens and closes in a fourth call of `run` on a thread of its own (the first calls make the
    /// path's nodes, edges, octaves and deep frames; the next one finds them), and the ticks of the four
    /// calls.
    fn closes_of_fourth_run(run: fn() -> u32, expected: u32) -> (u64, u64) {
        use crate::record::guard::{slow_closes, slow_opens};
        let _settings = crate::record::SETTINGS_LOCK.lock();
        std::thread::spawn(move || {
            let timed = || {
                let started = clock::now();
                assert_eq!(run(), expected);
                clock::now() - started
            };
            let mut wall: u64 = (0..3).map(|_| timed()).sum();
            let before = slow_closes::so_far() + slow_opens::so_far();
            wall += timed();
            (slow_closes::so_far() + slow_opens::so_far() - before, wall)
        })
        .join()
        .expect("the thread ran")
    }

    #[test]
    fn recursive_calls_close_without_the_recorder_and_count_inclusive_time_once() {
        let (slow, wall_ticks) = closes_of_fourth_run(|| recurse(&RECURSIVE, 20), 20);
        assert!(slow <= 1, "{slow} of 21 opens and closes took the slow path");
        let stats = crate::summary().span("recursive_without_recorder").cloned().expect("recorded");
        assert_eq!(stats.count, 4 * 21);
        // Inclusive time counts the outermost calls only: never more than their wall time (adding the inner
        // calls' would count the deepest call's time 21 times).
        assert!(stats.total_ns <= clock::to_ns(wall_ticks), "{stats:?} in {} ns", clock::to_ns(wall_ticks));
    }

    #[test]
    fn stacks_a_thousand_deep_open_and_close_without_the_recorder() {
        let (slow, wall_ticks) = closes_of_fourth_run(|| recurse(&DEEP, 1_000), 1_000);
        assert!(slow <= 1, "{slow} of 1,001 opens and closes took the slow path");
        let (mutual_slow, _) = closes_of_fourth_run(|| ping(999), 999);
        assert!(mutual_slow <= 1, "{mutual_slow} of 1,000 opens and closes took the slow path");
        let run = crate::summary();
        let stats = run.span("deep_without_recorder").cloned().expect("recorded");
        assert_eq!(stats.count, 4 * 1_001);
        assert!(stats.total_ns <= clock::to_ns(wall_ticks), "{stats:?} in {} ns", clock::to_ns(wall_ticks));
        let counts = ["ping_without_recorder", "pong_without_recorder"].map(|name| run.span(name).map(|s| s.count));
        assert_eq!(counts, [Some(4 * 500), Some(4 * 500)]);
        // The call tree folds recursion into the node of its first call: ping, and pong beneath it.
        let nodes = &run.call_tree.nodes;
        let paths: Vec<(String, u64)> = (0..nodes.len())
            .filter(|node| nodes[*node].name.contains("ping_without") || nodes[*node].name.contains("pong_without"))
            .map(|node| (run.call_tree.path(node), nodes[node].count))
            .collect();
        let expected = ["ping_without_recorder", "ping_without_recorder;pong_without_recorder"];
        assert_eq!(paths, expected.map(|path| (path.to_owned(), 4 * 500)));
    }

    #[test]
    fn counters_saturate_instead_of_wrapping() {
        let counter = std::sync::atomic::AtomicU64::new(u64::MAX - 1);
        crate::store::counters::bump(&counter, 5);
        assert_eq!(counter.load(std::sync::atomic::Ordering::Relaxed), u64::MAX);
    }
}
