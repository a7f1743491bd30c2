//! Turns the merged per-thread totals (ticks, ids) into a `TrainingSummary` (nanoseconds, names).

use crate::clock::to_ns;
use crate::granularity::TimingGranularity;
use crate::slot::Aggregate;
use crate::summary::{PhaseBreakdown, SpanStats, TrainingSummary};
use crate::timing::rate;

#[allow(clippy::cast_precision_loss)]
fn mean(total: u64, count: u64) -> f64 {
    if count == 0 { 0.0 } else { total as f64 / count as f64 }
}

impl TrainingSummary {
    pub(crate) fn from_aggregate(
        aggregate: &Aggregate,
        span_names: &[&'static str],
        phase_names: &[&'static str],
        granularity: TimingGranularity,
    ) -> Self {
        let steps = &aggregate.steps;
        let total_ns = to_ns(steps.step_ticks);
        let phases = steps
            .phase_ticks
            .iter()
            .enumerate()
            .skip(1)
            .filter_map(|(id, ticks)| Some(((*phase_names.get(id)?).to_owned(), to_ns(*ticks))))
            .collect();
        let mut phase_breakdown = PhaseBreakdown::from_ns(total_ns, phases);
        for share in &mut phase_breakdown.phases {
            let id = phase_names.iter().position(|name| *name == share.phase);
            if let Some(histogram) = id.and_then(|id| steps.phase_histograms.get(id)) {
                share.per_step = histogram.distribution(to_ns);
                share.per_step.mean_ns = mean(share.ns, steps.steps);
            }
        }
        let mut spans: Vec<SpanStats> = aggregate
            .spans
            .iter()
            .enumerate()
            .filter(|(_, totals)| totals.count > 0 || totals.cancelled > 0)
            .filter_map(|(id, totals)| {
                let total_ns = to_ns(totals.total);
                let spread = totals.histogram.distribution(to_ns);
                Some(SpanStats {
                    name: (*span_names.get(id)?).to_owned(),
                    count: totals.count,
                    total_ns,
                    self_ns: to_ns(totals.self_ticks),
                    min_ns: to_ns(totals.min),
                    max_ns: to_ns(totals.max),
                    mean_ns: mean(total_ns, totals.count),
                    wall_ns: if totals.wall > 0 { to_ns(totals.wall) } else { total_ns },
                    cancelled: totals.cancelled,
                    p50_ns: spread.p50_ns,
                    p90_ns: spread.p90_ns,
                    p95_ns: spread.p95_ns,
                    p99_ns: spread.p99_ns,
                    stddev_ns: spread.stddev_ns,
                })
            })
            .collect();
        spans.sort_by(|a, b| b.total_ns.cmp(&a.total_ns).then_with(|| a.name.cmp(&b.name)));
        let mut step_distribution = steps.step_histogram.distribution(to_ns);
        step_distribution.mean_ns = mean(total_ns, steps.steps);
        TrainingSummary {
            total_steps: usize::try_from(steps.steps).unwrap_or(usize::MAX),
            total_ns,
            steps_per_second: rate(steps.steps, total_ns),
            phase_breakdown,
            batches: usize::try_from(steps.batches).unwrap_or(usize::MAX),
            batch_ns: to_ns(steps.batch_ticks),
            spans,
            threads: usize::try_from(aggregate.threads).unwrap_or(usize::MAX),
            granularity,
            step_distribution,
            slow_steps: steps.slow_steps.clone(),
        }
    }
}
