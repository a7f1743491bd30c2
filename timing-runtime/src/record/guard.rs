//! The drop guard that closes a span, and the entry points that `#[timed]` and `scope!` call: the hot path
//! first, the slow path when it cannot.

use std::marker::PhantomData;

use crate::model::TimingGranularity;
use crate::record::callsite::{Callsite, Kind};
use crate::record::clock;
use crate::record::hot::{Hot, UNTIMED_GUARD, with_hot};
use crate::record::recorder::{Closed, PollSums, with_recorder};
use crate::store::registry;
use crate::store::tree::{self, AsyncTotals};

/// Closes its span when dropped: on return, on `?`, and while unwinding. `!Send`, because a span belongs to
/// the thread's stack it was opened on.
#[must_use = "the span closes when this guard is dropped"]
#[derive(Debug)]
pub struct Guard {
    /// Stack depth with this guard's frame on it; 0 when nothing was opened.
    depth: u32,
    /// The low bits of the frame's start tick, so that a guard never closes another frame at its depth.
    stamp: u32,
    _not_send: PhantomData<*const ()>,
}

impl Guard {
    const INERT: Guard = Guard { depth: 0, stamp: 0, _not_send: PhantomData };

    fn opened(frame: Option<(u32, u32)>) -> Guard {
        let (depth, stamp) = frame.unwrap_or((0, 0));
        Guard { depth, stamp, _not_send: PhantomData }
    }

    /// Closes a span opened by `Callsite::enter_detailed` as it was opened: on the hot path, whatever the
    /// settings.
    pub(crate) fn close_detailed(mut self) {
        let depth = std::mem::take(&mut self.depth);
        if depth & UNTIMED_GUARD != 0 {
            // Opened by `enter_sampled_detailed`: under the state it was opened in.
            close_untimed_under(depth & !UNTIMED_GUARD, || detailed_state() | registry::SAMPLING);
        } else if depth != 0 {
            close_under(depth, self.stamp, detailed_state);
        }
    }

    /// The tick its span opened at, while it is open on this thread; `None` for an untimed one.
    pub(crate) fn start(&self) -> Option<u64> {
        if self.depth == 0 || self.depth & UNTIMED_GUARD != 0 {
            return None;
        }
        let start = with_hot(|hot| hot.frame_cells(self.depth as usize).map(|frame| frame.get().start))?;
        #[allow(clippy::cast_possible_truncation)]
        (start as u32 == self.stamp).then_some(start)
    }

    /// Closes a poll's span and returns what it took; `completed` carries the sums of the call's polls before
    /// this one when this poll completed it.
    pub(crate) fn close_poll(mut self, completed: Option<PollSums>) -> Closed {
        let depth = std::mem::take(&mut self.depth);
        if depth == 0 {
            return Closed::default();
        }
        close_slow(depth, self.stamp, clock::now(), completed)
    }
}

impl Drop for Guard {
    #[inline(always)]
    fn drop(&mut self) {
        if self.depth != 0 {
            close_span(self.depth, self.stamp);
        }
    }
}

/// Closes an ordinary span or a step: on the hot path when it can, otherwise on the slow one.
#[inline(never)]
fn close_span(depth: u32, stamp: u32) {
    // One test of a register the common close has anyway: an untimed frame must not read the clock.
    if depth & UNTIMED_GUARD != 0 {
        return close_untimed(depth & !UNTIMED_GUARD);
    }
    close_under(depth, stamp, registry::raw_state);
}

/// Closes a call that was counted but not timed, under an overhead budget.
#[inline(never)]
fn close_untimed(depth: u32) {
    close_untimed_under(depth, registry::raw_state);
}

/// Closes an untimed call as `close_untimed` does, under the state `state` reads; on the slow path (which
/// reads the clock, to close any frame left open above it) only when the hot path cannot.
#[inline(always)]
fn close_untimed_under(depth: u32, state: impl Fn() -> u64) {
    let state = state();
    if !with_hot(|hot| hot.try_exit_untimed(depth, state)) {
        close_slow(depth, 0, clock::now(), None);
    }
}

/// Closes as `close_span` does, with the global state read by `state`. Generic, so that each caller has
/// an instance of its own that the compiler inlines whole (shared, it was not: 28 more instructions a span).
#[inline(always)]
fn close_under(depth: u32, stamp: u32, state: impl Fn() -> u64 + Copy) {
    with_hot(|hot| {
        if hot.tsc.get() {
            close_with(hot, depth, stamp, clock::tsc_now(), state);
        } else {
            close_monotonic(depth, stamp, state);
        }
    });
}

/// Closes as `close_under` does where ticks are not TSC counts. Apart, because reading that clock is a call,
/// across which the TSC path would have to keep its values in registers it saves and restores.
#[cold]
#[inline(never)]
fn close_monotonic(depth: u32, stamp: u32, state: impl Fn() -> u64 + Copy) {
    let now = clock::now();
    with_hot(|hot| close_with(hot, depth, stamp, now, state));
}

#[inline(always)]
fn close_with(hot: &Hot, depth: u32, stamp: u32, now: u64, read_state: impl Fn() -> u64 + Copy) {
    let state = read_state();
    if !(hot.try_exit(depth, stamp, now, state) || hot.try_exit_step(depth, stamp, now, state)) {
        close_slow_plain(depth, stamp, now, read_state);
    }
}

/// `close_slow` for a span that is not a poll, under the global state as `read_state` reads it for the hot
/// path (the calibration's, for its calls): without an argument in memory, so that it is a tail call, and
/// with the state read again rather than passed, as keeping it for the call cost the common close two saved
/// registers.
#[cold]
#[inline(never)]
fn close_slow_plain(depth: u32, stamp: u32, now: u64, read_state: impl Fn() -> u64 + Copy) {
    let state = read_state();
    // A call beyond the inline stack, or one timed under a budget (tried second, as one call in N is),
    // closes without the recorder, as any call does on the hot path.
    if with_hot(|hot| hot.try_exit_deep(depth, stamp, now, state) || hot.try_exit_sampled(depth, stamp, now, state)) {
        return;
    }
    close_slow(depth, stamp, now, None);
}

/// The state as it is, at granularity `Detailed` and without timeline capture or sampling.
fn detailed_state() -> u64 {
    (registry::raw_state() & !(registry::TIMELINE | registry::SAMPLING)) | TimingGranularity::Detailed.to_bits()
}

#[cold]
#[inline(never)]
fn close_slow(depth: u32, stamp: u32, now: u64, completed: Option<PollSums>) -> Closed {
    #[cfg(test)]
    slow_closes::count();
    let epoch = registry::epoch_of(registry::raw_state());
    with_recorder(|recorder, hot| recorder.pop(hot, depth, stamp, epoch, now, completed)).unwrap_or_default()
}

impl Callsite {
    /// Opens a span of this call site on the calling thread; it closes when the guard drops.
    #[inline(always)]
    pub fn enter(&'static self) -> Guard {
        self.enter_as(self.kind)
    }

    /// Opens a span as `enter` does, given the call site's own kind: `#[timed]` passes it as a constant, so
    /// that the choice of path is made at compile time rather than by a load and branches in every timed
    /// function (a field of a `static` with interior mutability is never a constant to the compiler). No
    /// assertion that it is the call site's: the runtime does not panic in users' code, and the macro passes
    /// the kind it wrote into the call site.
    #[inline(always)]
    pub fn enter_as(&'static self, kind: Kind) -> Guard {
        let state = registry::raw_state();
        if state & 3 < kind.min_level() {
            return Guard::INERT;
        }
        match kind {
            Kind::Span => self.open_span(state),
            Kind::Step => self.open_step(state),
            Kind::Batch => self.open(state, false),
        }
    }

    /// Every ordinary span at granularity `Detailed`: on the hot path when it can.
    #[inline(never)]
    fn open_span(&'static self, state: u64) -> Guard {
        // One test of the state already loaded: under a budget, the call may go untimed.
        if state & registry::SAMPLING != 0 {
            return self.open_sampled(state);
        }
        self.open_hot(state, Hot::try_enter, Self::open_span_monotonic, Self::open_span_detour)
    }

    /// An ordinary span under an overhead budget: timed or only counted, as its name's countdown says.
    #[inline(never)]
    fn open_sampled(&'static self, state: u64) -> Guard {
        if with_hot(|hot| hot.tsc.get()) {
            let enter = |hot: &Hot, packed, state| hot.try_enter_sampled(packed, state, clock::tsc_now);
            return self.open_with(state, enter, Self::open_span_detour);
        }
        self.open_with(
            state,
            |hot, packed, state| hot.try_enter_sampled(packed, state, clock::now),
            Self::open_span_detour,
        )
    }

    /// A step at granularity `Detailed`: on the hot path when it can, as it closes.
    #[inline(never)]
    fn open_step(&'static self, state: u64) -> Guard {
        self.open_hot(state, Hot::try_enter_step, Self::open_step_monotonic, Self::open_plain)
    }

    /// `open_span` where ticks are not TSC counts, apart for the reason `close_monotonic` is.
    #[cold]
    #[inline(never)]
    fn open_span_monotonic(&'static self, state: u64) -> Guard {
        self.open_with(state, |hot, packed, state| hot.try_enter(packed, state, clock::now), Self::open_span_detour)
    }

    /// `open_step` where ticks are not TSC counts.
    #[cold]
    #[inline(never)]
    fn open_step_monotonic(&'static self, state: u64) -> Guard {
        self.open_with(state, |hot, packed, state| hot.try_enter_step(packed, state, clock::now), Self::open_plain)
    }

    /// Opens with `try_enter` on the hot path reading the TSC, with `monotonic` where ticks are not TSC
    /// counts, or with `otherwise` when the hot path cannot.
    #[inline(always)]
    fn open_hot(
        &'static self,
        state: u64,
        try_enter: impl FnOnce(&Hot, u64, u64, fn() -> u64) -> Option<(u32, u32)>,
        monotonic: fn(&'static Self, u64) -> Guard,
        otherwise: fn(&'static Self, u64) -> Guard,
    ) -> Guard {
        if !with_hot(|hot| hot.tsc.get()) {
            return monotonic(self, state);
        }
        self.open_with(state, |hot, packed, state| try_enter(hot, packed, state, clock::tsc_now), otherwise)
    }

    #[inline(always)]
    fn open_with(
        &'static self,
        state: u64,
        try_enter: impl FnOnce(&Hot, u64, u64) -> Option<(u32, u32)>,
        otherwise: fn(&'static Self, u64) -> Guard,
    ) -> Guard {
        let packed = self.packed_ids();
        match with_hot(|hot| try_enter(hot, packed, state)) {
            Some(frame) => Guard::opened(Some(frame)),
            None => otherwise(self, state),
        }
    }

    /// An ordinary span the hot path could not open: beyond the inline stack it still may, out of line;
    /// otherwise the slow path opens it.
    #[cold]
    #[inline(never)]
    fn open_span_detour(&'static self, state: u64) -> Guard {
        let packed = self.packed_ids();
        match with_hot(|hot| hot.try_enter_deep(packed, state, clock::now)) {
            Some(frame) => Guard::opened(Some(frame)),
            None => self.open(state, false),
        }
    }

    /// Opens a span (not a poll) on the slow path.
    #[cold]
    #[inline(never)]
    fn open_plain(&'static self, state: u64) -> Guard {
        self.open(state, false)
    }

    /// Opens a span as `enter` does at granularity `Detailed` without timeline capture, whatever the
    /// settings: for the calibration, which must measure the path that user spans take. Close it with
    /// `Guard::close_detailed`.
    pub(crate) fn enter_detailed(&'static self) -> Guard {
        self.open_span(detailed_state())
    }

    /// Opens a span as `enter_detailed` does, but under a budget whatever the settings: for the calibration
    /// of what an untimed call costs, through the very path such calls take. Close it with
    /// `Guard::close_detailed`.
    pub(crate) fn enter_sampled_detailed(&'static self) -> Guard {
        self.open_span(detailed_state() | registry::SAMPLING)
    }

    /// Opens one poll of an `async fn` of this call site.
    pub(crate) fn enter_poll(&'static self) -> Guard {
        let state = registry::raw_state();
        if TimingGranularity::from_bits(state) != TimingGranularity::Detailed {
            return Guard::INERT;
        }
        self.open(state, true)
    }

    #[cold]
    #[inline(never)]
    fn open(&'static self, state: u64, poll: bool) -> Guard {
        #[cfg(test)]
        slow_opens::count();
        let ids = self.ids();
        Guard::opened(with_recorder(|recorder, hot| recorder.push(hot, self, ids, state, poll)).flatten())
    }

    /// Counts an `async fn` call dropped before it completed, whose polls took `busy` ticks, on the path it
    /// would have run on here.
    pub(crate) fn cancel_async(&'static self, busy: u64) {
        let (granularity, epoch) = registry::state();
        if granularity != TimingGranularity::Detailed {
            return;
        }
        let ids = self.ids();
        with_recorder(|recorder, hot| {
            recorder.ensure_epoch(epoch);
            let parent = recorder.frame(hot, hot.depth.get() as usize).map_or(tree::ROOT, |frame| frame.node);
            let (node, _) = recorder.child(hot, parent, ids.name);
            if node != tree::NO_NODE {
                recorder.add_async(node, AsyncTotals { cancelled: 1, cancelled_ticks: busy, ..AsyncTotals::default() });
            }
        });
    }
}

#[cfg(test)]
crate::store::thread_counter!(
    /// Spans closed on the slow path by this thread, for tests that must know which path a close took.
    slow_closes
);

#[cfg(test)]
crate::store::thread_counter!(
    /// Spans opened on the slow path by this thread.
    slow_opens
);
