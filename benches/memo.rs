//! The real-shaped workload: steps shaped as those of a real area-proportional Venn diagram fitter with
//! forward-mode automatic differentiation, the code whose trial found the instrumentation's own share
//! understated. Most timed calls are a recursive, memoized computation (`area` of a region, by its key,
//! through the areas of the regions its key contains, each computed once a step and then read from the
//! memo); every operation on a dual number allocates its vector of derivatives. A step makes about 500
//! timed calls, over 400 of them recursive, and about 15,000 allocations, in about a third of a millisecond
//! here (the real code takes a millisecond for as many: this workload is the denser test of both costs).
//!
//! ```text
//! cargo run --release -p timing-benches --example memo -- [--steps N] [--json] [--against-bare]
//! ```
//!
//! `--against-bare` runs the same code uninstrumented beside the timed steps, 100 steps of each in turn in
//! this process, and writes to standard error `bare_ns TOTAL timed_ns TOTAL median_ratio R` (R: the median
//! over the rounds of timed over bare time): the wall time of each, which
//! the same process speed weighs alike (on these VMs whole processes run fast or slow), so that their
//! difference measures what timing cost this process, for `benches/calibration-states.sh` to set beside
//! the report's instrumentation row.
//!
//! Built with the feature `timing` off it runs the same code uninstrumented; with `allocations`, the
//! runtime's counting allocator counts every allocation. The `example` bench measures it both ways.

use std::hint::black_box;
use std::time::Instant;

#[path = "memo_scene.rs"]
mod memo_scene;

use memo_scene::bare::train as bare_train;
use memo_scene::timed::train;
use memo_scene::{VARIABLES, targets};

#[cfg(feature = "allocations")]
#[global_allocator]
static ALLOCATOR: timing_runtime::alloc::Counting = timing_runtime::alloc::Counting::system();

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut steps = 1_000u64;
    let mut json = false;
    let mut against_bare = false;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--steps" => match args.next().and_then(|value| value.parse().ok()) {
                Some(value) => steps = value,
                None => fail("--steps takes a number"),
            },
            "--json" => json = true,
            "--against-bare" => against_bare = true,
            other => fail(&format!("unknown argument `{other}`")),
        }
    }
    let targets = targets();
    let mut params: Vec<f64> =
        (0..VARIABLES).map(|index| 1.0 + (index % 3) as f64 * 0.5 + index as f64 * 0.01).collect();
    let mut bare_params = params.clone();
    let (mut bare_ns, mut timed_ns) = (0u128, 0u128);
    // Each round's timed time over its bare time: their median is robust to a round the machine slowed.
    let mut ratios: Vec<f64> = Vec::new();
    let mut error = 0.0;
    let mut left = steps;
    let mut round = 0u64;
    while left > 0 {
        let batch = left.min(100);
        let mut bare_round = 0;
        let mut bare = || {
            let start = Instant::now();
            black_box(bare_train(&mut bare_params, &targets, batch));
            bare_round = start.elapsed().as_nanos();
            bare_ns += bare_round;
        };
        // In turn, which goes first, so that neither always follows the other.
        if against_bare && round % 2 == 0 {
            bare();
        }
        let start = Instant::now();
        error = train(&mut params, &targets, batch);
        let timed_round = start.elapsed().as_nanos();
        timed_ns += timed_round;
        if against_bare && round % 2 == 1 {
            bare();
        }
        if against_bare && bare_round > 0 {
            #[allow(clippy::cast_precision_loss)]
            ratios.push(timed_round as f64 / bare_round as f64);
        }
        left -= batch;
        round += 1;
    }
    black_box(error);
    if against_bare {
        ratios.sort_by(f64::total_cmp);
        let median = ratios.get(ratios.len() / 2).copied().unwrap_or(f64::NAN);
        eprintln!("bare_ns {bare_ns} timed_ns {timed_ns} median_ratio {median}");
    }
    let summary = timing_runtime::summary();
    if json {
        match serde_json::to_string(&summary) {
            Ok(json) => println!("{json}"),
            Err(problem) => fail(&format!("cannot write the summary: {problem}")),
        }
    } else {
        println!("{steps} steps, error {error:.4e}\n\n{summary}");
    }
}

fn fail(message: &str) -> ! {
    eprintln!("memo: {message}");
    std::process::exit(2);
}
