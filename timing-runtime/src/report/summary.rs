//! Turns the merged per-thread totals (ticks, ids) into a `TrainingSummary` (nanoseconds, names).

use crate::model::step::rate;
use crate::model::{CallNode, CallTree, PhaseBreakdown, SpanStats, TimingGranularity, TrainingSummary};
use crate::record::clock::to_ns;
use crate::record::{callsite, charge, recorder};
use crate::store::counters::Totals;
use crate::store::registry::{self, Aggregate};
use crate::store::tree::MergedTree;

/// Everything recorded since the last reset, all threads merged, at granularity `granularity`.
pub(crate) fn summary(granularity: TimingGranularity) -> TrainingSummary {
    recorder::flush_this_thread();
    let aggregate = registry::collect();
    let (span_names, phase_names) = callsite::names();
    TrainingSummary::from_aggregate(&aggregate, &span_names, &phase_names, granularity)
}

#[allow(clippy::cast_precision_loss)]
fn mean(total: u64, count: u64) -> f64 {
    if count == 0 { 0.0 } else { total as f64 / count as f64 }
}

impl TrainingSummary {
    fn from_aggregate(
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
                // A thread records a phase's zeros only from the first step it used the phase in; the steps
                // before it spent nothing in the phase too.
                let mut histogram = histogram.clone();
                histogram.add_zeros(steps.step_histogram.count().saturating_sub(histogram.count()));
                share.per_step = histogram.distribution(to_ns);
                share.per_step.mean_ns = mean(share.ns, steps.steps);
            }
        }
        let mut spans: Vec<SpanStats> = aggregate
            .tree
            .by_name()
            .iter()
            .enumerate()
            .filter(|(_, totals)| !totals.is_empty())
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
            call_tree: call_tree(&aggregate.tree, span_names),
            instrumentation_ns_per_call: charge::measured_ns().unwrap_or(0.0),
            instrumentation_subtracted: charge::subtracting(),
        }
    }
}

/// The public call tree from merged paths: empty paths (of an earlier epoch) left out, depth-first with the
/// costliest child first, walked with an explicit stack so that no depth of tree can overflow ours.
pub(crate) fn call_tree(tree: &MergedTree, span_names: &[&'static str]) -> CallTree {
    let count = tree.paths.len();
    let mut has_data: Vec<bool> = tree.totals.iter().map(|totals| !totals.is_empty()).collect();
    has_data.resize(count, false);
    // A parent's id is below its children's, so one reverse pass carries data up the tree.
    for id in (1..count).rev() {
        let parent = tree.paths[id].0 as usize;
        if has_data[id] && parent < id {
            has_data[parent] = true;
        }
    }
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); count];
    for (id, (parent, _)) in tree.paths.iter().enumerate().skip(1) {
        let parent = *parent as usize;
        if has_data[id] && parent < id {
            children[parent].push(id);
        }
    }
    let total_of = |id: usize| tree.totals.get(id).map_or(0, |totals| totals.total);
    for list in &mut children {
        list.sort_by_key(|id| std::cmp::Reverse(total_of(*id)));
    }
    let top_total: u64 = children.first().map_or(0, |top| top.iter().map(|id| total_of(*id)).sum());
    let mut nodes = Vec::new();
    // (merged id, public index of the parent, depth), in reverse so that the costliest pops first.
    let mut pending: Vec<(usize, Option<usize>, usize)> =
        children.first().map_or_else(Vec::new, |top| top.iter().rev().map(|id| (*id, None, 0)).collect());
    while let Some((id, parent, depth)) = pending.pop() {
        let empty = Totals::default();
        let totals = tree.totals.get(id).unwrap_or(&empty);
        let total_ns = to_ns(totals.total);
        let parent_total = parent.map_or_else(|| to_ns(top_total), |parent: usize| nodes_total(&nodes, parent));
        let name = tree.paths[id].1;
        nodes.push(CallNode {
            name: span_names.get(name as usize).map_or_else(|| "?".to_owned(), |name| (*name).to_owned()),
            parent,
            depth,
            count: totals.count,
            total_ns,
            self_ns: to_ns(totals.self_ticks),
            pct_of_parent: if parent_total == 0 { 0.0 } else { percent(total_ns, parent_total) },
        });
        let index = nodes.len() - 1;
        pending.extend(children[id].iter().rev().map(|child| (*child, Some(index), depth + 1)));
    }
    CallTree { nodes }
}

fn nodes_total(nodes: &[CallNode], index: usize) -> u64 {
    nodes.get(index).map_or(0, |node| node.total_ns)
}

#[allow(clippy::cast_precision_loss)]
fn percent(part: u64, whole: u64) -> f64 {
    part as f64 * 100.0 / whole as f64
}
