//! Two runs side by side as text.

use std::fmt::{self, Display, Formatter};

use super::format::Duration;
use crate::report::{Change, Comparison};

impl Change {
    fn write(&self, f: &mut Formatter<'_>, width: usize) -> fmt::Result {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let show = |ns: f64| Duration(ns.abs().round() as u64).to_string();
        let sign = if self.delta_ns() < 0.0 { "-" } else { "+" };
        let pct = self.delta_pct();
        let pct = if pct.is_finite() { format!("{pct:+.1}%") } else { "new".to_owned() };
        writeln!(
            f,
            "  {:<width$}  {:>10}  {:>10}  {:>11}  {:>8}",
            self.name,
            show(self.before_ns),
            show(self.after_ns),
            format!("{sign}{}", show(self.delta_ns())),
            pct
        )
    }
}

impl Display for Comparison {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let width = self.phases.iter().chain(&self.spans).map(|change| change.name.len()).max().unwrap_or(4).max(9);
        writeln!(f, "Per step:")?;
        writeln!(f, "  {:<width$}  {:>10}  {:>10}  {:>11}  {:>8}", "", "before", "after", "change", "%")?;
        self.step.write(f, width)?;
        for phase in &self.phases {
            phase.write(f, width)?;
        }
        writeln!(f)?;
        writeln!(f, "Spans (total time):")?;
        for span in &self.spans {
            span.write(f, width)?;
        }
        Ok(())
    }
}
