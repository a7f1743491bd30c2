//! `cargo bench -p timing-benches --bench example`: what `#[timed]` costs a whole program, per timed call,
//! and what counting allocations adds, per allocation. Builds the optimizer example three times: with the
//! `timing` feature off, on, and on with the counting allocator (feature `allocations`); runs each for two
//! step counts (so that start-up, the instrumentation's calibration and the report cancel out), alternating
//! the builds so that a slower stretch of the machine falls on all, and divides the differences in run time
//! by the timed calls (and allocations) the longer runs made more, as the summaries count them. The cost per
//! call is given against two `rdtsc` reads, measured in this process: the floor for any exact span.
//!
//! `-- --rounds N` (default 9) and `-- --steps N` (default 20,000: the short run; the long run is twice it).

mod contenders;

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use contenders::{Contender, batch};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str, default: u64| {
        args.iter()
            .position(|arg| arg == flag)
            .and_then(|index| args.get(index + 1))
            .and_then(|value| value.parse().ok())
            .unwrap_or(default)
    };
    let (rounds, steps) = (value("--rounds", 9), value("--steps", 20_000));
    if let Err(message) = run(rounds, steps) {
        eprintln!("{message}");
        std::process::exit(1);
    }
}

fn run(rounds: u64, steps: u64) -> Result<(), String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().ok_or("no workspace root")?.to_path_buf();
    let off = build(&root, "off", "")?;
    let on = build(&root, "on", "timing")?;
    let counting = build(&root, "counting", "timing,allocations")?;
    // Timed calls and allocations (in spans and outside) of a run.
    let counts = |steps: u64| -> Result<(u64, u64), String> {
        let output = Command::new(&counting)
            .args(["--json", "--steps", &steps.to_string()])
            .output()
            .map_err(|error| format!("cannot run {}: {error}", counting.display()))?;
        let summary: serde_json::Value = serde_json::from_slice(&output.stdout)
            .map_err(|error| format!("the example's --json output is not JSON: {error}"))?;
        let spans = summary["spans"].as_array().ok_or("no spans in the summary")?;
        let calls = spans.iter().filter_map(|span| span["count"].as_u64()).sum();
        let allocations = &summary["allocations"];
        let allocated = ["in_spans", "outside_spans"].iter().filter_map(|of| allocations[of]["count"].as_u64());
        Ok((calls, allocated.sum()))
    };
    let ((short_calls, short_allocations), (long_calls, long_allocations)) = (counts(steps)?, counts(2 * steps)?);
    let (more_calls, more_allocations) = (long_calls - short_calls, long_allocations - short_allocations);
    let seconds = |binary: &Path, steps: u64| -> Result<f64, String> {
        let start = Instant::now();
        let status = Command::new(binary)
            .args(["--json", "--steps", &steps.to_string()])
            .stdout(std::process::Stdio::null())
            .status()
            .map_err(|error| format!("cannot run {}: {error}", binary.display()))?;
        if !status.success() {
            return Err(format!("{} failed: {status}", binary.display()));
        }
        Ok(start.elapsed().as_secs_f64())
    };
    let binaries = [&off, &on, &counting];
    let mut times: [Vec<f64>; 3] = Default::default();
    for round in 0..rounds {
        // Which build goes first turns, so that none always follows another.
        for offset in 0..binaries.len() {
            let which = (round as usize + offset) % binaries.len();
            let binary = binaries[which];
            times[which].push(seconds(binary, 2 * steps)? - seconds(binary, steps)?);
        }
    }
    let [off, on, counting] = times.map(|mut times| median(&mut times));
    #[allow(clippy::cast_precision_loss)]
    let per_call_ns = (on - off) * 1e9 / more_calls as f64;
    #[allow(clippy::cast_precision_loss)]
    let per_allocation_ns = (counting - on) * 1e9 / more_allocations as f64;
    let floor = rdtsc_pair_ns();
    println!("optimizer example, {steps} more steps, medians of {rounds} rounds of runs:");
    println!("  timing off:                      {:.1} ms", off * 1e3);
    println!("  timing on:                       {:.1} ms ({:.3}x)", on * 1e3, on / off);
    println!("  timing on, allocations counted:  {:.1} ms ({:.3}x)", counting * 1e3, counting / off);
    println!("  timed calls made: {more_calls}; allocations made: {more_allocations}");
    let against_floor = per_call_ns / floor;
    println!("  cost per timed call: {per_call_ns:.1} ns = {against_floor:.2}x two rdtsc reads ({floor:.1} ns)");
    println!("  cost of counting, per allocation: {per_allocation_ns:.1} ns");
    Ok(())
}

/// Builds the optimizer example with `features` (and no default ones), in a target directory of its own
/// (so that the builds do not undo each other), and returns the binary's path.
fn build(root: &Path, name: &str, features: &str) -> Result<PathBuf, String> {
    let target = root.join("target").join("example-bench").join(name);
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
    command.current_dir(root).args(["build", "--release", "--example", "optimizer", "-p", "timing-suite"]);
    command.args(["--no-default-features", "--features", features]);
    let status =
        command.arg("--target-dir").arg(&target).status().map_err(|error| format!("cannot run cargo: {error}"))?;
    if !status.success() {
        return Err(format!("building the example ({name}) failed: {status}"));
    }
    Ok(target.join("release").join("examples").join("optimizer"))
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Nanoseconds of two reads of the time-stamp counter around a leaf, less the leaf: the table's floor
/// (`contenders::tsc_pair`), best of nine runs.
fn rdtsc_pair_ns() -> f64 {
    const CALLS: u64 = 2_000_000;
    let per_call = |contender: Contender| {
        (0..9)
            .map(|_| {
                let start = Instant::now();
                black_box(batch(contender, CALLS, 1, contender.leaf()));
                #[allow(clippy::cast_precision_loss)]
                let ns = start.elapsed().as_nanos() as f64 / CALLS as f64;
                ns
            })
            .fold(f64::INFINITY, f64::min)
    };
    per_call(Contender::TscPair) - per_call(Contender::Baseline)
}
