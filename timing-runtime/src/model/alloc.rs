//! Heap activity beside the time: what `timing_runtime::alloc::Counting` counts, by span, by phase per step
//! and per step. Every field that holds these is an `Option`, `None` when no counting allocator is
//! installed.

#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};

/// Allocations, reallocations and frees, as a counting allocator saw them. A reallocation counts as one
/// allocation of its new size and one free of the block it replaced, so `bytes - freed_bytes` is the growth
/// of the heap.
///
/// ```
/// use timing_runtime::Allocations;
///
/// let mut total = Allocations { count: 2, bytes: 96, frees: 1, freed_bytes: 32 };
/// total.add(&Allocations { count: 1, bytes: 8, frees: 0, freed_bytes: 0 });
/// assert_eq!((total.count, total.bytes, total.net_bytes()), (3, 104, 72));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct Allocations {
    /// Allocations, reallocations included.
    pub count: u64,
    /// Bytes allocated: each allocation's size, each reallocation's new size.
    pub bytes: u64,
    /// Frees, reallocations included.
    pub frees: u64,
    /// Bytes freed.
    pub freed_bytes: u64,
}

impl Allocations {
    /// Adds `other`'s counts to these (saturating).
    pub fn add(&mut self, other: &Allocations) {
        self.count = self.count.saturating_add(other.count);
        self.bytes = self.bytes.saturating_add(other.bytes);
        self.frees = self.frees.saturating_add(other.frees);
        self.freed_bytes = self.freed_bytes.saturating_add(other.freed_bytes);
    }

    /// Bytes allocated less bytes freed: the heap's growth (negative when more was freed).
    #[must_use]
    pub fn net_bytes(&self) -> i128 {
        i128::from(self.bytes) - i128::from(self.freed_bytes)
    }

    /// Whether nothing was counted.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        *self == Allocations::default()
    }
}

/// How a count per step spreads over the steps: its mean (exact), and its median, 95th percentile and
/// largest value (exact below 128, within 1% above, as the time percentiles are).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct PerStep {
    /// The mean over the steps.
    pub mean: f64,
    /// The median step's.
    pub p50: u64,
    /// The 95th percentile.
    pub p95: u64,
    /// The largest.
    pub max: u64,
}

/// Allocations per step, and the bytes they asked for, in one phase or in the whole step.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct StepAllocations {
    /// Allocations (reallocations included) per step.
    pub count: PerStep,
    /// Bytes allocated per step.
    pub bytes: PerStep,
}

/// The run's heap activity, with a counting allocator installed.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct AllocationSummary {
    /// Inside some timed span (the innermost open one is charged; `SpanStats::allocations` has them).
    pub in_spans: Allocations,
    /// With no timed span open on the thread, from the thread's first timed call on.
    pub outside_spans: Allocations,
    /// Per step, the step's own time and all its phases together.
    pub per_step: StepAllocations,
}
