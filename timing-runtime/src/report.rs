//! The human report: what `println!("{}", summary())` prints.

use std::fmt::{self, Display, Formatter};

use crate::summary::TrainingSummary;

impl Display for TrainingSummary {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        writeln!(f, "Summary:")?;
        writeln!(f, "  Steps: {}", Thousands(self.total_steps as u64))?;
        writeln!(f, "  Total time: {}", Duration(self.total_ns))?;
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let rate = self.steps_per_second.round() as u64;
        writeln!(f, "  Rate: {} steps/sec", Thousands(rate))?;
        let breakdown = &self.phase_breakdown;
        if self.total_ns > 0 && !breakdown.phases.is_empty() {
            writeln!(f)?;
            writeln!(f, "  Breakdown:")?;
            let width = breakdown.phases.iter().map(|share| share.phase.chars().count()).max().unwrap_or(0).max(8) + 1;
            for share in &breakdown.phases {
                writeln!(f, "    {:<width$} {:>5.1}%", format!("{}:", Capitalized(&share.phase)), share.pct)?;
            }
            writeln!(f, "    {:<width$} {:>5.1}%", "Overhead:", breakdown.overhead_pct)?;
            if self.instrumentation_subtracted && self.instrumentation_ns_per_call > 0.0 {
                writeln!(
                    f,
                    "    (timing adds {:.1}ns to each timed call's caller; counted in Overhead)",
                    self.instrumentation_ns_per_call
                )?;
            }
            writeln!(f)?;
            writeln!(f, "{:<indent$}{:>9}  {:>9}", "  Per step:", "mean", "p95", indent = 4 + width + 8)?;
            for share in &breakdown.phases {
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let mean = Duration(share.per_step.mean_ns.round() as u64);
                let p95 = Duration(share.per_step.p95_ns);
                writeln!(f, "    {:<width$}        {mean:>9}  {p95:>9}", format!("{}:", Capitalized(&share.phase)))?;
            }
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let mean = Duration(self.step_distribution.mean_ns.round() as u64);
            let p95 = Duration(self.step_distribution.p95_ns);
            writeln!(f, "    {:<width$}        {mean:>9}  {p95:>9}", "Step:")?;
        }
        if !self.spans.is_empty() {
            let mut by_self: Vec<_> = self.spans.iter().collect();
            by_self.sort_by_key(|stats| std::cmp::Reverse(stats.self_ns));
            let width = by_self.iter().take(TOP_SPANS).map(|stats| stats.name.chars().count()).max().unwrap_or(0);
            writeln!(f)?;
            writeln!(f, "  Top spans by self time:")?;
            for stats in by_self.iter().take(TOP_SPANS) {
                writeln!(
                    f,
                    "    {:<width$}  {:>9} self  {:>9} total  {:>12} calls  p95 {}",
                    stats.name,
                    Duration(stats.self_ns),
                    Duration(stats.total_ns),
                    Thousands(stats.count),
                    Duration(stats.p95_ns),
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
                writeln!(
                    f,
                    "    step {} took {} (batch mean {mean}): {phase} +{excess}",
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

/// An integer with `,` between groups of three digits: `10,000`.
pub(crate) struct Thousands(pub u64);

impl Display for Thousands {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let digits = self.0.to_string();
        let mut out = String::with_capacity(digits.len() + digits.len() / 3);
        for (index, digit) in digits.chars().enumerate() {
            if index > 0 && (digits.len() - index) % 3 == 0 {
                out.push(',');
            }
            out.push(digit);
        }
        f.pad(&out)
    }
}

/// Nanoseconds in the largest unit that keeps a digit before the point: `8.2s`, `950.3ms`, `12.0µs`.
pub(crate) struct Duration(pub u64);

impl Display for Duration {
    #[allow(clippy::cast_precision_loss)]
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let ns = self.0 as f64;
        let text = if ns >= 1e9 {
            format!("{:.1}s", ns / 1e9)
        } else if ns >= 1e6 {
            format!("{:.1}ms", ns / 1e6)
        } else if ns >= 1e3 {
            format!("{:.1}µs", ns / 1e3)
        } else {
            format!("{}ns", self.0)
        };
        f.pad(&text)
    }
}

/// A phase name with its first letter upper-cased, as the report shows it.
struct Capitalized<'a>(&'a str);

impl Display for Capitalized<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let mut chars = self.0.chars();
        if let Some(first) = chars.next() {
            write!(f, "{}{}", first.to_uppercase(), chars.as_str())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_grouped() {
        let cases = [(0, "0"), (999, "999"), (1_000, "1,000"), (10_000, "10,000"), (1_234_567, "1,234,567")];
        for (value, text) in cases {
            assert_eq!(Thousands(value).to_string(), text);
        }
    }

    #[test]
    fn durations_pick_their_unit() {
        let cases = [(8_200_000_000, "8.2s"), (950_300_000, "950.3ms"), (12_000, "12.0µs"), (999, "999ns")];
        for (ns, text) in cases {
            assert_eq!(Duration(ns).to_string(), text);
        }
    }
}
