//! The summary's batch series (what the page's chart over the run is drawn from): one point per batch
//! while there are few, bounded for long runs, and adding up to the run's own totals.

#![cfg(feature = "timing")]

mod common;

use common::{exclusive, spin};
use timing_runtime::{BatchPoint, reset, summary, timed};

#[timed(phase = "regions")]
fn regions(micros: u64) {
    spin(micros);
}

#[timed(phase = "error")]
fn error() {
    spin(2);
}

#[timed(step)]
fn step(regions_micros: u64) {
    regions(regions_micros);
    error();
}

#[timed(batch)]
fn batch(steps: usize, regions_micros: u64) {
    for _ in 0..steps {
        step(regions_micros);
    }
}

#[timed(step)]
fn bare_step() {}

#[timed(batch)]
fn bare_batch() {
    bare_step();
}

fn sum(points: &[BatchPoint], pick: impl Fn(&BatchPoint) -> u64) -> u64 {
    points.iter().map(pick).sum()
}

#[test]
fn each_batch_is_a_point_and_the_points_add_up_to_the_run() {
    let _guard = exclusive();
    // The regions phase grows as the run goes on: the chart must show it.
    for index in 0..40u64 {
        batch(3, 2 + index / 4);
    }
    let run = summary();
    let points = &run.batch_points;
    assert_eq!(points.len(), 40);
    assert!(points.iter().all(|point| point.batches == 1 && point.steps == 3));
    assert_eq!(sum(points, |point| point.steps), run.total_steps as u64);
    // Each point's times are those of its steps, converted apart: within a nanosecond each.
    let close = |a: u64, b: u64, slack: u64| a.abs_diff(b) <= slack;
    assert!(
        close(sum(points, |point| point.step_ns), run.total_ns, 40),
        "{} {}",
        sum(points, |p| p.step_ns),
        run.total_ns
    );
    assert!(close(sum(points, |point| point.batch_ns), run.batch_ns, 40));
    for phase in ["regions", "error"] {
        let of_phase =
            |point: &BatchPoint| point.phases.iter().filter(|time| time.phase == phase).map(|time| time.ns).sum();
        assert!(close(sum(points, of_phase), run.phase_breakdown.ns(phase), 40), "{phase}");
    }
    // In order, within the run, each batch's time its span.
    for pair in points.windows(2) {
        assert!(pair[0].end_ns <= pair[1].start_ns, "{pair:?}");
    }
    for point in points {
        assert!(close(point.end_ns - point.start_ns, point.batch_ns, 1), "{point:?}");
        assert!(point.step_ns <= point.batch_ns && point.steps_per_second() > 0.0, "{point:?}");
    }
    assert!(points.last().is_some_and(|last| last.end_ns >= run.wall_ns));
    assert!(
        points[39].phase_pct("regions") > points[0].phase_pct("regions") + 10.0,
        "{:?} {:?}",
        points[0],
        points[39]
    );
}

#[test]
fn a_long_run_keeps_a_bounded_series_that_loses_no_batch() {
    let _guard = exclusive();
    let batches = 50_000u64;
    for _ in 0..batches {
        bare_batch();
    }
    let run = summary();
    let points = &run.batch_points;
    assert!(points.len() <= 256 && points.len() > 128, "{}", points.len());
    assert_eq!(sum(points, |point| point.batches), batches);
    assert_eq!(sum(points, |point| point.steps), batches);
    // Every point but the latest stands for as many batches.
    let stride = points[0].batches;
    assert!(points[..points.len() - 1].iter().all(|point| point.batches == stride));
    let json = serde_json::to_string(&run).expect("serialises");
    assert!(json.len() < 256 * 400, "{}", json.len());
}

#[test]
fn a_reset_forgets_the_series_and_other_threads_batches_count() {
    let _guard = exclusive();
    batch(2, 1);
    reset();
    assert!(summary().batch_points.is_empty());
    let worker = std::thread::spawn(|| batch(4, 1));
    worker.join().expect("worker");
    batch(1, 1);
    let points = summary().batch_points;
    assert_eq!(points.iter().map(|point| point.steps).collect::<Vec<_>>(), [4, 1]);
}

#[timed(batch)]
fn batch_with_a_reset(steps_before: usize, steps_after: usize) {
    for _ in 0..steps_before {
        step(1);
    }
    reset();
    for _ in 0..steps_after {
        step(1);
    }
}

#[test]
fn a_batch_cut_by_a_reset_is_no_point_and_the_next_ones_are_whole() {
    let _guard = exclusive();
    batch_with_a_reset(5, 3);
    batch(2, 1);
    let run = summary();
    let points = &run.batch_points;
    // Only the whole batch: its steps, from its own start (the run's origin is not moved back).
    assert_eq!(points.iter().map(|point| point.steps).collect::<Vec<_>>(), [2]);
    assert!(sum(points, |point| point.steps) <= run.total_steps as u64);
    // The run began with the steps after the reset, inside the cut batch, before this one.
    let point = &points[0];
    assert!(point.start_ns > 0 && point.start_ns < run.wall_ns, "{point:?} {}", run.wall_ns);
    assert!(point.batch_ns.abs_diff(point.end_ns - point.start_ns) <= 1, "{point:?}");
}
