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

impl Comparison {
    /// What the verdicts rest on, in one sentence for the reader.
    fn basis(&self) -> String {
        if self.single_runs() {
            format!(
                "One run per side: differences under {noise}% cannot be told from run-to-run noise on this \
                 machine, so only a change whose 95% interval lies beyond ±{noise}% is called real. Give \
                 several runs per side (`timing diff A1 A2 A3 -- B1 B2 B3`) or let `timing ab` run both \
                 builds in turn.",
                noise = self.noise_pct
            )
        } else {
            format!(
                "{} runs against {}{}: intervals from the spread between runs, 95% for the whole table; a change \
                 is real when its interval lies beyond ±{}%.",
                self.runs_before,
                self.runs_after,
                if self.paired { ", in pairs" } else { "" },
                self.noise_pct
            )
        }
    }

    /// The heading of the interval column.
    fn interval_heading(&self) -> &'static str {
        if self.single_runs() { "median change [95% interval]" } else { "change [interval]" }
    }
}

impl Display for Comparison {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let width = self.phases.iter().chain(&self.spans).map(|change| change.name.len()).max().unwrap_or(4).max(9);
        writeln!(f, "{}", self.basis())?;
        writeln!(f)?;
        let per = if self.single_runs() { "Per step" } else { "Per step, mean of the runs" };
        writeln!(f, "{per}:")?;
        writeln!(
            f,
            "  {:<width$}  {:>10}  {:>10}  {:>11}  {:>8}  {:>26}  verdict",
            "",
            "before",
            "after",
            "change",
            "%",
            self.interval_heading()
        )?;
        self.step.write(f, width)?;
        for phase in &self.phases {
            phase.write(f, width)?;
        }
        if let Some(process) = &self.process {
            writeln!(f)?;
            writeln!(f, "Whole processes (wall time of each run, measured from outside):")?;
            process.write(f, width)?;
        }
        writeln!(f)?;
        if self.single_runs() {
            writeln!(f, "Spans (total time; the median is per call):")?;
        } else {
            writeln!(f, "Spans (total time, mean of the runs; the change is of time per step):")?;
        }
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
        let mut out = format!(
            "| | before | after | change | % | {} | verdict |\n|---|---|---|---|---|---|---|\n",
            self.interval_heading()
        );
        for change in std::iter::once(&self.step).chain(&self.phases).chain(&self.process) {
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
        out.push_str(&format!("\n{}\n", self.basis()));
        out
    }
}
