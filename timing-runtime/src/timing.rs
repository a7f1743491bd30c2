//! Records of one step and of one batch of steps.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// The time one step spent in one phase.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhaseTime {
    /// The phase, as written in `#[timed(phase = "...")]`.
    pub phase: Cow<'static, str>,
    /// Nanoseconds of the step that belong to this phase.
    pub ns: u64,
}

/// One optimizer step: one call of the `#[timed(step)]` function.
///
/// ```
/// use timing_runtime::{PhaseTime, StepTiming};
///
/// let step = StepTiming { total_ns: 1_000, phases: vec![PhaseTime { phase: "gradient".into(), ns: 600 }] };
/// assert_eq!(step.phase_ns("gradient"), 600);
/// assert_eq!(step.phase_ns("regions"), 0);
/// assert_eq!(step.overhead_ns(), 400);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepTiming {
    /// Wall time of the step call.
    pub total_ns: u64,
    /// Time per phase, for the phases the step spent time in (granularity `Detailed`).
    #[serde(default)]
    pub phases: Vec<PhaseTime>,
}

impl StepTiming {
    /// Nanoseconds of this step in `phase`; 0 for a phase the step did not enter.
    #[must_use]
    pub fn phase_ns(&self, phase: &str) -> u64 {
        self.phases
            .iter()
            .filter(|time| time.phase == phase)
            .map(|time| time.ns)
            .sum()
    }

    /// Nanoseconds of this step outside every phase.
    #[must_use]
    pub fn overhead_ns(&self) -> u64 {
        let phased = self
            .phases
            .iter()
            .fold(0u64, |sum, time| sum.saturating_add(time.ns));
        self.total_ns.saturating_sub(phased)
    }
}

/// One batch of steps: one call of the `#[timed(batch)]` function.
///
/// ```
/// use timing_runtime::BatchTiming;
///
/// let batch = BatchTiming::new(500, 250_000_000, None);
/// assert_eq!(batch.steps_per_second, 2_000.0);
/// assert_eq!(BatchTiming::new(3, 0, None).steps_per_second(), 0.0);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BatchTiming {
    /// Steps completed on the batch's thread during the batch call.
    pub steps: usize,
    /// Wall time of the batch call.
    pub compute_ns: u64,
    /// Each step of the batch, at granularity `Step` or finer.
    pub step_timings: Option<Vec<StepTiming>>,
    /// `steps` over `compute_ns`, in steps per second.
    pub steps_per_second: f64,
}

impl BatchTiming {
    /// A batch record, with `steps_per_second` derived.
    #[must_use]
    pub fn new(steps: usize, compute_ns: u64, step_timings: Option<Vec<StepTiming>>) -> Self {
        let mut batch = BatchTiming {
            steps,
            compute_ns,
            step_timings,
            steps_per_second: 0.0,
        };
        batch.steps_per_second = batch.steps_per_second();
        batch
    }

    /// Steps per second over the batch's wall time; 0 when `compute_ns` is 0.
    #[must_use]
    pub fn steps_per_second(&self) -> f64 {
        rate(self.steps as u64, self.compute_ns)
    }
}

/// `count` per second of `ns`; 0 for no time.
#[allow(clippy::cast_precision_loss)]
pub(crate) fn rate(count: u64, ns: u64) -> f64 {
    if ns == 0 {
        0.0
    } else {
        count as f64 / (ns as f64 / 1e9)
    }
}
