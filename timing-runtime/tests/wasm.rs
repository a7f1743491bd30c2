//! The runtime on `wasm32-unknown-unknown`, where `std::time::Instant::now()` traps: it keeps real time
//! through `performance.now()`. Run by `.ci/run` with `wasm-bindgen-test-runner` under node:
//! `CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner cargo test --target wasm32-unknown-unknown -p timing-runtime --test wasm`

#![cfg(all(target_arch = "wasm32", feature = "timing"))]

use timing_runtime::{summary, timed};
use wasm_bindgen_test::wasm_bindgen_test;

fn spin_ms(ms: f64) {
    let start = web_time::Instant::now();
    while start.elapsed().as_secs_f64() * 1e3 < ms {
        std::hint::spin_loop();
    }
}

#[timed(phase = "regions")]
fn regions() {
    spin_ms(2.0);
}

#[timed(step)]
fn step() {
    regions();
    spin_ms(1.0);
}

#[timed(batch)]
fn batch() {
    for _ in 0..3 {
        step();
    }
}

#[wasm_bindgen_test]
fn steps_are_timed_with_real_time_in_wasm() {
    batch();
    let run = summary();
    assert_eq!(run.total_steps, 3);
    assert!(run.total_ns >= 9_000_000, "{} ns for 3 steps of 3 ms", run.total_ns);
    let regions = run.phase_breakdown.pct("regions");
    assert!(regions > 50.0 && regions < 80.0, "{regions}% in regions, expected about 67%");
    let batch = timing_runtime::last_batch().expect("a batch");
    assert_eq!(batch.steps, 3);
    assert!(batch.compute_ns >= run.total_ns);
}
