//! The end of a step (its phase ticks, totals and spread, and its record when the batch keeps one) and of a
//! batch.

use std::cell::Cell;

use crate::model::{BatchTiming, Stall};
use crate::record::calibrate;
use crate::record::callsite::{self, FAST_PHASES};
use crate::record::clock;
use crate::record::hot::{Hot, non_negative};
use crate::record::machine;
use crate::record::recorder::Recorder;
use crate::record::records::StepRecords;
use crate::store::{batches, steps};

impl Recorder {
    /// The step's time by phase, into `step_phases`, when some phase id is beyond the hot tables: as
    /// `Hot::finish_step` works it out, over all phases.
    fn large_step_phase_ticks(&mut self, hot: &Hot, ticks: u64, self_ticks: u64, step_phase: u32, phases: usize) {
        let mut phase_ticks = std::mem::take(&mut self.step_phases);
        phase_ticks.clear();
        phase_ticks.resize(phases.max(step_phase as usize + 1), 0);
        let mut in_phases = 0u64;
        for (id, value) in phase_ticks.iter_mut().enumerate().skip(1) {
            let own = if id == step_phase as usize { self_ticks } else { 0 };
            *value = non_negative(self.phase(hot, id).wrapping_add(own));
            in_phases = in_phases.saturating_add(*value);
        }
        if in_phases > ticks {
            steps::fit_phases(Cell::from_mut(phase_ticks.as_mut_slice()).as_slice_of_cells(), ticks, in_phases);
        }
        self.step_phases = phase_ticks;
    }

    pub(super) fn finish_step(&mut self, hot: &Hot, ticks: u64, end: u64, self_ticks: u64, step_phase: u32) {
        let phases = callsite::phase_count();
        if phases > FAST_PHASES {
            self.large_step_phase_ticks(hot, ticks, self_ticks, step_phase, phases);
        }
        let Some(slot) = &self.slot else {
            hot.set_step_active(false);
            return;
        };
        let totals = slot.step_totals;
        let records = self.batch.active && self.batch.records.is_some();
        if phases <= FAST_PHASES {
            hot.step_end.set(end);
            hot.finish_step(totals, ticks, self_ticks, step_phase, phases);
            if records {
                self.step_phases.clear();
                self.step_phases.extend(hot.step_phases.iter().take(phases).map(Cell::get));
            }
        } else {
            // Rare enough (over 256 phase names) to count the spread at once rather than hold it back.
            hot.set_step_active(false);
            let phase_ticks = Cell::from_mut(self.step_phases.as_mut_slice()).as_slice_of_cells();
            totals.add_large_step(ticks, end, phase_ticks, &slot.steps);
            hot.steps_done.set(hot.steps_done.get().wrapping_add(1));
            // Allocations are counted by phase for the phase ids of the hot tables only.
            if let Some(table) = slot.allocs_if_any() {
                table.end_step(FAST_PHASES);
            }
        }
        if let (true, Some(records)) = (self.batch.active, &mut self.batch.records) {
            let allocations = slot.allocs_if_any().map(|table| table.latest_step(self.step_phases.len()));
            records.push(ticks, &self.step_phases, allocations);
        }
    }

    /// Counts the held-back step in the step histogram.
    pub(super) fn count_held_step(&mut self, hot: &Hot) {
        if let Some(slot) = &self.slot {
            hot.count_held_step(slot.step_totals);
        }
    }

    pub(super) fn finish_batch(&mut self, hot: &Hot, ticks: u64, end: u64, name: u32) {
        self.count_held_step(hot);
        // A batch's end is where the slow path can afford to start a check of the costs it charges.
        calibrate::check();
        let batch = std::mem::take(&mut self.batch);
        // The epoch this thread records in, which a reset since the frame closed has not changed yet.
        let epoch = self.epoch;
        let here = hot.steps_done.get().wrapping_sub(batch.first_step);
        let elsewhere = batch.elsewhere.as_ref().map_or(0, |steps| steps.swap(0, std::sync::atomic::Ordering::Relaxed));
        let steps = usize::try_from(here.saturating_add(elsewhere)).unwrap_or(usize::MAX);
        let records = batch.records;
        self.records_room = records.as_ref().map_or(self.records_room, StepRecords::words);
        let mut timing = BatchTiming::new(steps, clock::to_ns(ticks), None);
        timing.label = callsite::span_name(name).map(str::to_owned);
        timing.machine = batch.usage.zip(machine::thread_usage()).map(|(start, now)| start.until(now, end));
        // The records live on as ticks, and `last_batch` makes them whole for whoever asks (see `records`).
        if let Some(records) = &records {
            timing.slow_steps = records.slow_steps(&callsite::names().1);
        }
        if let Some(slot) = &self.slot {
            // The batch's point: what the thread's totals gained since the batch began. A batch whose steps
            // all ran on other threads (a pool's) has none: those threads' own batches, if any, are the
            // points, and the batch would count their steps twice. Nor has one that a reset cut in two: the
            // totals it began from are gone, and the steps before the reset are not the new epoch's.
            let mut own_step_ticks = None;
            if here > 0 && batch.epoch == epoch {
                // A buffer kept from batch to batch: see `store::batches`.
                let mut phase_ticks = std::mem::take(&mut self.point_phase_ticks);
                phase_ticks.clear();
                let step_ticks = slot.step_totals.so_far(callsite::phase_count(), &slot.steps, &mut phase_ticks);
                for (now, then) in phase_ticks.iter_mut().zip(&batch.phase_ticks) {
                    *now = now.saturating_sub(*then);
                }
                let point = batches::PointTicks {
                    batches: 1,
                    steps: here,
                    start: end.saturating_sub(ticks),
                    end,
                    batch_ticks: ticks,
                    step_ticks: step_ticks.saturating_sub(batch.step_ticks).min(ticks),
                    phase_ticks,
                    cpu_ns: timing.machine.map_or(0, |machine| machine.cpu_ns),
                    cpu_batch_ticks: if timing.machine.is_some() { ticks } else { 0 },
                    resident_bytes: timing.machine.map_or(0, |machine| machine.resident_bytes),
                };
                batches::record(epoch, &point);
                own_step_ticks = Some(point.step_ticks);
                self.point_phase_ticks = point.phase_ticks;
            }
            // `start_epoch` began the account in this thread's epoch.
            let mut account = slot.steps.lock();
            account.batches = account.batches.saturating_add(1);
            account.batch_ticks = account.batch_ticks.saturating_add(ticks);
            // The batch's time is its steps' and its own between them, or, for the batches above, not split.
            match own_step_ticks {
                Some(steps) => account.batch_step_ticks = account.batch_step_ticks.saturating_add(steps),
                None => account.unsplit_batch_ticks = account.unsplit_batch_ticks.saturating_add(ticks),
            }
            // What the machine gave the batches that ran their steps on their own thread: one whose steps
            // ran elsewhere waited for them by design.
            if let (Some(machine), 0) = (timing.machine, elsewhere) {
                account.machine_batch_ticks = account.machine_batch_ticks.saturating_add(ticks);
                account.machine_cpu_ns = account.machine_cpu_ns.saturating_add(machine.cpu_ns);
                match machine.stall(timing.compute_ns) {
                    Some(Stall::Waiting) => account.waiting_batches = account.waiting_batches.saturating_add(1),
                    Some(Stall::Preempted) => {
                        account.preempted_batches = account.preempted_batches.saturating_add(1);
                    }
                    None => {}
                }
            }
            for slow in &mut timing.slow_steps {
                (slow.batch, slow.thread) = (Some(account.batches), Some(slot.id));
            }
            account.keep_slow_steps(&timing.slow_steps);
        }
        if let Some((_, _, Some(older))) = self.last_batch.replace((epoch, timing, records)) {
            self.spare_records = Some(older);
        }
        self.spare_phase_ticks = batch.phase_ticks;
        self.batches_done = self.batches_done.wrapping_add(1);
        self.last_batch_ticks = ticks;
        self.flush_events();
    }
}
