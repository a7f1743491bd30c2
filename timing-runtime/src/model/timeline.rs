//! The recorded timeline and its export to the Chrome Trace Event Format.

#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};

/// Spans as they happened, from [`timeline`](crate::timeline()) after
/// [`set_timeline`](crate::set_timeline) switched capture on.
#[derive(Clone, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct Timeline {
    /// Events of all threads, by start time.
    pub events: Vec<TimelineEvent>,
    /// Events dropped because a thread's buffer was full (the oldest go first).
    pub dropped: u64,
}

/// One closed span.
#[derive(Clone, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct TimelineEvent {
    /// The recording thread, numbered from 1 in the order threads first recorded.
    pub thread: u64,
    /// The span's name.
    pub name: String,
    /// The phase its time counted to, its own or inherited.
    pub phase: Option<String>,
    /// Nanoseconds from the first timed call of the process.
    pub start_ns: u64,
    /// The span's wall time.
    pub duration_ns: u64,
    /// The index of the step it ran in on its thread, from 0.
    pub step: Option<u64>,
}
