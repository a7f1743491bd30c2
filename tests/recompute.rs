//! Recomputation timing (issue 26, point 7): a step rebuilt from a keyframe is timed apart, and its replayed
//! steps are not steps of the run.

#![cfg(feature = "timing")]

mod common;

use common::{exclusive, spin};
use timing_runtime::{recompute, summary, timed};

#[timed(phase = "update")]
fn update(x: f64) -> f64 {
    spin(20);
    x * 0.5
}

#[timed(step)]
fn step(x: f64) -> f64 {
    update(x)
}

#[timed(batch)]
fn train(steps: u64) -> f64 {
    (0..steps).fold(1.0, |x, _| step(x))
}

#[test]
fn replayed_steps_are_timed_apart_and_add_nothing_to_the_run() {
    let _exclusive = exclusive();
    train(20);
    let before = summary();
    let (x, timing) = recompute(10, 20, || (10..20).fold(1.0, |x, _| step(x)));
    assert!(x < 1.0);
    assert_eq!((timing.keyframe_step, timing.target_step, timing.steps_recomputed), (10, 20, 10));
    assert!(timing.compute_ns >= 10 * 20_000, "{timing:?}");
    assert!((timing.per_step_ns - timing.compute_ns as f64 / 10.0).abs() < 1e-6, "{timing:?}");
    let run = summary();
    // The run's steps, rate and breakdown are the training's alone.
    assert_eq!(run.total_steps, 20);
    assert_eq!(run.total_ns, before.total_ns);
    assert_eq!(run.phase_breakdown, before.phase_breakdown);
    let recomputations = run.recomputations.clone().expect("one");
    assert_eq!((recomputations.count, recomputations.steps_replayed), (1, 10));
    assert_eq!(recomputations.compute_ns, timing.compute_ns);
    // Bucketed: within 1% of the exact figure.
    let p50 = recomputations.per_step.p50_ns as f64;
    assert!((p50 - timing.per_step_ns).abs() <= 0.01 * timing.per_step_ns, "{recomputations:?} {timing:?}");
    // The replay's calls are in the spans and the call tree, under `recompute`.
    assert_eq!(run.span("recompute").map(|stats| stats.count), Some(1));
    assert_eq!(run.span("step").map(|stats| stats.count), Some(30));
    let tree = &run.call_tree;
    let replayed = (0..tree.nodes.len()).find(|index| tree.path(*index) == "recompute;step;update");
    assert_eq!(replayed.map(|index| tree.nodes[index].count), Some(10), "{tree}");
    assert!(run.to_string().contains("Recomputations: 1 (10 steps replayed"), "{run}");
    // Training goes on as before.
    train(5);
    assert_eq!(summary().total_steps, 25);
}

#[test]
fn a_replay_that_panics_leaves_the_thread_training() {
    let _exclusive = exclusive();
    let caught = std::panic::catch_unwind(|| {
        recompute(0, 3, || {
            step(1.0);
            panic!("replay failed");
        })
    });
    assert!(caught.is_err());
    train(3);
    let run = summary();
    assert_eq!(run.total_steps, 3);
    assert_eq!(run.recomputations, None);
}

#[test]
fn a_replay_inside_a_step_is_part_of_that_step() {
    let _exclusive = exclusive();
    #[timed(step)]
    fn serving_step() -> f64 {
        recompute(0, 4, || (0..4).fold(1.0, |x, _| step(x))).0
    }
    serving_step();
    let run = summary();
    assert_eq!(run.total_steps, 1);
    assert!(run.total_ns >= 4 * 20_000, "{run:#?}");
    assert_eq!(run.recomputations.map(|recomputations| recomputations.steps_replayed), Some(4));
}
