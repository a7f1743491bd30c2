//! Steps and batches of one thread, or merged over threads, as a report reads them.

use crate::model::SlowStep;
use crate::store::hist::Histogram;

/// Steps and batches completed on one thread, in ticks, as a report reads them. In a slot, the lock guards
/// what changes once per batch (batches, slow steps) and the phases beyond the fixed tables; steps are in
/// the slot's `StepTotals`.
#[derive(Clone, Debug, Default)]
pub(crate) struct StepAccount {
    pub epoch: u64,
    pub steps: u64,
    pub step_ticks: u64,
    /// The earliest step start and the latest step end, in ticks: the wall time the steps span.
    pub span: Option<(u64, u64)>,
    /// Indexed by phase id.
    pub phase_ticks: Vec<u64>,
    pub batches: u64,
    pub batch_ticks: u64,
    /// Of `batch_ticks`, the steps its batches' own threads ran during them.
    pub batch_step_ticks: u64,
    /// Of `batch_ticks`, batches whose time cannot be split into steps and the time between them: their
    /// steps all ran on other threads (a pool's), or a reset cut them in two.
    pub unsplit_batch_ticks: u64,
    /// Of `batch_ticks`, the batches whose thread's CPU time was read (and ran their own steps), and
    /// that CPU time; of those, the ones that stalled, waiting or preempted.
    pub machine_batch_ticks: u64,
    pub machine_cpu_ns: u64,
    pub waiting_batches: u64,
    pub preempted_batches: u64,
    /// Step times.
    pub step_histogram: Histogram,
    /// Ticks per step, by phase id.
    pub phase_histograms: Vec<Histogram>,
    /// The slowest outliers seen, at most `SLOW_STEPS_KEPT`.
    pub slow_steps: Vec<SlowStep>,
}

/// Outliers kept in a summary; a batch record lists all of its own.
pub(crate) const SLOW_STEPS_KEPT: usize = 32;

impl StepAccount {
    /// Keeps the `SLOW_STEPS_KEPT` slowest of what it has and `more`.
    pub fn keep_slow_steps(&mut self, more: &[SlowStep]) {
        self.slow_steps.extend_from_slice(more);
        self.slow_steps.sort_by_key(|step| std::cmp::Reverse(step.total_ns));
        self.slow_steps.truncate(SLOW_STEPS_KEPT);
    }

    pub fn merge(&mut self, other: &StepAccount) {
        self.steps = self.steps.saturating_add(other.steps);
        self.step_ticks = self.step_ticks.saturating_add(other.step_ticks);
        self.span = match (self.span, other.span) {
            (Some((start, end)), Some((other_start, other_end))) => Some((start.min(other_start), end.max(other_end))),
            (mine, theirs) => mine.or(theirs),
        };
        if self.phase_ticks.len() < other.phase_ticks.len() {
            self.phase_ticks.resize(other.phase_ticks.len(), 0);
        }
        for (mine, theirs) in self.phase_ticks.iter_mut().zip(&other.phase_ticks) {
            *mine = mine.saturating_add(*theirs);
        }
        self.batches = self.batches.saturating_add(other.batches);
        self.batch_ticks = self.batch_ticks.saturating_add(other.batch_ticks);
        self.batch_step_ticks = self.batch_step_ticks.saturating_add(other.batch_step_ticks);
        self.unsplit_batch_ticks = self.unsplit_batch_ticks.saturating_add(other.unsplit_batch_ticks);
        self.machine_batch_ticks = self.machine_batch_ticks.saturating_add(other.machine_batch_ticks);
        self.machine_cpu_ns = self.machine_cpu_ns.saturating_add(other.machine_cpu_ns);
        self.waiting_batches = self.waiting_batches.saturating_add(other.waiting_batches);
        self.preempted_batches = self.preempted_batches.saturating_add(other.preempted_batches);
        self.step_histogram.merge(&other.step_histogram);
        if self.phase_histograms.len() < other.phase_histograms.len() {
            self.phase_histograms.resize(other.phase_histograms.len(), Histogram::default());
        }
        for (mine, theirs) in self.phase_histograms.iter_mut().zip(&other.phase_histograms) {
            mine.merge(theirs);
        }
        self.keep_slow_steps(&other.slow_steps);
    }
}
