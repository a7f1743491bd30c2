//! The run summary: steps, rate, the phase breakdown and per-span statistics, merged across threads.

#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};

use crate::model::alloc::{AllocationSummary, Allocations, StepAllocations};
use crate::model::budget::{BudgetReport, Estimate};
use crate::model::calltree::CallTree;
use crate::model::granularity::TimingGranularity;
use crate::model::machine::MachineSummary;
use crate::model::step::{BatchPoint, SlowStep};

/// Everything recorded since the last [`reset`](crate::reset), all threads merged. Made by
/// [`summary`](crate::summary()); prints as the report.
///
/// ```
/// use timing_runtime::{timed, summary, reset};
///
/// #[timed(phase = "gradient")]
/// fn gradient() -> f64 { std::hint::black_box(1.0) }
///
/// #[timed(step)]
/// fn step() -> f64 { gradient() }
///
/// reset();
/// for _ in 0..10 { step(); }
/// let run = summary();
/// # #[cfg(feature = "timing")] {
/// assert_eq!(run.total_steps, 10);
/// assert_eq!(run.span("gradient").map(|stats| stats.count), Some(10));
/// # }
/// println!("{run}");
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct TrainingSummary {
    /// The version of `timing-runtime` that made this summary; empty in summaries saved before it was kept.
    #[cfg_attr(feature = "serde", serde(default))]
    pub version: String,
    /// Steps completed.
    pub total_steps: usize,
    /// The sum of step times, over all threads.
    pub total_ns: u64,
    /// `total_steps` over `wall_ns` (over `total_ns` where no wall time is known), in steps per second: the
    /// rate a batch reports too (its steps over its wall time).
    pub steps_per_second: f64,
    /// Wall time from the first step's start to the latest step's end, over all threads; with threads
    /// stepping at once, less than `total_ns`, which sums the steps of all threads.
    #[cfg_attr(feature = "serde", serde(default))]
    pub wall_ns: u64,
    /// Where the step time went, by phase.
    pub phase_breakdown: PhaseBreakdown,
    /// Batches completed.
    pub batches: usize,
    /// The sum of batch wall times, over all threads.
    pub batch_ns: u64,
    /// Where the batch time went: steps, and the batches' own work between them.
    #[cfg_attr(feature = "serde", serde(default))]
    pub batch_breakdown: BatchBreakdown,
    /// Steps rebuilt on demand by replaying from a keyframe ([`recompute`](crate::recompute)); `None` when
    /// there were none. Replayed steps are not in `total_steps` nor in the rate.
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "Option::is_none"))]
    pub recomputations: Option<RecomputeSummary>,
    /// Statistics per span name, by total time, largest first (granularity `Detailed`).
    pub spans: Vec<SpanStats>,
    /// Threads that recorded, live or exited.
    pub threads: usize,
    /// The granularity when the summary was made.
    pub granularity: TimingGranularity,
    /// The spread of step times (granularity `Batch` or finer).
    pub step_distribution: Distribution,
    /// Step times, bucket by bucket.
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "Spread::is_empty"))]
    pub step_spread: Spread,
    /// The slowest steps that stood out of their batch (mean + 3σ), slowest first, at most 32.
    pub slow_steps: Vec<SlowStep>,
    /// The run's batches in the order they ended, at most 256 points (neighbours merged beyond that).
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "Vec::is_empty"))]
    pub batch_points: Vec<BatchPoint>,
    /// Timed calls by call path (granularity `Detailed`).
    pub call_tree: CallTree,
    /// What one timed call costs its caller in instrumentation, measured at the first timed call of the
    /// process (0 before it).
    pub instrumentation_ns_per_call: f64,
    /// Whether that cost is left out of self and phase times (it then counts as overhead).
    pub instrumentation_subtracted: bool,
    /// Heap activity, when `timing_runtime::alloc::Counting` is the global allocator; `None` otherwise.
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "Option::is_none"))]
    pub allocations: Option<AllocationSummary>,
    /// The overhead budget in force when the summary was made, and what it sampled; `None` without one.
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "Option::is_none"))]
    pub budget: Option<BudgetReport>,
    /// What the machine gave the batches (CPU time against wall time, stalls) and the process's resident
    /// memory; `None` without batches, or where neither can be read (not Linux, WASM).
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "Option::is_none"))]
    pub machine: Option<MachineSummary>,
}

impl TrainingSummary {
    /// The statistics of span `name` (a function's name, or the `name` given to `#[timed]`).
    #[must_use]
    pub fn span(&self, name: &str) -> Option<&SpanStats> {
        self.spans.iter().find(|stats| stats.name == name)
    }
}

/// The run's recomputations (see [`RecomputeTiming`](crate::RecomputeTiming)).
#[derive(Clone, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct RecomputeSummary {
    /// Recomputations made.
    pub count: u64,
    /// Steps they replayed, in all.
    pub steps_replayed: u64,
    /// Their wall time, in all.
    pub compute_ns: u64,
    /// Time per replayed step, one value per recomputation.
    pub per_step: Distribution,
}

/// Where the batches' wall time went, adding up to it (and, in percent, to 100): the steps their threads ran,
/// the batches' own work between those steps (cloning the state, a check before the next step: what a
/// step's phases never see), and what cannot be split so.
#[derive(Clone, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct BatchBreakdown {
    /// The steps the batches' own threads ran during them.
    pub steps_ns: u64,
    /// `steps_ns` in percent of the batch time.
    pub steps_pct: f64,
    /// The batches' own time between (and around) their steps.
    pub between_steps_ns: u64,
    /// `between_steps_ns` in percent of the batch time.
    pub between_steps_pct: f64,
    /// Batches whose steps all ran on other threads (a pool's, whose steps are counted there), or that a
    /// reset cut in two.
    pub unsplit_ns: u64,
    /// `unsplit_ns` in percent of the batch time.
    pub unsplit_pct: f64,
}

impl BatchBreakdown {
    /// The breakdown of `batch_ns` of batch time, `steps_ns` of it in steps and `unsplit_ns` not split.
    #[must_use]
    #[allow(clippy::cast_precision_loss)]
    pub fn new(batch_ns: u64, steps_ns: u64, unsplit_ns: u64) -> Self {
        let unsplit_ns = unsplit_ns.min(batch_ns);
        let steps_ns = steps_ns.min(batch_ns - unsplit_ns);
        let between_steps_ns = batch_ns - unsplit_ns - steps_ns;
        let pct = |ns: u64| if batch_ns == 0 { 0.0 } else { ns as f64 * 100.0 / batch_ns as f64 };
        BatchBreakdown {
            steps_ns,
            steps_pct: pct(steps_ns),
            between_steps_ns,
            between_steps_pct: pct(between_steps_ns),
            unsplit_ns,
            unsplit_pct: pct(unsplit_ns),
        }
    }
}

/// Where the step time went: each phase's share and what was outside every phase (`overhead`), which is the
/// user's own code outside every phase (`unphased`) and the instrumentation's calibrated cost
/// (`instrumentation`). The shares of the phases and `overhead_pct` add up to 100, and so do the phases,
/// `unphased_pct` and `instrumentation_pct`.
///
/// ```
/// use timing_runtime::{PhaseBreakdown, PhaseShare};
///
/// let breakdown = PhaseBreakdown::from_ns(1_000, vec![("gradient".into(), 700), ("error".into(), 200)]);
/// assert_eq!(breakdown.pct("gradient"), 70.0);
/// assert_eq!(breakdown.pct("regions"), 0.0);
/// assert!((breakdown.overhead_pct - 10.0).abs() < 1e-9);
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct PhaseBreakdown {
    /// Each phase that took time, largest share first.
    pub phases: Vec<PhaseShare>,
    /// Nanoseconds of step time outside every phase: `unphased_ns + instrumentation_ns`.
    pub overhead_ns: u64,
    /// Percentage of step time outside every phase.
    pub overhead_pct: f64,
    /// Nanoseconds of step time in the user's code outside every phase.
    #[cfg_attr(feature = "serde", serde(default))]
    pub unphased_ns: u64,
    /// Percentage of step time in the user's code outside every phase.
    #[cfg_attr(feature = "serde", serde(default))]
    pub unphased_pct: f64,
    /// Nanoseconds of step time that the timed calls inside steps cost in instrumentation: their count times
    /// the calibrated cost per call, when that cost is subtracted (otherwise it stays in the phases, and this
    /// is 0).
    #[cfg_attr(feature = "serde", serde(default))]
    pub instrumentation_ns: u64,
    /// Percentage of step time that the instrumentation cost.
    #[cfg_attr(feature = "serde", serde(default))]
    pub instrumentation_pct: f64,
}

/// One phase's part of the step time.
#[derive(Clone, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct PhaseShare {
    /// The phase, as written in `#[timed(phase = "...")]`.
    pub phase: String,
    /// Nanoseconds of step time in the phase.
    pub ns: u64,
    /// Percentage of step time in the phase.
    pub pct: f64,
    /// The spread of this phase's time per step, over all steps.
    pub per_step: Distribution,
    /// This phase's time per step, bucket by bucket.
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "Spread::is_empty"))]
    pub spread: Spread,
    /// Allocations per step in this phase, with a counting allocator installed.
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "Option::is_none"))]
    pub allocations: Option<StepAllocations>,
}

/// The spread of a set of durations: percentiles from a log-linear histogram (each within 0.8% of the exact
/// value) of fixed size, whatever the number of values.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct Distribution {
    /// Mean.
    pub mean_ns: f64,
    /// Median.
    pub p50_ns: u64,
    /// 90th percentile.
    pub p90_ns: u64,
    /// 95th percentile.
    pub p95_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// Largest.
    pub max_ns: u64,
    /// Standard deviation.
    pub stddev_ns: f64,
}

/// The recorded values themselves, compactly: each non-empty bucket of the log-linear histogram as the value
/// it stands for (its middle, within 0.8% of every value in it; exact below 128 ns) and how many values fell
/// in it, in increasing order of value. What Prometheus buckets are made from, and what a comparison of two
/// runs can test beyond their means.
///
/// ```
/// use timing_runtime::Spread;
///
/// let spread = Spread { buckets: vec![(100, 3), (1_000, 2), (10_000, 1)] };
/// assert_eq!((spread.count(), spread.count_at_most(1_000), spread.sum()), (6, 5, 12_300));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
#[cfg_attr(feature = "serde", serde(transparent))]
pub struct Spread {
    /// `(value, count)` of each non-empty bucket, by increasing value.
    pub buckets: Vec<(u64, u64)>,
}

impl Spread {
    /// The number of values.
    #[must_use]
    pub fn count(&self) -> u64 {
        self.buckets.iter().fold(0u64, |sum, (_, count)| sum.saturating_add(*count))
    }

    /// The number of values whose bucket stands for at most `value`.
    #[must_use]
    pub fn count_at_most(&self, value: u64) -> u64 {
        let below = self.buckets.iter().take_while(|(at, _)| *at <= value);
        below.fold(0u64, |sum, (_, count)| sum.saturating_add(*count))
    }

    /// The sum of the values, each as its bucket's value.
    #[must_use]
    pub fn sum(&self) -> u64 {
        self.buckets.iter().fold(0u64, |sum, (at, count)| sum.saturating_add(at.saturating_mul(*count)))
    }

    /// Whether no value was recorded.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

impl PhaseBreakdown {
    /// The breakdown of `total_ns` of step time among `phases` (name, ns); the rest is overhead.
    #[must_use]
    pub fn from_ns(total_ns: u64, phases: Vec<(String, u64)>) -> Self {
        let phased: u64 = phases.iter().fold(0, |sum, (_, ns)| sum.saturating_add(*ns));
        let total = total_ns.max(phased);
        let mut phases: Vec<PhaseShare> = phases
            .into_iter()
            .filter(|(_, ns)| *ns > 0)
            .map(|(phase, ns)| PhaseShare { phase, ns, pct: percent(ns, total), ..PhaseShare::default() })
            .collect();
        phases.sort_by(|a, b| b.ns.cmp(&a.ns).then_with(|| a.phase.cmp(&b.phase)));
        let overhead_ns = total - phased;
        let overhead_pct = if total == 0 { 0.0 } else { 100.0 - phases.iter().map(|share| share.pct).sum::<f64>() };
        let overhead_pct = overhead_pct.max(0.0);
        PhaseBreakdown {
            phases,
            overhead_ns,
            overhead_pct,
            unphased_ns: overhead_ns,
            unphased_pct: overhead_pct,
            instrumentation_ns: 0,
            instrumentation_pct: 0.0,
        }
    }

    /// The breakdown with `instrumentation_ns` of its overhead told apart from the user's unphased code
    /// (at most all of the overhead).
    ///
    /// ```
    /// use timing_runtime::PhaseBreakdown;
    ///
    /// let breakdown = PhaseBreakdown::from_ns(1_000, vec![("gradient".into(), 700)]).with_instrumentation(100);
    /// assert_eq!((breakdown.unphased_ns, breakdown.instrumentation_ns), (200, 100));
    /// assert!((breakdown.pct("gradient") + breakdown.unphased_pct + breakdown.instrumentation_pct - 100.0).abs() < 1e-9);
    /// ```
    #[must_use]
    pub fn with_instrumentation(mut self, instrumentation_ns: u64) -> Self {
        let instrumentation_ns = instrumentation_ns.min(self.overhead_ns);
        self.instrumentation_ns = instrumentation_ns;
        self.unphased_ns = self.overhead_ns - instrumentation_ns;
        #[allow(clippy::cast_precision_loss)]
        let share = if self.overhead_ns == 0 { 0.0 } else { instrumentation_ns as f64 / self.overhead_ns as f64 };
        self.instrumentation_pct = self.overhead_pct * share;
        self.unphased_pct = self.overhead_pct - self.instrumentation_pct;
        self
    }

    /// The percentage of step time in `phase`; 0 for a phase that took no time or does not exist.
    #[must_use]
    pub fn pct(&self, phase: &str) -> f64 {
        self.phases.iter().find(|share| share.phase == phase).map_or(0.0, |share| share.pct)
    }

    /// The nanoseconds of step time in `phase`; 0 for a phase that took no time or does not exist.
    #[must_use]
    pub fn ns(&self, phase: &str) -> u64 {
        self.phases.iter().find(|share| share.phase == phase).map_or(0, |share| share.ns)
    }
}

/// The statistics of one span name over all its call paths and threads, for every timed call, inside a
/// step or not.
#[derive(Clone, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct SpanStats {
    /// The span's name, as every output shows it.
    pub name: String,
    /// Its function's full path (`apvd_core::analysis::component::Component::new`) where `name` is shorter
    /// than it (told apart from another function of its name by the shortest end of its module path that
    /// no other has: `component::Component::new`); `None` otherwise.
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "Option::is_none"))]
    pub full_name: Option<String>,
    /// Completed calls. Every field but `cancelled` and `cancelled_ns` describes these calls only.
    pub count: u64,
    /// Inclusive time; of a recursive function, its outermost calls only, so never more than wall time.
    pub total_ns: u64,
    /// Time not spent in other timed calls.
    pub self_ns: u64,
    /// The shortest call.
    pub min_ns: u64,
    /// The longest call.
    pub max_ns: u64,
    /// `total_ns / count`.
    pub mean_ns: f64,
    /// For `async fn`: first poll to completion, summed over completed calls; `total_ns` is the busy time
    /// (the sum of polls). Equal to `total_ns` for other functions.
    pub wall_ns: u64,
    /// For `async fn`: futures dropped before they completed.
    pub cancelled: u64,
    /// For `async fn`: the time of the polls of the futures dropped before they completed (in the phase
    /// breakdown, as it was spent, but in no other field here).
    #[cfg_attr(feature = "serde", serde(default))]
    pub cancelled_ns: u64,
    /// Median call time.
    pub p50_ns: u64,
    /// 90th percentile of call time.
    pub p90_ns: u64,
    /// 95th percentile of call time.
    pub p95_ns: u64,
    /// 99th percentile of call time.
    pub p99_ns: u64,
    /// Standard deviation of call time.
    pub stddev_ns: f64,
    /// Call times, bucket by bucket.
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "Spread::is_empty"))]
    pub spread: Spread,
    /// Heap activity while this span was the innermost open one on its thread (its callees' own spans
    /// count theirs), with a counting allocator installed.
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "Option::is_none"))]
    pub allocations: Option<Allocations>,
    /// Under an overhead budget, when some calls were counted but not timed: how many were timed, and how
    /// far the times may be from the exact ones. `None`: every call was timed, and the times are exact.
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "Option::is_none"))]
    pub estimate: Option<Estimate>,
}

#[allow(clippy::cast_precision_loss)]
fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 { 0.0 } else { part as f64 * 100.0 / whole as f64 }
}
