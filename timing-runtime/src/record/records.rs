//! The step records of a batch in progress, kept as the ticks they are made of in one growing buffer, and
//! made into `StepTiming`s when they are asked for: at the batch's end for its slow steps (and dropped
//! again at once), and by `last_batch`.
//!
//! A record made at once (a `Vec` of `PhaseTime`s) is an allocation a step, every one kept until the batch
//! ends, placed between the blocks that the user's code allocates and frees meanwhile: in allocation-heavy code that fragmented the heap enough to slow the whole
//! program (`benches/memo.rs`, separate processes pinned to one core: 18% slower in batches of 2,000 steps
//! than the same steps outside a batch, which cost 4%); so did the batch's records made at its end and kept
//! until the next batch ended (15% in batches of 100 steps). One buffer grows by doubling, a few times a
//! batch, from the size the batch before needed.

use crate::model::{PhaseTime, SlowStep, StepTiming};
use crate::record::clock;

/// Steps as words: the step's ticks, its phase count `n`, `n` phase ticks (by phase id), then 0, or 1 and
/// `n` pairs of allocations and bytes (by phase id).
#[derive(Default)]
pub(crate) struct StepRecords {
    words: Vec<u64>,
}

impl StepRecords {
    /// Records with room for `words` words.
    pub fn with_room(words: usize) -> StepRecords {
        StepRecords { words: Vec::with_capacity(words) }
    }

    /// Forgets the records, keeping the room.
    pub fn clear(&mut self) {
        self.words.clear();
    }

    /// The words the records take: room to make for the next batch.
    pub fn words(&self) -> usize {
        self.words.len()
    }

    /// Records a step of `ticks` with `phase_ticks` by phase id and, with a counting allocator, its
    /// allocations and bytes by phase id.
    pub fn push(&mut self, ticks: u64, phase_ticks: &[u64], allocations: Option<impl Iterator<Item = (u64, u64)>>) {
        let phases = phase_ticks.len();
        self.words.push(ticks);
        self.words.push(phases as u64);
        self.words.extend_from_slice(phase_ticks);
        match allocations {
            None => self.words.push(0),
            Some(by_phase) => {
                self.words.push(1);
                let start = self.words.len();
                for (count, bytes) in by_phase.take(phases) {
                    self.words.extend([count, bytes]);
                }
                self.words.resize(start + 2 * phases, 0);
            }
        }
    }

    /// The records, in the order the steps ended, with the phases named by `phase_names` (by id).
    pub fn timings(&self, phase_names: &[&'static str]) -> Vec<StepTiming> {
        self.steps().map(|step| step_timing(step.ticks, step.phase_ticks, phase_names, step.allocations())).collect()
    }

    /// The batch's slow steps, as `model::step::slow_steps` finds them in `timings`, without making a record
    /// a step: at a batch's end, a burst of a hundred allocations and frees (and one large enough to make
    /// glibc consolidate its free lists) changed how the user's own allocations were served for many steps
    /// after it (`benches/memo.rs` under callgrind: 15,000 more instructions a step in `_int_malloc`).
    #[allow(clippy::cast_precision_loss)]
    pub fn slow_steps(&self, phase_names: &[&'static str]) -> Vec<SlowStep> {
        let count = self.steps().count();
        if count < 2 {
            return Vec::new();
        }
        let total_ns = |step: &Step| clock::to_ns(step.ticks) as f64;
        let mean = self.steps().map(|step| total_ns(&step)).sum::<f64>() / count as f64;
        let variance = self.steps().map(|step| (total_ns(&step) - mean).powi(2)).sum::<f64>() / count as f64;
        let threshold = mean + 3.0 * variance.sqrt();
        if !self.steps().any(|step| total_ns(&step) > threshold) {
            return Vec::new();
        }
        // Phase means by id, over every step, of the phases that appear in a record (with time, or with
        // allocations), in the order they first appear, as the records made whole have them.
        let mut sums: Vec<f64> = Vec::new();
        let mut order: Vec<usize> = Vec::new();
        let mut overhead_sum = 0.0;
        for step in self.steps() {
            let mut phased = 0u64;
            for (id, ns) in step.phases() {
                if sums.len() <= id {
                    sums.resize(id + 1, 0.0);
                }
                if !order.contains(&id) {
                    order.push(id);
                }
                sums[id] += ns as f64;
                phased = phased.saturating_add(ns);
            }
            overhead_sum += clock::to_ns(step.ticks).saturating_sub(phased) as f64;
        }
        let phase_mean = |id: usize| sums[id] / count as f64;
        let overhead_mean = overhead_sum / count as f64;
        self.steps()
            .enumerate()
            .filter(|(_, step)| total_ns(step) > threshold)
            .map(|(index, step)| {
                let mut by_phase = vec![0u64; sums.len()];
                let mut phased = 0u64;
                for (id, ns) in step.phases() {
                    by_phase[id] = ns;
                    phased = phased.saturating_add(ns);
                }
                let step_ns = clock::to_ns(step.ticks);
                let overhead = (None, step_ns.saturating_sub(phased) as f64 - overhead_mean);
                let (phase, excess) = order
                    .iter()
                    .map(|id| (Some(*id), by_phase[*id] as f64 - phase_mean(*id)))
                    .fold(overhead, |best, candidate| if candidate.1 > best.1 { candidate } else { best });
                SlowStep {
                    step: index,
                    total_ns: step_ns,
                    batch_mean_ns: mean,
                    phase: phase.and_then(|id| phase_names.get(id)).map(|name| (*name).to_owned()),
                    excess_ns: excess,
                    batch: None,
                    thread: None,
                }
            })
            .collect()
    }

    fn steps(&self) -> Steps<'_> {
        Steps { words: &self.words }
    }
}

/// One step's record, borrowed from the words.
struct Step<'a> {
    ticks: u64,
    /// By phase id.
    phase_ticks: &'a [u64],
    /// Allocations and bytes by phase id, in pairs, if counted.
    allocation_words: Option<&'a [u64]>,
}

impl Step<'_> {
    fn allocations(&self) -> Option<impl Iterator<Item = (u64, u64)> + '_> {
        self.allocation_words.map(|pairs| pairs.chunks_exact(2).map(|pair| (pair[0], pair[1])))
    }

    /// The nanoseconds of each phase id (from 1) that a record made whole lists: those with time, or with
    /// allocations.
    fn phases(&self) -> impl Iterator<Item = (usize, u64)> + '_ {
        let allocated =
            |id: usize| self.allocation_words.and_then(|pairs| pairs.get(2 * id)).is_some_and(|count| *count > 0);
        self.phase_ticks
            .iter()
            .enumerate()
            .skip(1)
            .filter(move |(id, ticks)| **ticks > 0 || allocated(*id))
            .map(|(id, ticks)| (id, clock::to_ns(*ticks)))
    }
}

/// The records one step at a time.
struct Steps<'a> {
    words: &'a [u64],
}

impl<'a> Iterator for Steps<'a> {
    type Item = Step<'a>;

    fn next(&mut self) -> Option<Step<'a>> {
        let [ticks, phases, rest @ ..] = self.words else { return None };
        let phases = usize::try_from(*phases).unwrap_or(usize::MAX).min(rest.len());
        let (phase_ticks, rest) = rest.split_at(phases);
        let (counted, rest) = rest.split_first()?;
        let (allocation_words, rest) = if *counted == 1 {
            let (pairs, rest) = rest.split_at((2 * phases).min(rest.len()));
            (Some(pairs), rest)
        } else {
            (None, rest)
        };
        self.words = rest;
        Some(Step { ticks: *ticks, phase_ticks, allocation_words })
    }
}

/// A step's record: its time by phase and, with a counting allocator, its allocations and bytes by phase
/// (`allocations`, by phase id).
fn step_timing(
    ticks: u64,
    phase_ticks: &[u64],
    phase_names: &[&'static str],
    allocations: Option<impl Iterator<Item = (u64, u64)>>,
) -> StepTiming {
    let allocations: Option<Vec<(u64, u64)>> = allocations.map(Iterator::collect);
    let of_phase = |id: usize| allocations.as_ref().map(|by_phase| by_phase.get(id).copied().unwrap_or_default());
    let phases = phase_ticks
        .iter()
        .zip(phase_names)
        .enumerate()
        .skip(1)
        .filter(|(id, (ticks, _))| **ticks > 0 || of_phase(*id).is_some_and(|(count, _)| count > 0))
        .map(|(id, (ticks, name))| PhaseTime {
            phase: (*name).into(),
            ns: clock::to_ns(*ticks),
            allocations: of_phase(id).map(|(count, _)| count),
            allocated_bytes: of_phase(id).map(|(_, bytes)| bytes),
        })
        .collect();
    let total = |pick: fn(&(u64, u64)) -> u64| {
        allocations.as_ref().map(|by_phase| by_phase.iter().map(pick).fold(0u64, u64::saturating_add))
    };
    StepTiming {
        total_ns: clock::to_ns(ticks),
        phases,
        allocations: total(|(count, _)| *count),
        allocated_bytes: total(|(_, bytes)| *bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::StepRecords;

    #[test]
    fn records_come_back_as_they_went_in_whatever_their_phases() {
        let mut records = StepRecords::with_room(0);
        records.push(100, &[0, 40, 60], None::<std::iter::Empty<(u64, u64)>>);
        // A phase first seen in the second step; allocations counted, fewer pairs than phases given.
        records.push(200, &[10, 0, 150, 40], Some([(0, 0), (3, 96), (1, 8)].into_iter()));
        let timings = records.timings(&["", "a", "b", "c"]);
        assert_eq!(timings.len(), 2);
        let names =
            |index: usize| timings[index].phases.iter().map(|phase| phase.phase.to_string()).collect::<Vec<_>>();
        // A phase with no time but allocations is in the record.
        assert_eq!(
            (names(0), names(1)),
            (vec!["a".to_owned(), "b".to_owned()], vec!["a".to_owned(), "b".to_owned(), "c".to_owned()])
        );
        assert_eq!(timings[0].allocations, None);
        assert_eq!((timings[1].allocations, timings[1].allocated_bytes), (Some(4), Some(104)));
        let allocations: Vec<Option<u64>> = timings[1].phases.iter().map(|phase| phase.allocations).collect();
        assert_eq!(allocations, [Some(3), Some(1), Some(0)]);
        assert_eq!(timings[1].phases[2].ns, crate::record::clock::to_ns(40));
    }

    #[test]
    fn slow_steps_from_the_words_are_those_of_the_records_made_whole() {
        let names = ["", "a", "b", "c", "never"];
        for counted in [false, true] {
            let mut records = StepRecords::with_room(0);
            for step in 0..200u64 {
                // Steps of 1,000 ticks or so; three far slower, each in a different phase or outside them;
                // phase "c" first seen late; "never" has an id and no time.
                let (mut a, mut b, mut c) = (300 + step % 7, 500 + step % 11, if step > 50 { 20 } else { 0 });
                let mut outside = 100 + step % 5;
                match step {
                    30 => a += 40_000,
                    90 => b += 50_000,
                    150 => outside += 60_000,
                    170 => c += 45_000,
                    _ => {}
                }
                let phase_ticks = [0, a, b, c, 0];
                let allocations = [(0, 0), (step % 3, 64), (0, 0), (1, 8), (0, 0)];
                let total = a + b + c + outside;
                records.push(total, &phase_ticks, counted.then(|| allocations.into_iter()));
            }
            let whole = crate::model::step::slow_steps(&records.timings(&names));
            let from_words = records.slow_steps(&names);
            assert_eq!(whole.len(), 4, "{whole:?}");
            assert_eq!(from_words, whole);
        }
    }
}
