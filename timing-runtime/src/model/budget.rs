//! The overhead budget a user sets, and what a summary says of it: which span names were sampled, at what
//! rate, and what the instrumentation cost.

use std::fmt;

#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};

/// How much of a run's time the instrumentation may take. [`Budget::EXACT`], the default, times every call.
/// Under a percentage the runtime keeps steps, batches and every call that opens a phase exact, and times
/// the other calls of each span name 1 in N on each thread (N adapted from the measured cost of a call, so
/// that the instrumentation stays within the budget); a call that is not timed is still counted, and its
/// time is estimated from the timed calls of its call path. Set it with [`set_budget`](crate::set_budget),
/// or with the environment variable `TIMING_BUDGET` (`1%`, `0.5`, `exact`) read at the first timed call.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct Budget {
    /// The share of the run the instrumentation may take, in percent; `None`: every call timed.
    pub percent: Option<f64>,
    /// The seed of the choice of which calls are timed; `None`: a seed of its own per process.
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "Option::is_none"))]
    pub seed: Option<u64>,
}

impl Budget {
    /// Every call timed: no sampling.
    pub const EXACT: Budget = Budget { percent: None, seed: None };

    /// At most `percent` of the run for the instrumentation (`1.0` is 1%). [`set_budget`](crate::set_budget)
    /// refuses a percentage that is not above 0 and at most 100.
    #[must_use]
    pub const fn percent(percent: f64) -> Budget {
        Budget { percent: Some(percent), seed: None }
    }

    /// The same budget, the calls to time chosen from `seed`: runs with the same seed and the same calls
    /// time the same calls (per thread, in the order threads first sample).
    #[must_use]
    pub const fn with_seed(self, seed: u64) -> Budget {
        Budget { seed: Some(seed), ..self }
    }

    /// Whether every call is timed.
    #[must_use]
    pub const fn is_exact(&self) -> bool {
        self.percent.is_none()
    }

    /// Reads a budget as `TIMING_BUDGET` and the optimizer example's `--budget` take it: `1%`, `1` (percent
    /// too), `exact` or `off` (every call timed).
    ///
    /// # Errors
    /// When `text` is none of these, or its percentage is not above 0 and at most 100.
    pub fn parse(text: &str) -> Result<Budget, BudgetError> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("exact") || text.eq_ignore_ascii_case("off") {
            return Ok(Budget::EXACT);
        }
        let number = text.strip_suffix('%').unwrap_or(text).trim();
        let percent: f64 = number.parse().map_err(|_| BudgetError::NotAPercentage(text.to_owned()))?;
        Budget::percent(percent).checked()
    }

    /// The budget if its percentage is one the runtime can keep to.
    ///
    /// # Errors
    /// When the percentage is not above 0 and at most 100 (NaN included).
    pub fn checked(self) -> Result<Budget, BudgetError> {
        match self.percent {
            Some(percent) if !(percent > 0.0 && percent <= 100.0) => Err(BudgetError::OutOfRange(percent)),
            _ => Ok(self),
        }
    }
}

/// A budget the runtime cannot keep to.
#[derive(Clone, Debug, PartialEq)]
pub enum BudgetError {
    /// The percentage is not above 0 and at most 100.
    OutOfRange(f64),
    /// The text is not a percentage, `exact` or `off`.
    NotAPercentage(String),
}

impl fmt::Display for BudgetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BudgetError::OutOfRange(percent) => {
                write!(f, "an overhead budget of {percent}% is not above 0% and at most 100%")
            }
            BudgetError::NotAPercentage(text) => {
                write!(f, "`{text}` is not an overhead budget: give a percentage such as `1%`, or `exact`")
            }
        }
    }
}

impl std::error::Error for BudgetError {}

/// What a run's summary says of its budget.
#[derive(Clone, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct BudgetReport {
    /// The budget, in percent of the steps' time.
    pub percent: f64,
    /// What the instrumentation took, in percent of the steps' time, at the measured cost of each timed
    /// call and of each call that was counted but not timed.
    pub instrumentation_pct: f64,
    /// Whether the budget could be kept: `false` when counting the calls that were not timed, and timing
    /// the steps and the calls that open phases, took more than it on some thread.
    pub kept: bool,
    /// The span names some calls of which were not timed, most sampled first.
    pub sampled: Vec<SampledSpan>,
}

/// A span name whose calls were timed 1 in `rate`.
#[derive(Clone, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct SampledSpan {
    /// The span's name.
    pub name: String,
    /// Calls, all counted.
    pub calls: u64,
    /// Calls timed.
    pub timed: u64,
    /// `calls / timed`: on average, one call in this many was timed.
    pub rate: f64,
}

/// How far an estimated span's figures may be from what timing every call would have given: 95% intervals
/// (half-widths) of its times. A span has one when some of its calls were counted but not timed.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct Estimate {
    /// Calls timed (the others were estimated from them).
    pub timed: u64,
    /// `total_ns` lies within this many nanoseconds of the exact figure, with 95% confidence.
    pub total_ns_margin: u64,
    /// `self_ns` likewise.
    pub self_ns_margin: u64,
}
