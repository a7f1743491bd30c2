//! The human report: what `println!("{}", summary())` prints, and the call tree as indented text.

use std::fmt::{self, Display, Formatter};

use super::format::{Bytes, Capitalized, Duration, Thousands};
use crate::model::{CallTree, MachineSummary, StepAllocations, TrainingSummary};

/// What the machine gave the batches, in one line: CPU over wall time, stalls, resident memory.
pub(crate) fn machine_line(machine: &MachineSummary) -> String {
    let mut line = if machine.batch_ns > 0 {
        format!("batches on a CPU {:.1}% of their wall time", machine.cpu_pct)
    } else {
        "batches' CPU time not read".to_owned()
    };
    let stalled = machine.waiting_batches + machine.preempted_batches;
    if stalled > 0 {
        line.push_str(&format!(
            " ({} stalled: {} waiting, {} preempted)",
            Thousands(stalled),
            Thousands(machine.waiting_batches),
            Thousands(machine.preempted_batches)
        ));
    }
    if machine.resident_bytes > 0 {
        #[allow(clippy::cast_precision_loss)]
        let (now, peak) = (Bytes(machine.resident_bytes as f64), Bytes(machine.peak_resident_bytes as f64));
        line.push_str(&format!("; resident memory {now} (peak {peak})"));
    }
    line
}

impl Display for TrainingSummary {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        writeln!(f, "Summary:")?;
        writeln!(f, "  Steps: {}", Thousands(self.total_steps as u64))?;
        let threads = if self.threads == 1 { "1 thread".to_owned() } else { format!("{} threads", self.threads) };
        writeln!(f, "  Threads: {}", self.threads)?;
        writeln!(f, "  Wall time: {} (first step's start to last step's end)", Duration(self.wall_ns))?;
        if self.threads > 1 {
            writeln!(f, "  Step time: {} (summed over {threads})", Duration(self.total_ns))?;
        } else {
            writeln!(f, "  Step time: {}", Duration(self.total_ns))?;
        }
        if self.batches > 0 {
            let summed = if self.threads > 1 { format!(", summed over {threads}") } else { String::new() };
            writeln!(
                f,
                "  Batches: {} ({} of batch wall time{summed})",
                Thousands(self.batches as u64),
                Duration(self.batch_ns)
            )?;
            let parts = &self.batch_breakdown;
            let unsplit = if parts.unsplit_ns > 0 {
                format!(
                    ", not split {:.1}% ({}; steps on other threads)",
                    parts.unsplit_pct,
                    Duration(parts.unsplit_ns)
                )
            } else {
                String::new()
            };
            writeln!(
                f,
                "    of it: steps {:.1}% ({}), between steps {:.1}% ({}){unsplit}",
                parts.steps_pct,
                Duration(parts.steps_ns),
                parts.between_steps_pct,
                Duration(parts.between_steps_ns),
            )?;
        }
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let rate = self.steps_per_second.round() as u64;
        writeln!(f, "  Rate: {} steps/sec (steps over wall time)", Thousands(rate))?;
        if let Some(recomputations) = &self.recomputations {
            writeln!(
                f,
                "  Recomputations: {} ({} steps replayed in {}, not counted above; per replayed step p50 {}, \
                 p95 {})",
                Thousands(recomputations.count),
                Thousands(recomputations.steps_replayed),
                Duration(recomputations.compute_ns),
                Duration(recomputations.per_step.p50_ns),
                Duration(recomputations.per_step.p95_ns),
            )?;
        }
        if let Some(machine) = &self.machine {
            writeln!(f, "  Machine: {}", machine_line(machine))?;
        }
        if let Some(allocations) = &self.allocations {
            #[allow(clippy::cast_precision_loss)]
            let (inside, outside) = (allocations.in_spans, allocations.outside_spans);
            #[allow(clippy::cast_precision_loss)]
            writeln!(
                f,
                "  Allocations: {} in timed spans ({}), {} outside them ({})",
                Thousands(inside.count),
                Bytes(inside.bytes as f64),
                Thousands(outside.count),
                Bytes(outside.bytes as f64)
            )?;
        }
        let breakdown = &self.phase_breakdown;
        if self.total_ns > 0 && !breakdown.phases.is_empty() {
            writeln!(f)?;
            writeln!(f, "  Breakdown:")?;
            let width = breakdown.phases.iter().map(|share| share.phase.chars().count()).max().unwrap_or(0).max(15) + 1;
            for share in &breakdown.phases {
                writeln!(f, "    {:<width$} {:>5.1}%", format!("{}:", Capitalized(&share.phase)), share.pct)?;
            }
            writeln!(f, "    {:<width$} {:>5.1}%", "Unphased:", breakdown.unphased_pct)?;
            if self.instrumentation_subtracted && self.instrumentation_ns_per_call > 0.0 {
                writeln!(
                    f,
                    "    {:<width$} {:>5.1}%  ({} at {:.1}ns per timed call)",
                    "Instrumentation:",
                    breakdown.instrumentation_pct,
                    Duration(breakdown.instrumentation_ns),
                    self.instrumentation_ns_per_call
                )?;
            }
            if let Some(budget) = &self.budget {
                let kept = if budget.kept { "kept" } else { "NOT kept: counting the untimed calls alone costs more" };
                writeln!(
                    f,
                    "    Budget {}% ({kept}); instrumentation {:.2}% of step time",
                    budget.percent, budget.instrumentation_pct
                )?;
                if !budget.sampled.is_empty() {
                    let sampled: Vec<String> = budget
                        .sampled
                        .iter()
                        .take(TOP_SPANS)
                        .map(|span| format!("{} 1 in {:.1}", span.name, span.rate))
                        .collect();
                    let more = budget.sampled.len().saturating_sub(TOP_SPANS);
                    let more = if more > 0 { format!(" and {more} more") } else { String::new() };
                    writeln!(f, "    Timed (the rest counted, their time estimated, ~): {}{more}", sampled.join(", "))?;
                }
            }
            writeln!(f)?;
            let allocations = self.allocations.is_some();
            let extra = if allocations { format!("  {:>9}  {:>9}", "allocs", "bytes") } else { String::new() };
            writeln!(f, "{:<indent$}{:>9}  {:>9}{extra}", "  Per step:", "mean", "p95", indent = 4 + width + 8)?;
            // Allocations per step (mean) and their bytes (mean), with a counting allocator.
            let alloc_columns = |per_step: Option<&StepAllocations>| {
                per_step.map_or_else(String::new, |per_step| {
                    format!("  {:>9.1}  {:>9}", per_step.count.mean, Bytes(per_step.bytes.mean).to_string())
                })
            };
            for share in &breakdown.phases {
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let mean = Duration(share.per_step.mean_ns.round() as u64);
                let p95 = Duration(share.per_step.p95_ns);
                let extra = alloc_columns(share.allocations.as_ref());
                writeln!(
                    f,
                    "    {:<width$}        {mean:>9}  {p95:>9}{extra}",
                    format!("{}:", Capitalized(&share.phase))
                )?;
            }
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let mean = Duration(self.step_distribution.mean_ns.round() as u64);
            let p95 = Duration(self.step_distribution.p95_ns);
            let extra = alloc_columns(self.allocations.as_ref().map(|allocations| &allocations.per_step));
            writeln!(f, "    {:<width$}        {mean:>9}  {p95:>9}{extra}", "Step:")?;
        }
        if !self.spans.is_empty() {
            let mut by_self: Vec<_> = self.spans.iter().collect();
            by_self.sort_by_key(|stats| std::cmp::Reverse(stats.self_ns));
            let width = by_self.iter().take(TOP_SPANS).map(|stats| stats.name.chars().count()).max().unwrap_or(0);
            writeln!(f)?;
            writeln!(f, "  Top spans by self time:")?;
            for stats in by_self.iter().take(TOP_SPANS) {
                let allocations = stats
                    .allocations
                    .map_or_else(String::new, |allocations| format!("  {:>12} allocs", Thousands(allocations.count)));
                let (self_ns, total_ns) = match stats.estimate {
                    Some(estimate) => (
                        format!("~{} ±{}", Duration(stats.self_ns), Duration(estimate.self_ns_margin)),
                        format!("~{} ±{}", Duration(stats.total_ns), Duration(estimate.total_ns_margin)),
                    ),
                    None => (Duration(stats.self_ns).to_string(), Duration(stats.total_ns).to_string()),
                };
                writeln!(
                    f,
                    "    {:<width$}  {self_ns:>9} self  {total_ns:>9} total  {:>12} calls  p95 {:>7}{allocations}",
                    stats.name,
                    Thousands(stats.count),
                    Duration(stats.p95_ns).to_string(),
                )?;
            }
        }
        if !self.slow_steps.is_empty() {
            writeln!(f)?;
            writeln!(f, "  Slowest steps (over mean + 3σ of their batch):")?;
            for slow in self.slow_steps.iter().take(3) {
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let mean = Duration(slow.batch_mean_ns.round() as u64);
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let excess = Duration(slow.excess_ns.max(0.0).round() as u64);
                let phase = slow.phase.as_deref().unwrap_or("overhead");
                // Where it was: the step's index is within its batch, the batch's among its thread's.
                let place = match (slow.batch, slow.thread) {
                    (Some(batch), Some(thread)) => format!(" of batch {batch} on thread {thread}"),
                    (Some(batch), None) => format!(" of batch {batch}"),
                    (None, Some(thread)) => format!(" on thread {thread}"),
                    (None, None) => String::new(),
                };
                writeln!(
                    f,
                    "    step {}{place} took {} (batch mean {mean}): {phase} +{excess}",
                    slow.step,
                    Duration(slow.total_ns)
                )?;
            }
        }
        Ok(())
    }
}

/// Spans listed in the report's "top spans" table.
const TOP_SPANS: usize = 5;

impl Display for CallTree {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let width = self.nodes.iter().map(|node| 2 * node.depth + node.name.chars().count()).max().unwrap_or(0).max(4);
        writeln!(f, "{:<width$}  {:>10}  {:>10}  {:>10}  {:>6}", "call", "count", "total", "self", "%")?;
        for node in &self.nodes {
            let label = format!("{}{}", "  ".repeat(node.depth), node.name);
            writeln!(
                f,
                "{label:<width$}  {:>10}  {:>10}  {:>10}  {:>5.1}%",
                node.count,
                Duration(node.total_ns),
                Duration(node.self_ns),
                node.pct_of_parent
            )?;
        }
        Ok(())
    }
}
