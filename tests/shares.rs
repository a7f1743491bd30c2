//! Phase shares against a split known by construction (issue 17): each phase is busy loops of fixed
//! instruction counts, one phase made of many short calls, one of recursion on the inline stack, one of
//! recursion a few hundred calls deep. The same code without `#[timed]`, timed phase by phase from outside,
//! gives the true split; the report's, with every call's instrumentation left out as it was paid, must agree
//! within a point. Charging every call the cost of the common close (the way before) put the recursive
//! phases above it.

#![cfg(feature = "timing")]

mod common;

use std::hint::black_box;
use std::time::Instant;

use common::exclusive;
use timing_runtime::{last_batch, timed};

/// Recursive calls in each call of the recursive phase's top, and of the deep phase's.
const SHALLOW: u64 = 40;
const DEEP: u64 = 400;

/// Work in each timed call: about 60 ns, the short call of real code that makes the instrumentation's cost
/// matter.
const UNITS: u64 = 100;

/// A fixed number of instructions of work the compiler cannot remove or shorten.
#[inline(never)]
fn work(units: u64) -> u64 {
    let mut x = units;
    for _ in 0..units {
        x = black_box(x).wrapping_mul(31).wrapping_add(7);
    }
    x
}

/// The workload, defined twice: timed as a user would, and bare.
macro_rules! workload {
    ($module:ident, [$($step:tt)*], [$($short:tt)*], [$($shallow:tt)*], [$($deep:tt)*], [$($call:tt)*]) => {
        // The bare workload's step is not called: its phases are timed one by one.
        #[allow(dead_code)]
        mod $module {
            use super::*;

            $($short)*
            pub fn short_calls() -> u64 {
                (0..300).fold(0, |acc, _| acc ^ leaf())
            }

            $($call)*
            #[inline(never)]
            fn leaf() -> u64 {
                work(UNITS)
            }

            $($shallow)*
            pub fn shallow() -> u64 {
                (0..10).fold(0, |acc, _| acc ^ climb(SHALLOW))
            }

            $($call)*
            #[inline(never)]
            fn climb(depth: u64) -> u64 {
                let here = work(UNITS);
                if depth == 0 { here } else { here ^ climb(depth - 1) }
            }

            $($deep)*
            pub fn deep() -> u64 {
                descend(DEEP)
            }

            $($call)*
            #[inline(never)]
            fn descend(depth: u64) -> u64 {
                let here = work(UNITS);
                if depth == 0 { here } else { here ^ descend(depth - 1) }
            }

            $($step)*
            pub fn step() -> u64 {
                short_calls() ^ shallow() ^ deep()
            }
        }
    };
}

workload!(
    annotated,
    [#[timed(step)]],
    [#[timed(phase = "short")]],
    [#[timed(phase = "shallow")]],
    [#[timed(phase = "deep")]],
    [#[timed]]
);
workload!(bare, [], [], [], [], []);

const PHASES: [&str; 3] = ["short", "shallow", "deep"];

/// The median of `values`.
fn median(mut values: Vec<u64>) -> f64 {
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or(0) as f64
}

/// Percentages of `ns` in each phase.
fn shares(ns: [f64; 3]) -> [f64; 3] {
    let total: f64 = ns.iter().sum();
    ns.map(|ns| 100.0 * ns / total)
}

/// Runs annotated steps interleaved with the bare phases (so that a slower stretch of the machine falls on
/// both), and returns each bare phase's times.
#[timed(batch)]
fn interleaved(steps: usize) -> [Vec<u64>; 3] {
    let nanos = |start: Instant| u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
    let mut bare_ns: [Vec<u64>; 3] = Default::default();
    for _ in 0..steps {
        black_box(annotated::step());
        let phases: [fn() -> u64; 3] = [bare::short_calls, bare::shallow, bare::deep];
        for (phase, ns) in phases.iter().zip(&mut bare_ns) {
            let start = Instant::now();
            black_box(phase());
            ns.push(nanos(start));
        }
    }
    bare_ns
}

/// The largest difference, in points, between the reported and the true shares of the phases, after a
/// warm-up, with what each was.
fn largest_difference() -> (f64, String) {
    interleaved(20);
    let bare_ns = interleaved(300);
    let batch = last_batch().expect("the batch ran on this thread");
    let steps = batch.step_timings.expect("step records at granularity Detailed");
    assert_eq!(steps.len(), 300);
    // Medians per step, exact from the step records: a step the scheduler stretched moves a sum, not a median.
    let reported = shares(PHASES.map(|phase| median(steps.iter().map(|step| step.phase_ns(phase)).collect())));
    let truth = shares(bare_ns.map(median));
    let difference = reported.iter().zip(truth).map(|(reported, truth)| (reported - truth).abs()).fold(0.0, f64::max);
    (difference, format!("{PHASES:?}: {reported:.2?}% reported, {truth:.2?}% without #[timed]"))
}

#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "an unoptimized build's calls cost what no calibration of it predicts; \
    `.ci/run` runs this test with --release"
)]
fn phase_shares_agree_with_the_unannotated_split() {
    // One try, in a process of its own (see below): it prints its result for the parent.
    if std::env::var_os(ONE_TRY).is_some() {
        let _exclusive = exclusive();
        let (difference, shares) = largest_difference();
        println!("{ONE_TRY} {difference} {shares}");
        return;
    }
    // Up to five tries, each in a new process: the runtime measures its own costs once per process, at
    // the first timed call, and a try whose calibration fell on a moment the machine's other work slowed
    // (the least of nine rounds filters interruptions, not a slower core) charges the wrong costs for its
    // whole life; another process measures again. An account that charges the wrong costs is off by the
    // same points every time (charging every call the common close's cost: 1.3-1.4).
    let exe = std::env::current_exe().expect("the test knows where it is");
    let mut tries = Vec::new();
    // Five, not three: on 2026-12-07 three tries in a row came out with the short phase 0.9 to 1.5 points
    // low, once in CI and once of eight runs here, a state of the machine that lasted seconds (the runs
    // before and after passed at the first try); the cause is not known.
    for _ in 0..5 {
        let output = std::process::Command::new(&exe)
            .args(["--exact", "phase_shares_agree_with_the_unannotated_split", "--nocapture", "--test-threads=1"])
            .env(ONE_TRY, "1")
            .output()
            .expect("the test runs itself");
        let stdout = String::from_utf8_lossy(&output.stdout);
        // After the harness's "test ... " on the same line.
        let line = stdout.lines().find_map(|line| line.split_once(ONE_TRY)).map(|(_, result)| result.trim());
        let Some((difference, shares)) = line.and_then(|line| line.split_once(' ')) else {
            panic!("a try printed no result:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
        };
        if difference.parse::<f64>().is_ok_and(|difference| difference <= 1.0) {
            return;
        }
        tries.push(shares.to_owned());
    }
    panic!("shares more than a point off in every try:\n{}", tries.join("\n"));
}

/// Set in the environment of a process that makes one try.
const ONE_TRY: &str = "TIMING_SHARES_ONE_TRY";
