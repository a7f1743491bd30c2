//! How much the runtime records: from nothing to every span.

#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};

/// How much is recorded; set with [`set_granularity`](crate::set_granularity). Each level records what the
/// one before it does, plus more.
///
/// ```
/// use timing_runtime::{TimingGranularity, granularity, set_granularity};
///
/// set_granularity(TimingGranularity::Step);
/// # #[cfg(feature = "timing")]
/// assert_eq!(granularity(), TimingGranularity::Step);
/// # set_granularity(TimingGranularity::Detailed);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum TimingGranularity {
    /// Nothing is recorded; a timed call costs one relaxed load.
    None,
    /// Batch wall time, step counts and the sum of step times.
    Batch,
    /// Also each step's total time, kept per batch in [`BatchTiming::step_timings`](crate::BatchTiming).
    Step,
    /// Also the phase times inside steps and the statistics of every timed function. The default: a user
    /// who annotates functions sees the breakdown without configuring anything.
    #[default]
    Detailed,
}

impl TimingGranularity {
    #[cfg_attr(not(feature = "timing"), allow(dead_code))]
    pub(crate) const fn to_bits(self) -> u64 {
        match self {
            Self::None => 0,
            Self::Batch => 1,
            Self::Step => 2,
            Self::Detailed => 3,
        }
    }

    #[cfg_attr(not(feature = "timing"), allow(dead_code))]
    pub(crate) const fn from_bits(bits: u64) -> Self {
        match bits & 3 {
            0 => Self::None,
            1 => Self::Batch,
            2 => Self::Step,
            _ => Self::Detailed,
        }
    }
}
