//! `cargo bench -p timing-benches --bench example`: what `#[timed]` costs a whole program, per timed call.
//! Builds the optimizer example twice, with the `timing` feature on and off, runs each for two step counts
//! (so that start-up, the instrumentation's calibration and the report cancel out), alternating the builds
//! so that a slower stretch of the machine falls on both, and divides the difference in run time by the
//! timed calls the longer runs made more, as counted by the summary of the instrumented build. The result is
//! given against the cost of two `rdtsc` reads, measured in this process: the floor for any exact span.
//!
//! `-- --pairs N` (default 9) and `-- --steps N` (default 20,000: the short run; the long run is twice it).

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str, default: u64| {
        args.iter()
            .position(|arg| arg == flag)
            .and_then(|index| args.get(index + 1))
            .and_then(|value| value.parse().ok())
            .unwrap_or(default)
    };
    let (pairs, steps) = (value("--pairs", 9), value("--steps", 20_000));
    if let Err(message) = run(pairs, steps) {
        eprintln!("{message}");
        std::process::exit(1);
    }
}

fn run(pairs: u64, steps: u64) -> Result<(), String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().ok_or("no workspace root")?.to_path_buf();
    let on = build(&root, true)?;
    let off = build(&root, false)?;
    let calls = |steps: u64| -> Result<u64, String> {
        let output = Command::new(&on)
            .args(["--json", "--steps", &steps.to_string()])
            .output()
            .map_err(|error| format!("cannot run {}: {error}", on.display()))?;
        let summary: serde_json::Value = serde_json::from_slice(&output.stdout)
            .map_err(|error| format!("the example's --json output is not JSON: {error}"))?;
        let spans = summary["spans"].as_array().ok_or("no spans in the summary")?;
        Ok(spans.iter().filter_map(|span| span["count"].as_u64()).sum())
    };
    let more_calls = calls(2 * steps)?.saturating_sub(calls(steps)?);
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
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for pair in 0..pairs {
        // Which build goes first alternates, so that neither always follows the other.
        let order = if pair % 2 == 0 { [true, false] } else { [false, true] };
        for timed in order {
            let binary = if timed { &on } else { &off };
            let extra = seconds(binary, 2 * steps)? - seconds(binary, steps)?;
            if timed { &mut with } else { &mut without }.push(extra);
        }
    }
    let (with, without) = (median(&mut with), median(&mut without));
    #[allow(clippy::cast_precision_loss)]
    let per_call_ns = (with - without) * 1e9 / more_calls as f64;
    let floor = rdtsc_pair_ns();
    println!("optimizer example, {steps} more steps, medians of {pairs} pairs of runs:");
    println!("  timing off: {:.1} ms", without * 1e3);
    println!("  timing on:  {:.1} ms ({:.3}x)", with * 1e3, with / without);
    println!("  timed calls made: {more_calls}");
    println!("  cost per timed call: {per_call_ns:.1} ns = {:.2}x two rdtsc reads ({floor:.1} ns)", per_call_ns / floor);
    Ok(())
}

/// Builds the optimizer example with the `timing` feature `on` or off, in a target directory of its own
/// (so that the two builds do not undo each other), and returns the binary's path.
fn build(root: &Path, on: bool) -> Result<PathBuf, String> {
    let name = if on { "timing-on" } else { "timing-off" };
    let target = root.join("target").join("example-bench").join(name);
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
    command.current_dir(root).args(["build", "--release", "--example", "optimizer", "-p", "timing-suite"]);
    if !on {
        command.arg("--no-default-features");
    }
    let status = command
        .arg("--target-dir")
        .arg(&target)
        .status()
        .map_err(|error| format!("cannot run cargo: {error}"))?;
    if !status.success() {
        return Err(format!("building the example ({name}) failed: {status}"));
    }
    Ok(target.join("release").join("examples").join("optimizer"))
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Nanoseconds of two reads of the time-stamp counter with a little work between, less the work: the best
/// of several runs.
fn rdtsc_pair_ns() -> f64 {
    #[inline(always)]
    fn rdtsc() -> u64 {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `rdtsc` has no preconditions on x86-64.
        return unsafe { core::arch::x86_64::_rdtsc() };
        #[cfg(not(target_arch = "x86_64"))]
        0
    }
    #[inline(never)]
    fn timed(x: u64) -> u64 {
        let start = rdtsc();
        let value = black_box(x).wrapping_mul(3);
        black_box(rdtsc().wrapping_sub(start));
        value
    }
    #[inline(never)]
    fn bare(x: u64) -> u64 {
        black_box(x).wrapping_mul(3)
    }
    const CALLS: u64 = 2_000_000;
    let per_call = |f: fn(u64) -> u64| {
        (0..9)
            .map(|_| {
                let start = Instant::now();
                black_box((0..CALLS).fold(0, |acc, i| acc ^ f(black_box(i))));
                #[allow(clippy::cast_precision_loss)]
                let ns = start.elapsed().as_nanos() as f64 / CALLS as f64;
                ns
            })
            .fold(f64::INFINITY, f64::min)
    };
    per_call(timed) - per_call(bare)
}
