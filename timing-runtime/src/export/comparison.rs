//! Two runs side by side as text, and as a Markdown table for a pull request.

use std::fmt::{self, Display, Formatter};

use super::format::Duration;
use crate::report::{Change, Comparison};

impl Change {
    /// Before, after, the change of the mean and the median's change with its interval and verdict.
    fn columns(&self) -> [String; 6] {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let show = |ns: f64| Duration(ns.abs().round() as u64).to_string();
        let sign = if self.delta_ns() < 0.0 { "-" } else { "+" };
        let pct = self.delta_pct();
        let pct = if pct.is_finite() { format!("{pct:+.1}%") } else { "new".to_owned() };
        let median = self
            .median_change_pct
            .map_or_else(|| "–".to_owned(), |(low, median, high)| format!("{median:+.1}% [{low:+.1}, {high:+.1}]"));
        [
            show(self.before_ns),
            show(self.after_ns),
            format!("{sign}{}", show(self.delta_ns())),
            pct,
            median,
            self.verdict.describe().to_owned(),
        ]
    }

    fn write(&self, f: &mut Formatter<'_>, width: usize) -> fmt::Result {
        let [before, after, delta, pct, median, verdict] = self.columns();
        writeln!(
            f,
            "  {:<width$}  {before:>10}  {after:>10}  {delta:>11}  {pct:>8}  {median:>26}  {verdict}",
            self.name
        )
    }
}

impl Display for Comparison {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let width = self.phases.iter().chain(&self.spans).map(|change| change.name.len()).max().unwrap_or(4).max(9);
        writeln!(f, "Per step (a change is real when its 95% interval is beyond ±{}%):", self.noise_pct)?;
        writeln!(
            f,
            "  {:<width$}  {:>10}  {:>10}  {:>11}  {:>8}  {:>26}  verdict",
            "", "before", "after", "change", "%", "median change [95% interval]"
        )?;
        self.step.write(f, width)?;
        for phase in &self.phases {
            phase.write(f, width)?;
        }
        writeln!(f)?;
        writeln!(f, "Spans (total time; the median is per call):")?;
        for span in &self.spans {
            span.write(f, width)?;
        }
        Ok(())
    }
}

impl Comparison {
    /// The step and the phases as a Markdown table, for a pull request.
    ///
    /// ```
    /// let run = timing_runtime::TrainingSummary::default();
    /// assert!(run.compare(&run).to_markdown().starts_with("| | before | after |"));
    /// ```
    #[must_use]
    pub fn to_markdown(&self) -> String {
        let mut out = String::from(
            "| | before | after | change | % | median change [95% interval] | verdict |\n|---|---|---|---|---|---|---|\n",
        );
        for change in std::iter::once(&self.step).chain(&self.phases) {
            let [before, after, delta, pct, median, verdict] = change.columns();
            let verdict = match change.verdict {
                crate::report::Verdict::Slower | crate::report::Verdict::Faster => format!("**{verdict}**"),
                _ => verdict,
            };
            out.push_str(&format!(
                "| {} | {before} | {after} | {delta} | {pct} | {median} | {verdict} |\n",
                change.name
            ));
        }
        out.push_str(&format!("\nA change is real when its 95% interval lies beyond ±{}%.\n", self.noise_pct));
        out
    }
}
