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

use crate::model::{PhaseTime, StepTiming};
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
        let mut timings = Vec::new();
        let mut words = self.words.as_slice();
        while let [ticks, phases, rest @ ..] = words {
            let phases = usize::try_from(*phases).unwrap_or(usize::MAX).min(rest.len());
            let (phase_ticks, rest) = rest.split_at(phases);
            let Some((counted, rest)) = rest.split_first() else { break };
            let (allocations, rest) = if *counted == 1 {
                let (pairs, rest) = rest.split_at((2 * phases).min(rest.len()));
                (Some(pairs.chunks_exact(2).map(|pair| (pair[0], pair[1]))), rest)
            } else {
                (None, rest)
            };
            timings.push(step_timing(*ticks, phase_ticks, phase_names, allocations));
            words = rest;
        }
        timings
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
}
