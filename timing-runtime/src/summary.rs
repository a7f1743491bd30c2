//! The run summary: steps, rate, the phase breakdown and per-span statistics, merged across threads.

use serde::{Deserialize, Serialize};

use crate::granularity::TimingGranularity;

/// Everything recorded since the last [`reset`](crate::reset), all threads merged. Made by
/// [`summary`](crate::summary); prints as the report.
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
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainingSummary {
    /// Steps completed.
    pub total_steps: usize,
    /// The sum of step times.
    pub total_ns: u64,
    /// `total_steps` over `total_ns`, in steps per second.
    pub steps_per_second: f64,
    /// Where the step time went, by phase.
    pub phase_breakdown: PhaseBreakdown,
    /// Batches completed.
    pub batches: usize,
    /// The sum of batch wall times.
    pub batch_ns: u64,
    /// Statistics per span name, by total time, largest first (granularity `Detailed`).
    pub spans: Vec<SpanStats>,
    /// Threads that recorded, live or exited.
    pub threads: usize,
    /// The granularity when the summary was made.
    pub granularity: TimingGranularity,
}

impl TrainingSummary {
    /// The statistics of span `name` (a function's name, or the `name` given to `#[timed]`).
    #[must_use]
    pub fn span(&self, name: &str) -> Option<&SpanStats> {
        self.spans.iter().find(|stats| stats.name == name)
    }
}

/// Where the step time went: each phase's share and what was outside every phase. The shares of the phases
/// and `overhead_pct` add up to 100.
///
/// ```
/// use timing_runtime::{PhaseBreakdown, PhaseShare};
///
/// let breakdown = PhaseBreakdown::from_ns(1_000, vec![("gradient".into(), 700), ("error".into(), 200)]);
/// assert_eq!(breakdown.pct("gradient"), 70.0);
/// assert_eq!(breakdown.pct("regions"), 0.0);
/// assert!((breakdown.overhead_pct - 10.0).abs() < 1e-9);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PhaseBreakdown {
    /// Each phase that took time, largest share first.
    pub phases: Vec<PhaseShare>,
    /// Nanoseconds of step time outside every phase.
    pub overhead_ns: u64,
    /// Percentage of step time outside every phase.
    pub overhead_pct: f64,
}

/// One phase's part of the step time.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PhaseShare {
    /// The phase, as written in `#[timed(phase = "...")]`.
    pub phase: String,
    /// Nanoseconds of step time in the phase.
    pub ns: u64,
    /// Percentage of step time in the phase.
    pub pct: f64,
}

impl PhaseBreakdown {
    /// The breakdown of `total_ns` of step time among `phases` (name, ns); the rest is overhead.
    #[must_use]
    pub fn from_ns(total_ns: u64, phases: Vec<(String, u64)>) -> Self {
        let phased: u64 = phases
            .iter()
            .fold(0, |sum, (_, ns)| sum.saturating_add(*ns));
        let total = total_ns.max(phased);
        let mut phases: Vec<PhaseShare> = phases
            .into_iter()
            .filter(|(_, ns)| *ns > 0)
            .map(|(phase, ns)| PhaseShare {
                phase,
                ns,
                pct: percent(ns, total),
            })
            .collect();
        phases.sort_by(|a, b| b.ns.cmp(&a.ns).then_with(|| a.phase.cmp(&b.phase)));
        let overhead_ns = total - phased;
        let overhead_pct = if total == 0 {
            0.0
        } else {
            100.0 - phases.iter().map(|share| share.pct).sum::<f64>()
        };
        PhaseBreakdown {
            phases,
            overhead_ns,
            overhead_pct: overhead_pct.max(0.0),
        }
    }

    /// The percentage of step time in `phase`; 0 for a phase that took no time or does not exist.
    #[must_use]
    pub fn pct(&self, phase: &str) -> f64 {
        self.phases
            .iter()
            .find(|share| share.phase == phase)
            .map_or(0.0, |share| share.pct)
    }

    /// The nanoseconds of step time in `phase`; 0 for a phase that took no time or does not exist.
    #[must_use]
    pub fn ns(&self, phase: &str) -> u64 {
        self.phases
            .iter()
            .find(|share| share.phase == phase)
            .map_or(0, |share| share.ns)
    }
}

/// The statistics of one span name over all its call paths and threads, for every timed call, inside a
/// step or not.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SpanStats {
    /// The span's name.
    pub name: String,
    /// Completed calls.
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
}

#[allow(clippy::cast_precision_loss)]
fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

#[cfg(feature = "timing")]
impl TrainingSummary {
    pub(crate) fn from_aggregate(
        aggregate: &crate::slot::Aggregate,
        span_names: &[&'static str],
        phase_names: &[&'static str],
        granularity: TimingGranularity,
    ) -> Self {
        use crate::clock::to_ns;
        use crate::timing::rate;
        #[allow(clippy::cast_precision_loss)]
        let mean = |total: u64, count: u64| {
            if count == 0 {
                0.0
            } else {
                total as f64 / count as f64
            }
        };
        let steps = &aggregate.steps;
        let total_ns = to_ns(steps.step_ticks);
        let phases = steps
            .phase_ticks
            .iter()
            .enumerate()
            .skip(1)
            .filter_map(|(id, ticks)| Some(((*phase_names.get(id)?).to_owned(), to_ns(*ticks))))
            .collect();
        let mut spans: Vec<SpanStats> = aggregate
            .spans
            .iter()
            .enumerate()
            .filter(|(_, totals)| totals.count > 0 || totals.cancelled > 0)
            .filter_map(|(id, totals)| {
                let total_ns = to_ns(totals.total);
                Some(SpanStats {
                    name: (*span_names.get(id)?).to_owned(),
                    count: totals.count,
                    total_ns,
                    self_ns: to_ns(totals.self_ticks),
                    min_ns: to_ns(totals.min),
                    max_ns: to_ns(totals.max),
                    mean_ns: mean(total_ns, totals.count),
                    wall_ns: if totals.wall > 0 {
                        to_ns(totals.wall)
                    } else {
                        total_ns
                    },
                    cancelled: totals.cancelled,
                })
            })
            .collect();
        spans.sort_by(|a, b| {
            b.total_ns
                .cmp(&a.total_ns)
                .then_with(|| a.name.cmp(&b.name))
        });
        let total_steps = usize::try_from(steps.steps).unwrap_or(usize::MAX);
        TrainingSummary {
            total_steps,
            total_ns,
            steps_per_second: rate(steps.steps, total_ns),
            phase_breakdown: PhaseBreakdown::from_ns(total_ns, phases),
            batches: usize::try_from(steps.batches).unwrap_or(usize::MAX),
            batch_ns: to_ns(steps.batch_ticks),
            spans,
            threads: usize::try_from(aggregate.threads).unwrap_or(usize::MAX),
            granularity,
        }
    }
}
