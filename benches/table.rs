//! `cargo bench -p timing-benches --bench table`: the overhead table of the README. For each contender,
//! the cost of a span over an uninstrumented call (best of several runs), on a leaf function, on the nested
//! workload, on recursion 9 calls deep, on mutual recursion 1,000 calls deep, on a real-shaped step, and
//! with two threads recording at once; then memory over a long run.
//!
//! `-- --callgrind` adds instructions per span, counted by `valgrind --tool=callgrind` (noise-free, so
//! comparable across runs): the binary runs itself under valgrind once per contender and call count.
//! `-- --rows Timed,TimeGraph` measures only the contenders named, beside the baseline and the floor (the
//! fastest peer is then the fastest of those named).

mod contenders;

use std::hint::black_box;
use std::process::Command;
use std::time::Instant;

use contenders::{Contender, Workload, batch};

/// Timed calls in one run of a workload.
const SPANS: u64 = 1_800_000;
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
        let workload = value("--workload").and_then(|name| Workload::ALL.into_iter().find(|w| w.name() == *name));
        let workload = workload.unwrap_or(Workload::Leaf);
        contender.prepare();
        if let Some(f) = contender.workload(workload) {
            black_box(batch(contender, iters, workload.spans(), f));
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
    /// Nanoseconds per call of each workload's function, by `Workload::ALL`'s order.
    ns: Vec<Option<f64>>,
    two_threads_ns: f64,
    /// Instructions per call of each workload's function.
    instructions: Vec<Option<f64>>,
}

/// Calls of a workload's function in one run.
fn calls(workload: Workload) -> u64 {
    (SPANS / workload.spans()).max(1)
}

/// Nanoseconds per call of `f`: the best of `RUNS` runs, so that interruptions by the other core's work are
/// left out rather than averaged in.
fn per_call(contender: Contender, workload: Workload, f: fn(u64) -> u64) -> f64 {
    contender.prepare();
    let calls = calls(workload);
    black_box(batch(contender, calls / 10, workload.spans(), f));
    (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            black_box(batch(contender, calls, workload.spans(), f));
            start.elapsed().as_nanos() as f64 / calls as f64
        })
        .fold(f64::INFINITY, f64::min)
}

/// Nanoseconds per call on each of two threads calling at once.
fn per_call_two_threads(contender: Contender, f: fn(u64) -> u64) -> f64 {
    contender.prepare();
    let times: Vec<f64> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..2).map(|_| scope.spawn(move || per_call(contender, Workload::Leaf, f))).collect();
        workers.into_iter().map(|worker| worker.join().unwrap_or(f64::NAN)).collect()
    });
    times.iter().sum::<f64>() / times.len() as f64
}

fn measure(contender: Contender, callgrind: bool) -> Row {
    let ns = Workload::ALL
        .iter()
        .map(|workload| contender.workload(*workload).map(|f| per_call(contender, *workload, f)))
        .collect::<Vec<_>>();
    let two_threads_ns = per_call_two_threads(contender, contender.leaf());
    let instructions = Workload::ALL
        .iter()
        .zip(&ns)
        .map(
            |(workload, ns)| if callgrind && ns.is_some() { instructions_per_call(contender, *workload) } else { None },
        )
        .collect();
    Row { contender, ns, two_threads_ns, instructions }
}

/// Instructions per call of a workload's function under callgrind, counted inside `batch` only: the
/// difference of two runs of different lengths, so that the first calls (registration, calibration)
/// cancel out. Start-up is left out by counting inside `batch` alone, as it varies from run to run (peers'
/// lazy statics, clock calibration spins).
fn instructions_per_call(contender: Contender, workload: Workload) -> Option<f64> {
    let count = |iters: u64| -> Option<f64> {
        let exe = std::env::current_exe().ok()?;
        let output = Command::new("valgrind")
            .args(["--tool=callgrind", "--callgrind-out-file=/dev/null", "--toggle-collect=*contenders::batch*"])
            .arg(exe)
            .args(["--only", &format!("{contender:?}"), "--iters", &iters.to_string()])
            .args(["--workload", workload.name()])
            .output()
            .ok()?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        let line = stderr.lines().find(|line| line.contains("Collected :"))?;
        line.rsplit(':').next()?.trim().replace(',', "").parse().ok()
    };
    let short = (100_000 / workload.spans()).max(10);
    let (short_count, long_count) = (count(short)?, count(2 * short)?);
    #[allow(clippy::cast_precision_loss)]
    Some((long_count - short_count) / short as f64)
}

fn print_table(rows: &[Row]) {
    let baseline = rows.iter().find(|row| row.contender == Contender::Baseline);
    let base = |index: usize| baseline.and_then(|row| row.ns[index]).unwrap_or(0.0);
    let base_instructions = |index: usize| baseline.and_then(|row| row.instructions[index]).unwrap_or(0.0);
    let base_two = baseline.map_or(0.0, |row| row.two_threads_ns);
    let base_leaf = base(0);
    let leaf_of = |row: &Row| row.ns[0].unwrap_or(f64::NAN);
    let floor =
        rows.iter().find(|row| row.contender == Contender::TscPair).map_or(f64::NAN, |row| leaf_of(row) - base_leaf);
    let fastest_peer = rows
        .iter()
        .filter(|row| row.contender.is_peer())
        .map(|row| leaf_of(row) - base_leaf)
        .fold(f64::INFINITY, f64::min);
    let names = Workload::ALL.map(Workload::name);
    println!(
        "| contender | leaf ns/span | × floor | × fastest peer | {} ns/span | 2 threads ns/span | {} instructions/span |",
        names[1..].join(" ns/span | "),
        names.join(" instructions/span | ")
    );
    println!("|---|---|---|---|{}---|{}", "---|".repeat(names.len() - 1), "---|".repeat(names.len()));
    let per_span = |value: Option<f64>, base: f64, workload: Workload, digits: usize| {
        #[allow(clippy::cast_precision_loss)]
        value.map_or_else(|| "–".to_owned(), |value| format!("{:.digits$}", (value - base) / workload.spans() as f64))
    };
    for row in rows.iter().filter(|row| row.contender != Contender::Baseline) {
        let leaf = leaf_of(row) - base_leaf;
        let against_peer =
            if fastest_peer.is_finite() { format!("{:.2}", leaf / fastest_peer) } else { "–".to_owned() };
        let others: Vec<String> = Workload::ALL
            .iter()
            .enumerate()
            .skip(1)
            .map(|(index, w)| per_span(row.ns[index], base(index), *w, 1))
            .collect();
        let instructions: Vec<String> = Workload::ALL
            .iter()
            .enumerate()
            .map(|(index, w)| per_span(row.instructions[index], base_instructions(index), *w, 0))
            .collect();
        println!(
            "| {} | {leaf:.1} | {:.2} | {against_peer} | {} | {:.1} | {} |",
            row.contender.name(),
            leaf / floor,
            others.join(" | "),
            row.two_threads_ns - base_two,
            instructions.join(" | "),
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
    black_box(batch(Contender::Timed, 1_000_000, 1, Contender::Timed.leaf()));
    let before = resident_kib();
    let start = Instant::now();
    let mut done = 0;
    while done < spans {
        black_box(batch(Contender::Timed, 10_000_000.min(spans - done), 1, Contender::Timed.leaf()));
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
