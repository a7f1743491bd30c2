//! Records of one step and of one batch of steps.

use crate::model::machine::BatchMachine;
use std::borrow::Cow;

#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};

/// The time one step spent in one phase.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct PhaseTime {
    /// The phase, as written in `#[timed(phase = "...")]`.
    pub phase: Cow<'static, str>,
    /// Nanoseconds of the step that belong to this phase.
    pub ns: u64,
    /// Allocations (reallocations included) the step made in this phase, with a counting allocator
    /// installed.
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "Option::is_none"))]
    pub allocations: Option<u64>,
    /// Bytes those allocations asked for.
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "Option::is_none"))]
    pub allocated_bytes: Option<u64>,
}

/// One optimizer step: one call of the `#[timed(step)]` function.
///
/// ```
/// use timing_runtime::{PhaseTime, StepTiming};
///
/// let gradient = PhaseTime { phase: "gradient".into(), ns: 600, ..PhaseTime::default() };
/// let step = StepTiming { total_ns: 1_000, phases: vec![gradient], ..StepTiming::default() };
/// assert_eq!(step.phase_ns("gradient"), 600);
/// assert_eq!(step.phase_ns("regions"), 0);
/// assert_eq!(step.overhead_ns(), 400);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct StepTiming {
    /// Wall time of the step call.
    pub total_ns: u64,
    /// Time per phase, for the phases the step spent time in (granularity `Detailed`).
    #[cfg_attr(feature = "serde", serde(default))]
    pub phases: Vec<PhaseTime>,
    /// Allocations (reallocations included) the step made, its phases and its own code, with a counting
    /// allocator installed.
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "Option::is_none"))]
    pub allocations: Option<u64>,
    /// Bytes those allocations asked for.
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "Option::is_none"))]
    pub allocated_bytes: Option<u64>,
}

impl StepTiming {
    /// Nanoseconds of this step in `phase`; 0 for a phase the step did not enter.
    #[must_use]
    pub fn phase_ns(&self, phase: &str) -> u64 {
        self.phases.iter().filter(|time| time.phase == phase).map(|time| time.ns).sum()
    }

    /// Nanoseconds of this step outside every phase.
    #[must_use]
    pub fn overhead_ns(&self) -> u64 {
        let phased = self.phases.iter().fold(0u64, |sum, time| sum.saturating_add(time.ns));
        self.total_ns.saturating_sub(phased)
    }
}

/// One batch of steps: one call of the `#[timed(batch)]` function, of `batch`, or a `scope!(.., batch)`.
///
/// ```
/// use timing_runtime::BatchTiming;
///
/// let batch = BatchTiming::new(500, 250_000_000, None);
/// assert_eq!(batch.steps_per_second, 2_000.0);
/// assert_eq!(BatchTiming::new(3, 0, None).steps_per_second(), 0.0);
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct BatchTiming {
    /// The batch's name: its function's, or the label given to [`batch`](crate::batch) or
    /// [`start_batch`](crate::start_batch); `None` in a record made by hand.
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "Option::is_none"))]
    pub label: Option<String>,
    /// Steps completed during the batch call: on the batch's thread, and on other threads inside its
    /// [`BatchHandle::in_scope`](crate::BatchHandle::in_scope) (those that finish before the batch does).
    pub steps: usize,
    /// Wall time of the batch call.
    pub compute_ns: u64,
    /// Each step of the batch on the batch's thread, at granularity `Step` or finer (steps on other threads
    /// are counted in `steps` but have no record here).
    pub step_timings: Option<Vec<StepTiming>>,
    /// `steps` over `compute_ns`, in steps per second.
    pub steps_per_second: f64,
    /// Steps slower than the batch's mean step time plus three standard deviations (needs step records).
    #[cfg_attr(feature = "serde", serde(default))]
    pub slow_steps: Vec<SlowStep>,
    /// What the machine gave the batch's thread meanwhile: CPU time, waits and preemptions, and the
    /// process's resident memory at its end; `None` where they cannot be read (not Linux, WASM) and in a
    /// record made by hand. [`BatchMachine::stall`] says whether the batch stalled.
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "Option::is_none"))]
    pub machine: Option<BatchMachine>,
}

/// A step much slower than the others of its batch, and the phase that grew the most in it.
#[derive(Clone, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct SlowStep {
    /// The step's index in its batch, from 0.
    pub step: usize,
    /// The step's time.
    pub total_ns: u64,
    /// The mean step time of its batch.
    pub batch_mean_ns: f64,
    /// The phase that took the most time over its batch mean in this step; `None` for the time outside
    /// every phase.
    pub phase: Option<String>,
    /// How much longer than its batch mean that phase (or the overhead) took in this step.
    pub excess_ns: f64,
    /// Its batch: the batches its thread had completed since the latest reset, this one included (from
    /// 1); `None` in a record made by hand.
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "Option::is_none"))]
    pub batch: Option<u64>,
    /// Its thread, numbered from 1 in the order threads first recorded (as timelines number them).
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "Option::is_none"))]
    pub thread: Option<u64>,
}

/// One batch of the run, or several consecutive ones: what charts of a run over time are drawn from. A
/// summary keeps one per batch until the run has 256, then merges neighbours in pairs (and makes every
/// later point of as many batches), so that it never keeps more than 256 however long the run. Batches
/// whose steps all ran on other threads (through a [`BatchHandle`](crate::BatchHandle)) are not among
/// them: with a pool, the workers' own batches are the points.
///
/// ```
/// use timing_runtime::{BatchPoint, PhaseTime};
///
/// let regions = PhaseTime { phase: "regions".into(), ns: 600, ..PhaseTime::default() };
/// let point = BatchPoint { steps: 4, start_ns: 0, end_ns: 2_000, step_ns: 1_000, phases: vec![regions], ..BatchPoint::default() };
/// assert_eq!((point.steps_per_second(), point.phase_pct("regions"), point.overhead_pct()), (2e6, 60.0, 40.0));
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct BatchPoint {
    /// The batches it stands for, consecutive in the order they ended.
    pub batches: u64,
    /// The steps those batches completed on their own threads.
    pub steps: u64,
    /// The earliest start of its batches, in nanoseconds from the start of the run (the first step's start,
    /// or the first batch's if earlier).
    pub start_ns: u64,
    /// The latest end of its batches, likewise.
    pub end_ns: u64,
    /// The sum of its batches' wall times.
    pub batch_ns: u64,
    /// The sum of the times of those steps.
    pub step_ns: u64,
    /// Those steps' time by phase, largest first (granularity `Detailed`).
    pub phases: Vec<PhaseTime>,
    /// The CPU time of its batches' threads during them, of the batches that read it (0 where it cannot be
    /// read; a thread whose batches are short reads it for one in 64): over `cpu_batch_ns`, the share of
    /// the time they had a CPU.
    #[cfg_attr(feature = "serde", serde(default))]
    pub cpu_ns: u64,
    /// The wall time of the batches whose CPU time `cpu_ns` is.
    #[cfg_attr(feature = "serde", serde(default))]
    pub cpu_batch_ns: u64,
    /// The process's resident memory at the latest of its batches' ends, in bytes (0 where unknown).
    #[cfg_attr(feature = "serde", serde(default))]
    pub resident_bytes: u64,
}

impl BatchPoint {
    /// Its steps over the time from its first batch's start to its last one's end (on one thread's batches,
    /// that thread's rate); 0 for no time.
    #[must_use]
    pub fn steps_per_second(&self) -> f64 {
        rate(self.steps, self.end_ns.saturating_sub(self.start_ns))
    }

    /// The percentage of its step time in `phase`; 0 without step time.
    #[must_use]
    pub fn phase_pct(&self, phase: &str) -> f64 {
        let ns =
            self.phases.iter().filter(|time| time.phase == phase).fold(0u64, |sum, time| sum.saturating_add(time.ns));
        share(ns, self.step_ns)
    }

    /// The percentage of its step time outside every phase; 0 without step time.
    #[must_use]
    pub fn overhead_pct(&self) -> f64 {
        let phased = self.phases.iter().fold(0u64, |sum, time| sum.saturating_add(time.ns));
        share(self.step_ns.saturating_sub(phased), self.step_ns)
    }
}

#[allow(clippy::cast_precision_loss)]
fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 { 0.0 } else { part as f64 * 100.0 / whole as f64 }
}

impl BatchTiming {
    /// A batch record, with `steps_per_second` derived.
    #[must_use]
    pub fn new(steps: usize, compute_ns: u64, step_timings: Option<Vec<StepTiming>>) -> Self {
        let slow_steps = step_timings.as_deref().map(slow_steps).unwrap_or_default();
        let mut batch = BatchTiming {
            label: None,
            steps,
            compute_ns,
            step_timings,
            steps_per_second: 0.0,
            slow_steps,
            machine: None,
        };
        batch.steps_per_second = batch.steps_per_second();
        batch
    }

    /// The batch as one line of JSON tagged `"timing":"batch"`, for servers' structured logs: a log shipper
    /// finds it with `grep '"timing":"batch"'`. Feature `json`.
    ///
    /// ```
    /// let line = timing_runtime::BatchTiming::new(10, 5_000, None).json_line();
    /// assert!(line.starts_with(r#"{"timing":"batch","steps":10,"compute_ns":5000"#));
    /// ```
    #[cfg(feature = "json")]
    #[must_use]
    pub fn json_line(&self) -> String {
        #[derive(Serialize)]
        #[serde(tag = "timing", rename = "batch")]
        struct Tagged<'a> {
            #[serde(flatten)]
            batch: &'a BatchTiming,
        }
        serde_json::to_string(&Tagged { batch: self }).unwrap_or_else(|error| format!("{{\"error\":\"{error}\"}}"))
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
    if ns == 0 { 0.0 } else { count as f64 / (ns as f64 / 1e9) }
}

/// The steps slower than mean + 3σ of `steps`, each with the phase that grew the most.
#[allow(clippy::cast_precision_loss)]
pub(crate) fn slow_steps(steps: &[StepTiming]) -> Vec<SlowStep> {
    if steps.len() < 2 {
        return Vec::new();
    }
    let count = steps.len() as f64;
    let mean = steps.iter().map(|step| step.total_ns as f64).sum::<f64>() / count;
    let variance = steps.iter().map(|step| (step.total_ns as f64 - mean).powi(2)).sum::<f64>() / count;
    let threshold = mean + 3.0 * variance.sqrt();
    let mut phase_means: Vec<(&str, f64)> = Vec::new();
    for step in steps {
        for time in &step.phases {
            match phase_means.iter_mut().find(|(phase, _)| *phase == time.phase) {
                Some((_, sum)) => *sum += time.ns as f64,
                None => phase_means.push((&time.phase, time.ns as f64)),
            }
        }
    }
    phase_means.iter_mut().for_each(|(_, sum)| *sum /= count);
    let overhead_mean = steps.iter().map(|step| step.overhead_ns() as f64).sum::<f64>() / count;
    steps
        .iter()
        .enumerate()
        .filter(|(_, step)| step.total_ns as f64 > threshold)
        .map(|(index, step)| {
            let overhead = (None, step.overhead_ns() as f64 - overhead_mean);
            let (phase, excess) = phase_means
                .iter()
                .map(|(phase, mean)| (Some(*phase), step.phase_ns(phase) as f64 - mean))
                .fold(overhead, |best, candidate| if candidate.1 > best.1 { candidate } else { best });
            SlowStep {
                step: index,
                total_ns: step.total_ns,
                batch_mean_ns: mean,
                phase: phase.map(str::to_owned),
                excess_ns: excess,
                batch: None,
                thread: None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(total_ns: u64, regions: u64, error: u64) -> StepTiming {
        let phases = vec![
            PhaseTime { phase: "regions".into(), ns: regions, ..PhaseTime::default() },
            PhaseTime { phase: "error".into(), ns: error, ..PhaseTime::default() },
        ];
        StepTiming { total_ns, phases, ..StepTiming::default() }
    }

    #[test]
    fn a_stalled_step_is_flagged_with_the_phase_that_grew() {
        let mut steps: Vec<StepTiming> = (0..50).map(|i| step(1_000 + i % 3, 600, 300)).collect();
        steps[37] = step(5_000, 4_600, 300);
        steps[12] = step(4_000, 600, 300);
        let slow = slow_steps(&steps);
        assert_eq!(slow.len(), 2, "{slow:?}");
        assert_eq!((slow[0].step, slow[0].phase.as_deref()), (12, None));
        assert_eq!((slow[1].step, slow[1].phase.as_deref()), (37, Some("regions")));
        assert!(slow[1].excess_ns > 3_900.0 && slow[1].excess_ns < 4_000.0, "{slow:?}");
    }

    #[test]
    fn even_steps_are_not_flagged() {
        let steps: Vec<StepTiming> = (0..100).map(|i| step(1_000 + i % 10, 600, 300)).collect();
        assert!(slow_steps(&steps).is_empty());
        assert!(BatchTiming::new(1, 10, Some(vec![step(5, 1, 1)])).slow_steps.is_empty());
    }
}

/// One recomputation: a step rebuilt on demand by replaying the steps from the nearest keyframe, as an
/// optimizer that keeps keyframes does for a step it did not keep ("step 5432: recomputed from 5120, 312
/// steps, 8.2ms"). From [`recompute`](crate::recompute).
#[derive(Clone, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct RecomputeTiming {
    /// The step the replay started from.
    pub keyframe_step: u64,
    /// The step it rebuilt.
    pub target_step: u64,
    /// Steps replayed: `target_step - keyframe_step`.
    pub steps_recomputed: u64,
    /// Wall time of the replay.
    pub compute_ns: u64,
    /// `compute_ns` over `steps_recomputed` (0 for none).
    pub per_step_ns: f64,
}

impl RecomputeTiming {
    /// A recomputation from `keyframe_step` to `target_step` that took `compute_ns`.
    #[must_use]
    #[allow(clippy::cast_precision_loss)]
    pub fn new(keyframe_step: u64, target_step: u64, compute_ns: u64) -> Self {
        let steps_recomputed = target_step.saturating_sub(keyframe_step);
        let per_step_ns = if steps_recomputed == 0 { 0.0 } else { compute_ns as f64 / steps_recomputed as f64 };
        RecomputeTiming { keyframe_step, target_step, steps_recomputed, compute_ns, per_step_ns }
    }
}
