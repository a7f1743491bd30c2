//! The hot path: a thread-local stack of open spans, closed by a drop guard, and the step and batch in
//! progress on this thread.

use std::cell::RefCell;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use crate::callsite::{Callsite, Ids, Kind};
use crate::clock;
use crate::granularity::TimingGranularity;
use crate::hist::Histogram;
use crate::slot::{self, ThreadSlot, bump};
use crate::timing::{BatchTiming, PhaseTime, StepTiming};
use crate::tree::{self, LocalTree};

/// What closing a frame does besides closing a span.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Span,
    /// The outermost step on this thread: closing it completes a step.
    Step,
    /// The outermost batch on this thread: closing it completes a batch.
    Batch,
    /// One poll of an `async fn`: busy time counts, the call is counted when the future completes.
    Poll,
}

/// Whether a frame is a poll of an `async fn`, and which.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Poll {
    No,
    First,
    Later,
}

#[derive(Clone, Copy, Debug)]
struct Frame {
    name: u32,
    /// The innermost phase on the stack, this frame's own or inherited; 0 for none.
    phase: u32,
    role: Role,
    /// Span statistics are kept for this frame (granularity `Detailed`).
    stats: bool,
    start: u64,
    children: u64,
    /// The call-tree node; for a recursive call, the node of the active call of the same name.
    node: u32,
    /// A recursive call, whose inclusive time the outer call of the same name holds already.
    reentry: bool,
    /// Counted as a call: false for an `async fn`'s later polls.
    counted: bool,
}

/// The step in progress on this thread.
#[derive(Default)]
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
    step: StepState,
    batch: BatchState,
    last_batch: Option<(u64, BatchTiming)>,
    tree: LocalTree,
    /// Phase names by id, learnt from call sites, so a step record needs no lock to name its phases.
    phase_names: Vec<&'static str>,
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if let Some(slot) = &self.slot {
            slot::retire(slot);
        }
    }
}

thread_local! {
    static RECORDER: RefCell<Recorder> = const {
        RefCell::new(Recorder {
            slot: None,
            epoch: 0,
            stack: Vec::new(),
            step: StepState { active: false, phase_ticks: Vec::new() },
            batch: BatchState { active: false, steps: 0, records: None },
            last_batch: None,
            tree: LocalTree::new(),
            phase_names: Vec::new(),
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
    _not_send: PhantomData<*const ()>,
}

impl Guard {
    const INERT: Guard = Guard { depth: 0, _not_send: PhantomData };

    /// Closes the span now and returns its elapsed ticks.
    fn close(&mut self) -> u64 {
        let depth = std::mem::take(&mut self.depth);
        if depth == 0 {
            return 0;
        }
        let now = clock::now();
        with_recorder(|recorder| recorder.pop(depth, now)).unwrap_or(0)
    }
}

impl Drop for Guard {
    #[inline(always)]
    fn drop(&mut self) {
        if self.depth != 0 {
            self.close();
        }
    }
}

impl Callsite {
    /// Opens a span of this call site on the calling thread; it closes when the guard drops.
    #[inline(always)]
    pub fn enter(&'static self) -> Guard {
        let (granularity, epoch) = slot::state();
        if granularity == TimingGranularity::None
            || (granularity != TimingGranularity::Detailed && self.kind == Kind::Span)
        {
            return Guard::INERT;
        }
        self.open(granularity, epoch, Poll::No)
    }

    /// Opens one poll of an `async fn` of this call site.
    pub(crate) fn enter_poll(&'static self, first: bool) -> Guard {
        let (granularity, epoch) = slot::state();
        if granularity != TimingGranularity::Detailed {
            return Guard::INERT;
        }
        self.open(granularity, epoch, if first { Poll::First } else { Poll::Later })
    }

    #[inline(always)]
    fn open(&'static self, granularity: TimingGranularity, epoch: u64, poll: Poll) -> Guard {
        let ids = self.ids();
        let depth = with_recorder(|recorder| recorder.push(self, ids, granularity, epoch, poll));
        Guard { depth: depth.unwrap_or(0), _not_send: PhantomData }
    }

    /// Counts one completed `async fn` call: `busy` ticks of polls over `wall` ticks from first poll.
    pub(crate) fn complete_async(&'static self, busy: u64, wall: u64) {
        self.with_counters(|counters| {
            counters.record_call(busy);
            bump(&counters.wall, wall);
        });
    }

    /// Counts an `async fn` call dropped before it completed.
    pub(crate) fn cancel_async(&'static self) {
        self.with_counters(|counters| bump(&counters.cancelled, 1));
    }

    fn with_counters(&'static self, f: impl FnOnce(&slot::SpanCounters)) {
        let (granularity, epoch) = slot::state();
        if granularity != TimingGranularity::Detailed {
            return;
        }
        let ids = self.ids();
        with_recorder(|recorder| {
            let slot = recorder.slot(epoch);
            if let Some(counters) = slot.counters(ids.name) {
                f(counters);
            }
        });
    }
}

impl Guard {
    /// Closes a poll's span and returns its ticks (for the future's busy time).
    pub(crate) fn close_poll(mut self) -> u64 {
        self.close()
    }
}

impl Recorder {
    /// The thread's slot, registered on first use, with counters of the current epoch.
    #[inline(always)]
    fn slot(&mut self, epoch: u64) -> &ThreadSlot {
        if self.epoch != epoch {
            self.new_epoch(epoch);
        }
        self.slot.get_or_insert_with(|| first_slot(epoch))
    }

    #[cold]
    #[inline(never)]
    fn new_epoch(&mut self, epoch: u64) {
        if let Some(slot) = &self.slot {
            slot.start_epoch(epoch);
        }
        self.epoch = epoch;
    }

    #[cold]
    #[inline(never)]
    fn learn_phase(&mut self, id: u32, name: &'static str) {
        let id = id as usize;
        if self.phase_names.len() <= id {
            self.phase_names.resize(id + 1, "");
        }
        self.phase_names[id] = name;
    }

    #[inline(always)]
    fn push(
        &mut self,
        callsite: &'static Callsite,
        ids: Ids,
        granularity: TimingGranularity,
        epoch: u64,
        poll: Poll,
    ) -> u32 {
        let stats = granularity == TimingGranularity::Detailed;
        self.slot(epoch);
        let parent_node = self.stack.last().map_or(tree::ROOT, |parent| parent.node);
        let (mut node, mut reentry) = (parent_node, true);
        if stats {
            if let Some(slot) = self.slot.as_deref() {
                let active = match slot.counters(ids.name) {
                    Some(counters) => {
                        let depth = counters.depth.load(Relaxed);
                        counters.depth.store(depth.saturating_add(1), Relaxed);
                        depth > 0
                    }
                    None => false,
                };
                reentry = active;
                node = match active {
                    false => self.tree.child(parent_node, ids.name, &slot.tree),
                    true => self
                        .stack
                        .iter()
                        .rev()
                        .find(|frame| frame.name == ids.name)
                        .map_or(tree::NO_NODE, |frame| frame.node),
                };
            }
        }
        if ids.phase as usize >= self.phase_names.len() {
            if let Some(phase) = callsite.phase {
                self.learn_phase(ids.phase, phase);
            }
        }
        let kind = callsite.kind;
        let parent_phase = self.stack.last().map_or(0, |parent| parent.phase);
        let role = match kind {
            _ if poll != Poll::No => Role::Poll,
            Kind::Step if !self.step.active => {
                self.step.active = true;
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
            _ => Role::Span,
        };
        let phase = if ids.phase != 0 { ids.phase } else { parent_phase };
        let counted = poll != Poll::Later;
        self.stack.push(Frame { name: ids.name, phase, role, stats, start: 0, children: 0, node, reentry, counted });
        // Read last, so that registration and a growing stack are not counted in the span.
        if let Some(frame) = self.stack.last_mut() {
            frame.start = clock::now();
        }
        u32::try_from(self.stack.len()).unwrap_or(u32::MAX)
    }

    /// Closes every frame from the top of the stack down to the one at `depth`, and returns the ticks of the
    /// one at `depth`. Frames above it are left over by a guard that was leaked; they close now too.
    fn pop(&mut self, depth: u32, now: u64) -> u64 {
        let depth = depth as usize;
        let mut elapsed = 0;
        while self.stack.len() >= depth && depth > 0 {
            let Some(frame) = self.stack.pop() else { break };
            elapsed = self.close(frame, now);
        }
        elapsed
    }

    fn close(&mut self, frame: Frame, now: u64) -> u64 {
        let elapsed = now.saturating_sub(frame.start);
        let self_ticks = elapsed.saturating_sub(frame.children);
        if let Some(parent) = self.stack.last_mut() {
            parent.children = parent.children.saturating_add(elapsed);
        }
        if frame.stats {
            if let Some(slot) = self.slot.as_deref() {
                if let Some(counters) = slot.counters(frame.name) {
                    let depth = counters.depth.load(Relaxed).saturating_sub(1);
                    counters.depth.store(depth, Relaxed);
                    if depth == 0 {
                        bump(&counters.total, elapsed);
                    }
                    bump(&counters.self_ticks, self_ticks);
                    if frame.role != Role::Poll {
                        counters.record_call(elapsed);
                    }
                }
                if let Some(node) = slot.tree.counters(frame.node) {
                    node.record(frame.counted, (!frame.reentry).then_some(elapsed), self_ticks);
                }
            }
        }
        if self.step.active && frame.phase != 0 && frame.stats {
            let phase = frame.phase as usize;
            if self.step.phase_ticks.len() <= phase {
                self.step.phase_ticks.resize(phase + 1, 0);
            }
            self.step.phase_ticks[phase] = self.step.phase_ticks[phase].saturating_add(self_ticks);
        }
        match frame.role {
            Role::Step => self.finish_step(elapsed),
            Role::Batch => self.finish_batch(elapsed),
            Role::Span | Role::Poll => {}
        }
        elapsed
    }

    fn finish_step(&mut self, ticks: u64) {
        self.step.active = false;
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

#[cold]
#[inline(never)]
fn first_slot(epoch: u64) -> Arc<ThreadSlot> {
    clock::init();
    slot::register(epoch)
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
        bump(&counter, 5);
        assert_eq!(counter.load(Relaxed), u64::MAX);
    }
}
