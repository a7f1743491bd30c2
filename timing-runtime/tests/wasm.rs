//! The runtime on `wasm32-unknown-unknown`, where `std::time::Instant::now()` traps: it keeps real time
//! through `performance.now()`. A run shaped like a small optimizer (gradient descent on a quadratic: a
//! gradient phase and an update phase in every step, two batches, the summary, its text and its JSON), with
//! time that each phase spends known by construction. `.ci/run` runs it under node and in headless
//! Chromium with `wasm-bindgen-test-runner`:
//! `CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner cargo test --target wasm32-unknown-unknown -p timing-runtime --features json --test wasm`
//! (`WASM_BINDGEN_USE_BROWSER=1` for the browser).

#![cfg(all(target_arch = "wasm32", feature = "timing"))]

use timing_runtime::{TrainingSummary, last_batch, summary, timed};
use wasm_bindgen_test::wasm_bindgen_test;

/// Spins for `ms` of real time, so that a phase's share is known whatever the machine.
fn spin_ms(ms: f64) {
    let start = web_time::Instant::now();
    while start.elapsed().as_secs_f64() * 1e3 < ms {
        std::hint::spin_loop();
    }
}

/// The gradient of `sum (x_i - i)^2`, and 0.3 ms of work.
#[timed(phase = "gradient")]
fn gradient(x: &[f64]) -> Vec<f64> {
    spin_ms(0.3);
    x.iter().enumerate().map(|(index, value)| 2.0 * (value - index as f64)).collect()
}

/// A step of gradient descent, and 0.1 ms of work.
#[timed(phase = "update")]
fn update(x: &mut [f64], gradient: &[f64]) {
    spin_ms(0.1);
    for (value, slope) in x.iter_mut().zip(gradient) {
        *value -= 0.1 * slope;
    }
}

#[timed(step)]
fn step(x: &mut [f64]) {
    let slopes = gradient(x);
    update(x, &slopes);
}

#[timed(batch)]
fn train(x: &mut [f64], steps: usize) {
    for _ in 0..steps {
        step(x);
    }
}

#[wasm_bindgen_test]
fn an_optimizer_is_timed_with_real_time_in_wasm() {
    let mut x = vec![0.0; 8];
    train(&mut x, 40);
    train(&mut x, 40);
    // The optimizer converged: timing changed nothing it computes.
    assert!(x.iter().enumerate().all(|(index, value)| (value - index as f64).abs() < 1e-3), "{x:?}");

    let run = summary();
    assert_eq!(run.total_steps, 80);
    assert_eq!(run.batches, 2);
    assert!(run.total_ns >= 80 * 400_000, "{} ns for 80 steps of at least 0.4 ms", run.total_ns);
    // Three quarters of each step in the gradient, a quarter in the update, by construction.
    let (gradient, update) = (run.phase_breakdown.pct("gradient"), run.phase_breakdown.pct("update"));
    assert!((60.0..90.0).contains(&gradient), "{gradient}% in the gradient, expected about 75%");
    assert!((15.0..40.0).contains(&update), "{update}% in the update, expected about 25%");
    let shares: f64 =
        run.phase_breakdown.phases.iter().map(|phase| phase.pct).sum::<f64>() + run.phase_breakdown.overhead_pct;
    assert!((shares - 100.0).abs() < 0.01, "the breakdown adds up to {shares}%");
    assert_eq!(run.span("gradient").map(|span| span.count), Some(80));

    let batch = last_batch().expect("a batch");
    assert_eq!(batch.steps, 40);
    assert!(batch.compute_ns >= 40 * 400_000);

    let text = run.to_string();
    assert!(text.contains("Steps: 80"), "{text}");
    let json = serde_json::to_string(&run).expect("the summary as JSON");
    let back: TrainingSummary = serde_json::from_str(&json).expect("and back");
    // Integers exactly; floats through text lose their last bit at times.
    assert_eq!((back.total_steps, back.total_ns, back.batches), (run.total_steps, run.total_ns, run.batches));
    assert_eq!(back.spans.len(), run.spans.len());
    assert_eq!(back.phase_breakdown.phases.len(), 2);
    let line = batch.json_line();
    assert!(line.starts_with(r#"{"timing":"batch","#) && line.contains(r#""steps":40,"#), "{line}");
}
