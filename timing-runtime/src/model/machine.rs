//! The machine beside the code: what the thread of each batch got of a CPU while the batch ran, and the
//! process's resident memory, read at each batch's start and end (never per span). Steps per second that
//! fall can be the code or the machine: a batch that ran on a CPU for all of its wall time slowed down by
//! itself; one that ran for half of it shared its core, or slept.

#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};

/// What the machine gave one batch's thread during the batch: its CPU time (Linux's thread CPU clock) and
/// context switches (`getrusage(RUSAGE_THREAD)`), and the process's resident memory at the batch's end
/// (`/proc/self/statm`, read at most every 10 ms and shared by the batches ending meanwhile).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct BatchMachine {
    /// CPU time of the batch's thread during the batch, user and system.
    pub cpu_ns: u64,
    /// Times the thread gave up its CPU during the batch: it slept, waited on a lock or on I/O.
    pub waits: u64,
    /// Times the scheduler took its CPU away during the batch, for another thread or process.
    pub preemptions: u64,
    /// The process's resident memory at the batch's end, in bytes; 0 where it cannot be read.
    pub resident_bytes: u64,
}

/// Why a batch's wall time was well above its thread's CPU time (see [`BatchMachine::stall`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub enum Stall {
    /// The thread gave up its CPU (sleep, lock, I/O) at least as often as it was preempted.
    Waiting,
    /// The scheduler took its CPU away more often than it gave it up: another thread or process ran on its
    /// core.
    Preempted,
}

/// A batch counts as stalled when its thread was off a CPU for more than this share of its wall time...
pub const STALL_SHARE: f64 = 0.2;

/// ...and for at least this long: a short batch's share would magnify a few microseconds of a page fault
/// or an interrupt into a stall.
pub const STALL_MIN_NS: u64 = 100_000;

impl BatchMachine {
    /// The share of `wall_ns` the thread ran on a CPU, in percent (above 100 only by rounding).
    #[must_use]
    pub fn cpu_pct(&self, wall_ns: u64) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let pct = if wall_ns == 0 { 0.0 } else { self.cpu_ns as f64 * 100.0 / wall_ns as f64 };
        pct
    }

    /// Whether a batch of `wall_ns` stalled: its thread was off a CPU for more than [`STALL_SHARE`] of it
    /// and at least [`STALL_MIN_NS`]; and if so, whether it mostly waited or was mostly preempted.
    ///
    /// ```
    /// use timing_runtime::{BatchMachine, Stall};
    ///
    /// let shared_core = BatchMachine { cpu_ns: 5_000_000, preemptions: 40, ..BatchMachine::default() };
    /// assert_eq!(shared_core.stall(10_000_000), Some(Stall::Preempted));
    /// let slept = BatchMachine { cpu_ns: 1_000_000, waits: 1, ..BatchMachine::default() };
    /// assert_eq!(slept.stall(10_000_000), Some(Stall::Waiting));
    /// assert_eq!(slept.stall(1_050_000), None);
    /// ```
    #[must_use]
    pub fn stall(&self, wall_ns: u64) -> Option<Stall> {
        let off = wall_ns.saturating_sub(self.cpu_ns);
        #[allow(clippy::cast_precision_loss)]
        let stalled = off >= STALL_MIN_NS && off as f64 > STALL_SHARE * wall_ns as f64;
        stalled.then_some(if self.preemptions > self.waits { Stall::Preempted } else { Stall::Waiting })
    }
}

/// The machine over the whole run: the batches' CPU time against their wall time, the batches that
/// stalled, and the process's resident memory.
#[derive(Clone, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct MachineSummary {
    /// The wall time of the batches measured (those whose steps ran on their own thread).
    pub batch_ns: u64,
    /// Their threads' CPU time during them.
    pub cpu_ns: u64,
    /// `cpu_ns` over `batch_ns`, in percent.
    pub cpu_pct: f64,
    /// Batches whose thread waited (see [`Stall`]).
    pub waiting_batches: u64,
    /// Batches whose thread was preempted.
    pub preempted_batches: u64,
    /// The process's resident memory at the latest batch end, in bytes.
    pub resident_bytes: u64,
    /// The largest resident memory seen at a batch end since the process started: memory is the process's,
    /// and a [`reset`](crate::reset) does not forget it.
    pub peak_resident_bytes: u64,
}
