//! The run's batches as a bounded series, for charts of how the phase shares and the rate change as a run
//! goes on: one point per batch until there are `MAX_POINTS`, then each pair of neighbours merged into one
//! and every later point made of twice as many batches, so that a run of millions of batches keeps at
//! most `MAX_POINTS` points (and their phase ticks), as evenly spread over the run as its batches were.
//!
//! Process-wide behind one lock taken once per batch, at the batch's end: batches end far less often than
//! steps (a batch of one step each microsecond would take the lock a million times a second, each time for
//! some tens of nanoseconds). Points are in the order batches ended.

use parking_lot::Mutex;

/// Points kept at most. A point of a run with `n` phases takes about `80 + 8n` bytes.
pub(crate) const MAX_POINTS: usize = 256;

/// One batch or several consecutive ones, in ticks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct PointTicks {
    pub batches: u64,
    pub steps: u64,
    /// The earliest start and the latest end of its batches.
    pub start: u64,
    pub end: u64,
    /// The sum of its batches' wall times.
    pub batch_ticks: u64,
    /// The sum of the times of the steps its batches' threads completed during them.
    pub step_ticks: u64,
    /// Those steps' ticks by phase id (0, no phase, is always 0).
    pub phase_ticks: Vec<u64>,
}

impl PointTicks {
    fn absorb(&mut self, other: &PointTicks) {
        self.batches = self.batches.saturating_add(other.batches);
        self.steps = self.steps.saturating_add(other.steps);
        self.start = self.start.min(other.start);
        self.end = self.end.max(other.end);
        self.batch_ticks = self.batch_ticks.saturating_add(other.batch_ticks);
        self.step_ticks = self.step_ticks.saturating_add(other.step_ticks);
        if self.phase_ticks.len() < other.phase_ticks.len() {
            self.phase_ticks.resize(other.phase_ticks.len(), 0);
        }
        for (mine, theirs) in self.phase_ticks.iter_mut().zip(&other.phase_ticks) {
            *mine = mine.saturating_add(*theirs);
        }
    }
}

/// The batches of one epoch.
#[derive(Debug)]
pub(crate) struct BatchSeries {
    epoch: u64,
    /// Batches a point is made of (a power of two); the latest point may have fewer yet.
    stride: u64,
    points: Vec<PointTicks>,
}

impl BatchSeries {
    const fn new() -> Self {
        BatchSeries { epoch: 0, stride: 1, points: Vec::new() }
    }

    fn clear(&mut self, epoch: u64) {
        *self = BatchSeries { epoch, ..BatchSeries::new() };
    }

    /// Adds one batch (or, in tests, a point of several).
    fn push(&mut self, batch: PointTicks) {
        match self.points.last_mut() {
            Some(last) if last.batches < self.stride => last.absorb(&batch),
            _ => self.points.push(batch),
        }
        if self.points.len() > MAX_POINTS {
            // Neighbours in pairs: every point then holds `2 * stride` batches, the latest perhaps fewer.
            let old = std::mem::take(&mut self.points);
            let mut merged: Vec<PointTicks> = Vec::with_capacity(MAX_POINTS);
            for pair in old.chunks(2) {
                let mut point = pair[0].clone();
                if let Some(second) = pair.get(1) {
                    point.absorb(second);
                }
                merged.push(point);
            }
            self.points = merged;
            self.stride = self.stride.saturating_mul(2);
        }
    }
}

static SERIES: Mutex<BatchSeries> = Mutex::new(BatchSeries::new());

/// Adds a batch that ended on a thread recording in `epoch`; a batch of an epoch before the series' is
/// dropped (it ended after a reset), one of a later epoch begins the series again.
pub(crate) fn record(epoch: u64, batch: PointTicks) {
    let mut series = SERIES.lock();
    if epoch < series.epoch {
        return;
    }
    if epoch > series.epoch {
        series.clear(epoch);
    }
    series.push(batch);
}

/// The points of epoch `epoch`, oldest first.
pub(crate) fn read(epoch: u64) -> Vec<PointTicks> {
    let series = SERIES.lock();
    if series.epoch == epoch { series.points.clone() } else { Vec::new() }
}

/// Forgets every point: a reset began epoch `epoch`. A thread that saw the new epoch first may have added
/// a point of it already, which stays.
pub(crate) fn reset(epoch: u64) {
    let mut series = SERIES.lock();
    if epoch > series.epoch {
        series.clear(epoch);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(index: u64) -> PointTicks {
        PointTicks {
            batches: 1,
            steps: 10,
            start: index * 100,
            end: index * 100 + 90,
            batch_ticks: 90,
            step_ticks: 80,
            phase_ticks: vec![0, 50, index % 7],
        }
    }

    #[test]
    fn a_long_run_keeps_at_most_the_bound_and_loses_nothing() {
        let mut series = BatchSeries::new();
        let count = 1_000_003u64;
        for index in 0..count {
            series.push(batch(index));
            assert!(series.points.len() <= MAX_POINTS);
        }
        let sum = |pick: fn(&PointTicks) -> u64| series.points.iter().map(pick).sum::<u64>();
        assert_eq!(sum(|point| point.batches), count);
        assert_eq!(sum(|point| point.steps), count * 10);
        assert_eq!(sum(|point| point.batch_ticks), count * 90);
        assert_eq!(sum(|point| point.phase_ticks[1]), count * 50);
        assert_eq!(sum(|point| point.phase_ticks[2]), (0..count).map(|index| index % 7).sum::<u64>());
        // Points cover consecutive batches, in order, all but the latest of the same size.
        assert!(series.points.len() > MAX_POINTS / 2, "{}", series.points.len());
        let stride = series.stride;
        for (index, point) in series.points.iter().enumerate() {
            let first = index as u64 * stride;
            assert_eq!(point.start, first * 100);
            if index + 1 < series.points.len() {
                assert_eq!(point.batches, stride);
                assert_eq!(point.end, (first + stride - 1) * 100 + 90);
            }
        }
    }

    #[test]
    fn a_short_run_keeps_every_batch() {
        let mut series = BatchSeries::new();
        (0..MAX_POINTS as u64).for_each(|index| series.push(batch(index)));
        assert_eq!(series.points.len(), MAX_POINTS);
        assert!(series.points.iter().all(|point| point.batches == 1));
        series.push(batch(MAX_POINTS as u64));
        assert_eq!(series.points.len(), MAX_POINTS / 2 + 1);
    }
}
