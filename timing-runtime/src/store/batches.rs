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
    /// Its batches' threads' CPU time during them, in nanoseconds, over the wall time (ticks) of those of
    /// its batches that read it (short batches read it one in 64); and the process's resident memory at
    /// the latest of their ends (0 where unknown).
    pub cpu_ns: u64,
    pub cpu_batch_ticks: u64,
    pub resident_bytes: u64,
}

impl PointTicks {
    fn absorb(&mut self, other: &PointTicks) {
        // The memory at the later end, unless that is unknown.
        let (later, earlier) = if other.end >= self.end { (other, &*self) } else { (&*self, other) };
        self.resident_bytes = if later.resident_bytes > 0 { later.resident_bytes } else { earlier.resident_bytes };
        self.batches = self.batches.saturating_add(other.batches);
        self.steps = self.steps.saturating_add(other.steps);
        self.start = self.start.min(other.start);
        self.end = self.end.max(other.end);
        self.batch_ticks = self.batch_ticks.saturating_add(other.batch_ticks);
        self.step_ticks = self.step_ticks.saturating_add(other.step_ticks);
        self.cpu_ns = self.cpu_ns.saturating_add(other.cpu_ns);
        self.cpu_batch_ticks = self.cpu_batch_ticks.saturating_add(other.cpu_batch_ticks);
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
    /// The points, their `phase_ticks` empty: those are in `rows`.
    points: Vec<PointTicks>,
    /// Each point's phase ticks, `width` words a point, in the points' order.
    rows: Vec<u64>,
    width: usize,
}

impl BatchSeries {
    const fn new() -> Self {
        BatchSeries { epoch: 0, stride: 1, points: Vec::new(), rows: Vec::new(), width: 0 }
    }

    /// Begins the series of `epoch`, keeping the room made for the points.
    fn clear(&mut self, epoch: u64) {
        self.epoch = epoch;
        self.stride = 1;
        self.points.clear();
        self.rows.clear();
    }

    /// Adds one batch (or, in tests, a point of several). Allocates only when the series first takes a
    /// point, or a batch has more phases than any before: a point a batch, each a block of its own kept
    /// for the run and placed among the user's, changed how an allocation-heavy program's allocations were
    /// served (see `store::arena`).
    fn push(&mut self, batch: &PointTicks) {
        if batch.phase_ticks.len() > self.width {
            self.widen(batch.phase_ticks.len());
        }
        if self.points.capacity() < MAX_POINTS + 1 {
            self.points.reserve_exact(MAX_POINTS + 1 - self.points.len());
        }
        let head = PointTicks { phase_ticks: Vec::new(), ..batch.clone_head() };
        match self.points.last_mut() {
            Some(last) if last.batches < self.stride => {
                last.absorb(&head);
                let row = self.rows.len() - self.width;
                for (mine, theirs) in self.rows[row..].iter_mut().zip(&batch.phase_ticks) {
                    *mine = mine.saturating_add(*theirs);
                }
            }
            _ => {
                self.points.push(head);
                self.rows.extend_from_slice(&batch.phase_ticks);
                self.rows.resize(self.points.len() * self.width, 0);
            }
        }
        if self.points.len() > MAX_POINTS {
            self.merge_pairs();
        }
    }

    /// Neighbours in pairs, in place: every point then holds `2 * stride` batches, the latest perhaps
    /// fewer.
    fn merge_pairs(&mut self) {
        let (count, width) = (self.points.len(), self.width);
        let merged = count.div_ceil(2);
        for index in 0..merged {
            let (first, second) = (2 * index, 2 * index + 1);
            let mut point = self.points[first].clone_head();
            if let Some(next) = self.points.get(second) {
                point.absorb(next);
            }
            self.points[index] = point;
            for word in 0..width {
                let next = if second < count { self.rows[second * width + word] } else { 0 };
                self.rows[index * width + word] = self.rows[first * width + word].saturating_add(next);
            }
        }
        self.points.truncate(merged);
        self.rows.truncate(merged * width);
        self.stride = self.stride.saturating_mul(2);
    }

    /// Makes each row `phases` words or more (a multiple of 8, so that phases added one by one rarely
    /// move the rows), with room for every point the series keeps.
    fn widen(&mut self, phases: usize) {
        let width = phases.next_multiple_of(8);
        let mut rows = Vec::with_capacity((MAX_POINTS + 1) * width);
        for row in self.rows.chunks_exact(self.width.max(1)).take(self.points.len()) {
            rows.extend_from_slice(row);
            rows.resize(rows.len() + width - row.len(), 0);
        }
        self.rows = rows;
        self.width = width;
    }

    /// The points, oldest first, each with its phase ticks.
    fn read(&self) -> Vec<PointTicks> {
        let width = self.width;
        let row = |index: usize| self.rows.get(index * width..(index + 1) * width).unwrap_or_default().to_vec();
        self.points
            .iter()
            .enumerate()
            .map(|(index, point)| PointTicks { phase_ticks: row(index), ..point.clone_head() })
            .collect()
    }
}

impl PointTicks {
    /// The point without its phase ticks.
    fn clone_head(&self) -> PointTicks {
        PointTicks {
            batches: self.batches,
            steps: self.steps,
            start: self.start,
            end: self.end,
            batch_ticks: self.batch_ticks,
            step_ticks: self.step_ticks,
            phase_ticks: Vec::new(),
            cpu_ns: self.cpu_ns,
            cpu_batch_ticks: self.cpu_batch_ticks,
            resident_bytes: self.resident_bytes,
        }
    }
}

static SERIES: Mutex<BatchSeries> = Mutex::new(BatchSeries::new());

/// Adds a batch that ended on a thread recording in `epoch`; a batch of an epoch before the series' is
/// dropped (it ended after a reset), one of a later epoch begins the series again.
pub(crate) fn record(epoch: u64, batch: &PointTicks) {
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
    if series.epoch == epoch { series.read() } else { Vec::new() }
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
            // The machine read for one batch in three, as for short batches.
            cpu_ns: if index % 3 == 0 { 70 } else { 0 },
            cpu_batch_ticks: if index % 3 == 0 { 90 } else { 0 },
            // Memory read now and then: the batches between have none.
            resident_bytes: if index % 3 == 0 { 4096 + index } else { 0 },
        }
    }

    #[test]
    fn a_long_run_keeps_at_most_the_bound_and_loses_nothing() {
        let mut series = BatchSeries::new();
        let count = 1_000_003u64;
        for index in 0..count {
            series.push(&batch(index));
            assert!(series.points.len() <= MAX_POINTS);
        }
        let points = series.read();
        let sum = |pick: fn(&PointTicks) -> u64| points.iter().map(pick).sum::<u64>();
        assert_eq!(sum(|point| point.batches), count);
        assert_eq!(sum(|point| point.steps), count * 10);
        assert_eq!(sum(|point| point.batch_ticks), count * 90);
        assert_eq!(sum(|point| point.phase_ticks[1]), count * 50);
        assert_eq!(sum(|point| point.phase_ticks[2]), (0..count).map(|index| index % 7).sum::<u64>());
        let read = count.div_ceil(3);
        assert_eq!((sum(|point| point.cpu_ns), sum(|point| point.cpu_batch_ticks)), (read * 70, read * 90));
        // Each point's CPU time over its read batches' wall time is theirs, however many unread ones it
        // holds.
        assert!(points.iter().all(|point| point.cpu_batch_ticks == 0 || point.cpu_ns * 9 == point.cpu_batch_ticks * 7));
        // Points cover consecutive batches, in order, all but the latest of the same size.
        assert!(series.points.len() > MAX_POINTS / 2, "{}", series.points.len());
        let stride = series.stride;
        for (index, point) in points.iter().enumerate() {
            let first = index as u64 * stride;
            assert_eq!(point.start, first * 100);
            if index + 1 < points.len() {
                assert_eq!(point.batches, stride);
                assert_eq!(point.end, (first + stride - 1) * 100 + 90);
            }
            // The memory of its latest batch that had one.
            let last = first + point.batches - 1;
            assert_eq!(point.resident_bytes, 4096 + last - last % 3, "point {index}");
        }
    }

    #[test]
    fn phases_first_seen_later_widen_the_rows_and_batches_allocate_nothing_after_the_first() {
        let mut series = BatchSeries::new();
        series.push(&batch(0));
        let room = (series.points.capacity(), series.rows.capacity());
        for index in 1..2_000 {
            series.push(&batch(index));
        }
        assert_eq!((series.points.capacity(), series.rows.capacity()), room);
        // Ten phases: each row grows to hold them; the earlier ticks stay where they were.
        let mut wide = batch(2_000);
        wide.phase_ticks = (0..10).collect();
        series.push(&wide);
        let points = series.read();
        assert_eq!(points.iter().map(|point| point.phase_ticks[1]).sum::<u64>(), 2_000 * 50 + 1);
        assert_eq!(points.iter().map(|point| point.phase_ticks[9]).sum::<u64>(), 9);
        assert!(points.iter().all(|point| point.phase_ticks.len() == 16));
    }

    #[test]
    fn a_short_run_keeps_every_batch() {
        let mut series = BatchSeries::new();
        (0..MAX_POINTS as u64).for_each(|index| series.push(&batch(index)));
        assert_eq!(series.points.len(), MAX_POINTS);
        assert!(series.points.iter().all(|point| point.batches == 1));
        series.push(&batch(MAX_POINTS as u64));
        assert_eq!(series.points.len(), MAX_POINTS / 2 + 1);
    }
}
