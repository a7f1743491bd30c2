//! A run of steps of three phases of fixed work, for the experiment that checks `timing diff` and
//! `timing ab` in separate processes (`benches/diff-experiment.sh`): `--slower PHASE PCT` makes one phase's
//! work PCT percent longer, so that a comparison has a change it must find, and only there.
//!
//! ```text
//! cargo run --release -p timing-benches --example phases -- [--steps N] [--slower assemble|solve|update PCT]
//! ```
//!
//! Prints the run's `TrainingSummary` as JSON.

use std::hint::black_box;

use timing_runtime::timed;

/// Work of a fixed number of dependent multiply-adds, about a nanosecond each.
#[inline(never)]
fn work(units: u64) -> u64 {
    (0..units).fold(units, |x, _| black_box(x).wrapping_mul(31).wrapping_add(7))
}

#[timed(phase = "assemble")]
fn assemble(units: u64) -> u64 {
    work(units)
}

#[timed(phase = "solve")]
fn solve(units: u64) -> u64 {
    work(units)
}

#[timed(phase = "update")]
fn update(units: u64) -> u64 {
    work(units)
}

#[timed(step)]
fn step(units: [u64; 3]) -> u64 {
    assemble(units[0]) ^ solve(units[1]) ^ update(units[2])
}

#[timed(batch)]
fn train(steps: u64, units: [u64; 3]) -> u64 {
    (0..steps).fold(0, |acc, _| acc ^ step(units))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut steps = 20_000u64;
    let mut units = [2_400u64, 2_000, 1_600];
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--steps" => match args.next().and_then(|value| value.parse().ok()) {
                Some(value) => steps = value,
                None => fail("--steps takes a number"),
            },
            "--slower" => {
                let name = args.next().map(String::as_str);
                let phase = ["assemble", "solve", "update"].iter().position(|phase| Some(*phase) == name);
                let pct: Option<u64> = args.next().and_then(|value| value.parse().ok());
                match (phase, pct) {
                    (Some(phase), Some(pct)) => units[phase] += units[phase] * pct / 100,
                    _ => fail("--slower takes a phase (assemble, solve or update) and a whole percentage"),
                }
            }
            other => fail(&format!("unknown argument `{other}`")),
        }
    }
    // Batches of 1,000 steps, as a training loop runs them.
    let mut left = steps;
    while left > 0 {
        black_box(train(left.min(1_000), units));
        left -= left.min(1_000);
    }
    match serde_json::to_string(&timing_runtime::summary()) {
        Ok(json) => println!("{json}"),
        Err(error) => fail(&format!("cannot write the summary: {error}")),
    }
}

fn fail(message: &str) -> ! {
    eprintln!("phases: {message}");
    std::process::exit(2);
}
