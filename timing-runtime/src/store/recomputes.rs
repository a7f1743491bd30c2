//! The run's recomputations: steps rebuilt on demand by replaying the steps after the nearest keyframe, as
//! an optimizer that keeps keyframes does when asked for a step it did not keep. Process-wide behind one
//! lock, taken once per recomputation (each replays many steps).

use parking_lot::Mutex;

use crate::store::hist::Histogram;

/// The recomputations of one epoch.
#[derive(Clone, Debug, Default)]
pub(crate) struct Recomputes {
    pub epoch: u64,
    pub count: u64,
    pub steps: u64,
    pub ns: u64,
    /// Nanoseconds per replayed step, one value per recomputation that replayed any.
    pub per_step: Histogram,
}

static RECOMPUTES: Mutex<Recomputes> =
    Mutex::new(Recomputes { epoch: 0, count: 0, steps: 0, ns: 0, per_step: Histogram::new() });

/// Adds a recomputation of `steps` steps in `ns` nanoseconds, made on a thread recording in `epoch`; one of
/// an epoch before the latest is dropped (it ended after a reset), one of a later epoch begins the account
/// again.
pub(crate) fn record(epoch: u64, steps: u64, ns: u64) {
    let mut recomputes = RECOMPUTES.lock();
    if epoch < recomputes.epoch {
        return;
    }
    if epoch > recomputes.epoch {
        *recomputes = Recomputes { epoch, ..Recomputes::default() };
    }
    recomputes.count = recomputes.count.saturating_add(1);
    recomputes.steps = recomputes.steps.saturating_add(steps);
    recomputes.ns = recomputes.ns.saturating_add(ns);
    if let Some(per_step) = ns.checked_div(steps) {
        recomputes.per_step.record(per_step);
    }
}

/// The recomputations of epoch `epoch`.
pub(crate) fn read(epoch: u64) -> Recomputes {
    let recomputes = RECOMPUTES.lock();
    if recomputes.epoch == epoch { recomputes.clone() } else { Recomputes { epoch, ..Recomputes::default() } }
}
