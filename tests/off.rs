//! With the `timing` feature off (`cargo test --no-default-features`): the functions run as written and
//! the runtime reports nothing. Run by `.ci/run`.

#![cfg(not(feature = "timing"))]

use timing_runtime::{TimingGranularity, granularity, last_batch, reset, set_granularity, summary, timed};

#[timed(phase = "gradient")]
fn gradient(x: f64) -> f64 {
    2.0 * x
}

#[timed(step)]
fn step(x: &mut f64) {
    *x -= 0.25 * gradient(*x);
}

#[timed(batch)]
fn train(x: &mut f64, steps: usize) {
    for _ in 0..steps {
        step(x);
    }
}

#[test]
fn functions_behave_as_written_and_nothing_is_recorded() {
    let mut x = 8.0;
    train(&mut x, 3);
    assert_eq!(x, 1.0);
    set_granularity(TimingGranularity::Detailed);
    assert_eq!(granularity(), TimingGranularity::None);
    assert_eq!(summary(), timing_runtime::TrainingSummary::default());
    assert!(last_batch().is_none());
    reset();
    let _scope = timing_runtime::scope!("block", phase = "regions");
    assert_eq!(std::mem::size_of_val(&_scope), 0);
}
