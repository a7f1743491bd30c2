//! The hot path: a thread-local stack of open spans, closed by a drop guard, and the step and batch in
//! progress on this thread.

use std::cell::RefCell;
use std::marker::PhantomData;
use std::sync::Arc;

use crate::callsite::{Callsite, Ids, Kind};
use crate::granularity::TimingGranularity;
use crate::hist::Histogram;
use crate::slot::{self, ThreadSlot};
use crate::timeline::{self, Event};
use crate::timing::{BatchTiming, PhaseTime, StepTiming};
use crate::tree::{self, LocalTree};
use crate::{calibrate, callsite, clock};

/// What closing a frame does besides closing a span.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Span,
    /// The outermost step on this thread: closing it completes a step.
    Step,
    /// The outermost batch on this thread: closing it completes a batch.
    Batch,
    /// One poll of an `async fn`: its time counts; the call is counted when the future completes.
    Poll,
}

#[derive(Clone, Copy, Debug)]
struct Frame {
    start: u64,
    /// Ticks of the timed calls made inside this one.
    children: u64,
    /// The call-tree node that counts this call (local id); `NO_NODE` below granularity `Detailed`.
    node: u32,
    /// The innermost phase on the stack, this frame's own or inherited; 0 for none.
    phase: u32,
    role: Role,
    /// Phases and statistics are kept for this frame (granularity `Detailed`).
    detailed: bool,
    /// Inside an active call of the same name, which holds its inclusive time already.
    folded: bool,
    name: u32,
    /// Captured as a timeline event when it closes.
    timeline: bool,
    /// The frame's number on its thread (wrapping, never 0), which its guard checks.
    serial: u32,
    /// An ordinary span at granularity `Detailed`, neither folded nor captured: it closes on the short path.
    lean: bool,
}

/// The step in progress on this thread.
struct StepState {
    active: bool,
    /// Ticks per phase id in the step in progress.
    phase_ticks: Vec<u64>,
}

#[derive(Default)]
struct BatchState {
    active: bool,
    steps: usize,
    records: Option<Vec<StepTiming>>,
}

struct Recorder {
    slot: Option<Arc<ThreadSlot>>,
    epoch: u64,
    stack: Vec<Frame>,
    tree: LocalTree,
    step: StepState,
    batch: BatchState,
    last_batch: Option<(u64, BatchTiming)>,
    /// Phase names by id, copied from the interned names when a step record meets a phase it cannot name.
    phase_names: Vec<&'static str>,
    /// Recently found call-tree nodes, by the key `parent << 32 | name` hashed.
    children: [(u64, u32); CHILD_CACHE],
    /// Durations of short-path calls, `(node, ticks)`, not yet counted in their histograms: counting a
    /// duration right after reading the clock would wait for the clock (a third of a span's cost), so it is
    /// done a block at a time.
    durations: [(u32, u64); DURATIONS],
    /// The number of `durations` in use.
    durations_len: usize,
    /// Steps completed on this thread, for the step index of timeline events.
    steps_done: u64,
    /// Timeline events not yet handed over.
    pending: Vec<Event>,
    /// The calibration thread's recorder: its slot is not registered, so reports never see its spans.
    detached: bool,
    /// The number of the latest frame pushed.
    serial: u32,
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if self.detached {
            return;
        }
        if self.epoch == slot::state().1 {
            self.count_durations();
            self.flush_events();
        }
        if let Some(slot) = &self.slot {
            slot::retire(slot);
        }
    }
}

/// Entries of the cache of call-tree nodes: enough for the paths of an optimizer's hot loop.
const CHILD_CACHE: usize = 256;
/// Short-path durations held back before they are counted in histograms.
const DURATIONS: usize = 64;
/// No `(parent, name)` key: the root is never a child and no span name id is `u32::MAX`.
const NO_KEY: u64 = u64::MAX;

thread_local! {
    static RECORDER: RefCell<Recorder> = const {
        RefCell::new(Recorder {
            slot: None,
            epoch: 0,
            stack: Vec::new(),
            tree: LocalTree::new(),
            step: StepState { active: false, phase_ticks: Vec::new() },
            batch: BatchState { active: false, steps: 0, records: None },
            last_batch: None,
            phase_names: Vec::new(),
            children: [(NO_KEY, 0); CHILD_CACHE],
            durations: [(0, 0); DURATIONS],
            durations_len: 0,
            steps_done: 0,
            pending: Vec::new(),
            detached: false,
            serial: 0,
        })
    };
}

/// Runs `f` on this thread's recorder unless it is gone (thread teardown) or already in use (a timed call
/// made from inside the runtime), in which case the call is not recorded.
#[inline(always)]
fn with_recorder<R>(f: impl FnOnce(&mut Recorder) -> R) -> Option<R> {
    RECORDER.try_with(|recorder| recorder.try_borrow_mut().ok().map(|mut recorder| f(&mut recorder))).ok().flatten()
}

/// Closes its span when dropped: on return, on `?`, and while unwinding. `!Send`, because a span belongs to
/// the thread's stack it was opened on.
#[must_use = "the span closes when this guard is dropped"]
#[derive(Debug)]
pub struct Guard {
    /// Stack depth with this guard's frame on it; 0 when nothing was opened.
    depth: u32,
    /// The frame's number, so that a guard never closes another guard's frame at its depth.
    serial: u32,
    _not_send: PhantomData<*const ()>,
}

impl Guard {
    const INERT: Guard = Guard { depth: 0, serial: 0, _not_send: PhantomData };

    fn opened(frame: Option<(u32, u32)>) -> Guard {
        let (depth, serial) = frame.unwrap_or((0, 0));
        Guard { depth, serial, _not_send: PhantomData }
    }

    /// Closes the span now; `completed` carries an `async fn`'s busy ticks before this poll and the tick of
    /// its first poll when this poll completed it. Returns the span's ticks.
    #[inline(never)]
    fn close(&mut self, completed: Option<(u64, u64)>) -> u64 {
        let depth = std::mem::take(&mut self.depth);
        if depth == 0 {
            return 0;
        }
        let now = clock::now();
        let epoch = slot::epoch_of(slot::raw_state());
        with_recorder(|recorder| recorder.pop(depth, self.serial, epoch, now, completed)).unwrap_or(0)
    }

    /// Closes the span of an ordinary call: on the short path when its frame is on top of the stack and
    /// lean, otherwise as `close` does.
    #[inline(never)]
    fn close_span(&mut self) {
        let depth = std::mem::take(&mut self.depth);
        let now = clock::now();
        let epoch = slot::epoch_of(slot::raw_state());
        let serial = self.serial;
        with_recorder(|recorder| {
            if !recorder.pop_lean(depth, serial, epoch, now) {
                recorder.pop(depth, serial, epoch, now, None);
            }
        });
    }

    /// Closes a poll's span and returns its ticks, counting the call if the poll completed it.
    pub(crate) fn close_poll(mut self, completed: Option<(u64, u64)>) -> u64 {
        self.close(completed)
    }
}

impl Drop for Guard {
    #[inline(always)]
    fn drop(&mut self) {
        if self.depth != 0 {
            self.close_span();
        }
    }
}

impl Callsite {
    /// Opens a span of this call site on the calling thread; it closes when the guard drops.
    #[inline(always)]
    pub fn enter(&'static self) -> Guard {
        let state = slot::raw_state();
        if state & 3 < self.min_level {
            return Guard::INERT;
        }
        match self.kind {
            Kind::Span => self.open_span(state),
            Kind::Step | Kind::Batch => self.open(state, false),
        }
    }

    /// The path of every ordinary span at granularity `Detailed`: no step, batch or poll to look after.
    #[inline(never)]
    fn open_span(&'static self, state: u64) -> Guard {
        let ids = self.ids();
        Guard::opened(with_recorder(|recorder| recorder.push_span(ids, state)))
    }

    /// Opens a span as `enter` does at granularity `Detailed` without timeline capture, whatever the
    /// settings: for the calibration, which must measure the path that user spans take.
    pub(crate) fn enter_detailed(&'static self) -> Guard {
        let state = (slot::raw_state() & !slot::TIMELINE) | TimingGranularity::Detailed.to_bits();
        self.open_span(state)
    }

    /// Opens one poll of an `async fn` of this call site.
    pub(crate) fn enter_poll(&'static self) -> Guard {
        let state = slot::raw_state();
        if TimingGranularity::from_bits(state) != TimingGranularity::Detailed {
            return Guard::INERT;
        }
        self.open(state, true)
    }

    #[inline(never)]
    fn open(&'static self, state: u64, poll: bool) -> Guard {
        let ids = self.ids();
        Guard::opened(with_recorder(|recorder| recorder.push(self, ids, state, poll)))
    }

    /// Counts an `async fn` call dropped before it completed, on the path it would have run on here.
    pub(crate) fn cancel_async(&'static self) {
        let (granularity, epoch) = slot::state();
        if granularity != TimingGranularity::Detailed {
            return;
        }
        let ids = self.ids();
        with_recorder(|recorder| {
            let parent = recorder.stack.last().map_or(tree::ROOT, |frame| frame.node);
            let Some(slot) = recorder.slot(epoch) else { return };
            let node = recorder.tree.child(parent, ids.name, &slot.tree);
            if let Some(counters) = recorder.tree.counters(node) {
                counters.add_cancelled();
            }
        });
    }
}

impl Recorder {
    /// The thread's slot, registered on first use, with counters of the current epoch.
    #[inline(always)]
    fn slot(&mut self, epoch: u64) -> Option<Arc<ThreadSlot>> {
        if self.epoch != epoch || self.slot.is_none() {
            self.new_epoch(epoch);
        }
        self.slot.clone()
    }

    #[cold]
    #[inline(never)]
    fn new_epoch(&mut self, epoch: u64) {
        // What is held back belongs to the epoch that ended.
        self.pending.clear();
        self.durations_len = 0;
        match &self.slot {
            Some(slot) => slot.start_epoch(epoch),
            None if self.detached => self.slot = Some(slot::detached(epoch)),
            None => {
                clock::init();
                calibrate::ensure();
                self.slot = Some(slot::register(epoch));
            }
        }
        self.epoch = epoch;
    }

    /// The node counting a call of `name` from node `parent`: from the cache, or found in (or added to) the
    /// tree. The tree never forgets a path, so a cached node never goes stale.
    #[inline(always)]
    fn child(&mut self, parent: u32, name: u32) -> u32 {
        let key = u64::from(parent) << 32 | u64::from(name);
        // Fibonacci hashing: the top bits of the product spread small consecutive ids.
        let index = (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as usize % CHILD_CACHE;
        match self.children.get(index) {
            Some(&(cached, node)) if cached == key => node,
            _ => self.find_child(parent, name, key, index),
        }
    }

    #[cold]
    #[inline(never)]
    fn find_child(&mut self, parent: u32, name: u32, key: u64, index: usize) -> u32 {
        let Some(slot) = &self.slot else { return tree::NO_NODE };
        let node = self.tree.child(parent, name, &slot.tree);
        if let Some(entry) = self.children.get_mut(index) {
            *entry = (key, node);
        }
        node
    }

    #[inline(always)]
    fn push_span(&mut self, ids: Ids, state: u64) -> (u32, u32) {
        let epoch = slot::epoch_of(state);
        if self.epoch != epoch || self.slot.is_none() {
            self.new_epoch(epoch);
        }
        let (parent_node, parent_phase) =
            self.stack.last().map_or((tree::ROOT, 0), |parent| (parent.node, parent.phase));
        let node = self.child(parent_node, ids.name);
        let folded = self.tree.open(node);
        let phase = if ids.phase != 0 { ids.phase } else { parent_phase };
        let timeline = state & slot::TIMELINE != 0;
        self.push_frame(Frame {
            start: 0,
            children: 0,
            name: ids.name,
            node,
            phase,
            role: Role::Span,
            detailed: true,
            folded,
            timeline,
            serial: 0,
            lean: !folded && !timeline,
        })
    }

    /// Pushes `frame` and reads the clock last, so that a growing stack is not counted in the span.
    #[inline(always)]
    fn push_frame(&mut self, mut frame: Frame) -> (u32, u32) {
        self.serial = self.serial.wrapping_add(1).max(1);
        frame.serial = self.serial;
        self.stack.push(frame);
        let depth = u32::try_from(self.stack.len()).unwrap_or(u32::MAX);
        if let Some(frame) = self.stack.last_mut() {
            frame.start = clock::now();
        }
        (depth, self.serial)
    }

    fn push(&mut self, callsite: &'static Callsite, ids: Ids, state: u64, poll: bool) -> (u32, u32) {
        let (granularity, epoch) = (TimingGranularity::from_bits(state), slot::epoch_of(state));
        if self.epoch != epoch || self.slot.is_none() {
            self.new_epoch(epoch);
        }
        let detailed = granularity == TimingGranularity::Detailed;
        let (parent_node, parent_phase) =
            self.stack.last().map_or((tree::ROOT, 0), |parent| (parent.node, parent.phase));
        let node = if detailed { self.child(parent_node, ids.name) } else { tree::NO_NODE };
        let folded = self.tree.open(node);
        let role = match callsite.kind {
            _ if poll => Role::Poll,
            Kind::Span => Role::Span,
            Kind::Step if !self.step.active => {
                self.step.active = true;
                // Short-path spans add their phase time whether a step is open or not; a step starts at zero.
                self.step.phase_ticks.fill(0);
                Role::Step
            }
            Kind::Batch if !self.batch.active => {
                self.batch = BatchState {
                    active: true,
                    steps: 0,
                    records: (granularity >= TimingGranularity::Step).then(Vec::new),
                };
                Role::Batch
            }
            Kind::Step | Kind::Batch => Role::Span,
        };
        let phase = if ids.phase != 0 { ids.phase } else { parent_phase };
        let timeline = detailed && state & slot::TIMELINE != 0;
        self.push_frame(Frame {
            start: 0,
            children: 0,
            name: ids.name,
            node,
            phase,
            role,
            detailed,
            folded,
            timeline,
            serial: 0,
            lean: false,
        })
    }

    /// Closes the guard's frame as `pop` would when it is lean and on top of the stack, and says whether it
    /// did.
    #[inline(always)]
    fn pop_lean(&mut self, depth: u32, serial: u32, epoch: u64, now: u64) -> bool {
        let top = (depth as usize).wrapping_sub(1);
        if self.epoch != epoch || self.stack.len() != depth as usize {
            return false;
        }
        let (start, children, node, phase) = match self.stack.get(top) {
            Some(frame) if frame.serial == serial && frame.lean => {
                (frame.start, frame.children, frame.node, frame.phase)
            }
            _ => return false,
        };
        self.stack.truncate(top);
        let elapsed = now.saturating_sub(start);
        let self_ticks = elapsed.saturating_sub(children);
        if let Some(parent) = self.stack.get_mut(top.wrapping_sub(1)) {
            // The cost of this call's instrumentation is the runtime's, not the caller's.
            parent.children = parent.children.wrapping_add(elapsed.wrapping_add(calibrate::charged_ticks()));
        }
        self.tree.leave_span(node, elapsed, self_ticks);
        self.add_phase(phase, self_ticks);
        if let Some(entry) = self.durations.get_mut(self.durations_len) {
            *entry = (node, elapsed);
            self.durations_len += 1;
        }
        // Counted when the block is full, and when the thread's outermost span closes, so that a thread
        // between calls holds back nothing.
        if self.durations_len == DURATIONS || self.stack.is_empty() {
            self.count_durations();
        }
        true
    }

    /// Counts the held-back durations in their histograms.
    #[cold]
    #[inline(never)]
    fn count_durations(&mut self) {
        let held = self.durations.get(..self.durations_len).unwrap_or_default();
        for &(node, ticks) in held {
            if let Some(counters) = self.tree.counters(node) {
                counters.add_duration(ticks);
            }
        }
        self.durations_len = 0;
    }

    /// Closes the guard's frame (number `serial`, normally at `depth`) and every frame above it, and returns
    /// the ticks of the guard's frame. Frames above it were left open by a leaked guard; they close now too.
    /// A frame that is not on the stack any more (closed with a frame below it) is left alone.
    #[inline(always)]
    fn pop(&mut self, depth: u32, serial: u32, epoch: u64, now: u64, completed: Option<(u64, u64)>) -> u64 {
        if self.epoch != epoch {
            // A reset came while the frame was open: it closes into the new epoch, whole.
            self.new_epoch(epoch);
        }
        let index = match self.stack.get((depth as usize).wrapping_sub(1)) {
            Some(frame) if frame.serial == serial => depth as usize - 1,
            _ => match self.stack.iter().rposition(|frame| frame.serial == serial) {
                Some(index) => index,
                None => return 0,
            },
        };
        while self.stack.len() > index + 1 {
            if let Some(frame) = self.stack.pop() {
                self.close(frame, now, None);
            }
        }
        let ticks = match self.stack.pop() {
            Some(frame) => self.close(frame, now, completed),
            None => 0,
        };
        if self.stack.is_empty() {
            self.count_durations();
        }
        ticks
    }

    #[inline(always)]
    fn close(&mut self, frame: Frame, now: u64, completed: Option<(u64, u64)>) -> u64 {
        // Everything the short path does, plus folding, polls, the timeline, steps and batches.
        let elapsed = now.saturating_sub(frame.start);
        let self_ticks = elapsed.saturating_sub(frame.children);
        if let Some(parent) = self.stack.last_mut() {
            // The cost of this call's instrumentation is the runtime's, not the caller's.
            parent.children = parent.children.saturating_add(elapsed.saturating_add(calibrate::charged_ticks()));
        }
        self.tree.leave(frame.node);
        if frame.detailed {
            if let Some(counters) = self.tree.counters(frame.node) {
                counters.add_time(elapsed, self_ticks, !frame.folded);
                match (frame.role, completed) {
                    (Role::Poll, None) => {}
                    (Role::Poll, Some((busy, first_poll))) => {
                        counters.add_async_call(busy.saturating_add(elapsed), now.saturating_sub(first_poll));
                    }
                    _ => counters.add_call(elapsed),
                }
            }
            if self.step.active && frame.phase != 0 {
                self.add_phase(frame.phase, self_ticks);
            }
            if frame.timeline {
                self.capture(&frame, now);
            }
        }
        match frame.role {
            Role::Span | Role::Poll => {}
            Role::Step | Role::Batch => self.finish(frame.role, elapsed),
        }
        elapsed
    }

    #[inline(never)]
    fn capture(&mut self, frame: &Frame, now: u64) {
        let step = if self.step.active { self.steps_done } else { u64::MAX };
        self.pending.push(Event { start: frame.start, end: now, name: frame.name, phase: frame.phase, step });
        if self.pending.len() >= timeline::BLOCK {
            self.flush_events();
        }
    }

    /// Hands the thread's captured events over to reports.
    fn flush_events(&mut self) {
        if let Some(slot) = &self.slot {
            if !self.pending.is_empty() {
                slot.events.lock().extend(self.pending.drain(..));
            }
        }
    }

    #[cold]
    #[inline(never)]
    fn finish(&mut self, role: Role, elapsed: u64) {
        if role == Role::Step {
            self.finish_step(elapsed);
        } else {
            self.finish_batch(elapsed);
        }
    }

    #[inline(always)]
    fn add_phase(&mut self, phase: u32, ticks: u64) {
        match self.step.phase_ticks.get_mut(phase as usize) {
            Some(sum) => *sum = sum.saturating_add(ticks),
            None => self.grow_phases(phase, ticks),
        }
    }

    #[cold]
    #[inline(never)]
    fn grow_phases(&mut self, phase: u32, ticks: u64) {
        self.step.phase_ticks.resize(phase as usize + 1, 0);
        self.step.phase_ticks[phase as usize] = ticks;
    }

    fn finish_step(&mut self, ticks: u64) {
        self.step.active = false;
        self.count_durations();
        // Short-path spans with no phase add their time at phase 0, which stands for none.
        if let Some(none) = self.step.phase_ticks.first_mut() {
            *none = 0;
        }
        self.steps_done = self.steps_done.wrapping_add(1);
        let epoch = slot::state().1;
        let Some(slot) = &self.slot else { return };
        {
            let mut account = slot.steps.lock();
            if account.epoch != epoch {
                *account = slot::StepAccount { epoch, ..slot::StepAccount::default() };
            }
            account.steps = account.steps.saturating_add(1);
            account.step_ticks = account.step_ticks.saturating_add(ticks);
            if account.phase_ticks.len() < self.step.phase_ticks.len() {
                account.phase_ticks.resize(self.step.phase_ticks.len(), 0);
            }
            for (total, step) in account.phase_ticks.iter_mut().zip(&self.step.phase_ticks) {
                *total = total.saturating_add(*step);
            }
            account.step_histogram.record(ticks);
            if account.phase_histograms.len() < self.step.phase_ticks.len() {
                account.phase_histograms.resize(self.step.phase_ticks.len(), Histogram::default());
            }
            for (histogram, step) in account.phase_histograms.iter_mut().zip(&self.step.phase_ticks).skip(1) {
                histogram.record(*step);
            }
        }
        if self.batch.active {
            self.batch.steps += 1;
            if let Some(records) = &mut self.batch.records {
                let unnamed = |(ticks, id): (&u64, usize)| {
                    *ticks > 0 && self.phase_names.get(id).is_none_or(|name| name.is_empty())
                };
                if self.step.phase_ticks.iter().zip(0..).skip(1).any(unnamed) {
                    self.phase_names = callsite::names().1;
                }
                records.push(step_timing(ticks, &self.step.phase_ticks, &self.phase_names));
            }
        }
        self.step.phase_ticks.iter_mut().for_each(|ticks| *ticks = 0);
    }

    fn finish_batch(&mut self, ticks: u64) {
        let batch = std::mem::take(&mut self.batch);
        let epoch = slot::state().1;
        let timing = BatchTiming::new(batch.steps, clock::to_ns(ticks), batch.records);
        if let Some(slot) = &self.slot {
            let mut account = slot.steps.lock();
            if account.epoch != epoch {
                *account = slot::StepAccount { epoch, ..slot::StepAccount::default() };
            }
            account.batches = account.batches.saturating_add(1);
            account.batch_ticks = account.batch_ticks.saturating_add(ticks);
            account.keep_slow_steps(&timing.slow_steps);
        }
        self.last_batch = Some((epoch, timing));
        self.flush_events();
    }
}

fn step_timing(ticks: u64, phase_ticks: &[u64], phase_names: &[&'static str]) -> StepTiming {
    let phases = phase_ticks
        .iter()
        .zip(phase_names)
        .filter(|(ticks, _)| **ticks > 0)
        .map(|(ticks, name)| PhaseTime { phase: (*name).into(), ns: clock::to_ns(*ticks) })
        .collect();
    StepTiming { total_ns: clock::to_ns(ticks), phases }
}

/// The latest batch completed on this thread in the current epoch.
pub(crate) fn last_batch() -> Option<BatchTiming> {
    let epoch = slot::state().1;
    with_recorder(|recorder| match &recorder.last_batch {
        Some((batch_epoch, timing)) if *batch_epoch == epoch => Some(timing.clone()),
        _ => None,
    })
    .flatten()
}

/// Hands over what the calling thread holds back (timeline events, durations), so that a report read now
/// includes them.
pub(crate) fn flush_this_thread() {
    let epoch = slot::state().1;
    with_recorder(|recorder| {
        if recorder.epoch == epoch {
            recorder.count_durations();
            recorder.flush_events();
        }
    });
}

/// Keeps this thread's spans out of every report (the calibration thread's).
pub(crate) fn detach_this_thread() {
    with_recorder(|recorder| recorder.detached = true);
}

/// The self time so far of the innermost open span on this thread, at `now`.
pub(crate) fn open_self_ticks(now: u64) -> Option<u64> {
    with_recorder(|recorder| {
        recorder.stack.last().map(|frame| now.saturating_sub(frame.start).saturating_sub(frame.children))
    })
    .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::fake;

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

    #[test]
    fn counters_saturate_instead_of_wrapping() {
        let counter = std::sync::atomic::AtomicU64::new(u64::MAX - 1);
        crate::counters::bump(&counter, 5);
        assert_eq!(counter.load(std::sync::atomic::Ordering::Relaxed), u64::MAX);
    }
}
