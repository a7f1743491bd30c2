//! `cargo bench -p timing-benches --bench example`: what `#[timed]` costs a whole program, per timed call,
//! and what counting allocations adds, per allocation, beside what the program's own report says its
//! instrumentation cost. Builds two programs, the optimizer example and the real-shaped workload
//! (`benches/memo.rs`: recursive memoized calls and ~15,000 allocations a step), three times each: with the
//! `timing` feature off, on, and on with the counting allocator (feature `allocations`). Each round runs the
//! three builds one after the other (which goes first turns), each for two step counts, pinned to one core
//! with `taskset` when there is one. On these VMs a whole process runs fast or slow, so the builds are
//! compared by the median over the rounds of their pair ratios (on over off, counting over on, of runs made
//! next to each other), not by the difference of their median times; the ratios applied to the off build's
//! median time give each build's extra time at each step count, and the long run's less the short's is what
//! the extra steps cost, start-up (the clock's and the costs' calibration) and the report cancelling out.
//! Divided by the timed calls (and allocations) the extra steps made, as the summaries count them, that is
//! the cost per call, given against two `rdtsc` reads measured in this process: the floor for any exact
//! span. The report's instrumentation for the extra steps (its breakdown's, long run less short, median
//! over the rounds) is set beside it.
//!
//! `-- --rounds N` (default 15) and `-- --steps N` (default 20,000: the short run; the long run is twice it).

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
    let (rounds, steps) = (value("--rounds", 15), value("--steps", 20_000));
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
    let mut command = if pinned() {
        let mut taskset = Command::new("taskset");
        taskset.args(["-c", "1"]).arg(binary);
        taskset
    } else {
        Command::new(binary)
    };
    let output = command
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

/// Run times of one build at the short and the long step count, one entry a round.
#[derive(Default)]
struct Times {
    short: Vec<f64>,
    long: Vec<f64>,
}

impl Times {
    /// The median over the rounds of this build's time over `base`'s in the same round, at the short and
    /// the long step count: pair ratios, so that a slow stretch of the machine (or a slow process state,
    /// which on these VMs lasts a whole process) falls on both sides of most pairs.
    fn ratios_to(&self, base: &Times) -> (f64, f64) {
        let ratio = |mine: &[f64], theirs: &[f64]| {
            median(&mut mine.iter().zip(theirs).map(|(mine, theirs)| mine / theirs).collect::<Vec<_>>())
        };
        (ratio(&self.short, &base.short), ratio(&self.long, &base.long))
    }
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
    let mut times: [Times; 3] = Default::default();
    // What the on build's report said its instrumentation cost, the long run less the short one, by round.
    let mut reported = Vec::new();
    for round in 0..rounds {
        let mut reports = [0.0; 2];
        // Which build goes first turns, so that none always follows another.
        for offset in 0..binaries.len() {
            let which = (round as usize + offset) % binaries.len();
            let binary = binaries[which];
            let (long, long_summary) = timed_run(binary, 2 * steps)?;
            let (short, short_summary) = timed_run(binary, steps)?;
            times[which].long.push(long);
            times[which].short.push(short);
            if which == 1 {
                reports = [reported_ns(&short_summary), reported_ns(&long_summary)];
            }
        }
        reported.push(reports[1] - reports[0]);
    }
    let [off_times, on_times, counting_times] = &times;
    let (off_short, off_long) = (median(&mut off_times.short.clone()), median(&mut off_times.long.clone()));
    let ((on_short, on_long), (counting_short, counting_long)) =
        (on_times.ratios_to(off_times), counting_times.ratios_to(on_times));
    // What the extra steps cost more with timing on: each step count's median pair ratio applied to the off
    // build's median time, long less short, so that start-up (the clock's and the costs' calibration) and
    // the report, paid once a run, cancel out.
    let measured = ((on_long - 1.0) * off_long - (on_short - 1.0) * off_short) * 1e9;
    let counted = ((counting_long - 1.0) * on_long * off_long - (counting_short - 1.0) * on_short * off_short) * 1e9;
    #[allow(clippy::cast_precision_loss)]
    let (per_call_ns, per_allocation_ns) = (measured / more_calls as f64, counted / more_allocations as f64);
    let reported = median(&mut reported);
    println!(
        "{}, {steps} and {} steps, {rounds} rounds of runs, pinned{}; medians of ratios of runs in one round:",
        program.name,
        2 * steps,
        if pinned() { " to one core" } else { ": no taskset, NOT pinned" }
    );
    println!("  timing off:                      {:.1} ms for {} steps", off_long * 1e3, 2 * steps);
    println!("  timing on:                       {on_long:.3}x off ({on_short:.3}x for {steps} steps)");
    println!("  timing on, allocations counted:  {counting_long:.3}x on ({counting_short:.3}x for {steps} steps)");
    println!("  timed calls the extra steps made: {more_calls}; allocations: {more_allocations}");
    let against_floor = per_call_ns / floor;
    println!("  cost per timed call: {per_call_ns:.1} ns = {against_floor:.2}x two rdtsc reads ({floor:.1} ns)");
    println!("  cost of counting, per allocation and its free: {per_allocation_ns:.1} ns");
    #[allow(clippy::cast_precision_loss)]
    let reported_per_call = reported / more_calls as f64;
    println!(
        "  instrumentation the report gives for the extra steps: {:.1} ms ({reported_per_call:.1} ns a call); \
         measured: {:.1} ms; reported / measured: {:.2}",
        reported / 1e6,
        measured / 1e6,
        reported / measured
    );
    Ok(())
}

/// Whether runs are pinned to one core (`taskset` is there).
fn pinned() -> bool {
    static PINNED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *PINNED.get_or_init(|| Command::new("taskset").args(["-c", "1", "true"]).status().is_ok_and(|s| s.success()))
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
