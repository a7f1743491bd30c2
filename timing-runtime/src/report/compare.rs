//! Runs side by side: what an optimization did to each phase and each span, and whether the change is
//! real or within noise.
//!
//! Two processes of the same build differ by more than the steps within one process do (the machine's
//! frequency, its neighbours, where the process landed, each process's calibration): on this project's
//! shared VMs, the same binary ran 35 ms or 63 ms from one process to the next. So a verdict needs the
//! spread between runs, which only several runs a side show.
//!
//! - Several runs a side (`Comparison::of_runs`): each run gives one figure per quantity (its median per
//!   step, or its time per step); the change of their log means gets Student's t interval from the spread
//!   between runs, or from the spread of the pairs' ratios when the runs were made in pairs, in turn
//!   (`CompareSettings::paired`, as `timing ab` runs them); the intervals hold at 95% for the whole table
//!   at once (Bonferroni). A change is real when its interval lies beyond ±`noise_pct`, the smallest change
//!   worth a verdict (`DEFAULT_MIN_CHANGE_PCT`).
//! - One run a side (`TrainingSummary::compare`): each run's median has a distribution-free 95% interval
//!   from the order statistics of its steps (ranks n/2 ± 0.98 √n, read from the histogram the summary
//!   keeps), combined as independent errors on the log scale; but that interval describes the steps of one
//!   process, not the next process, so a change is called real only beyond the run-to-run noise of this
//!   kind of machine (`SINGLE_RUN_NOISE_PCT`), and the report says that smaller changes cannot be told.

#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};

use super::stats;
use crate::model::{Spread, TrainingSummary};

/// The noise between two single runs of the same build assumed by default, in percent. Within one process
/// a 10% change is plain; between two, the trial that asked for this saw two runs of one build 8% apart in
/// their mean step and whole processes of one binary take 35 or 63 ms on these VMs. Below this level one
/// run a side calls nothing real and says that it cannot tell; a machine noisier still needs several runs
/// a side (or `--noise`).
pub const SINGLE_RUN_NOISE_PCT: f64 = 15.0;

/// The same as `SINGLE_RUN_NOISE_PCT`, under its former name.
pub const DEFAULT_NOISE_PCT: f64 = SINGLE_RUN_NOISE_PCT;

/// The smallest change that several runs a side call real by default, in percent: below it a change is
/// too small to act on, even where the runs could tell it.
pub const DEFAULT_MIN_CHANGE_PCT: f64 = 2.0;

/// The confidence of a comparison's intervals, for all its rows together.
pub const CONFIDENCE: f64 = 0.95;

/// The change from one run to another, per phase (nanoseconds per step) and per span (total time), with a
/// verdict for each from the runs' recorded distributions.
#[derive(Clone, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct Comparison {
    /// The noise level the verdicts were made with, in percent: between single runs, the run-to-run noise
    /// assumed; between several runs a side, the smallest change called real.
    #[cfg_attr(feature = "serde", serde(default))]
    pub noise_pct: f64,
    /// Runs compared on each side.
    #[cfg_attr(feature = "serde", serde(default = "one"))]
    pub runs_before: usize,
    /// Runs compared on each side.
    #[cfg_attr(feature = "serde", serde(default = "one"))]
    pub runs_after: usize,
    /// The runs were compared in pairs (the i-th before with the i-th after).
    #[cfg_attr(feature = "serde", serde(default))]
    pub paired: bool,
    /// Mean step time.
    pub step: Change,
    /// Mean time per step of each phase in either run.
    pub phases: Vec<Change>,
    /// Total time of each span in either run, largest change first.
    pub spans: Vec<Change>,
    /// Wall time of each run's whole process, as whoever ran them measured it from outside (`timing ab`
    /// does; see [`Comparison::with_process_wall`]): start-up, the instrumentation's calibration and the
    /// report included, and the only row that a build with timing off has too. Its interval is 95% on its
    /// own.
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "Option::is_none"))]
    pub process: Option<Change>,
}

#[cfg(feature = "serde")]
fn one() -> usize {
    1
}

/// One quantity in two runs (or two sets of runs: then the means of the runs' figures).
#[derive(Clone, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct Change {
    /// What changed: a phase or span name, or "step".
    pub name: String,
    /// Nanoseconds in the first run.
    pub before_ns: f64,
    /// Nanoseconds in the second run.
    pub after_ns: f64,
    /// The change in percent with its interval, `(low, estimate, high)`. Between single runs: of the
    /// median (per step for a phase or the step, per call for a span), 95%. Between several runs a side:
    /// of the runs' figures (see `Comparison::of_runs`), 95% for the whole table. `None` when a run has no
    /// recorded distribution or figure for it (it did not run it, or the summary was saved by a version
    /// before 0.1.0's histograms).
    #[cfg_attr(feature = "serde", serde(default))]
    pub median_change_pct: Option<(f64, f64, f64)>,
    /// Whether the change is real.
    #[cfg_attr(feature = "serde", serde(default))]
    pub verdict: Verdict,
}

/// What a comparison concludes about one quantity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
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

/// The change of the median from `before` to `after` in percent, with its interval; `None` when either run
/// has too few values or a median of 0.
fn median_change(before: &Spread, after: &Spread) -> Option<(f64, f64, f64)> {
    let (before, after) = (median_interval(before)?, median_interval(after)?);
    if before.1 <= 0.0 || after.1 <= 0.0 {
        // A median of 0 (a phase most steps do not enter): no ratio to take.
        return None;
    }
    // On the log scale, each median's interval reaches so far below and above it; the two runs' reaches
    // combine as independent errors do (taking the intervals' far ends instead added them, and needed a
    // change of twice the width to see it).
    let ln = |ratio: f64| if ratio > 0.0 { ratio.ln() } else { 0.0 };
    let reach = |run: (f64, f64, f64)| (ln(run.1 / run.0.max(f64::MIN_POSITIVE)), ln(run.2 / run.1));
    let ((after_below, after_above), (before_below, before_above)) = (reach(after), reach(before));
    let centre = ln(after.1 / before.1);
    let pct = |log: f64| (log.exp() - 1.0) * 100.0;
    Some((pct(centre - after_below.hypot(before_above)), pct(centre), pct(centre + after_above.hypot(before_below))))
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

/// How runs are compared: `Comparison::of_runs`'s settings.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CompareSettings {
    /// Between single runs, the run-to-run noise assumed (`SINGLE_RUN_NOISE_PCT` when `None`); between
    /// several runs a side, the smallest change called real (`DEFAULT_MIN_CHANGE_PCT` when `None`).
    pub noise_pct: Option<f64>,
    /// The runs were made in pairs, the i-th before with the i-th after (as `timing ab` runs them, in turn):
    /// the verdicts then come from the pairs' ratios, which a drift of the machine over the runs does not
    /// move. Ignored unless both sides have as many runs.
    pub paired: bool,
}

/// Which figure of a run stands for a quantity.
#[derive(Clone, Copy)]
enum Quantity<'a> {
    Step,
    Phase(&'a str),
    Span(&'a str),
}

impl Quantity<'_> {
    /// What is shown for the run: mean per step (the step, a phase) or total time (a span).
    fn shown(self, run: &TrainingSummary) -> Option<f64> {
        #[allow(clippy::cast_precision_loss)]
        let per_step = |ns: u64| if run.total_steps == 0 { 0.0 } else { ns as f64 / run.total_steps as f64 };
        match self {
            Quantity::Step => Some(per_step(run.total_ns)),
            Quantity::Phase(name) => {
                run.phase_breakdown.phases.iter().find(|share| share.phase == name).map(|share| per_step(share.ns))
            }
            #[allow(clippy::cast_precision_loss)]
            Quantity::Span(name) => run.span(name).map(|stats| stats.total_ns as f64),
        }
    }

    /// The median per step (the step, a phase), which a step the scheduler stretched does not move, or
    /// `None` when the run has none above 0.
    fn median(self, run: &TrainingSummary) -> Option<f64> {
        #[allow(clippy::cast_precision_loss)]
        let median = match self {
            Quantity::Step => run.step_distribution.p50_ns as f64,
            Quantity::Phase(name) => {
                run.phase_breakdown.phases.iter().find(|share| share.phase == name)?.per_step.p50_ns as f64
            }
            Quantity::Span(_) => return None,
        };
        (median > 0.0).then_some(median)
    }

    /// The figure whose change between runs gets the verdict, one per run: the median per step where every
    /// run has one, else the mean per step; for a span, its time per step (per run without steps), so that
    /// fewer calls count as much as shorter ones.
    fn per_run(self, runs: &[&TrainingSummary]) -> Option<Vec<f64>> {
        if let Some(medians) = runs.iter().map(|run| self.median(run)).collect::<Option<Vec<f64>>>() {
            return Some(medians);
        }
        runs.iter()
            .map(|run| {
                let value = self.shown(run)?;
                #[allow(clippy::cast_precision_loss)]
                let value = match self {
                    Quantity::Span(_) if run.total_steps > 0 => value / run.total_steps as f64,
                    _ => value,
                };
                (value > 0.0).then_some(value)
            })
            .collect()
    }

    /// The within-run distribution a single run's verdict is read from.
    fn spread(self, run: &TrainingSummary) -> Spread {
        let spread = match self {
            Quantity::Step => Some(&run.step_spread),
            Quantity::Phase(name) => {
                run.phase_breakdown.phases.iter().find(|share| share.phase == name).map(|share| &share.spread)
            }
            Quantity::Span(name) => run.span(name).map(|stats| &stats.spread),
        };
        spread.cloned().unwrap_or_default()
    }
}

/// The verdict for an interval of a change, in percent, at `noise_pct`.
fn verdict_of(change: (f64, f64, f64), noise_pct: f64) -> Verdict {
    if change.0 > noise_pct {
        Verdict::Slower
    } else if change.2 < -noise_pct {
        Verdict::Faster
    } else {
        Verdict::NoChange
    }
}

/// The change from `before` to `after` (each a run's figure, by run) in percent with its interval at
/// confidence `1 - alpha`, from the spread between runs: on the log scale, the mean of the pairs'
/// differences (`paired`) or the difference of the means with their pooled variance, and Student's t.
/// `None` when the runs give no degree of freedom.
fn between_runs(before: &[f64], after: &[f64], paired: bool, alpha: f64) -> Option<(f64, f64, f64)> {
    let logs = |values: &[f64]| values.iter().map(|value| value.ln()).collect::<Vec<f64>>();
    let (before, after) = (logs(before), logs(after));
    #[allow(clippy::cast_precision_loss)]
    let (centre, standard_error, df) = if paired && before.len() == after.len() {
        let differences: Vec<f64> = before.iter().zip(&after).map(|(b, a)| a - b).collect();
        let (mean, variance) = stats::mean_variance(&differences);
        let n = differences.len() as f64;
        (mean, (variance / n).sqrt(), n - 1.0)
    } else {
        let ((before_mean, before_var), (after_mean, after_var)) =
            (stats::mean_variance(&before), stats::mean_variance(&after));
        let (n, m) = (before.len() as f64, after.len() as f64);
        let df = n + m - 2.0;
        let pooled = ((n - 1.0) * before_var + (m - 1.0) * after_var) / df;
        (after_mean - before_mean, (pooled * (1.0 / n + 1.0 / m)).sqrt(), df)
    };
    // Each run's median is a histogram bucket's value, within 0.8% of the true one: runs whose medians fall
    // in one bucket show no spread at all, which is not no uncertainty. The rounding's variance (uniform
    // over the bucket's width, on the log scale) is added for each side's mean.
    #[allow(clippy::cast_precision_loss)]
    let standard_error = {
        let rounding = 0.008f64.powi(2) / 12.0;
        let (n, m) = (before.len() as f64, after.len() as f64);
        (standard_error.powi(2) + rounding / n + rounding / m).sqrt()
    };
    if df < 1.0 || !centre.is_finite() {
        return None;
    }
    let reach = stats::t_quantile(df, alpha) * standard_error;
    let pct = |log: f64| (log.exp() - 1.0) * 100.0;
    Some((pct(centre - reach), pct(centre), pct(centre + reach)))
}

impl TrainingSummary {
    /// What changed from `self` to `after`, two single runs: a change is called real only beyond the
    /// run-to-run noise of this kind of machine (`SINGLE_RUN_NOISE_PCT`), as one run a side cannot show
    /// how far two processes of the same build differ. Compare several runs a side with
    /// [`Comparison::of_runs`].
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
        Comparison::of_runs(std::slice::from_ref(self), std::slice::from_ref(after), &CompareSettings::default())
    }

    /// What changed from `self` to `after`, two single runs, a change being real when its interval lies
    /// beyond ±`noise_pct` percent.
    #[must_use]
    pub fn compare_with_noise(&self, after: &TrainingSummary, noise_pct: f64) -> Comparison {
        let settings = CompareSettings { noise_pct: Some(noise_pct), paired: false };
        Comparison::of_runs(std::slice::from_ref(self), std::slice::from_ref(after), &settings)
    }
}

impl Comparison {
    /// What changed from the runs `before` to the runs `after` (several processes of each build, say).
    ///
    /// With one run a side, the verdicts are those of [`TrainingSummary::compare`]. With more, each run
    /// gives one figure per quantity (its median per step, or time per step) and the change between the
    /// sides gets an interval from the spread between runs (Student's t on the log scale), at 95% for the
    /// whole table at once (each row's level raised as Bonferroni's correction asks, so that comparing
    /// more phases and spans does not raise the chance of a false verdict); a change is real when that
    /// interval lies beyond ±the noise level.
    ///
    /// ```
    /// use timing_runtime::{CompareSettings, Comparison, TrainingSummary, Verdict};
    ///
    /// let run = |step_ns: u64| TrainingSummary { total_steps: 1, total_ns: step_ns, ..TrainingSummary::default() };
    /// let before = [run(1_000), run(1_010), run(990), run(1_005)];
    /// let after = [run(1_200), run(1_190), run(1_210), run(1_195)];
    /// let comparison = Comparison::of_runs(&before, &after, &CompareSettings::default());
    /// assert_eq!(comparison.step.verdict, Verdict::Slower);
    /// ```
    #[must_use]
    pub fn of_runs(before: &[TrainingSummary], after: &[TrainingSummary], settings: &CompareSettings) -> Comparison {
        let single = before.len() <= 1 && after.len() <= 1;
        let noise_pct =
            settings.noise_pct.unwrap_or(if single { SINGLE_RUN_NOISE_PCT } else { DEFAULT_MIN_CHANGE_PCT });
        let paired = settings.paired && !single && before.len() == after.len();
        let (before, after): (Vec<&TrainingSummary>, Vec<&TrainingSummary>) =
            (before.iter().collect(), after.iter().collect());
        let mut phase_names: Vec<&str> = Vec::new();
        let mut span_names: Vec<&str> = Vec::new();
        for run in before.iter().chain(&after) {
            for share in &run.phase_breakdown.phases {
                if !phase_names.contains(&share.phase.as_str()) {
                    phase_names.push(&share.phase);
                }
            }
            for stats in &run.spans {
                if !span_names.contains(&stats.name.as_str()) {
                    span_names.push(&stats.name);
                }
            }
        }
        let quantities: Vec<(Quantity<'_>, String)> = std::iter::once((Quantity::Step, "step".to_owned()))
            .chain(phase_names.iter().map(|name| (Quantity::Phase(name), (*name).to_owned())))
            .chain(span_names.iter().map(|name| (Quantity::Span(name), (*name).to_owned())))
            .collect();
        let mean_shown = |quantity: Quantity<'_>, runs: &[&TrainingSummary]| {
            let shown: Vec<f64> = runs.iter().filter_map(|run| quantity.shown(run)).collect();
            #[allow(clippy::cast_precision_loss)]
            let mean = if shown.is_empty() { 0.0 } else { shown.iter().sum::<f64>() / shown.len() as f64 };
            mean
        };
        // Bonferroni's correction over the rows that get an interval.
        let tested = quantities
            .iter()
            .filter(|(quantity, _)| quantity.per_run(&before).is_some() && quantity.per_run(&after).is_some())
            .count()
            .max(1);
        #[allow(clippy::cast_precision_loss)]
        let alpha = (1.0 - CONFIDENCE) / tested as f64;
        let mut changes: Vec<Change> = quantities
            .iter()
            .map(|(quantity, name)| {
                let median_change_pct = match (single, before.first(), after.first()) {
                    (true, Some(first), Some(second)) => {
                        median_change(&quantity.spread(first), &quantity.spread(second))
                    }
                    (true, _, _) => None,
                    (false, _, _) => match (quantity.per_run(&before), quantity.per_run(&after)) {
                        (Some(b), Some(a)) => between_runs(&b, &a, paired, alpha),
                        _ => None,
                    },
                };
                Change {
                    name: name.clone(),
                    before_ns: mean_shown(*quantity, &before),
                    after_ns: mean_shown(*quantity, &after),
                    median_change_pct,
                    verdict: median_change_pct.map_or(Verdict::Unknown, |change| verdict_of(change, noise_pct)),
                }
            })
            .collect();
        let spans = changes.split_off(1 + phase_names.len());
        let phases = changes.split_off(1);
        let step = changes.pop().unwrap_or_default();
        let mut spans = spans;
        spans.sort_by(|a, b| b.delta_ns().abs().total_cmp(&a.delta_ns().abs()));
        Comparison {
            noise_pct,
            runs_before: before.len(),
            runs_after: after.len(),
            paired,
            step,
            phases,
            spans,
            process: None,
        }
    }

    /// The comparison with a row for the wall time of each run's whole process, `before_ns` and `after_ns`
    /// by run, in the runs' order: what an uninstrumented build can be compared by, so that `timing ab` of a
    /// build with timing off against one with it on measures what the instrumentation costs the program.
    ///
    /// ```
    /// use timing_runtime::{CompareSettings, Comparison, TrainingSummary, Verdict};
    ///
    /// let runs = vec![TrainingSummary::default(); 4];
    /// let settings = CompareSettings { noise_pct: None, paired: true };
    /// let comparison = Comparison::of_runs(&runs, &runs, &settings)
    ///     .with_process_wall(&[100e6, 104e6, 98e6, 101e6], &[111e6, 114e6, 108e6, 110e6]);
    /// assert_eq!(comparison.process.map(|row| row.verdict), Some(Verdict::Slower));
    /// ```
    #[must_use]
    pub fn with_process_wall(mut self, before_ns: &[f64], after_ns: &[f64]) -> Comparison {
        #[allow(clippy::cast_precision_loss)]
        let mean =
            |values: &[f64]| if values.is_empty() { 0.0 } else { values.iter().sum::<f64>() / values.len() as f64 };
        let positive = |values: &[f64]| !values.is_empty() && values.iter().all(|value| *value > 0.0);
        let interval = if positive(before_ns) && positive(after_ns) {
            between_runs(before_ns, after_ns, self.paired && before_ns.len() == after_ns.len(), 1.0 - CONFIDENCE)
        } else {
            None
        };
        let noise_pct = self.noise_pct;
        self.process = Some(Change {
            name: "process".to_owned(),
            before_ns: mean(before_ns),
            after_ns: mean(after_ns),
            median_change_pct: interval,
            verdict: interval.map_or(Verdict::Unknown, |change| verdict_of(change, noise_pct)),
        });
        self
    }

    /// Whether each side had one run, so that no verdict could see the noise between runs.
    #[must_use]
    pub fn single_runs(&self) -> bool {
        self.runs_before <= 1 && self.runs_after <= 1
    }
}
