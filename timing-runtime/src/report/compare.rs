//! Two runs side by side: what an optimization did to each phase and each span.

use serde::{Deserialize, Serialize};

use crate::model::TrainingSummary;

/// The change from one run to another, per phase (nanoseconds per step) and per span (total time).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// Mean step time.
    pub step: Change,
    /// Mean time per step of each phase in either run.
    pub phases: Vec<Change>,
    /// Total time of each span in either run, largest change first.
    pub spans: Vec<Change>,
}

/// One quantity in two runs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// What changed: a phase or span name, or "step".
    pub name: String,
    /// Nanoseconds in the first run.
    pub before_ns: f64,
    /// Nanoseconds in the second run.
    pub after_ns: f64,
}

impl Change {
    /// `after - before`, in nanoseconds.
    #[must_use]
    pub fn delta_ns(&self) -> f64 {
        self.after_ns - self.before_ns
    }

    /// The change in percent of `before`; infinite for something new, 0 for nothing in both.
    #[must_use]
    pub fn delta_pct(&self) -> f64 {
        match (self.before_ns == 0.0, self.after_ns == 0.0) {
            (true, true) => 0.0,
            (true, false) => f64::INFINITY,
            _ => self.delta_ns() * 100.0 / self.before_ns,
        }
    }
}

impl TrainingSummary {
    /// What changed from `self` to `after`.
    ///
    /// ```
    /// use timing_runtime::{PhaseBreakdown, TrainingSummary};
    ///
    /// let run = |regions_ns| TrainingSummary {
    ///     total_steps: 10,
    ///     total_ns: 10_000,
    ///     phase_breakdown: PhaseBreakdown::from_ns(10_000, vec![("regions".into(), regions_ns)]),
    ///     ..TrainingSummary::default()
    /// };
    /// let comparison = run(6_000).compare(&run(3_000));
    /// assert_eq!(comparison.phases[0].delta_ns(), -300.0);
    /// assert_eq!(comparison.phases[0].delta_pct(), -50.0);
    /// ```
    #[must_use]
    pub fn compare(&self, after: &TrainingSummary) -> Comparison {
        #[allow(clippy::cast_precision_loss)]
        let per_step = |ns: u64, steps: usize| if steps == 0 { 0.0 } else { ns as f64 / steps as f64 };
        let step = Change {
            name: "step".to_owned(),
            before_ns: per_step(self.total_ns, self.total_steps),
            after_ns: per_step(after.total_ns, after.total_steps),
        };
        let mut phases: Vec<Change> = Vec::new();
        for (run, is_after) in [(self, false), (after, true)] {
            for share in &run.phase_breakdown.phases {
                let value = per_step(share.ns, run.total_steps);
                entry(&mut phases, &share.phase).set(is_after, value);
            }
        }
        let mut spans: Vec<Change> = Vec::new();
        for (run, is_after) in [(self, false), (after, true)] {
            for stats in &run.spans {
                #[allow(clippy::cast_precision_loss)]
                entry(&mut spans, &stats.name).set(is_after, stats.total_ns as f64);
            }
        }
        spans.sort_by(|a, b| b.delta_ns().abs().total_cmp(&a.delta_ns().abs()));
        Comparison { step, phases, spans }
    }
}

fn entry<'a>(changes: &'a mut Vec<Change>, name: &str) -> &'a mut Change {
    let index = match changes.iter().position(|change| change.name == name) {
        Some(index) => index,
        None => {
            changes.push(Change { name: name.to_owned(), ..Change::default() });
            changes.len() - 1
        }
    };
    &mut changes[index]
}

impl Change {
    fn set(&mut self, after: bool, value: f64) {
        if after {
            self.after_ns = value;
        } else {
            self.before_ns = value;
        }
    }
}
