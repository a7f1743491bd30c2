//! Two runs side by side: what an optimization did to each phase and each span, and whether the change is
//! real or within noise.
//!
//! The verdict compares medians, which a step the scheduler stretched does not move. Each run's median has
//! a distribution-free 95% interval from the order statistics of its recorded values (ranks n/2 ± 0.98 √n,
//! read from the histogram the summary keeps); the change's interval combines the two as independent errors
//! on the log scale (the ratio of the medians, widened by the root of the sum of the squares of how far
//! each interval reaches on that side). A change is called real when that interval lies wholly beyond
//! ±`noise_pct`: the difference two runs of the same code show from machine state alone (5% by default:
//! on this project's VM, repeated runs of one workload stayed within it), which no test within one run can
//! see.

use serde::{Deserialize, Serialize};

use crate::model::{Spread, TrainingSummary};

/// The default noise level of a comparison, in percent.
pub const DEFAULT_NOISE_PCT: f64 = 5.0;

/// The change from one run to another, per phase (nanoseconds per step) and per span (total time), with a
/// verdict for each from the runs' recorded distributions.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// The noise level the verdicts were made with, in percent.
    #[serde(default)]
    pub noise_pct: f64,
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
    /// The change of the median (per step for a phase or the step, per call for a span), in percent, with
    /// its 95% interval: `(low, median, high)`; `None` when a run has no recorded distribution for it (it
    /// did not run it, or the summary was saved by a version before 0.1.0's histograms).
    #[serde(default)]
    pub median_change_pct: Option<(f64, f64, f64)>,
    /// Whether the change is real.
    #[serde(default)]
    pub verdict: Verdict,
}

/// What a comparison concludes about one quantity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    /// Faster beyond the noise level, with 95% confidence.
    Faster,
    /// Slower beyond the noise level, with 95% confidence.
    Slower,
    /// No change beyond the noise level can be told.
    NoChange,
    /// A run has no recorded distribution for it.
    #[default]
    Unknown,
}

impl Verdict {
    /// As the reports write it.
    #[must_use]
    pub fn describe(self) -> &'static str {
        match self {
            Verdict::Faster => "faster",
            Verdict::Slower => "slower",
            Verdict::NoChange => "no change within noise",
            Verdict::Unknown => "unknown (no distribution)",
        }
    }
}

/// The 95% interval of the median of the values `spread` holds, and the median, as `(low, median, high)`.
fn median_interval(spread: &Spread) -> Option<(f64, f64, f64)> {
    let n = spread.count();
    #[allow(clippy::cast_precision_loss)]
    let (half, reach) = (n as f64 / 2.0, 0.98 * (n as f64).sqrt());
    // Below six values the ranks of a 95% interval fall outside the sample: no interval can be had.
    if half - reach < 1.0 {
        return None;
    }
    // The outer ranks rounded outwards, so that the interval covers at least 95%.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let (low_rank, high_rank) = (((half - reach).floor() as u64).max(1), ((half + reach).ceil() as u64).min(n));
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let median_rank = (half.round() as u64).clamp(1, n);
    let value = |rank: u64| {
        let mut seen = 0;
        #[allow(clippy::cast_precision_loss)]
        spread
            .buckets
            .iter()
            .find(|(_, count)| {
                seen += count;
                seen >= rank
            })
            .map_or(0.0, |(value, _)| *value as f64)
    };
    // A bucket holds values within 0.8% of its middle (exactly one value below 128): the interval reaches
    // that much further, so that a change smaller than a bucket is not taken for none, nor a boundary
    // crossed by a hair for a change of a whole bucket.
    let widen = |value: f64, side: f64| if value < 128.0 { value } else { value * (1.0 + side * 0.008) };
    Some((widen(value(low_rank), -1.0), value(median_rank), widen(value(high_rank), 1.0)))
}

/// The change of the median from `before` to `after` in percent, with its interval, and the verdict at
/// `noise_pct`.
fn median_change(before: &Spread, after: &Spread, noise_pct: f64) -> (Option<(f64, f64, f64)>, Verdict) {
    let (Some(before), Some(after)) = (median_interval(before), median_interval(after)) else {
        return (None, Verdict::Unknown);
    };
    if before.1 <= 0.0 || after.1 <= 0.0 {
        // A median of 0 (a phase most steps do not enter): no ratio to take.
        return (None, Verdict::Unknown);
    }
    // On the log scale, each median's interval reaches so far below and above it; the two runs' reaches
    // combine as independent errors do (taking the intervals' far ends instead added them, and needed a
    // change of twice the width to see it).
    let ln = |ratio: f64| if ratio > 0.0 { ratio.ln() } else { 0.0 };
    let reach = |run: (f64, f64, f64)| (ln(run.1 / run.0.max(f64::MIN_POSITIVE)), ln(run.2 / run.1));
    let ((after_below, after_above), (before_below, before_above)) = (reach(after), reach(before));
    let centre = ln(after.1 / before.1);
    let pct = |log: f64| (log.exp() - 1.0) * 100.0;
    let change =
        (pct(centre - after_below.hypot(before_above)), pct(centre), pct(centre + after_above.hypot(before_below)));
    let verdict = if change.0 > noise_pct {
        Verdict::Slower
    } else if change.2 < -noise_pct {
        Verdict::Faster
    } else {
        Verdict::NoChange
    };
    (Some(change), verdict)
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
        self.compare_with_noise(after, DEFAULT_NOISE_PCT)
    }

    /// What changed from `self` to `after`, a change being real when its interval lies beyond
    /// ±`noise_pct` percent.
    #[must_use]
    pub fn compare_with_noise(&self, after: &TrainingSummary, noise_pct: f64) -> Comparison {
        #[allow(clippy::cast_precision_loss)]
        let per_step = |ns: u64, steps: usize| if steps == 0 { 0.0 } else { ns as f64 / steps as f64 };
        let (median_change_pct, verdict) = median_change(&self.step_spread, &after.step_spread, noise_pct);
        let step = Change {
            name: "step".to_owned(),
            before_ns: per_step(self.total_ns, self.total_steps),
            after_ns: per_step(after.total_ns, after.total_steps),
            median_change_pct,
            verdict,
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
        let empty = Spread::default();
        for change in &mut phases {
            let spread = |run: &'_ TrainingSummary| {
                let share = run.phase_breakdown.phases.iter().find(|share| share.phase == change.name);
                share.map_or(empty.clone(), |share| share.spread.clone())
            };
            (change.median_change_pct, change.verdict) = median_change(&spread(self), &spread(after), noise_pct);
        }
        for change in &mut spans {
            let spread =
                |run: &'_ TrainingSummary| run.span(&change.name).map_or(empty.clone(), |stats| stats.spread.clone());
            (change.median_change_pct, change.verdict) = median_change(&spread(self), &spread(after), noise_pct);
        }
        spans.sort_by(|a, b| b.delta_ns().abs().total_cmp(&a.delta_ns().abs()));
        Comparison { noise_pct, step, phases, spans }
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
