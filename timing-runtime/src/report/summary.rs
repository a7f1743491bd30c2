//! Turns the merged per-thread totals (ticks, ids) into a `TrainingSummary` (nanoseconds, names).

use crate::model::step::rate;
use crate::model::{
    AllocationSummary, Allocations, BatchBreakdown, BatchPoint, BudgetReport, CallNode, CallTree, Estimate,
    MachineSummary, PerStep, PhaseBreakdown, PhaseTime, RecomputeSummary, SampledSpan, SpanStats, StepAllocations,
    TimingGranularity, TrainingSummary,
};
use crate::record::budget;
use crate::record::charge::{self, Close, Costs};
use crate::record::clock::to_ns;
use crate::record::hot::FAST_DEPTH;
use crate::record::{callsite, machine, recorder};
use crate::store::account::StepAccount;
use crate::store::allocs::{self, AllocAccount, PerStepAccount};
use crate::store::batches::PointTicks;
use crate::store::registry::{self, Aggregate};
use crate::store::tree::MergedTree;

use super::estimate::{margin_ticks, variances};

/// Everything recorded since the last reset, all threads merged, at granularity `granularity`.
pub(crate) fn summary(granularity: TimingGranularity) -> TrainingSummary {
    summary_with(granularity, true)
}

/// The summary, with its call tree or with an empty one: the tree is most of a summary's cost when a
/// process has many call paths (a scrape wants per-name and per-phase figures only).
pub(crate) fn summary_with(granularity: TimingGranularity, tree: bool) -> TrainingSummary {
    recorder::flush_this_thread();
    let aggregate = registry::collect();
    let (span_names, phase_names) = callsite::names();
    TrainingSummary::from_aggregate(&aggregate, &span_names, &phase_names, granularity, tree)
}

/// How a count per step spread over `steps` steps, of which the histogram may have missed the first ones
/// (a phase first seen later), which counted none.
fn per_step(account: &PerStepAccount, steps: u64) -> StepAllocations {
    let spread = |histogram: &crate::store::hist::Histogram, total: u64| {
        let mut histogram = histogram.clone();
        histogram.add_zeros(steps.saturating_sub(histogram.count()));
        let distribution = histogram.distribution(|value| value);
        PerStep {
            mean: mean(total, steps),
            p50: distribution.p50_ns,
            p95: distribution.p95_ns,
            max: distribution.max_ns,
        }
    };
    StepAllocations {
        count: spread(&account.counts, account.count_total),
        bytes: spread(&account.bytes, account.bytes_total),
    }
}

/// The run's allocations, when a counting allocator is installed.
fn allocation_summary(account: &AllocAccount) -> Option<AllocationSummary> {
    if !allocs::counting() {
        return None;
    }
    let mut in_spans = account.other_names;
    account.by_name.iter().for_each(|counts| in_spans.add(counts));
    Some(AllocationSummary {
        in_spans,
        outside_spans: account.outside,
        per_step: per_step(&account.step, account.steps),
    })
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
        tree: bool,
    ) -> Self {
        let steps = &aggregate.steps;
        let total_ns = to_ns(steps.step_ticks);
        let wall_ns = steps.span.map_or(0, |(start, end)| to_ns(end.saturating_sub(start)));
        let phases = steps
            .phase_ticks
            .iter()
            .enumerate()
            .skip(1)
            .filter_map(|(id, ticks)| Some(((*phase_names.get(id)?).to_owned(), to_ns(*ticks))))
            .collect();
        let calls = calls_in_steps(&aggregate.tree, &callsite::step_names());
        let timeline = registry::raw_state() & registry::TIMELINE != 0;
        let (instrumentation_ticks, calls_in_all) = match charge::costs().filter(|_| charge::subtracting()) {
            Some(costs) => instrumentation_ticks(&costs, calls, steps.steps, timeline),
            None => (0, 0),
        };
        let instrumentation_ns = to_ns(instrumentation_ticks);
        let mut phase_breakdown = PhaseBreakdown::from_ns(total_ns, phases).with_instrumentation(instrumentation_ns);
        let deviations: Vec<f64> =
            aggregate.tree.durations.iter().map(|durations| durations.distribution(|ticks| ticks).stddev_ns).collect();
        let variances = variances(&aggregate.tree, &deviations, &budget::weights());
        for share in &mut phase_breakdown.phases {
            let id = phase_names.iter().position(|name| *name == share.phase);
            if let Some(histogram) = id.and_then(|id| steps.phase_histograms.get(id)) {
                // A thread records a phase's zeros only from the first step it used the phase in; the steps
                // before it spent nothing in the phase too.
                let mut histogram = histogram.clone();
                histogram.add_zeros(steps.step_histogram.count().saturating_sub(histogram.count()));
                share.per_step = histogram.distribution(to_ns);
                share.spread = histogram.spread(to_ns);
                share.per_step.mean_ns = mean(share.ns, steps.steps);
            }
            if allocs::counting() {
                let account = id.and_then(|id| aggregate.allocs.phases.get(id)).cloned().unwrap_or_default();
                share.allocations = Some(per_step(&account, aggregate.allocs.steps));
            }
        }
        let full_paths = callsite::full_paths();
        let mut spans: Vec<SpanStats> = aggregate
            .tree
            .names
            .iter()
            .enumerate()
            .filter(|(_, totals)| !totals.is_empty())
            .filter_map(|(id, totals)| {
                let total_ns = to_ns(totals.total);
                let spread = aggregate.tree.durations.get(id).map(|durations| durations.distribution(to_ns));
                let spread = spread.unwrap_or_default();
                Some(SpanStats {
                    name: (*span_names.get(id)?).to_owned(),
                    full_name: full_paths.get(id).cloned().flatten(),
                    count: totals.count,
                    total_ns,
                    self_ns: to_ns(totals.self_ticks),
                    min_ns: to_ns(totals.min),
                    max_ns: to_ns(totals.max),
                    mean_ns: mean(total_ns, totals.count),
                    wall_ns: if totals.wall > 0 { to_ns(totals.wall) } else { total_ns },
                    cancelled: totals.cancelled,
                    cancelled_ns: to_ns(totals.cancelled_ticks),
                    p50_ns: spread.p50_ns,
                    p90_ns: spread.p90_ns,
                    p95_ns: spread.p95_ns,
                    p99_ns: spread.p99_ns,
                    stddev_ns: spread.stddev_ns,
                    spread: aggregate
                        .tree
                        .durations
                        .get(id)
                        .map(|durations| durations.spread(to_ns))
                        .unwrap_or_default(),
                    allocations: allocs::counting()
                        .then(|| aggregate.allocs.by_name.get(id).copied().unwrap_or_else(Allocations::default)),
                    estimate: (totals.untimed > 0).then(|| {
                        let margin = margin_ticks(variances.get(id).copied().unwrap_or(0.0));
                        Estimate {
                            timed: totals.count.saturating_sub(totals.untimed),
                            total_ns_margin: to_ns(margin),
                            self_ns_margin: to_ns(margin),
                        }
                    }),
                })
            })
            .collect();
        spans.sort_by(|a, b| b.total_ns.cmp(&a.total_ns).then_with(|| a.name.cmp(&b.name)));
        let budget = budget_report(&spans, instrumentation_ns, total_ns);
        let batch_points = batch_points(&aggregate.batch_points, steps.span, phase_names);
        let mut step_distribution = steps.step_histogram.distribution(to_ns);
        step_distribution.mean_ns = mean(total_ns, steps.steps);
        TrainingSummary {
            total_steps: usize::try_from(steps.steps).unwrap_or(usize::MAX),
            total_ns,
            steps_per_second: rate(steps.steps, if wall_ns > 0 { wall_ns } else { total_ns }),
            wall_ns,
            phase_breakdown,
            batches: usize::try_from(steps.batches).unwrap_or(usize::MAX),
            batch_ns: to_ns(steps.batch_ticks),
            batch_breakdown: BatchBreakdown::new(
                to_ns(steps.batch_ticks),
                to_ns(steps.batch_step_ticks),
                to_ns(steps.unsplit_batch_ticks),
            ),
            recomputations: recomputations(),
            spans,
            threads: usize::try_from(aggregate.threads).unwrap_or(usize::MAX),
            granularity,
            step_distribution,
            step_spread: steps.step_histogram.spread(to_ns),
            slow_steps: steps.slow_steps.clone(),
            batch_points,
            call_tree: if tree { call_tree(&aggregate.tree, span_names) } else { CallTree::default() },
            instrumentation_ns_per_call: if calls_in_all > 0 {
                #[allow(clippy::cast_precision_loss)]
                let per_call = charge::ticks_ns(instrumentation_ticks) / calls_in_all as f64;
                per_call
            } else {
                charge::measured_ns(Close::Fast).unwrap_or(0.0)
            },
            instrumentation_subtracted: charge::subtracting(),
            allocations: allocation_summary(&aggregate.allocs),
            budget,
            machine: machine_summary(steps),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }
}

/// What the summary says of the budget in force, if any: what the instrumentation took of the steps, and
/// the span names some of whose calls were not timed, most sampled first.
fn budget_report(spans: &[SpanStats], instrumentation_ns: u64, total_ns: u64) -> Option<BudgetReport> {
    let percent = budget::current().percent?;
    #[allow(clippy::cast_precision_loss)]
    let instrumentation_pct = if total_ns == 0 { 0.0 } else { 100.0 * instrumentation_ns as f64 / total_ns as f64 };
    let mut sampled: Vec<SampledSpan> = spans
        .iter()
        .filter_map(|span| {
            let estimate = span.estimate?;
            #[allow(clippy::cast_precision_loss)]
            let rate = span.count as f64 / estimate.timed.max(1) as f64;
            Some(SampledSpan { name: span.name.clone(), calls: span.count, timed: estimate.timed, rate })
        })
        .collect();
    sampled.sort_by(|a, b| b.rate.total_cmp(&a.rate).then_with(|| a.name.cmp(&b.name)));
    Some(BudgetReport { percent, instrumentation_pct, kept: budget::kept() && instrumentation_pct <= percent, sampled })
}

/// What the machine gave the batches, and the process's resident memory; `None` before the first batch
/// or where neither could be read.
fn machine_summary(steps: &StepAccount) -> Option<MachineSummary> {
    let resident = machine::resident();
    if steps.batches == 0 || (steps.machine_batch_ticks == 0 && resident.is_none()) {
        return None;
    }
    let batch_ns = to_ns(steps.machine_batch_ticks);
    let (resident_bytes, peak_resident_bytes) = resident.unwrap_or((0, 0));
    #[allow(clippy::cast_precision_loss)]
    let cpu_pct = if batch_ns == 0 { 0.0 } else { steps.machine_cpu_ns as f64 * 100.0 / batch_ns as f64 };
    Some(MachineSummary {
        batch_ns,
        cpu_ns: steps.machine_cpu_ns,
        cpu_pct,
        waiting_batches: steps.waiting_batches,
        preempted_batches: steps.preempted_batches,
        resident_bytes,
        peak_resident_bytes,
    })
}

/// The batch series in nanoseconds from the run's start (the first step's or batch's), with phase names.
fn batch_points(points: &[PointTicks], steps: Option<(u64, u64)>, phase_names: &[&'static str]) -> Vec<BatchPoint> {
    let first_batch = points.iter().map(|point| point.start).min();
    let Some(origin) = [first_batch, steps.map(|(start, _)| start)].into_iter().flatten().min() else {
        return Vec::new();
    };
    points
        .iter()
        .map(|point| {
            let mut phases: Vec<PhaseTime> = point
                .phase_ticks
                .iter()
                .enumerate()
                .skip(1)
                .filter(|(_, ticks)| **ticks > 0)
                .filter_map(|(id, ticks)| {
                    let name = *phase_names.get(id)?;
                    Some(PhaseTime { phase: name.into(), ns: to_ns(*ticks), ..PhaseTime::default() })
                })
                .collect();
            phases.sort_by(|a, b| b.ns.cmp(&a.ns).then_with(|| a.phase.cmp(&b.phase)));
            BatchPoint {
                batches: point.batches,
                steps: point.steps,
                start_ns: to_ns(point.start.saturating_sub(origin)),
                end_ns: to_ns(point.end.saturating_sub(origin)),
                batch_ns: to_ns(point.batch_ticks),
                step_ns: to_ns(point.step_ticks),
                phases,
                cpu_ns: point.cpu_ns,
                cpu_batch_ns: to_ns(point.cpu_batch_ticks),
                resident_bytes: point.resident_bytes,
            }
        })
        .collect()
}

/// What the instrumentation took of the steps, in ticks, at `costs`, and the timed calls it is for (the
/// steps themselves among them): each call inside a step charged its caller the cost of the way it closed,
/// and left its own cost inside its clock reads out of its own time, as did each step; with the timeline on
/// (`timeline`), every call closes on the slow path.
fn instrumentation_ticks(costs: &Costs, calls: [u64; 5], steps: u64, timeline: bool) -> (u64, u64) {
    let [fast, recursive, deep, untimed, framed] = calls;
    let outside = if timeline {
        fast.saturating_add(recursive).saturating_add(deep).saturating_mul(costs.outside[Close::Slow as usize])
    } else {
        [(fast, Close::Fast), (recursive, Close::Recursive), (deep, Close::Deep)]
            .iter()
            .fold(0u64, |sum, (calls, close)| sum.saturating_add(calls.saturating_mul(costs.outside[*close as usize])))
    };
    let timed = fast.saturating_add(recursive).saturating_add(deep).saturating_add(steps);
    let untimed_ticks = untimed
        .saturating_mul(costs.outside[Close::Untimed as usize])
        .saturating_add(framed.saturating_mul(costs.outside[Close::UntimedFramed as usize]));
    let ticks = outside.saturating_add(timed.saturating_mul(costs.inside)).saturating_add(untimed_ticks);
    (ticks, timed.saturating_add(untimed).saturating_add(framed))
}

/// The children of each path of a merged tree, as ranges of one array (a parent's id is below its
/// children's): for walks that must not recurse, however deep the tree.
struct Children {
    /// `ids[first[parent]..first[parent + 1]]` are `parent`'s children.
    first: Vec<usize>,
    ids: Vec<u32>,
}

impl Children {
    /// The children of paths `0..count`, a path's parent being `parent_of(id)` (`None`: left out).
    fn of(count: usize, parent_of: impl Fn(usize) -> Option<usize>) -> Children {
        let mut first = vec![0usize; count + 1];
        for id in 1..count {
            if let Some(parent) = parent_of(id) {
                first[parent + 1] += 1;
            }
        }
        for index in 1..=count {
            first[index] += first[index - 1];
        }
        let mut ids = vec![0u32; first[count]];
        let mut fill = first.clone();
        for id in 1..count {
            if let Some(parent) = parent_of(id) {
                #[allow(clippy::cast_possible_truncation)]
                let id32 = id as u32;
                ids[fill[parent]] = id32;
                fill[parent] += 1;
            }
        }
        Children { first, ids }
    }

    fn of_node(&self, parent: usize) -> &[u32] {
        &self.ids[self.first[parent]..self.first[parent + 1]]
    }

    fn of_node_mut(&mut self, parent: usize) -> &mut [u32] {
        &mut self.ids[self.first[parent]..self.first[parent + 1]]
    }
}

/// The timed calls made inside steps (below a step's node in the call tree, the steps themselves not
/// counted), by the way they closed on the hot path: ordinary, recursive (below an open call of their name)
/// and deep (beyond the inline frames), as `[fast, recursive, deep]`. Walked depth first with an explicit
/// stack and a count of the open calls of each name, so that no depth of tree can overflow ours.
fn calls_in_steps(tree: &MergedTree, step_names: &[u32]) -> [u64; 5] {
    let count = tree.paths.len().min(tree.totals.len());
    if count == 0 {
        return [0; 5];
    }
    let children = Children::of(count, |id| {
        let parent = tree.paths[id].0 as usize;
        (parent < id).then_some(parent)
    });
    // Calls open on the path walked, by name id: a table as long as the names (the root's sentinel id,
    // beyond it, is never looked up: the root is never entered or left below).
    let names = tree.paths.iter().skip(1).filter(|(_, name)| *name != u32::MAX).map(|(_, name)| *name as usize + 1);
    let names = names.max().unwrap_or(0);
    let mut open: Vec<u32> = vec![0; names];
    let mut calls = [0u64; 5];
    // A step's name under `recompute` outside every step is a replayed step: no step of the run.
    let replay = callsite::recompute().registered_name();
    // (path, depth, inside a step, inside a replay, entering); a path is entered, its children walked, then
    // left.
    let mut pending: Vec<(usize, usize, bool, bool, bool)> = vec![(0, 0, false, false, true)];
    while let Some((id, depth, in_step, in_replay, entering)) = pending.pop() {
        let name = tree.paths[id].1;
        if !entering {
            if let Some(count) = open.get_mut(name as usize) {
                *count = count.saturating_sub(1);
            }
            continue;
        }
        if id != 0 && in_step {
            let kind = if depth >= FAST_DEPTH {
                2
            } else if open.get(name as usize).is_some_and(|count| *count > 0) {
                1
            } else {
                0
            };
            let totals = &tree.totals[id];
            calls[kind] = calls[kind].saturating_add(totals.count.saturating_sub(totals.untimed));
            // Every untimed call had a frame while allocations were counted.
            let framed = if allocs::counting() { totals.untimed } else { totals.untimed_framed };
            calls[3] = calls[3].saturating_add(totals.untimed.saturating_sub(framed));
            calls[4] = calls[4].saturating_add(framed);
        }
        if id != 0 {
            if let Some(count) = open.get_mut(name as usize) {
                *count += 1;
            }
            pending.push((id, depth, in_step, in_replay, false));
        }
        let below_replay = in_replay || (id != 0 && Some(name) == replay);
        let below_step = in_step || (id != 0 && !below_replay && step_names.contains(&name));
        pending.extend(
            children.of_node(id).iter().map(|child| (*child as usize, depth + 1, below_step, below_replay, true)),
        );
    }
    calls
}

/// The public call tree from merged paths: empty paths (of an earlier epoch) left out, depth-first with the
/// costliest child first, walked with an explicit stack so that no depth of tree can overflow ours.
pub(crate) fn call_tree(tree: &MergedTree, span_names: &[&'static str]) -> CallTree {
    let count = tree.paths.len().min(tree.totals.len());
    let mut has_data: Vec<bool> = tree.totals.iter().take(count).map(|totals| !totals.is_empty()).collect();
    // A parent's id is below its children's, so one reverse pass carries data up the tree.
    for id in (1..count).rev() {
        let parent = tree.paths[id].0 as usize;
        if has_data[id] && parent < id {
            has_data[parent] = true;
        }
    }
    let child_of = |id: usize| {
        let parent = tree.paths[id].0 as usize;
        (id > 0 && has_data[id] && parent < id).then_some(parent)
    };
    let mut children = Children::of(count, child_of);
    let total_ns: Vec<u64> = tree.totals.iter().take(count).map(|totals| to_ns(totals.total)).collect();
    for parent in 0..count {
        children.of_node_mut(parent).sort_by_key(|id| std::cmp::Reverse(total_ns[*id as usize]));
    }
    let children_of = |id: usize| children.of_node(id);
    let top_total: u64 = if count == 0 {
        0
    } else {
        children_of(0).iter().fold(0u64, |sum, id| sum.saturating_add(total_ns[*id as usize]))
    };
    // What the nodes need, by id, read from the merged totals in id order: the walk's order is unrelated to
    // where nodes are stored, and reading the totals (then 56 bytes a node) in that order missed the cache
    // at almost every node; 8-byte arrays keep the walk's reads within the L2 cache.
    let self_ns: Vec<u64> = tree.totals.iter().take(count).map(|totals| to_ns(totals.self_ticks)).collect();
    let calls: Vec<u64> = tree.totals.iter().take(count).map(|totals| totals.count).collect();
    let mut nodes: Vec<CallNode> = Vec::with_capacity(children.ids.len());
    // (merged id, public index of the parent, depth, the parent's total), reversed so the costliest pops first.
    let mut pending: Vec<(u32, Option<usize>, usize, u64)> =
        if count == 0 { Vec::new() } else { children_of(0).iter().rev().map(|id| (*id, None, 0, top_total)).collect() };
    while let Some((id, parent, depth, parent_total)) = pending.pop() {
        let id = id as usize;
        let (name, total) = (tree.paths[id].1, total_ns[id]);
        nodes.push(CallNode {
            name: span_names.get(name as usize).map_or_else(|| "?".to_owned(), |name| (*name).to_owned()),
            parent,
            depth,
            count: calls[id],
            total_ns: total,
            self_ns: self_ns[id],
            pct_of_parent: if parent_total == 0 { 0.0 } else { percent(total, parent_total) },
        });
        let index = nodes.len() - 1;
        pending.extend(children_of(id).iter().rev().map(|child| (*child, Some(index), depth + 1, total)));
    }
    CallTree { nodes }
}

#[allow(clippy::cast_precision_loss)]
fn percent(part: u64, whole: u64) -> f64 {
    part as f64 * 100.0 / whole as f64
}

/// The recomputations of the current epoch, if any.
fn recomputations() -> Option<RecomputeSummary> {
    let recomputes = crate::store::recomputes::read(crate::store::registry::state().1);
    (recomputes.count > 0).then(|| RecomputeSummary {
        count: recomputes.count,
        steps_replayed: recomputes.steps,
        compute_ns: recomputes.ns,
        per_step: recomputes.per_step.distribution(|ns| ns),
    })
}
