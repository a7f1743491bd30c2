//! The real-shaped workload: steps shaped as those of a real area-proportional Venn diagram fitter with
//! forward-mode automatic differentiation, the code whose trial found the instrumentation's own share
//! understated. Most timed calls are a recursive, memoized computation (`area` of a region, by its key,
//! through the areas of the regions its key contains, each computed once a step and then read from the
//! memo); every operation on a dual number allocates its vector of derivatives. A step makes about 500
//! timed calls, over 400 of them recursive, and about 16,000 allocations, in about a millisecond.
//!
//! ```text
//! cargo run --release -p timing-benches --example memo -- [--steps N] [--json]
//! ```
//!
//! Built with the feature `timing` off it runs the same code uninstrumented; with `allocations`, the
//! runtime's counting allocator counts every allocation. The `example` bench measures it both ways.

use std::hint::black_box;

#[path = "memo_scene.rs"]
mod memo_scene;

use memo_scene::timed::train;
use memo_scene::{VARIABLES, targets};

#[cfg(feature = "allocations")]
#[global_allocator]
static ALLOCATOR: timing_runtime::alloc::Counting = timing_runtime::alloc::Counting::system();

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut steps = 1_000u64;
    let mut json = false;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--steps" => match args.next().and_then(|value| value.parse().ok()) {
                Some(value) => steps = value,
                None => fail("--steps takes a number"),
            },
            "--json" => json = true,
            other => fail(&format!("unknown argument `{other}`")),
        }
    }
    let targets = targets();
    let mut params: Vec<f64> =
        (0..VARIABLES).map(|index| 1.0 + (index % 3) as f64 * 0.5 + index as f64 * 0.01).collect();
    let mut error = 0.0;
    let mut left = steps;
    while left > 0 {
        error = train(&mut params, &targets, left.min(100));
        left -= left.min(100);
    }
    black_box(error);
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
