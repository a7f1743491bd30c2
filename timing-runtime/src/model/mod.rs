//! The public data of a run: steps, batches, the summary, the call tree and the timeline, as plain
//! serialisable values. The bottom layer: it imports nothing of the crate, and everything above builds or
//! prints these types (see `docs/architecture.md`).

pub(crate) mod alloc;
pub(crate) mod budget;
pub(crate) mod calltree;
pub(crate) mod granularity;
pub(crate) mod machine;
pub(crate) mod step;
pub(crate) mod summary;
pub(crate) mod timeline;

pub use alloc::{AllocationSummary, Allocations, PerStep, StepAllocations};
pub use budget::{Budget, BudgetError, BudgetReport, Estimate, SampledSpan};
pub use calltree::{CallNode, CallTree};
pub use granularity::TimingGranularity;
pub use machine::{BatchMachine, MachineSummary, STALL_MIN_NS, STALL_SHARE, Stall};
pub use step::{BatchPoint, BatchTiming, PhaseTime, RecomputeTiming, SlowStep, StepTiming};
pub use summary::{
    BatchBreakdown, Distribution, PhaseBreakdown, PhaseShare, RecomputeSummary, SpanStats, Spread, TrainingSummary,
};
pub use timeline::{Timeline, TimelineEvent};
