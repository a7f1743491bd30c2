//! Every output (issue 6) comes from the same recorded data and agrees with `summary()`: the Chrome trace,
//! the call tree and its folded stacks, the flamegraph, JSON, batch log lines and run comparisons.

#![cfg(all(feature = "timing", feature = "json"))]

mod common;

use common::{exclusive, spin};
use serde_json::Value;
use timing_runtime::{BatchTiming, TrainingSummary, last_batch, set_timeline, summary, timed, timeline};

#[timed(phase = "regions")]
fn regions() {
    spin(30);
    intersect();
}

#[timed]
fn intersect() {
    spin(10);
}

#[timed(phase = "error")]
fn error() {
    spin(10);
}

#[timed(step)]
fn step() {
    regions();
    error();
}

#[timed(batch)]
fn batch(steps: usize) {
    for _ in 0..steps {
        step();
    }
}

#[test]
fn the_chrome_trace_has_every_span_with_the_required_fields() {
    let _exclusive = exclusive();
    set_timeline(100_000);
    batch(20);
    std::thread::spawn(|| batch(5)).join().unwrap();
    let run = summary();
    let recorded = timeline();
    set_timeline(0);
    assert_eq!(recorded.dropped, 0);

    let trace: Value = serde_json::from_str(&recorded.to_chrome_trace()).unwrap();
    let events = trace["traceEvents"].as_array().expect("JSON object form with traceEvents");
    for event in events {
        assert_eq!(event["ph"], "X", "complete events: {event}");
        for field in ["name", "cat", "ts", "dur", "pid", "tid"] {
            assert!(!event[field].is_null(), "{field} missing in {event}");
        }
        assert!(event["ts"].as_f64().unwrap() >= 0.0 && event["dur"].as_f64().unwrap() >= 0.0);
    }
    // One event per call, as many as the summary counts; two threads.
    for stats in &run.spans {
        let count = events.iter().filter(|event| event["name"] == stats.name.as_str()).count() as u64;
        assert_eq!(count, stats.count, "{}", stats.name);
        let total_ns: f64 =
            recorded.events.iter().filter(|event| event.name == stats.name).map(|e| e.duration_ns as f64).sum();
        assert!(
            (total_ns - stats.total_ns as f64).abs() <= stats.count as f64,
            "{}: {total_ns} vs {}",
            stats.name,
            stats.total_ns
        );
    }
    let threads: std::collections::BTreeSet<u64> = events.iter().map(|event| event["tid"].as_u64().unwrap()).collect();
    assert_eq!(threads.len(), 2);
    // The phase is the category (inherited by `intersect`), the step index an argument.
    let intersect: Vec<&Value> = events.iter().filter(|event| event["name"] == "intersect").collect();
    assert!(intersect.iter().all(|event| event["cat"] == "regions"));
    for tid in &threads {
        let steps: Vec<u64> = events
            .iter()
            .filter(|event| event["name"] == "regions" && event["tid"] == *tid)
            .map(|event| event["args"]["step"].as_u64().expect("step index"))
            .collect();
        assert_eq!(steps, (0..steps.len() as u64).collect::<Vec<_>>(), "thread {tid}");
        assert!(steps.len() == 20 || steps.len() == 5);
    }
    assert!(events.iter().filter(|event| event["name"] == "batch").all(|event| event["args"].is_null()));
}

#[test]
fn a_full_timeline_drops_the_oldest_events_and_counts_them() {
    let _exclusive = exclusive();
    set_timeline(10);
    for _ in 0..40 {
        error();
    }
    let recorded = timeline();
    set_timeline(0);
    assert_eq!(recorded.events.len(), 10);
    assert_eq!(recorded.dropped, 30);
    let last = recorded.events.last().unwrap().start_ns;
    assert!(recorded.events.iter().all(|event| event.start_ns <= last));
}

#[test]
fn the_call_tree_folded_stacks_and_flamegraph_agree_with_the_summary() {
    let _exclusive = exclusive();
    batch(10);
    let run = summary();
    let tree = &run.call_tree;
    let regions = tree.nodes.iter().position(|node| node.name == "regions").unwrap();
    assert_eq!(tree.path(regions), "batch;step;regions");
    assert_eq!(tree.nodes[regions].count, 10);
    let intersect = tree.nodes.iter().position(|node| node.name == "intersect").unwrap();
    assert_eq!(tree.nodes[intersect].parent, Some(regions));
    // Children never hold more than their parent; shares are of the parent.
    for node in &tree.nodes {
        if let Some(parent) = node.parent {
            let parent = &tree.nodes[parent];
            assert!(node.total_ns <= parent.total_ns);
            let expected = node.total_ns as f64 * 100.0 / parent.total_ns as f64;
            assert!((node.pct_of_parent - expected).abs() < 1e-9);
        }
    }
    for stats in &run.spans {
        let self_ns: u64 = tree.nodes.iter().filter(|node| node.name == stats.name).map(|node| node.self_ns).sum();
        assert_eq!(self_ns, stats.self_ns, "{}", stats.name);
    }

    let folded = tree.folded();
    let mut total = 0;
    for line in folded.lines() {
        let (path, count) = line.rsplit_once(' ').expect("`path count`");
        assert!(path.split(';').all(|name| run.span(name).is_some()), "{line}");
        total += count.parse::<u64>().expect("a count");
    }
    assert_eq!(total, tree.nodes.iter().map(|node| node.self_ns).sum::<u64>());
    assert!(folded.contains("batch;step;regions;intersect "));

    let text = tree.to_string();
    assert!(text.contains("\n      intersect "), "indented by depth:\n{text}");

    #[cfg(feature = "flamegraph")]
    {
        let svg = tree.flamegraph_svg("test").unwrap();
        assert!(svg.contains("<svg") && svg.contains("intersect") && svg.contains("</svg>"));
    }
}

#[test]
fn json_outputs_keep_their_field_names_and_round_trip() {
    let _exclusive = exclusive();
    batch(12);
    let run = summary();
    let json: Value = serde_json::to_value(&run).unwrap();
    for field in ["total_steps", "total_ns", "steps_per_second", "phase_breakdown", "spans", "call_tree", "slow_steps"]
    {
        assert!(!json[field].is_null(), "{field}");
    }
    assert_eq!(json["total_steps"], 12);
    assert_eq!(json["phase_breakdown"]["phases"][0]["phase"], "regions");
    // No counting allocator in this binary: no allocation field is written, and a summary saved before
    // they existed reads back.
    assert!(run.allocations.is_none() && run.spans.iter().all(|stats| stats.allocations.is_none()));
    assert!(!serde_json::to_string(&run).unwrap().contains("alloc"));
    assert_eq!(serde_json::from_value::<TrainingSummary>(json).unwrap(), run);

    let batch_timing = last_batch().unwrap();
    let line = batch_timing.json_line();
    assert!(line.starts_with(r#"{"timing":"batch","#) && !line.contains('\n'), "{line}");
    let parsed: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(parsed["steps"], 12);
    assert_eq!(serde_json::from_value::<BatchTiming>(parsed).unwrap(), batch_timing);
}

#[test]
fn the_report_and_a_comparison_show_the_recorded_numbers() {
    let _exclusive = exclusive();
    batch(10);
    let before = summary();
    timing_runtime::reset();
    batch(20);
    let after = summary();

    let report = after.to_string();
    assert!(report.contains("Per step:") && report.contains("Top spans by self time:"), "{report}");
    // Without a counting allocator, no allocation column or line.
    assert!(!report.contains("alloc"), "{report}");
    let regions_line = report.lines().find(|line| line.trim_start().starts_with("regions ")).unwrap();
    assert!(regions_line.contains("20 calls"), "{regions_line}");

    let comparison = before.compare(&after);
    let regions = comparison.phases.iter().find(|change| change.name == "regions").unwrap();
    let per_step = |run: &TrainingSummary| run.phase_breakdown.ns("regions") as f64 / run.total_steps as f64;
    assert_eq!((regions.before_ns, regions.after_ns), (per_step(&before), per_step(&after)));
    let batch_span = comparison.spans.iter().find(|change| change.name == "batch").unwrap();
    assert!(batch_span.after_ns > batch_span.before_ns);
    assert!(batch_span.delta_pct() > 0.0);
    let text = comparison.to_string();
    assert!(text.contains("regions") && text.contains("Spans (total time"), "{text}");
    // Each phase has a verdict from the runs' distributions.
    assert!(regions.median_change_pct.is_some() && regions.verdict != timing_runtime::Verdict::Unknown, "{regions:?}");
}

#[timed(step)]
fn step_of(micros: u64) {
    spin(micros);
}

#[timed(batch)]
fn batch_with_one_slow_step(slow: usize) {
    for index in 0..40 {
        step_of(if index == slow { 3_000 } else { 20 });
    }
}

#[test]
fn the_text_reports_slow_steps_name_their_batch_and_thread() {
    let _exclusive = exclusive();
    batch_with_one_slow_step(99);
    // A second thread's second batch holds the slow step.
    std::thread::spawn(|| {
        batch_with_one_slow_step(99);
        batch_with_one_slow_step(17);
    })
    .join()
    .unwrap();
    let run = summary();
    let slow = run.slow_steps.iter().find(|slow| slow.total_ns >= 3_000_000).expect("the slow step");
    assert_eq!((slow.step, slow.batch), (17, Some(2)));
    let thread = slow.thread.expect("its thread");
    assert!(thread >= 2, "{slow:?}");
    let text = run.to_string();
    let line = format!("step 17 of batch 2 on thread {thread} took");
    assert!(text.contains(&line), "{line:?} not in\n{text}");
}
