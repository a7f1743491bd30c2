//! `cargo bench -p timing-benches --bench scale`: memory and report cost against threads and call paths.
//!
//! The workload of a service with many workers: 64 functions that call each other in 3-deep paths, on T
//! threads, each thread walking P distinct paths (three times each). For each contender and each
//! `threads x paths`, a process of its own records the workload and keeps its threads alive (asleep); the
//! table gives the growth of its resident set while recording and, for this library, the time of
//! `summary()` with the threads alive and after they exit (the first call, and the median of nine more),
//! and the growth of the resident set over 100 more summaries and over 500 after those, and the time and
//! size of the Prometheus exposition and of the HTML page drawn from the summary. "Per
//! node-thread" divides the growth by three nodes a path, an upper bound (paths share their first nodes).
//! A last row starts 10,000 short-lived threads, each timing a path, one after another.
//!
//! `-- --configs 1x1000,64x1000` picks the rows; `-- --contenders Timed` the contenders.

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::Instant;

/// The same 64 functions under each contender; each calls the next function on its path, the last one
/// works a little, longer on some paths than others, so that durations spread over a few powers of two.
macro_rules! functions {
    ($module:ident, $attrs:tt, $prologue:tt, $($name:ident)*) => {
        pub mod $module {
            $( function!($attrs, $prologue, $name); )*

            pub static TABLE: [fn(&[u8; 3], usize) -> u64; 64] = [$($name),*];
        }
    };
}

macro_rules! function {
    ([$($attr:tt)*], { $($prologue:tt)* }, $name:ident) => {
        $($attr)*
        #[inline(never)]
        pub fn $name(path: &[u8; 3], depth: usize) -> u64 {
            $($prologue)*
            super::next(path, depth, &TABLE)
        }
    };
}

type Table = [fn(&[u8; 3], usize) -> u64; 64];

fn next(path: &[u8; 3], depth: usize, table: &Table) -> u64 {
    match path.get(depth + 1) {
        Some(name) => table[usize::from(*name)](path, depth + 1),
        None => (0..(u64::from(path[2] % 8) + 1) * 20).fold(0, |acc, i| black_box(acc ^ i)),
    }
}

functions!(plain, [], {}, f00 f01 f02 f03 f04 f05 f06 f07 f08 f09 f10 f11 f12 f13 f14 f15 f16 f17 f18 f19 f20 f21 f22 f23 f24 f25 f26 f27 f28 f29 f30 f31 f32 f33 f34 f35 f36 f37 f38 f39 f40 f41 f42 f43 f44 f45 f46 f47 f48 f49 f50 f51 f52 f53 f54 f55 f56 f57 f58 f59 f60 f61 f62 f63);
functions!(timed, [#[timing_runtime::timed]], {}, f00 f01 f02 f03 f04 f05 f06 f07 f08 f09 f10 f11 f12 f13 f14 f15 f16 f17 f18 f19 f20 f21 f22 f23 f24 f25 f26 f27 f28 f29 f30 f31 f32 f33 f34 f35 f36 f37 f38 f39 f40 f41 f42 f43 f44 f45 f46 f47 f48 f49 f50 f51 f52 f53 f54 f55 f56 f57 f58 f59 f60 f61 f62 f63);
functions!(puffin_scope, [], { puffin::profile_function!(); }, f00 f01 f02 f03 f04 f05 f06 f07 f08 f09 f10 f11 f12 f13 f14 f15 f16 f17 f18 f19 f20 f21 f22 f23 f24 f25 f26 f27 f28 f29 f30 f31 f32 f33 f34 f35 f36 f37 f38 f39 f40 f41 f42 f43 f44 f45 f46 f47 f48 f49 f50 f51 f52 f53 f54 f55 f56 f57 f58 f59 f60 f61 f62 f63);
functions!(hotpath_measure, [#[hotpath::measure]], {}, f00 f01 f02 f03 f04 f05 f06 f07 f08 f09 f10 f11 f12 f13 f14 f15 f16 f17 f18 f19 f20 f21 f22 f23 f24 f25 f26 f27 f28 f29 f30 f31 f32 f33 f34 f35 f36 f37 f38 f39 f40 f41 f42 f43 f44 f45 f46 f47 f48 f49 f50 f51 f52 f53 f54 f55 f56 f57 f58 f59 f60 f61 f62 f63);
functions!(fastrace_trace, [#[fastrace::trace]], {}, f00 f01 f02 f03 f04 f05 f06 f07 f08 f09 f10 f11 f12 f13 f14 f15 f16 f17 f18 f19 f20 f21 f22 f23 f24 f25 f26 f27 f28 f29 f30 f31 f32 f33 f34 f35 f36 f37 f38 f39 f40 f41 f42 f43 f44 f45 f46 f47 f48 f49 f50 f51 f52 f53 f54 f55 f56 f57 f58 f59 f60 f61 f62 f63);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Contender {
    /// No instrumentation: what the threads and their paths cost by themselves.
    Plain,
    Timed,
    Puffin,
    Hotpath,
    Fastrace,
}

impl Contender {
    const ALL: [Contender; 5] =
        [Contender::Plain, Contender::Timed, Contender::Puffin, Contender::Hotpath, Contender::Fastrace];

    fn table(self) -> &'static Table {
        match self {
            Contender::Plain => &plain::TABLE,
            Contender::Timed => &timed::TABLE,
            Contender::Puffin => &puffin_scope::TABLE,
            Contender::Hotpath => &hotpath_measure::TABLE,
            Contender::Fastrace => &fastrace_trace::TABLE,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Contender::Plain => "uninstrumented (the workload alone)",
            Contender::Timed => "timing #[timed]",
            Contender::Puffin => "puffin profile_function! (no viewer)",
            Contender::Hotpath => "hotpath #[measure]",
            Contender::Fastrace => "fastrace #[trace] (reporter discards)",
        }
    }

    fn setup(self) {
        match self {
            Contender::Plain | Contender::Timed => {}
            Contender::Puffin => puffin::set_scopes_on(true),
            Contender::Hotpath => std::mem::forget(hotpath::HotpathGuardBuilder::new("scale").build()),
            Contender::Fastrace => fastrace::set_reporter(Discard, fastrace::collector::Config::default()),
        }
    }

    /// Walks `paths` three times, as the contender needs to keep recording (a root span, a frame).
    fn walk(self, paths: &[[u8; 3]]) -> u64 {
        let table = self.table();
        let run = |paths: &[[u8; 3]]| paths.iter().fold(0, |acc, path| acc ^ table[usize::from(path[0])](path, 0));
        let mut acc = 0;
        for _ in 0..3 {
            match self {
                // fastrace records at most 10,240 spans under one local parent: a root per 1,000 paths.
                Contender::Fastrace => {
                    for chunk in paths.chunks(1_000) {
                        let root = fastrace::Span::root("walk", fastrace::prelude::SpanContext::random());
                        let _parent = root.set_local_parent();
                        acc ^= run(chunk);
                    }
                }
                Contender::Puffin => {
                    puffin::profile_scope!("walk");
                    acc ^= run(paths);
                }
                _ => acc ^= run(paths),
            }
        }
        acc
    }
}

struct Discard;

impl fastrace::collector::Reporter for Discard {
    fn report(&mut self, spans: Vec<fastrace::collector::SpanRecord>) {
        black_box(spans.len());
    }
}

/// `count` distinct paths of three distinct functions, the same for a thread in every contender.
fn paths(thread: u64, count: usize) -> Vec<[u8; 3]> {
    let mut state = thread.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut random = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % 64) as u8
    };
    let mut seen = std::collections::HashSet::new();
    let mut paths = Vec::with_capacity(count);
    while paths.len() < count {
        let path = [random(), random(), random()];
        if path[0] != path[1] && path[1] != path[2] && path[0] != path[2] && seen.insert(path) {
            paths.push(path);
        }
    }
    paths
}

fn resident_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    statm.split_whitespace().nth(1).and_then(|pages| pages.parse::<u64>().ok()).unwrap_or(0) * 4
}

fn ms(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1e3
}

/// One row, in this process: prints `growth_kib exited_growth_kib live_ms exited_ms after_100_kib ...` (from
/// the third on only for ours).
fn run(contender: Contender, threads: usize, paths_each: usize) {
    contender.setup();
    // Warm up the contender's global state, so that only per-thread and per-path memory is measured.
    black_box(contender.walk(&paths(u64::MAX, 4)));
    let before = resident_kib();
    let recorded = Arc::new(Barrier::new(threads + 1));
    let exit = Arc::new(Barrier::new(threads + 1));
    let workers: Vec<_> = (0..threads)
        .map(|thread| {
            let (recorded, exit) = (Arc::clone(&recorded), Arc::clone(&exit));
            let paths = paths(thread as u64, paths_each);
            std::thread::spawn(move || {
                black_box(contender.walk(&paths));
                drop(paths);
                recorded.wait();
                exit.wait();
            })
        })
        .collect();
    recorded.wait();
    if contender == Contender::Puffin {
        puffin::GlobalProfiler::lock().new_frame();
    }
    let growth = resident_kib().saturating_sub(before);
    if contender != Contender::Timed {
        let before_exit = resident_kib();
        exit.wait();
        workers.into_iter().for_each(|worker| worker.join().unwrap_or_default());
        let gone = resident_kib().saturating_sub(before_exit);
        println!("{growth} {gone} - - - -");
        return;
    }
    let (live, live_ms) = timed_summaries();
    let served = served();
    // What the threads' exits add, folding what they recorded: measured from after the summaries above,
    // whose own memory glibc keeps.
    let before_exit = resident_kib();
    exit.wait();
    workers.into_iter().for_each(|worker| worker.join().unwrap_or_default());
    let gone = resident_kib().saturating_sub(before_exit);
    let (exited, exited_ms) = timed_summaries();
    let calls = |run: &timing_runtime::TrainingSummary| run.spans.iter().map(|span| span.count).sum::<u64>();
    // Three walks of three calls a path, the warm-up's four paths included.
    let expected = (threads as u64 * paths_each as u64 + 4) * 9;
    assert_eq!((calls(&live), calls(&exited)), (expected, expected), "every call counted");
    // What a Prometheus scrape pays on top of the summary: the exposition's rendering, median of nine.
    let mut render: Vec<(f64, usize)> = (0..9)
        .map(|_| {
            let start = Instant::now();
            let text = black_box(exited.to_prometheus());
            (ms(start), text.len())
        })
        .collect();
    render.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (render_ms, render_bytes) = render[render.len() / 2];
    // And what its page costs, median of three.
    let mut page: Vec<(f64, usize)> = (0..3)
        .map(|_| {
            let start = Instant::now();
            let page = black_box(exited.to_html("scale").expect("the page is drawn"));
            (ms(start), page.len())
        })
        .collect();
    page.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (page_ms, page_bytes) = page[page.len() / 2];
    drop((live, exited));
    // The resident set after the first summaries, after 100 and after 500 more: the allocator settles in
    // the first (glibc keeps freed memory in its heap once a large block has been freed), then nothing may
    // accumulate.
    let after_first = resident_kib();
    let summaries = |count: usize| (0..count).for_each(|_| drop(black_box(timing_runtime::summary())));
    summaries(100);
    let after_100 = resident_kib();
    summaries(500);
    let after_600 = resident_kib();
    println!(
        "{growth} {gone} {live_ms} {exited_ms} {}/{} {render_ms:.1}/{} {page_ms:.1}/{} {served}",
        after_100.saturating_sub(after_first),
        after_600.saturating_sub(after_100),
        render_bytes / 1024,
        page_bytes / 1024
    );
}

/// What `serve` answers in, with the recording threads alive: `GET /metrics` and `GET /` (the live page's
/// update), each the median of nine requests 300 ms apart, measured from this client's connect to the
/// answer's last byte, as `metrics/page` in ms. Each answers from the summary the server's own thread made
/// last (it makes one every 500 ms while asked), and the page from the call tree it keeps (made again every
/// 10 s on a thread of its own): what a request waits for is the answer's writing, not a summary.
fn served() -> String {
    use std::io::{Read, Write};
    let server = timing_runtime::serve(":0").expect("a loopback port");
    let get = |path: &str| -> f64 {
        let start = Instant::now();
        let mut stream = std::net::TcpStream::connect(server.local_addr()).expect("the server accepts");
        stream.write_all(format!("GET {path} HTTP/1.1\r\n\r\n").as_bytes()).expect("sent");
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).expect("an answer");
        assert!(answer.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&answer[..answer.len().min(200)]));
        ms(start)
    };
    black_box(get("/"));
    let median = |path: &str| {
        let mut times: Vec<f64> = (0..9)
            .map(|_| {
                std::thread::sleep(std::time::Duration::from_millis(300));
                get(path)
            })
            .collect();
        times.sort_by(f64::total_cmp);
        times[times.len() / 2]
    };
    let (metrics, page) = (median("/metrics"), median("/"));
    format!("{metrics:.1}/{page:.1}")
}

/// A summary, and the time of the first call and the median of nine more, as `first/median` in ms: the
/// first touches memory for the first time, the others are what a periodic poll pays.
fn timed_summaries() -> (timing_runtime::TrainingSummary, String) {
    let start = Instant::now();
    let first = timing_runtime::summary();
    let first_ms = ms(start);
    let mut more: Vec<f64> = (0..9)
        .map(|_| {
            let start = Instant::now();
            black_box(timing_runtime::summary());
            ms(start)
        })
        .collect();
    more.sort_by(f64::total_cmp);
    (first, format!("{first_ms:.1}/{:.1}", more[more.len() / 2]))
}

/// 10,000 threads, each timing one path and exiting, one after another: prints the resident set's growth
/// and whether every call was counted.
fn churn(contender: Contender) {
    contender.setup();
    black_box(contender.walk(&paths(u64::MAX, 4)));
    let before = resident_kib();
    for thread in 0..10_000u64 {
        let path = paths(thread, 1);
        std::thread::spawn(move || black_box(contender.walk(&path))).join().unwrap_or_default();
    }
    let growth = resident_kib().saturating_sub(before);
    let counted = if contender == Contender::Timed {
        let calls: u64 = timing_runtime::summary().spans.iter().map(|span| span.count).sum();
        if calls == 10_000 * 9 + 4 * 9 { "exact" } else { "WRONG" }
    } else {
        "-"
    };
    println!("{growth} {counted}");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| args.iter().position(|arg| arg == flag).and_then(|index| args.get(index + 1)).cloned();
    let contender_named = |name: &str| Contender::ALL.into_iter().find(|contender| format!("{contender:?}") == name);
    if let Some(name) = value("--run") {
        let (Some(contender), Some(threads), Some(paths)) = (
            contender_named(&name),
            value("--threads").and_then(|value| value.parse().ok()),
            value("--paths").and_then(|value| value.parse().ok()),
        ) else {
            eprintln!("--run CONTENDER --threads T --paths P");
            std::process::exit(2);
        };
        run(contender, threads, paths);
        return;
    }
    if let Some(name) = value("--churn") {
        let Some(contender) = contender_named(&name) else { std::process::exit(2) };
        churn(contender);
        return;
    }
    let configs: Vec<(usize, usize)> = value("--configs")
        .unwrap_or_else(|| "1x1000,8x1000,16x1000,64x200,64x1000".to_owned())
        .split(',')
        .filter_map(|config| {
            let (threads, paths) = config.split_once('x')?;
            Some((threads.parse().ok()?, paths.parse().ok()?))
        })
        .collect();
    let contenders: Vec<Contender> = match value("--contenders") {
        Some(names) => names.split(',').filter_map(contender_named).collect(),
        None => Contender::ALL.to_vec(),
    };
    let exe = std::env::current_exe().expect("the benchmark knows where it is");
    let child = |args: &[String]| -> Vec<String> {
        let output = std::process::Command::new(&exe).args(args).output().expect("the benchmark runs itself");
        if !output.status.success() {
            eprintln!("{}", String::from_utf8_lossy(&output.stderr));
        }
        String::from_utf8_lossy(&output.stdout).split_whitespace().map(str::to_owned).collect()
    };
    println!(
        "| contender | threads × paths each | RSS growth while recording | added by their exits | per node-thread | `summary()`, threads alive \
         (first/median) | after they exit (first/median) | RSS growth over 100 more summaries / 500 after those | \
         `to_prometheus()` of that summary (median) / its size | `to_html()` of it (median) / its size | \
         `serve`: `GET /metrics` / `GET /` (live page), ms |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for &(threads, paths) in &configs {
        for &contender in &contenders {
            let args = [
                "--run".to_owned(),
                format!("{contender:?}"),
                "--threads".to_owned(),
                threads.to_string(),
                "--paths".to_owned(),
                paths.to_string(),
            ];
            let fields = child(&args);
            let [growth, gone, live, exited, after, render, page, served] =
                [0, 1, 2, 3, 4, 5, 6, 7].map(|index| fields.get(index).cloned().unwrap_or_default());
            let growth_kib: f64 = growth.parse().unwrap_or(f64::NAN);
            let gone_kib: f64 = gone.parse().unwrap_or(f64::NAN);
            // Nodes: each distinct path adds at most one node at each of its three depths.
            let per_node = growth_kib * 1024.0 / (threads * paths * 3) as f64;
            let show = |value: &str, unit: &str| {
                if value == "-" || value.is_empty() { "–".to_owned() } else { format!("{value} {unit}") }
            };
            println!(
                "| {} | {threads} × {paths} | {:.1} MiB | {:.1} MiB | ≤ {per_node:.0} B | {} | {} | {} | {} | {} | {} |",
                contender.label(),
                growth_kib / 1024.0,
                gone_kib / 1024.0,
                show(&live, "ms"),
                show(&exited, "ms"),
                show(&after, "KiB"),
                show(&render.replace('/', " ms / "), "KiB"),
                show(&page.replace('/', " ms / "), "KiB"),
                show(&served, "ms"),
            );
        }
    }
    println!();
    println!("| contender | 10,000 short-lived threads, one after another | RSS growth | calls counted |");
    println!("|---|---|---|---|");
    for &contender in &contenders {
        let fields = child(&["--churn".to_owned(), format!("{contender:?}")]);
        let growth: f64 = fields.first().and_then(|value| value.parse().ok()).unwrap_or(f64::NAN);
        let counted = fields.get(1).cloned().unwrap_or_default();
        println!("| {} | 9 timed calls each | {:.1} MiB | {counted} |", contender.label(), growth / 1024.0);
    }
}
