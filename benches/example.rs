//! `cargo bench -p timing-benches --bench example`: what `#[timed]` costs a whole program, per timed call,
//! and what counting allocations adds, per allocation, beside what the program's own report says its
//! instrumentation cost. Builds two programs, the optimizer example and the real-shaped workload
//! (`benches/memo.rs`: recursive memoized calls and ~15,000 allocations a step), three times each: with the
//! `timing` feature off, on, and on with the counting allocator (feature `allocations`); runs each for two
//! step counts (so that start-up, the instrumentation's calibration and the report cancel out), alternating
//! the builds so that a slower stretch of the machine falls on all, and divides the differences in run time
//! by the timed calls (and allocations) the longer runs made more, as the summaries count them. The cost per
//! call is given against two `rdtsc` reads, measured in this process: the floor for any exact span. The
//! report's instrumentation (what its breakdown gives, long run less short) is set beside the measured
//! difference of the on and off builds round by round, each round's runs made one after the other.
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

/// A program measured: its builds off, on and on with allocations counted, and its step counts.
struct Program {
    name: &'static str,
    binaries: [PathBuf; 3],
    steps: u64,
}

fn run(rounds: u64, steps: u64) -> Result<(), String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().ok_or("no workspace root")?.to_path_buf();
    let optimizer = Program {
        name: "optimizer example",
        binaries: [
            build(&root, "off", "", Example::Optimizer)?,
            build(&root, "on", "timing", Example::Optimizer)?,
            build(&root, "counting", "timing,allocations", Example::Optimizer)?,
        ],
        steps,
    };
    let memo = Program {
        name: "real-shaped workload (benches/memo.rs)",
        binaries: [
            build(&root, "off", "", Example::Memo)?,
            build(&root, "on", "timing", Example::Memo)?,
            build(&root, "counting", "timing,allocations", Example::Memo)?,
        ],
        // Its steps are a hundred times the optimizer's; five times fewer of them, so that its instrumentation
        // (about 4% of the run) stands well above the machine's noise between runs.
        steps: (steps / 20).max(10),
    };
    let floor = rdtsc_pair_ns();
    for program in [optimizer, memo] {
        measure(&program, rounds, floor)?;
    }
    Ok(())
}

/// What a run of `steps` steps of a build printed as its summary.
fn summary(binary: &Path, steps: u64) -> Result<serde_json::Value, String> {
    let output = Command::new(binary)
        .args(["--json", "--steps", &steps.to_string()])
        .output()
        .map_err(|error| format!("cannot run {}: {error}", binary.display()))?;
    if !output.status.success() {
        return Err(format!("{} failed: {}", binary.display(), output.status));
    }
    serde_json::from_slice(&output.stdout).map_err(|error| format!("the --json output is not JSON: {error}"))
}

/// Seconds a run of `steps` steps takes, and its summary.
fn timed_run(binary: &Path, steps: u64) -> Result<(f64, serde_json::Value), String> {
    let start = Instant::now();
    let summary = summary(binary, steps)?;
    Ok((start.elapsed().as_secs_f64(), summary))
}

/// Nanoseconds of instrumentation a summary's breakdown reports.
fn reported_ns(summary: &serde_json::Value) -> f64 {
    summary["phase_breakdown"]["instrumentation_ns"].as_f64().unwrap_or(0.0)
}

fn measure(program: &Program, rounds: u64, floor: f64) -> Result<(), String> {
    let (steps, [off, on, counting]) = (program.steps, &program.binaries);
    // Timed calls and allocations (in spans and outside) of a run.
    let counts = |steps: u64| -> Result<(u64, u64), String> {
        let summary = summary(counting, steps)?;
        let spans = summary["spans"].as_array().ok_or("no spans in the summary")?;
        let calls = spans.iter().filter_map(|span| span["count"].as_u64()).sum();
        let allocations = &summary["allocations"];
        let allocated = ["in_spans", "outside_spans"].iter().filter_map(|of| allocations[of]["count"].as_u64());
        Ok((calls, allocated.sum()))
    };
    let ((short_calls, short_allocations), (long_calls, long_allocations)) = (counts(steps)?, counts(2 * steps)?);
    let (more_calls, more_allocations) = (long_calls - short_calls, long_allocations - short_allocations);
    let binaries = [off, on, counting];
    let mut times: [Vec<f64>; 3] = Default::default();
    // Per round: what the on build's report said its instrumentation cost, and the on build's time less
    // the off build's next to it, both for the steps the long run made more.
    let (mut reported, mut measured) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let mut this_round = [0.0; 3];
        // Which build goes first turns, so that none always follows another.
        for offset in 0..binaries.len() {
            let which = (round as usize + offset) % binaries.len();
            let binary = binaries[which];
            let (long, long_summary) = timed_run(binary, 2 * steps)?;
            let (short, short_summary) = timed_run(binary, steps)?;
            this_round[which] = long - short;
            times[which].push(long - short);
            if which == 1 {
                reported.push(reported_ns(&long_summary) - reported_ns(&short_summary));
            }
        }
        measured.push((this_round[1] - this_round[0]) * 1e9);
    }
    let [off, on, counting] = times.map(|mut times| median(&mut times));
    #[allow(clippy::cast_precision_loss)]
    let per_call_ns = (on - off) * 1e9 / more_calls as f64;
    #[allow(clippy::cast_precision_loss)]
    let per_allocation_ns = (counting - on) * 1e9 / more_allocations as f64;
    println!("{}, {steps} more steps, medians of {rounds} rounds of runs:", program.name);
    println!("  timing off:                      {:.1} ms", off * 1e3);
    println!("  timing on:                       {:.1} ms ({:.3}x)", on * 1e3, on / off);
    println!("  timing on, allocations counted:  {:.1} ms ({:.3}x)", counting * 1e3, counting / off);
    println!("  timed calls made: {more_calls}; allocations made: {more_allocations}");
    let against_floor = per_call_ns / floor;
    println!("  cost per timed call: {per_call_ns:.1} ns = {against_floor:.2}x two rdtsc reads ({floor:.1} ns)");
    println!("  cost of counting, per allocation: {per_allocation_ns:.1} ns");
    // The report's own figure against the measured one, round by round (each round's builds ran next to
    // each other), and as medians.
    let ratios: Vec<f64> = reported.iter().zip(&measured).map(|(reported, measured)| reported / measured).collect();
    let (reported, measured) = (median(&mut reported.clone()), median(&mut measured.clone()));
    #[allow(clippy::cast_precision_loss)]
    let (reported_per_call, measured_per_call) = (reported / more_calls as f64, measured / more_calls as f64);
    println!(
        "  instrumentation the report gives: {:.1} ms ({reported_per_call:.1} ns a call); measured on - off: {:.1} ms \
         ({measured_per_call:.1} ns a call)",
        reported / 1e6,
        measured / 1e6
    );
    let mut sorted = ratios.clone();
    sorted.sort_by(f64::total_cmp);
    println!(
        "  reported / measured, by round: median {:.2}, from {:.2} to {:.2}",
        median(&mut ratios.clone()),
        sorted.first().copied().unwrap_or(f64::NAN),
        sorted.last().copied().unwrap_or(f64::NAN)
    );
    Ok(())
}

/// The programs the bench builds.
#[derive(Clone, Copy)]
enum Example {
    /// `examples/optimizer.rs` of the workspace's root package.
    Optimizer,
    /// `benches/memo.rs`, an example of this package.
    Memo,
}

/// Builds an example with `features` (and no default ones) and returns the binary's path: the optimizer in
/// a target directory of its own per build (so that the builds do not undo each other); the memo workload
/// in one directory for its three builds (switching features rebuilds only the runtime and the example,
/// not the peers this package depends on), its binary copied aside after each.
fn build(root: &Path, name: &str, features: &str, example: Example) -> Result<PathBuf, String> {
    let (package, program, target) = match example {
        Example::Optimizer => ("timing-suite", "optimizer", root.join("target").join("example-bench").join(name)),
        Example::Memo => ("timing-benches", "memo", root.join("target").join("example-bench").join("memo")),
    };
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
    command.current_dir(root).args(["build", "--release", "--example", program, "-p", package]);
    command.args(["--no-default-features", "--features", features]);
    let status =
        command.arg("--target-dir").arg(&target).status().map_err(|error| format!("cannot run cargo: {error}"))?;
    if !status.success() {
        return Err(format!("building {program} ({name}) failed: {status}"));
    }
    let built = target.join("release").join("examples").join(program);
    match example {
        Example::Optimizer => Ok(built),
        Example::Memo => {
            let aside = target.join(format!("memo-{name}"));
            std::fs::copy(&built, &aside).map_err(|error| format!("cannot copy {}: {error}", built.display()))?;
            Ok(aside)
        }
    }
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
