//! Expansions add no warning and no clippy lint (issue 3): this file denies them all, and `.ci/run` runs
//! `cargo clippy --all-targets -- -D warnings` over it. The test runs each function so that it is used.

#![cfg(feature = "timing")]
#![deny(warnings, clippy::all, clippy::pedantic)]

use std::fmt::Display;

use timing_runtime::timed;

#[timed]
fn unit() {}

#[timed(phase = "gradient")]
fn value(x: f64) -> f64 {
    x * 2.0
}

#[timed(name = "parse", phase = "io")]
fn fallible(text: &str) -> Result<u32, std::num::ParseIntError> {
    let value = text.parse::<u32>()?;
    Ok(value + 1)
}

#[timed]
fn displayed(x: u8) -> impl Display {
    x
}

#[timed]
#[must_use]
fn must_use_value() -> u8 {
    1
}

#[timed]
fn with_items() -> usize {
    use std::collections::HashMap;
    const LIMIT: usize = 3;
    let map: HashMap<usize, usize> = (0..LIMIT).map(|i| (i, i)).collect();
    map.len()
}

#[timed]
fn with_early_return(flag: bool) -> u8 {
    if flag {
        return 1;
    }
    2
}

#[timed(step)]
fn step(x: &mut f64) {
    *x -= 0.1 * value(*x);
}

#[timed(batch)]
fn batch(x: &mut f64, steps: usize) {
    for _ in 0..steps {
        step(x);
    }
}

struct Model {
    weight: f64,
}

impl Model {
    #[timed]
    fn weight(&self) -> f64 {
        self.weight
    }

    // These await, as an `async fn` that does not is reported by `clippy::unused_async` (pedantic), with
    // `#[timed]` as without it.
    #[timed]
    async fn fetch(&self) -> Result<f64, String> {
        Ok(std::future::ready(self.weight).await)
    }

    #[timed]
    async fn nothing(&self) {
        std::future::ready(()).await;
    }
}

#[timed]
async fn unit_async() {
    std::future::ready(()).await;
}

#[test]
fn every_function_here_runs() {
    unit();
    assert!((value(1.0) - 2.0).abs() < f64::EPSILON);
    assert_eq!(fallible("1"), Ok(2));
    assert_eq!(displayed(3).to_string(), "3");
    assert_eq!(must_use_value(), 1);
    assert_eq!(with_items(), 3);
    assert_eq!(with_early_return(true) + with_early_return(false), 3);
    let mut x = 1.0;
    batch(&mut x, 2);
    let model = Model { weight: x };
    assert!((model.weight() - x).abs() < f64::EPSILON);
    // Built, not polled: the futures are checked by the compiler here and run in `accepted.rs`.
    drop(model.fetch());
    drop(model.nothing());
    drop(unit_async());
}
