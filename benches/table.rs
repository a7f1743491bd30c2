//! `cargo bench -p timing-benches --bench table`: the overhead table of the README. For each contender,
//! the cost of a span over an uninstrumented call (best of several runs), on a leaf function, on the nested
//! workload, and with two threads recording at once; then memory over a long run.
//!
//! `-- --callgrind` adds instructions per span, counted by `valgrind --tool=callgrind` (noise-free, so
//! comparable across runs): the binary runs itself under valgrind once per contender and call count.
//! `-- --rows Timed,TimeGraph` measures only the contenders named, beside the baseline and the floor (the
//! fastest peer is then the fastest of those named).

mod contenders;

use std::hint::black_box;
use std::process::Command;
use std::time::Instant;

use contenders::{Contender, SPANS_PER_RECURSION, SPANS_PER_STEP, batch};

const CALLS: u64 = 200_000;
const RUNS: usize = 11;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| args.iter().position(|arg| arg == flag).and_then(|index| args.get(index + 1));
    if args.iter().any(|arg| arg == "--memory") {
        // In a process of its own, so that no peer's buffers are in the resident set.
        print_memory();
        return;
    }
    if let (Some(only), Some(iters)) = (value("--only"), value("--iters")) {
        let Some(contender) = Contender::ALL.into_iter().find(|contender| format!("{contender:?}") == *only) else {
            eprintln!("unknown contender {only}");
            std::process::exit(2);
        };
        let iters: u64 = iters.parse().unwrap_or(0);
        let nested = args.iter().any(|arg| arg == "--nested");
        let recursive = args.iter().any(|arg| arg == "--recursive");
        let f = if recursive {
            contender.recursive()
        } else if nested {
            contender.step()
        } else {
            Some(contender.leaf())
        };
        contender.prepare();
        if let Some(f) = f {
            black_box(batch(contender, iters, f));
        }
        return;
    }
    let callgrind = args.iter().any(|arg| arg == "--callgrind");
    // `--rows Timed,TimeGraph` measures only those (and the baseline and floor that the others are given
    // against), for a quick look while working on one contender.
    let wanted = value("--rows").map(|rows| rows.split(',').map(str::to_owned).collect::<Vec<_>>());
    let known = |name: &String| Contender::ALL.into_iter().any(|contender| format!("{contender:?}") == *name);
    if let Some(unknown) = wanted.iter().flatten().find(|name| !known(name)) {
        eprintln!("unknown contender {unknown}");
        std::process::exit(2);
    }
    let rows: Vec<Row> = Contender::ALL
        .into_iter()
        .filter(|contender| {
            let always = matches!(contender, Contender::Baseline | Contender::TscPair);
            always || wanted.as_ref().is_none_or(|wanted| wanted.contains(&format!("{contender:?}")))
        })
        .map(|contender| measure(contender, callgrind))
        .collect();
    print_table(&rows);
    if let Ok(exe) = std::env::current_exe() {
        let _ = Command::new(exe).arg("--memory").status();
    }
}

struct Row {
    contender: Contender,
    leaf_ns: f64,
    nested_ns: Option<f64>,
    recursive_ns: Option<f64>,
    two_threads_ns: f64,
    instructions: Option<f64>,
    nested_instructions: Option<f64>,
    recursive_instructions: Option<f64>,
}

/// Nanoseconds per call of `f`: the best of `RUNS` runs, so that interruptions by the other core's work are
/// left out rather than averaged in.
fn per_call(contender: Contender, f: fn(u64) -> u64) -> f64 {
    contender.prepare();
    black_box(batch(contender, CALLS / 10, f));
    (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            black_box(batch(contender, CALLS, f));
            start.elapsed().as_nanos() as f64 / CALLS as f64
        })
        .fold(f64::INFINITY, f64::min)
}

/// Nanoseconds per call on each of two threads calling at once.
fn per_call_two_threads(contender: Contender, f: fn(u64) -> u64) -> f64 {
    contender.prepare();
    let times: Vec<f64> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..2).map(|_| scope.spawn(move || per_call(contender, f))).collect();
        workers.into_iter().map(|worker| worker.join().unwrap_or(f64::NAN)).collect()
    });
    times.iter().sum::<f64>() / times.len() as f64
}

fn measure(contender: Contender, callgrind: bool) -> Row {
    let leaf_ns = per_call(contender, contender.leaf());
    let nested_ns = contender.step().map(|step| per_call(contender, step));
    let recursive_ns = contender.recursive().map(|recursive| per_call(contender, recursive));
    let two_threads_ns = per_call_two_threads(contender, contender.leaf());
    let instructions = if callgrind { instructions_per_call(contender, "") } else { None };
    let nested_instructions =
        if callgrind && nested_ns.is_some() { instructions_per_call(contender, "--nested") } else { None };
    let recursive_instructions =
        if callgrind && recursive_ns.is_some() { instructions_per_call(contender, "--recursive") } else { None };
    Row {
        contender,
        leaf_ns,
        nested_ns,
        recursive_ns,
        two_threads_ns,
        instructions,
        nested_instructions,
        recursive_instructions,
    }
}

/// Instructions per call of the leaf (or of the nested workload's step) under callgrind, counted inside
/// `batch` only: the difference of two runs of different lengths, so that the first calls (registration,
/// calibration) cancel out. Start-up is left out by counting inside `batch` alone, as it varies from run to
/// run (peers' lazy statics, clock calibration spins).
fn instructions_per_call(contender: Contender, workload: &str) -> Option<f64> {
    let count = |iters: u64| -> Option<f64> {
        let exe = std::env::current_exe().ok()?;
        let mut command = Command::new("valgrind");
        command
            .args(["--tool=callgrind", "--callgrind-out-file=/dev/null", "--toggle-collect=*contenders::batch*"])
            .arg(exe)
            .args(["--only", &format!("{contender:?}"), "--iters", &iters.to_string()]);
        if !workload.is_empty() {
            command.arg(workload);
        }
        let output = command.output().ok()?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        let line = stderr.lines().find(|line| line.contains("Collected :"))?;
        line.rsplit(':').next()?.trim().replace(',', "").parse().ok()
    };
    let (short, long) = (count(100_000)?, count(200_000)?);
    Some((long - short) / 100_000.0)
}

fn print_table(rows: &[Row]) {
    let baseline = rows.iter().find(|row| row.contender == Contender::Baseline);
    let base_leaf = baseline.map_or(0.0, |row| row.leaf_ns);
    let base_nested = baseline.and_then(|row| row.nested_ns).unwrap_or(0.0);
    let base_two = baseline.map_or(0.0, |row| row.two_threads_ns);
    let base_instructions = baseline.and_then(|row| row.instructions).unwrap_or(0.0);
    let base_nested_instructions = baseline.and_then(|row| row.nested_instructions).unwrap_or(0.0);
    let base_recursive = baseline.and_then(|row| row.recursive_ns).unwrap_or(0.0);
    let base_recursive_instructions = baseline.and_then(|row| row.recursive_instructions).unwrap_or(0.0);
    let floor =
        rows.iter().find(|row| row.contender == Contender::TscPair).map_or(f64::NAN, |row| row.leaf_ns - base_leaf);
    let fastest_peer = rows
        .iter()
        .filter(|row| row.contender.is_peer())
        .map(|row| row.leaf_ns - base_leaf)
        .fold(f64::INFINITY, f64::min);
    println!(
        "| contender | leaf ns/span | × floor | × fastest peer | nested ns/span | recursive ns/span | \
         2 threads ns/span | instructions/span (leaf) | instructions/span (nested) | instructions/span (recursive) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for row in rows.iter().filter(|row| row.contender != Contender::Baseline) {
        let leaf = row.leaf_ns - base_leaf;
        let nested = row
            .nested_ns
            .map_or_else(|| "–".to_owned(), |ns| format!("{:.1}", (ns - base_nested) / SPANS_PER_STEP as f64));
        let recursive = row
            .recursive_ns
            .map_or_else(|| "–".to_owned(), |ns| format!("{:.1}", (ns - base_recursive) / SPANS_PER_RECURSION as f64));
        let recursive_instructions = row.recursive_instructions.map_or_else(
            || "–".to_owned(),
            |count| format!("{:.0}", (count - base_recursive_instructions) / SPANS_PER_RECURSION as f64),
        );
        let instructions =
            row.instructions.map_or_else(|| "–".to_owned(), |count| format!("{:.0}", count - base_instructions));
        let nested_instructions = row.nested_instructions.map_or_else(
            || "–".to_owned(),
            |count| format!("{:.0}", (count - base_nested_instructions) / SPANS_PER_STEP as f64),
        );
        let against_peer =
            if fastest_peer.is_finite() { format!("{:.2}", leaf / fastest_peer) } else { "–".to_owned() };
        println!(
            "| {} | {leaf:.1} | {:.2} | {against_peer} | {nested} | {recursive} | {:.1} | {instructions} | \
             {nested_instructions} | {recursive_instructions} |",
            row.contender.name(),
            leaf / floor,
            row.two_threads_ns - base_two,
        );
    }
    println!(
        "\nuninstrumented call: {base_leaf:.1} ns; floor (two rdtsc): {floor:.1} ns; fastest peer: {fastest_peer:.1} ns"
    );
}

/// Resident memory before and after a long run of spans, read from `/proc/self/statm` (Linux).
fn print_memory() {
    fn resident_kib() -> Option<u64> {
        let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
        let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
        Some(pages * 4)
    }
    Contender::Timed.prepare();
    let spans: u64 =
        std::env::var("TIMING_BENCH_SPANS").ok().and_then(|value| value.parse().ok()).unwrap_or(100_000_000);
    black_box(batch(Contender::Timed, 1_000_000, Contender::Timed.leaf()));
    let before = resident_kib();
    let start = Instant::now();
    let mut done = 0;
    while done < spans {
        black_box(batch(Contender::Timed, 10_000_000.min(spans - done), Contender::Timed.leaf()));
        done += 10_000_000.min(spans - done);
    }
    let after = resident_kib();
    if let (Some(before), Some(after)) = (before, after) {
        println!(
            "memory: {before} KiB resident after warm-up, {after} KiB after {spans} more spans ({:.1} s)",
            start.elapsed().as_secs_f64()
        );
    }
    let count = timing_runtime::summary().span("leaf").map_or(0, |stats| stats.count);
    println!("spans counted for `leaf`: {count}");
}
