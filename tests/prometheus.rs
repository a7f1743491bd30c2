//! The Prometheus exposition (issue 19): `promtool check metrics` (Debian's `prometheus` package, which
//! `.ci/run` installs) accepts it, and its numbers are the summary's.

#![cfg(feature = "timing")]

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{exclusive, spin};
use timing_runtime::{summary, timed};

#[timed(phase = "regions")]
fn regions() {
    spin(30);
}

/// A phase name with every character the format escapes.
#[timed(phase = "odd \"phase\"\\ with\nbreaks")]
fn odd() {
    spin(10);
}

#[timed(step)]
fn step() {
    regions();
    odd();
}

#[timed(batch)]
fn batch(steps: usize) {
    for _ in 0..steps {
        step();
    }
}

/// The sample of `series` (a metric name with its labels, as written), if the exposition has it.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn promtool_accepts_the_exposition() {
    let _exclusive = exclusive();
    batch(40);
    let text = summary().to_prometheus();
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        // CI installs it (`.ci/run`); elsewhere, say so rather than fail a `cargo test` without it.
        Err(error) if std::env::var_os("CI").is_none() => {
            eprintln!("promtool not run ({error}): install Debian's `prometheus` package to run this test");
            return;
        }
        Err(error) => panic!("promtool is needed in CI (Debian package `prometheus`): {error}"),
    };
    child.stdin.take().expect("a pipe").write_all(text.as_bytes()).expect("promtool reads");
    let output = child.wait_with_output().expect("promtool ran");
    let said = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    // promtool prints lint problems and exits non-zero for format errors and lint problems alike.
    assert!(output.status.success() && said.trim().is_empty(), "promtool: {said}\n{text}");
}

#[test]
fn the_exposition_has_the_summary_numbers() {
    let _exclusive = exclusive();
    batch(25);
    let run = summary();
    let text = run.to_prometheus();
    assert_eq!(sample(&text, "timing_steps_total"), Some(25.0), "{text}");
    assert_eq!(sample(&text, "timing_batches_total"), Some(1.0));
    let regions = run.phase_breakdown.ns("regions") as f64 / 1e9;
    assert_eq!(sample(&text, r#"timing_phase_seconds_total{phase="regions"}"#), Some(regions));
    // Escaped as the format says: backslash, double quote, line feed.
    let odd = r#"timing_phase_seconds_total{phase="odd \"phase\"\\ with\nbreaks"}"#;
    assert!(sample(&text, odd).is_some_and(|seconds| seconds > 0.0), "{text}");
    // Histograms: cumulative, ending at the count; every step of 40 µs is past 25 µs and within 100 µs
    // unless the machine stretched it.
    let step_count = sample(&text, "timing_step_duration_seconds_count");
    assert_eq!(step_count, Some(25.0));
    assert_eq!(sample(&text, r#"timing_step_duration_seconds_bucket{le="+Inf"}"#), Some(25.0));
    assert_eq!(sample(&text, r#"timing_step_duration_seconds_bucket{le="2.5e-05"}"#), Some(0.0));
    let mut last = 0.0;
    for line in text.lines().filter(|line| line.starts_with("timing_step_duration_seconds_bucket")) {
        let value: f64 = line.rsplit(' ').next().and_then(|value| value.parse().ok()).expect("a number");
        assert!(value >= last, "{line} after {last}");
        last = value;
    }
    let calls = sample(&text, r#"timing_span_calls_total{span="regions"}"#);
    assert_eq!(calls, Some(25.0));
    assert_eq!(sample(&text, r#"timing_span_seconds_count{span="regions"}"#), Some(25.0));
    // No counting allocator in this binary: no allocation series.
    assert!(!text.contains("allocat"), "{text}");
}

/// A program's own registry, with a counter of its own: the collector adds the timing families beside it,
/// with the summary's numbers, and promtool accepts the whole.
#[cfg(feature = "prometheus-client")]
#[test]
fn the_series_go_into_a_programs_own_registry() {
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::registry::Registry;

    let _guard = exclusive();
    batch(20);
    let mut registry = Registry::default();
    let requests: Counter = Counter::default();
    requests.inc_by(7);
    registry.register("requests", "Requests served.", requests);
    registry.register_collector(Box::new(timing_runtime::TimingCollector::new()));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).expect("encoded");
    let run = summary();
    assert_eq!(sample(&text, "requests_total"), Some(7.0), "{text}");
    assert_eq!(sample(&text, "timing_steps_total"), Some(run.total_steps as f64), "{text}");
    assert_eq!(sample(&text, "timing_batches_total"), Some(1.0), "{text}");
    // A histogram, its buckets cumulative as written: the step's, all 20 steps within 10 s.
    assert_eq!(sample(&text, "timing_step_duration_seconds_bucket{le=\"10.0\"}"), Some(20.0), "{text}");
    assert_eq!(sample(&text, "timing_step_duration_seconds_bucket{le=\"+Inf\"}"), Some(20.0), "{text}");
    assert_eq!(sample(&text, "timing_step_duration_seconds_bucket{le=\"1e-7\"}"), Some(0.0), "{text}");
    // Labels escaped by the client, as by our own writer.
    assert!(text.contains("timing_phase_seconds_total{phase=\"odd \\\"phase\\\"\\\\ with\\nbreaks\"}"), "{text}");
    // The text format's `# EOF` is OpenMetrics'; promtool reads the rest as the text format.
    let plain = text.replace("# EOF\n", "");
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(error) if std::env::var_os("CI").is_none() => {
            eprintln!("promtool not run ({error}): install Debian's `prometheus` package to run this test");
            return;
        }
        Err(error) => panic!("promtool is needed in CI (Debian package `prometheus`): {error}"),
    };
    child.stdin.take().expect("a pipe").write_all(plain.as_bytes()).expect("promtool reads");
    let output = child.wait_with_output().expect("promtool ran");
    let said = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    // OpenMetrics names a counter's family without `_total` in its HELP, which promtool's lint of the text
    // format reports as a counter without help; anything else (a line it cannot parse) fails.
    let problems: Vec<&str> = said.lines().filter(|line| !line.ends_with("_total no help text")).collect();
    assert!(problems.is_empty(), "promtool: {said}\n{text}");
}
