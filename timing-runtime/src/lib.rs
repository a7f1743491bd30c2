//! Where the time of a training loop goes: per step, per batch and per phase, merged across threads.
//!
//! Put [`timed`] on the functions of an optimizer, mark the function whose every call is one step with
//! `#[timed(step)]` and the one whose call is a batch of steps with `#[timed(batch)]`, run, and read
//! [`summary`]:
//!
//! ```
//! use timing_runtime::timed;
//!
//! #[timed(phase = "gradient")]
//! fn gradient(x: f64) -> f64 { 2.0 * x }
//!
//! #[timed(phase = "update")]
//! fn update(x: &mut f64, g: f64) { *x -= 0.1 * g; }
//!
//! #[timed(step)]
//! fn step(x: &mut f64) { let g = gradient(*x); update(x, g); }
//!
//! #[timed(batch)]
//! fn train(x: &mut f64, steps: usize) { for _ in 0..steps { step(x); } }
//!
//! let mut x = 10.0;
//! train(&mut x, 1_000);
//! let run = timing_runtime::summary();
//! # #[cfg(feature = "timing")]
//! assert_eq!(run.total_steps, 1_000);
//! println!("{run}");
//! ```
//!
//! # The rules the numbers follow
//! - A step is one call of a `#[timed(step)]` function and its time is that call's wall time. A batch is
//!   one call of a `#[timed(batch)]` function and counts the steps completed on its thread during the call.
//!   A step (or batch) function called inside a step (or batch) on the same thread is an ordinary span of
//!   the outer one: steps do not nest.
//! - Every nanosecond of a step belongs to the innermost enclosing timed call that has a phase; a timed call
//!   without a phase takes its caller's; step time outside every phased call is overhead. The phase shares
//!   and the overhead add up to 100%.
//! - [`TrainingSummary::total_ns`] is the sum of step times.
//! - A recursive function's inclusive time counts its outermost call only.
//! - Memory follows what was recorded: per thread alive, 64 bytes for each call path it took (at most
//!   16,384) and, for each span name it called, a histogram that grows by 512 bytes for each power of two
//!   its durations reach (39 at most); exited threads' memory is reused by new ones. Add the process-wide
//!   table of distinct call paths (16 bytes each) and the step records of a batch in progress. With the
//!   counting allocator ([`alloc::Counting`]), a thread that counts keeps about 18 KiB more, and 2 KiB for
//!   each 64 span names it allocated in.
//!
//! # How it is built
//! The source folders are the parts, from the bottom layer up: `model` (the public data), `store` (what each
//! thread keeps), `record` (what a timed call executes), `report` (summaries from the store) and `export`
//! (the outputs). `docs/architecture.md` in the repository follows one timed call through them.
//!
//! # Switching it off
//! The cargo feature `timing` is on by default. Without it `#[timed]` returns the function exactly as
//! written and every function here is an inline no-op returning an empty value.
//!
//! # Features
//! Only `timing` is on by default, so that a build that wants `#[timed]` and [`summary`] compiles little.
//! `serde` derives `Serialize` and `Deserialize` for every report type; `json` adds it and the JSON
//! outputs (`BatchTiming::json_line`, `Timeline::to_chrome_trace`); `flamegraph`, `html` and `push` add the
//! flamegraph, the page and the Pushgateway client; `serve` the live page and `/metrics` from any program
//! ([`serve`]); `prometheus-client` a collector for that crate's registry (`TimingCollector`); `mlflow` a
//! run logged to an MLflow tracking server (`MlflowRun`).

#![deny(missing_docs, unsafe_code)]

// The layers, each importing only those above it in this list (see `docs/architecture.md`).
mod export;
mod model;
#[cfg(not(feature = "timing"))]
mod off;
#[cfg(feature = "timing")]
mod record;
mod report;
#[cfg(feature = "timing")]
mod store;

pub use model::{
    AllocationSummary, Allocations, BatchBreakdown, BatchMachine, BatchPoint, BatchTiming, Budget, BudgetError,
    BudgetReport, CallNode, CallTree, Distribution, Estimate, MachineSummary, PerStep, PhaseBreakdown, PhaseShare,
    PhaseTime, RecomputeSummary, RecomputeTiming, STALL_MIN_NS, STALL_SHARE, SampledSpan, SlowStep, SpanStats, Spread,
    Stall, StepAllocations, StepTiming, Timeline, TimelineEvent, TimingGranularity, TrainingSummary,
};

/// Allocations beside the time: install [`Counting`](alloc::Counting) as the global allocator and every
/// report says how many allocations (and bytes) each span, each phase per step and each step made.
///
/// ```no_run
/// #[global_allocator]
/// static ALLOCATOR: timing_runtime::alloc::Counting = timing_runtime::alloc::Counting::system();
/// ```
///
/// Without it, the allocation fields of every report are `None` and spans cost what they cost without it.
pub mod alloc {
    #[cfg(not(feature = "timing"))]
    pub use crate::off::Counting;
    #[cfg(feature = "timing")]
    pub use crate::record::alloc::Counting;
}
#[cfg(feature = "prometheus-client")]
pub use export::collector::TimingCollector;
#[cfg(feature = "mlflow")]
pub use export::mlflow::{MlflowError, MlflowRun};
#[cfg(feature = "push")]
pub use export::push::PushError;
#[cfg(feature = "serve")]
pub use export::serve::Server;
#[cfg(not(feature = "timing"))]
pub use off::BatchHandle;
#[cfg(feature = "timing")]
pub use record::recorder::BatchHandle;
pub use report::{
    CONFIDENCE, Change, CompareSettings, Comparison, DEFAULT_MIN_CHANGE_PCT, DEFAULT_NOISE_PCT, SINGLE_RUN_NOISE_PCT,
    Verdict,
};
#[doc(inline)]
pub use timing_macros::timed;

/// What the code generated by [`timed`] and [`scope!`] calls. Not a public API: it changes without notice.
#[doc(hidden)]
pub mod __private {
    #[cfg(not(feature = "timing"))]
    pub use crate::off::{Callsite, Kind, per_type, per_type_method};
    #[cfg(feature = "timing")]
    pub use crate::record::callsite::{Callsite, Kind, per_type, per_type_method};
    #[cfg(feature = "timing")]
    pub use crate::record::future::Instrumented;

    /// A value of any type, never made: `#[timed]` returns it from a branch never taken, to give an `async`
    /// block the declared output type first.
    #[doc(hidden)]
    pub fn never<T>() -> T {
        unreachable!("`#[timed]` never takes this branch")
    }

    /// For the tests that disturb the calibration on purpose: takes in a first measurement of the
    /// instrumentation's costs of `ticks` per call for every way of closing, none inside and no floor, as a
    /// measurement cut short would give; call it before the first timed call of the process.
    #[cfg(feature = "timing")]
    #[doc(hidden)]
    pub fn disturb_calibration(ticks: u64) {
        crate::record::charge::measure_once(|| crate::record::charge::Costs {
            outside: [ticks; 6],
            inside: 0,
            floor: 0,
        });
    }

    /// How many times the instrumentation's costs have been measured in this process.
    #[cfg(feature = "timing")]
    #[doc(hidden)]
    #[must_use]
    pub fn calibrations() -> usize {
        crate::record::charge::measurements()
    }

    /// The phase of a [`scope!`](crate::scope), which may be left out.
    #[must_use]
    pub const fn phase(phase: &'static [&'static str]) -> Option<&'static str> {
        match phase {
            [phase] => Some(phase),
            _ => None,
        }
    }
}

/// Times the rest of the enclosing block, for code that cannot carry an attribute (closures, `rayon` bodies,
/// part of a function, the body of a loop). Takes a span name and, optionally, `step` or `batch` (the block
/// is one optimizer step, or one batch of steps, as with `#[timed(step)]` and `#[timed(batch)]`) and a
/// phase; returns a guard that closes the span when it is dropped.
///
/// ```
/// let total: f64 = (0..4)
///     .map(|i| {
///         let _scope = timing_runtime::scope!("square", phase = "regions");
///         f64::from(i * i)
///     })
///     .sum();
/// # #[cfg(feature = "timing")]
/// assert!(timing_runtime::summary().span("square").is_some());
/// # assert_eq!(total, 14.0);
/// ```
///
/// A training loop whose step is the body of a loop:
///
/// ```
/// let mut x = 10.0_f64;
/// {
///     let _batch = timing_runtime::scope!("train", batch);
///     for _ in 0..100 {
///         let _step = timing_runtime::scope!("step", step);
///         x -= 0.1 * 2.0 * x;
///     }
/// }
/// # #[cfg(feature = "timing")]
/// assert_eq!(timing_runtime::last_batch().map(|batch| batch.steps), Some(100));
/// ```
#[macro_export]
macro_rules! scope {
    ($name:literal, step $(, phase = $phase:literal)? $(,)?) => {
        $crate::scope!(@open $name, [$($phase)?], Step)
    };
    ($name:literal, batch $(, phase = $phase:literal)? $(,)?) => {
        $crate::scope!(@open $name, [$($phase)?], Batch)
    };
    ($name:literal $(, phase = $phase:literal)? $(,)?) => {
        $crate::scope!(@open $name, [$($phase)?], Span)
    };
    (@open $name:literal, [$($phase:literal)?], $kind:ident) => {{
        static __TIMING_CALLSITE: $crate::__private::Callsite = $crate::__private::Callsite::new(
            $name,
            $crate::__private::phase(&[$($phase)?]),
            $crate::__private::Kind::$kind,
            ::core::module_path!(),
            ::core::file!(),
            ::core::line!(),
        );
        $crate::__private::Callsite::enter_as(&__TIMING_CALLSITE, $crate::__private::Kind::$kind)
    }};
}

/// Sets how much is recorded, on every thread, from the next timed call on.
///
/// ```
/// use timing_runtime::{TimingGranularity, set_granularity};
/// set_granularity(TimingGranularity::Batch);
/// # set_granularity(TimingGranularity::Detailed);
/// ```
#[inline]
pub fn set_granularity(granularity: TimingGranularity) {
    #[cfg(feature = "timing")]
    store::registry::set_granularity(granularity);
    #[cfg(not(feature = "timing"))]
    let _ = granularity;
}

/// How much is recorded now; [`TimingGranularity::None`] when the `timing` feature is off.
#[inline]
#[must_use]
pub fn granularity() -> TimingGranularity {
    #[cfg(feature = "timing")]
    return store::registry::state().0;
    #[cfg(not(feature = "timing"))]
    TimingGranularity::None
}

/// Whether the runtime's own cost per timed call, measured at the first timed call of the process, is left
/// out of the callers' self time (and so out of phase time): on by default. The cost is reported in
/// [`TrainingSummary::instrumentation_ns_per_call`].
#[inline]
pub fn set_subtract_instrumentation(on: bool) {
    #[cfg(feature = "timing")]
    record::charge::set_subtract(on);
    #[cfg(not(feature = "timing"))]
    let _ = on;
}

/// Sets an overhead budget for the instrumentation, from the next timed call on, on every thread: under
/// [`Budget::percent`], steps, batches and calls that open a phase stay exact, and the other calls of each
/// span name are timed 1 in N on each thread, N adapted so that the instrumentation stays within the budget;
/// every call is still counted, and a call not timed is estimated from its call path's timed ones (the
/// summary's [`SpanStats::estimate`] says how far off that may be). Phase times stay exact: a call not
/// timed has its caller's phase, and the time its estimate gives it is taken from its caller.
/// [`Budget::EXACT`], the default, times every call. The environment variable `TIMING_BUDGET` sets one for
/// a program that does not call this.
///
/// ```
/// use timing_runtime::{Budget, set_budget};
/// set_budget(Budget::percent(1.0))?;
/// # set_budget(Budget::EXACT)?;
/// # Ok::<(), timing_runtime::BudgetError>(())
/// ```
///
/// # Errors
/// [`BudgetError::OutOfRange`] for a percentage not above 0 and at most 100; the budget in force is kept.
#[inline]
pub fn set_budget(budget: Budget) -> Result<(), BudgetError> {
    #[cfg(feature = "timing")]
    return record::budget::set(budget);
    #[cfg(not(feature = "timing"))]
    budget.checked().map(|_| ())
}

/// The overhead budget in force; [`Budget::EXACT`] when the `timing` feature is off.
#[inline]
#[must_use]
pub fn budget() -> Budget {
    #[cfg(feature = "timing")]
    return record::budget::current();
    #[cfg(not(feature = "timing"))]
    Budget::EXACT
}

/// Forgets everything recorded so far, on every thread. A step in progress on another thread when this is
/// called is counted whole after it, never split.
#[inline]
pub fn reset() {
    #[cfg(feature = "timing")]
    store::registry::reset();
}

/// Everything recorded since the last [`reset`], all threads merged: steps completed on threads still
/// running and on threads that have exited.
#[inline]
#[must_use]
pub fn summary() -> TrainingSummary {
    #[cfg(feature = "timing")]
    return store::allocs::quiet(|| report::summary::summary(granularity()));
    #[cfg(not(feature = "timing"))]
    TrainingSummary::default()
}

/// Serves the run live from this program, on threads of its own, until the returned [`Server`] is dropped:
/// `GET /` the run's page, updating itself once a second; `GET /metrics` the Prometheus exposition;
/// `GET /summary.json` the [`TrainingSummary`]. Needs the `serve` feature.
///
/// `address` is a port alone (`"9185"` or `":9185"`, on loopback) or an address to bind as written
/// (`"0.0.0.0:9185"` serves every interface: the run is then readable by anyone who can reach the port).
/// Port 0 lets the system choose; [`Server::local_addr`] says which.
///
/// ```
/// let server = timing_runtime::serve(":0")?;
/// println!("watch the run at {}", server.url());
/// // ... train ...
/// drop(server);
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// Connections are answered on threads of their own, at most 16 at once (the next get 503),
/// each with deadlines on its reads and writes, so a stuck client never stalls the server, the
/// recording threads or the program's exit. Requests answer from the latest summary, which a thread of the
/// server's makes at the cadence requests come (every 500 ms for a page polling once a second, every 5 s
/// for a scraper asking every 15 s), without the call tree, which is made again every 10 s.
///
/// # Errors
/// When `address` names no address or cannot be bound (taken, or not this machine's).
#[cfg(feature = "serve")]
#[must_use = "the server stops when it is dropped: keep it in a variable for as long as it should serve"]
pub fn serve(address: &str) -> std::io::Result<Server> {
    Server::start(address, summary_without_tree, summary)
}

#[cfg(feature = "prometheus-client")]
impl TimingCollector {
    /// The collector of this process's run, for `Registry::register_collector`.
    #[must_use]
    pub fn new() -> Self {
        TimingCollector::with_source(summary_without_tree)
    }
}

#[cfg(feature = "prometheus-client")]
impl Default for TimingCollector {
    fn default() -> Self {
        Self::new()
    }
}

/// [`summary`] with an empty call tree, which is most of a summary's cost in a process of many call paths:
/// what a scrape and a live page's updates need.
#[cfg(any(feature = "serve", feature = "prometheus-client"))]
fn summary_without_tree() -> TrainingSummary {
    #[cfg(feature = "timing")]
    return store::allocs::quiet(|| report::summary::summary_with(granularity(), false));
    #[cfg(not(feature = "timing"))]
    TrainingSummary::default()
}

/// The latest batch completed on the calling thread since the last [`reset`].
#[inline]
#[must_use]
pub fn last_batch() -> Option<BatchTiming> {
    #[cfg(feature = "timing")]
    return record::recorder::last_batch();
    #[cfg(not(feature = "timing"))]
    None
}

/// Runs `work` as one batch of steps labelled `label` on this thread, and returns its result with the
/// batch's timing: for a server's handler that reports each batch it ran, or a training loop on a thread
/// pool. Steps that `work` runs on other threads count to the batch when they run inside
/// [`BatchHandle::in_scope`] of [`batch_handle`]. The timing is `None` inside another batch on this thread
/// (where this one is an ordinary span) and with the `timing` feature off. For code with early returns,
/// [`start_batch`] does the same with a guard.
///
/// The label may be chosen at run time (`format!("variant-{id}")`): each distinct label is a span of its
/// own in every output. The first 1,024 labels of the process are kept apart; the batches of any later one
/// share a span named `other batch labels (beyond 1,024)`, so that a label per request does not grow
/// memory without limit.
///
/// ```
/// use timing_runtime::timed;
///
/// #[timed(step)]
/// fn step(x: &mut f64) { *x *= 0.9; }
///
/// let mut x = 1.0;
/// let ((), timing) = timing_runtime::batch("train", || (0..10).for_each(|_| step(&mut x)));
/// # #[cfg(feature = "timing")]
/// assert_eq!(timing.map(|timing| timing.steps), Some(10));
/// ```
pub fn batch<R>(label: &str, work: impl FnOnce() -> R) -> (R, Option<BatchTiming>) {
    let batch = start_batch(label);
    let result = work();
    (result, batch.finish())
}

/// Starts a batch of steps labelled `label` on this thread, open until the guard is dropped or
/// [`finish`](BatchGuard::finish)ed: [`batch`] for code that does not fit a closure (a handler with early
/// `return`s or `?`).
///
/// ```
/// use timing_runtime::{start_batch, timed};
///
/// #[timed(step)]
/// fn step(x: &mut f64) { *x *= 0.9; }
///
/// fn handle(steps: usize) -> Result<f64, String> {
///     let batch = start_batch(&format!("variant-{}", steps % 3));
///     if steps == 0 {
///         return Err("no steps".into()); // the batch ends here, with no steps
///     }
///     let mut x = 1.0;
///     (0..steps).for_each(|_| step(&mut x));
///     let timing = batch.finish();
///     # #[cfg(feature = "timing")]
///     assert_eq!(timing.map(|timing| timing.steps), Some(steps));
///     Ok(x)
/// }
/// assert!(handle(0).is_err());
/// assert!(handle(4).is_ok());
/// ```
#[must_use = "the batch ends when this guard is dropped"]
pub fn start_batch(label: &str) -> BatchGuard {
    #[cfg(feature = "timing")]
    {
        use record::callsite::{Kind, dynamic};
        let before = record::recorder::batches_done();
        BatchGuard { guard: Some(dynamic(label, Kind::Batch).enter_as(Kind::Batch)), before }
    }
    #[cfg(not(feature = "timing"))]
    {
        let _ = label;
        BatchGuard { _not_send: std::marker::PhantomData }
    }
}

/// A batch open on this thread, from [`start_batch`]: it ends when the guard is dropped, or with
/// [`finish`](BatchGuard::finish), which also returns its timing. Not `Send`: a batch is one call on one
/// thread.
#[derive(Debug)]
pub struct BatchGuard {
    #[cfg(feature = "timing")]
    guard: Option<record::guard::Guard>,
    #[cfg(feature = "timing")]
    before: u64,
    #[cfg(not(feature = "timing"))]
    _not_send: std::marker::PhantomData<*const ()>,
}

impl BatchGuard {
    /// Ends the batch and returns its timing: `None` inside another batch on this thread (where this one
    /// is an ordinary span), at granularity `None`, and with the `timing` feature off.
    #[must_use]
    pub fn finish(mut self) -> Option<BatchTiming> {
        #[cfg(feature = "timing")]
        {
            drop(self.guard.take());
            // A batch that did not open completes none.
            let completed = record::recorder::batches_done() != self.before;
            if completed { last_batch() } else { None }
        }
        #[cfg(not(feature = "timing"))]
        {
            let _ = &mut self;
            None
        }
    }
}

/// Runs `work`, which rebuilds step `target_step` by replaying the steps after `keyframe_step` (an optimizer
/// that keeps keyframes, asked for a step it did not keep), and returns its result with the
/// recomputation's timing: "step 5432: recomputed from 5120 (312 steps, 8.2ms)".
///
/// The replay is a span named `recompute`, in the call tree with whatever it calls; the `#[timed(step)]`
/// functions it calls are ordinary spans there, not steps of the run, so that replaying adds nothing to the
/// run's steps, its phase breakdown or its rate. The summary's `recomputations` counts them apart (count,
/// steps replayed, time per replayed step). Inside a step, the replay is part of that step's time, as any
/// call in it is.
///
/// ```
/// use timing_runtime::{recompute, timed};
///
/// #[timed(step)]
/// fn step(x: f64) -> f64 { x * 0.9 }
///
/// let keyframe = (5120, 1.0);
/// let (x, timing) = recompute(keyframe.0, 5432, || (keyframe.0..5432).fold(keyframe.1, |x, _| step(x)));
/// assert!(x < 1.0);
/// assert_eq!(timing.steps_recomputed, 312);
/// # #[cfg(feature = "timing")]
/// assert_eq!(timing_runtime::summary().total_steps, 0);
/// ```
pub fn recompute<R>(keyframe_step: u64, target_step: u64, work: impl FnOnce() -> R) -> (R, RecomputeTiming) {
    #[cfg(feature = "timing")]
    {
        use record::callsite::{Kind, recompute};
        let start = std::time::Instant::now();
        let (result, epoch) = {
            let _span = recompute().enter_as(Kind::Span);
            record::recorder::replaying(work)
        };
        let compute_ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let timing = RecomputeTiming::new(keyframe_step, target_step, compute_ns);
        store::recomputes::record(epoch, timing.steps_recomputed, compute_ns);
        (result, timing)
    }
    #[cfg(not(feature = "timing"))]
    {
        let start = std::time::Instant::now();
        let result = work();
        let compute_ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        (result, RecomputeTiming::new(keyframe_step, target_step, compute_ns))
    }
}

/// The batch open on this thread, to carry into work on other threads: steps completed inside its
/// [`BatchHandle::in_scope`] count to it. `None` outside every batch.
///
/// ```
/// use timing_runtime::{batch, batch_handle, timed};
///
/// #[timed(step)]
/// fn step(x: u64) -> u64 { x + 1 }
///
/// let (_, timing) = batch("parallel", || {
///     let handle = batch_handle();
///     std::thread::scope(|scope| {
///         for worker in 0..2 {
///             let handle = handle.clone();
///             scope.spawn(move || {
///                 let work = || (0..5).map(|x| step(x + worker)).sum::<u64>();
///                 match &handle { Some(handle) => handle.in_scope(work), None => work() }
///             });
///         }
///     });
/// });
/// # #[cfg(feature = "timing")]
/// assert_eq!(timing.map(|timing| timing.steps), Some(10));
/// ```
#[must_use]
pub fn batch_handle() -> Option<BatchHandle> {
    #[cfg(feature = "timing")]
    return record::recorder::batch_handle();
    #[cfg(not(feature = "timing"))]
    None
}

/// Switches timeline capture on, keeping the newest `events_per_thread` spans of each thread (the oldest are
/// dropped, and counted in [`Timeline::dropped`]), or off with 0. Captured at granularity `Detailed`; costs
/// a flag test per span when off.
///
/// ```
/// use timing_runtime::{set_timeline, timed, timeline};
///
/// #[timed(phase = "regions")]
/// fn regions() -> u64 { std::hint::black_box(7) }
///
/// set_timeline(10_000);
/// regions();
/// let captured = timeline(); // `to_chrome_trace()` (feature `json`) opens in ui.perfetto.dev
/// # #[cfg(feature = "timing")]
/// assert!(captured.events.iter().any(|event| event.name == "regions"));
/// set_timeline(0);
/// ```
#[inline]
pub fn set_timeline(events_per_thread: usize) {
    #[cfg(feature = "timing")]
    {
        store::events::set_capacity(events_per_thread);
        store::registry::set_timeline(events_per_thread > 0);
    }
    #[cfg(not(feature = "timing"))]
    let _ = events_per_thread;
}

/// The captured timeline of every thread since the last [`reset`]. The calling thread's newest events are
/// included; another live thread's are included up to its last batch end or last block of 256 events.
#[must_use]
pub fn timeline() -> Timeline {
    #[cfg(feature = "timing")]
    return store::allocs::quiet(report::timeline::timeline);
    #[cfg(not(feature = "timing"))]
    Timeline::default()
}
