//! The timeline in the Chrome Trace Event Format, which Perfetto and `chrome://tracing` open.

use serde::Serialize;

use crate::model::Timeline;

#[derive(Serialize)]
struct ChromeTrace<'a> {
    #[serde(rename = "traceEvents")]
    trace_events: Vec<ChromeEvent<'a>>,
    #[serde(rename = "displayTimeUnit")]
    display_time_unit: &'static str,
}

#[derive(Serialize)]
struct ChromeEvent<'a> {
    name: &'a str,
    cat: &'a str,
    ph: &'static str,
    /// Microseconds, as the format wants; fractional for nanosecond precision.
    ts: f64,
    dur: f64,
    pid: u32,
    tid: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    args: Option<ChromeArgs>,
}

#[derive(Serialize)]
struct ChromeArgs {
    step: u64,
}

impl Timeline {
    /// The timeline in the Chrome Trace Event Format (JSON object form): one complete event (`"ph": "X"`)
    /// per span, with the phase as its category and the step index as an argument. Open the file in
    /// <https://ui.perfetto.dev> or `chrome://tracing`. Feature `json`.
    ///
    /// ```
    /// use timing_runtime::{Timeline, TimelineEvent};
    ///
    /// let timeline = Timeline {
    ///     events: vec![TimelineEvent { thread: 1, name: "regions".into(), phase: Some("regions".into()),
    ///         start_ns: 1_500, duration_ns: 2_000, step: Some(0) }],
    ///     dropped: 0,
    /// };
    /// let trace: serde_json::Value = serde_json::from_str(&timeline.to_chrome_trace()).unwrap();
    /// assert_eq!(trace["traceEvents"][0]["ph"], "X");
    /// assert_eq!(trace["traceEvents"][0]["ts"], 1.5);
    /// ```
    #[must_use]
    pub fn to_chrome_trace(&self) -> String {
        #[allow(clippy::cast_precision_loss)]
        let micros = |ns: u64| ns as f64 / 1_000.0;
        let trace = ChromeTrace {
            trace_events: self
                .events
                .iter()
                .map(|event| ChromeEvent {
                    name: &event.name,
                    cat: event.phase.as_deref().unwrap_or("span"),
                    ph: "X",
                    ts: micros(event.start_ns),
                    dur: micros(event.duration_ns),
                    pid: std::process::id(),
                    tid: event.thread,
                    args: event.step.map(|step| ChromeArgs { step }),
                })
                .collect(),
            display_time_unit: "ns",
        };
        serde_json::to_string(&trace).unwrap_or_else(|error| format!("{{\"error\":\"{error}\"}}"))
    }
}
