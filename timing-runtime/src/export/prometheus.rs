//! The summary in the Prometheus text exposition format (version 0.0.4), for a `/metrics` endpoint, a file
//! for node_exporter's textfile collector, or a push to a Pushgateway.
//!
//! Names follow Prometheus's conventions: prefix `timing_`, base units (seconds, bytes), `_total` on
//! counters. Histogram buckets are the fixed `BOUNDS` below, the same in every process, so that series
//! from many processes add up with `sum by (le)`. A histogram's buckets are counted from the summary's
//! recorded spread, each value as the middle of its log-linear bucket (within 0.8% of it), so a value within
//! 0.8% of a boundary may be counted on the other side of it: within one of these buckets.
//!
//! Every value is cumulative since the process started, or since the latest [`reset`](crate::reset), which
//! Prometheus sees as a counter reset (as it sees a restart).

use std::fmt::Write;

use crate::model::{Spread, TrainingSummary};

/// Bucket upper bounds as written in `le` labels, in seconds, and in nanoseconds: 100 ns to 10 s, three
/// per decade.
pub(crate) const BOUNDS: [(&str, u64); 25] = [
    ("1e-07", 100),
    ("2.5e-07", 250),
    ("5e-07", 500),
    ("1e-06", 1_000),
    ("2.5e-06", 2_500),
    ("5e-06", 5_000),
    ("1e-05", 10_000),
    ("2.5e-05", 25_000),
    ("5e-05", 50_000),
    ("0.0001", 100_000),
    ("0.00025", 250_000),
    ("0.0005", 500_000),
    ("0.001", 1_000_000),
    ("0.0025", 2_500_000),
    ("0.005", 5_000_000),
    ("0.01", 10_000_000),
    ("0.025", 25_000_000),
    ("0.05", 50_000_000),
    ("0.1", 100_000_000),
    ("0.25", 250_000_000),
    ("0.5", 500_000_000),
    ("1", 1_000_000_000),
    ("2.5", 2_500_000_000),
    ("5", 5_000_000_000),
    ("10", 10_000_000_000),
];

impl TrainingSummary {
    /// The summary in the Prometheus text exposition format (0.0.4): steps and batches completed, step time
    /// (histogram), time per phase (counter) and per step (histogram, label `phase`), time outside every
    /// phase (counter, label `kind`: `unphased` or `instrumentation`), and per span name calls, cancelled
    /// calls and call time (histogram, label `span`); with a counting allocator, allocations and bytes per
    /// span and outside spans (counters).
    ///
    /// ```
    /// let text = timing_runtime::summary().to_prometheus();
    /// assert!(text.contains("# TYPE timing_steps_total counter"));
    /// ```
    #[must_use]
    pub fn to_prometheus(&self) -> String {
        let mut out = String::with_capacity(4_096 + 2_048 * self.spans.len());
        self.write_prometheus(&mut out);
        out
    }

    /// Appends [`to_prometheus`](Self::to_prometheus)'s exposition to `out`: for a program that serves its
    /// own `/metrics`, after its own families (the names all begin with `timing_`, so they meet none of
    /// its own).
    ///
    /// ```
    /// let mut metrics = String::from("# TYPE my_requests_total counter\nmy_requests_total 7\n");
    /// timing_runtime::summary().write_prometheus(&mut metrics);
    /// assert!(metrics.starts_with("# TYPE my_requests_total") && metrics.contains("timing_steps_total"));
    /// ```
    pub fn write_prometheus(&self, out: &mut String) {
        self.families(&mut Exposition(out));
    }

    /// The exposition's families, each handed to `out` as it is made: the text format's writer, or a
    /// client library's encoder.
    pub(crate) fn families(&self, out: &mut impl Families) {
        out.counter("timing_steps_total", "Optimizer steps completed.", [(None, self.total_steps as f64)]);
        out.counter("timing_batches_total", "Batches of steps completed.", [(None, self.batches as f64)]);
        let parts = &self.batch_breakdown;
        out.counter(
            "timing_batch_seconds_total",
            "Batch wall time: in the steps its thread ran, between them, and not split (steps on other threads).",
            [
                (Some(("part", "steps")), seconds(parts.steps_ns)),
                (Some(("part", "between_steps")), seconds(parts.between_steps_ns)),
                (Some(("part", "unsplit")), seconds(parts.unsplit_ns)),
            ],
        );
        out.histogram(
            "timing_step_duration_seconds",
            "Wall time of one step.",
            [(None, &self.step_spread, seconds(self.total_ns))],
        );
        let breakdown = &self.phase_breakdown;
        let phases = breakdown.phases.iter().map(|share| (Some(("phase", share.phase.as_str())), seconds(share.ns)));
        out.counter("timing_phase_seconds_total", "Step time in each phase.", phases);
        out.counter(
            "timing_overhead_seconds_total",
            "Step time outside every phase: the user's own code (unphased) and the instrumentation's cost.",
            [
                (Some(("kind", "unphased")), seconds(breakdown.unphased_ns)),
                (Some(("kind", "instrumentation")), seconds(breakdown.instrumentation_ns)),
            ],
        );
        let phases = breakdown
            .phases
            .iter()
            .map(|share| (Some(("phase", share.phase.as_str())), &share.spread, seconds(share.ns)));
        out.histogram("timing_phase_step_seconds", "Time one step spent in a phase.", phases);
        let spans = || self.spans.iter().map(|stats| (stats, Some(("span", stats.name.as_str()))));
        out.counter(
            "timing_span_calls_total",
            "Completed calls of each timed function.",
            spans().map(|(stats, label)| (label, stats.count as f64)),
        );
        out.counter(
            "timing_span_cancelled_total",
            "Calls of each timed async function dropped before they completed.",
            spans().map(|(stats, label)| (label, stats.cancelled as f64)),
        );
        out.histogram(
            "timing_span_seconds",
            "Time of one completed call of each timed function (busy time for an async one).",
            spans().map(|(stats, label)| (label, &stats.spread, seconds(stats.spread.sum()))),
        );
        if let Some(machine) = &self.machine {
            out.counter(
                "timing_batch_cpu_seconds_total",
                "CPU time of each batch's thread during the batch (batches that ran their own steps).",
                [(None, seconds(machine.cpu_ns))],
            );
            out.counter(
                "timing_batch_cpu_wall_seconds_total",
                "Wall time of the batches whose CPU time is counted: the ratio of the rates is their CPU share.",
                [(None, seconds(machine.batch_ns))],
            );
            out.counter(
                "timing_stalled_batches_total",
                "Batches whose thread was off a CPU for over a fifth of their wall time: waiting (sleep, lock, I/O) \
                 or preempted (another thread or process on its core).",
                [
                    (Some(("kind", "waiting")), machine.waiting_batches as f64),
                    (Some(("kind", "preempted")), machine.preempted_batches as f64),
                ],
            );
            if machine.resident_bytes > 0 {
                out.gauge(
                    "timing_resident_memory_bytes",
                    "The process's resident memory at the latest batch end.",
                    machine.resident_bytes as f64,
                );
            }
        }
        if let Some(allocations) = &self.allocations {
            let counted = || spans().filter_map(|(stats, label)| Some((stats.allocations?, label)));
            out.counter(
                "timing_span_allocations_total",
                "Allocations (reallocations included) made while each timed function was the innermost one.",
                counted().map(|(counts, label)| (label, counts.count as f64)),
            );
            out.counter(
                "timing_span_allocated_bytes_total",
                "Bytes allocated while each timed function was the innermost one.",
                counted().map(|(counts, label)| (label, counts.bytes as f64)),
            );
            out.counter(
                "timing_allocations_outside_spans_total",
                "Allocations made with no timed function open on the thread.",
                [(None, allocations.outside_spans.count as f64)],
            );
        }
    }
}

#[allow(clippy::cast_precision_loss)]
fn seconds(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// Where the families go. Names are the text format's (a counter's ends in `_total`); each series has one
/// label at most.
pub(crate) trait Families {
    /// A gauge without labels.
    fn gauge(&mut self, name: &str, help: &str, value: f64);

    /// A counter family, one series per label (or one without).
    fn counter<'a>(&mut self, name: &str, help: &str, series: impl IntoIterator<Item = (Label<'a>, f64)>);

    /// A histogram family: each series' spread (counted into [`BOUNDS`]), and its sum in seconds.
    fn histogram<'a>(&mut self, name: &str, help: &str, series: impl IntoIterator<Item = (Label<'a>, &'a Spread, f64)>);
}

/// Text being written, one metric family at a time.
struct Exposition<'o>(&'o mut String);

pub(crate) type Label<'a> = Option<(&'static str, &'a str)>;

impl Exposition<'_> {
    fn header(&mut self, name: &str, help: &str, kind: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }
}

impl Families for Exposition<'_> {
    fn gauge(&mut self, name: &str, help: &str, value: f64) {
        self.header(name, help, "gauge");
        let _ = writeln!(self.0, "{name} {}", Number(value));
    }

    fn counter<'a>(&mut self, name: &str, help: &str, series: impl IntoIterator<Item = (Label<'a>, f64)>) {
        self.header(name, help, "counter");
        for (label, value) in series {
            let _ = writeln!(self.0, "{name}{} {}", Labels(label, None), Number(value));
        }
    }

    fn histogram<'a>(
        &mut self,
        name: &str,
        help: &str,
        series: impl IntoIterator<Item = (Label<'a>, &'a Spread, f64)>,
    ) {
        self.header(name, help, "histogram");
        for (label, spread, sum) in series {
            for (bound, ns) in BOUNDS {
                let _ = writeln!(self.0, "{name}_bucket{} {}", Labels(label, Some(bound)), spread.count_at_most(ns));
            }
            let count = spread.count();
            let _ = writeln!(self.0, "{name}_bucket{} {count}", Labels(label, Some("+Inf")));
            let _ = writeln!(self.0, "{name}_sum{} {}", Labels(label, None), Number(sum));
            let _ = writeln!(self.0, "{name}_count{} {count}", Labels(label, None));
        }
    }
}

/// A series' labels: `{name="value",le="bound"}`, or nothing.
struct Labels<'a>(Label<'a>, Option<&'a str>);

impl std::fmt::Display for Labels<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut labels = self.0.iter().map(|(name, value)| (*name, *value)).chain(self.1.map(|bound| ("le", bound)));
        let Some(first) = labels.next() else { return Ok(()) };
        f.write_str("{")?;
        for (index, (name, value)) in std::iter::once(first).chain(labels).enumerate() {
            if index > 0 {
                f.write_str(",")?;
            }
            write!(f, "{name}=\"")?;
            // The format's escapes: backslash, double quote and line feed.
            for character in value.chars() {
                match character {
                    '\\' => f.write_str("\\\\")?,
                    '"' => f.write_str("\\\"")?,
                    '\n' => f.write_str("\\n")?,
                    other => f.write_char(other)?,
                }
            }
            f.write_str("\"")?;
        }
        f.write_str("}")
    }
}

/// A sample value as the format reads it: Go's float syntax, `+Inf`, `-Inf` and `NaN` spelled its way.
struct Number(f64);

impl std::fmt::Display for Number {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            value if value.is_nan() => f.write_str("NaN"),
            value if value == f64::INFINITY => f.write_str("+Inf"),
            value if value == f64::NEG_INFINITY => f.write_str("-Inf"),
            value => write!(f, "{value}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        let text = Labels(Some(("span", "a\\b\"c\nd")), Some("0.5")).to_string();
        assert_eq!(text, r#"{span="a\\b\"c\nd",le="0.5"}"#);
        assert_eq!(Labels(None, None).to_string(), "");
    }

    #[test]
    fn bounds_are_increasing_and_written_as_their_nanoseconds() {
        for pair in BOUNDS.windows(2) {
            assert!(pair[0].1 < pair[1].1);
        }
        for (text, ns) in BOUNDS {
            let parsed: f64 = text.parse().expect("a float");
            assert!((parsed * 1e9 - ns as f64).abs() < 1e-3, "{text} is not {ns} ns");
        }
    }
}
