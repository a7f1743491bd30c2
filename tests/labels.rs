//! Batches labelled at run time and batches that fit code with early returns (issue 26, points 4 and 5).

#![cfg(feature = "timing")]

mod common;

use common::{exclusive, spin};
use timing_runtime::{last_batch, start_batch, summary, timed};

#[timed(step, phase = "work")]
fn step(micros: u64) {
    spin(micros);
}

#[test]
fn variants_trained_side_by_side_are_kept_apart_by_their_labels() {
    let _exclusive = exclusive();
    let labels: Vec<Option<String>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..3u64)
            .map(|variant| {
                scope.spawn(move || {
                    let ((), timing) = timing_runtime::batch(&format!("variant-{variant}"), || {
                        (0..=variant).for_each(|_| step(10));
                    });
                    assert_eq!(timing.as_ref().map(|timing| timing.steps), Some(variant as usize + 1));
                    timing.and_then(|timing| timing.label)
                })
            })
            .collect();
        workers.into_iter().map(|worker| worker.join().unwrap()).collect()
    });
    assert_eq!(labels, [Some("variant-0".into()), Some("variant-1".into()), Some("variant-2".into())]);
    let run = summary();
    for variant in 0..3u64 {
        let name = format!("variant-{variant}");
        assert_eq!(run.span(&name).map(|stats| stats.count), Some(1), "{name}");
        // Its steps are under it in the call tree.
        let tree = &run.call_tree;
        let steps = (0..tree.nodes.len()).find(|index| tree.path(*index) == format!("{name};step"));
        assert_eq!(steps.map(|index| tree.nodes[index].count), Some(variant + 1), "{tree}");
    }
}

/// A handler shaped as a server's: three early returns, one batch.
fn handle(request: &str) -> Result<usize, String> {
    let batch = start_batch("handle");
    let steps: usize = request.parse().map_err(|_| format!("not a number: {request}"))?;
    if steps == 0 {
        return Err("no steps".into());
    }
    if steps > 100 {
        return Err("too many steps".into());
    }
    (0..steps).for_each(|_| step(5));
    let timing = batch.finish().ok_or("no timing")?;
    Ok(timing.steps)
}

#[test]
fn a_batch_guard_ends_at_every_return_and_gives_its_timing_when_finished() {
    let _exclusive = exclusive();
    assert_eq!(handle("x"), Err("not a number: x".into()));
    assert_eq!(handle("0"), Err("no steps".into()));
    assert_eq!(handle("500"), Err("too many steps".into()));
    assert_eq!(handle("7"), Ok(7));
    let run = summary();
    // Four batches, each closed where its handler returned: no batch is left open around the next.
    assert_eq!(run.span("handle").map(|stats| stats.count), Some(4));
    assert_eq!((run.batches, run.total_steps), (4, 7));
    assert_eq!(last_batch().and_then(|batch| batch.label), Some("handle".into()));
    // Dropped without `finish`, it ends all the same.
    {
        let _batch = start_batch("dropped");
        step(5);
    }
    assert_eq!(last_batch().map(|batch| (batch.label, batch.steps)), Some((Some("dropped".into()), 1)));
}
