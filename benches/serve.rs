//! `cargo bench -p timing-benches --bench serve`: what watching a run costs it. The optimizer example
//! (release, default features) trains the same steps in pairs of runs, one plain and one with `--serve`
//! while this bench asks it for its live page (`GET /`) and its metrics (`GET /metrics`) once a second, as
//! an open page and a Prometheus scrape do; which of the pair goes first turns. Both runs are pinned to
//! the same core with `taskset` when there is one, so that the server's threads compete with the training
//! for it (the worst case: unpinned, they would take the other core). Each run's rate is its summary's
//! steps per second (steps over the wall time of its steps); the runs are compared by the median over the
//! pairs of their ratio, served over plain, since on these VMs whole processes run fast or slow. Beside
//! it, what the pairs' ratios cannot resolve below a few percent here: the CPU time the served process's
//! other threads took (the process's less its main thread's, from `/proc`, read before it is stopped),
//! over the main thread's.
//!
//! `-- --pairs N` (default 15) and `-- --steps N` (default 200,000: about 3 s a run here).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str, default: u64| {
        args.iter()
            .position(|arg| arg == flag)
            .and_then(|index| args.get(index + 1))
            .and_then(|value| value.parse().ok())
            .unwrap_or(default)
    };
    if let Err(message) = run(value("--pairs", 15), value("--steps", 200_000)) {
        eprintln!("{message}");
        std::process::exit(1);
    }
}

fn run(pairs: u64, steps: u64) -> Result<(), String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().ok_or("no workspace root")?.to_path_buf();
    let optimizer = build(&root)?;
    let pinned = Command::new("taskset").args(["-c", "1", "true"]).status().is_ok_and(|status| status.success());
    let mut ratios = Vec::new();
    let (mut plain_rates, mut served_rates, mut requests) = (Vec::new(), Vec::new(), 0);
    let (mut others, mut main) = (0, 0);
    for pair in 0..pairs {
        let mut rates = [0.0; 2];
        let order = if pair % 2 == 0 { [false, true] } else { [true, false] };
        for served in order {
            let run = one_run(&optimizer, steps, served, pinned)?;
            rates[usize::from(served)] = run.rate;
            requests += run.asked;
            if served {
                others += run.ticks.0.saturating_sub(run.ticks.1);
                main += run.ticks.1;
            }
        }
        eprintln!("pair {}/{pairs}: plain {:.0} steps/s, served {:.0}", pair + 1, rates[0], rates[1]);
        ratios.push(rates[1] / rates[0]);
        plain_rates.push(rates[0]);
        served_rates.push(rates[1]);
    }
    let median = |values: &mut Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    println!(
        "optimizer example, {steps} steps a run, {pairs} pairs{}: plain {:.0} steps/s, served and watched {:.0} \
         (median); served over plain, median of the pairs' ratios: {:.4} (from {:.4} to {:.4}); {requests} \
         requests answered; the served runs' other threads took {:.2}% of their main thread's CPU time",
        if pinned { ", both pinned to core 1" } else { "" },
        median(&mut plain_rates),
        median(&mut served_rates),
        median(&mut ratios.clone()),
        ratios.iter().copied().fold(f64::INFINITY, f64::min),
        ratios.iter().copied().fold(0.0, f64::max),
        100.0 * others as f64 / main.max(1) as f64,
    );
    Ok(())
}

/// What one run gave: its steps per second, the requests answered while it trained, and the CPU time of
/// the whole process and of its main thread when training ended, in clock ticks (0 for a plain run).
struct Run {
    rate: f64,
    asked: u64,
    ticks: (u64, u64),
}

/// User and system clock ticks in a `/proc/.../stat` file.
fn ticks(path: &str) -> u64 {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    // After the command's name in parentheses, fields 14 and 15 of the file (utime, stime).
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let field = |index: usize| fields.get(index).and_then(|value| value.parse::<u64>().ok()).unwrap_or(0);
    field(11) + field(12)
}

fn one_run(optimizer: &Path, steps: u64, served: bool, pinned: bool) -> Result<Run, String> {
    let mut command = if pinned {
        let mut command = Command::new("taskset");
        command.args(["-c", "1"]).arg(optimizer);
        command
    } else {
        Command::new(optimizer)
    };
    command.args(["--steps", &steps.to_string(), "--batch", "1000", "--json"]);
    if served {
        command.args(["--serve", "127.0.0.1:0"]);
    }
    let mut child = Kill(command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().map_err(|e| e.to_string())?);
    let stop = Arc::new(AtomicBool::new(false));
    let asked = Arc::new(AtomicU64::new(0));
    let watcher = if served {
        let stderr = child.0.stderr.take().ok_or("no stderr")?;
        let mut lines = BufReader::new(stderr).lines();
        let url = lines
            .find_map(|line| line.ok()?.strip_prefix("serving the run live at ").map(str::to_owned))
            .ok_or("the optimizer did not say where it serves")?;
        std::thread::spawn(move || lines.for_each(drop));
        let address = url.trim_start_matches("http://").trim_end_matches('/').to_owned();
        let (stop, asked) = (Arc::clone(&stop), Arc::clone(&asked));
        Some(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                for path in ["/", "/metrics"] {
                    if get(&address, path) {
                        asked.fetch_add(1, Ordering::Relaxed);
                    }
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        }))
    } else {
        None
    };
    // The summary is printed when training ends; a served run goes on serving, and is killed then.
    let mut json = String::new();
    let stdout = child.0.stdout.take().ok_or("no stdout")?;
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|error| error.to_string())?;
        json.push_str(&line);
        json.push('\n');
        if line == "}" {
            break;
        }
    }
    let pid = child.0.id();
    let ticks = if served {
        (ticks(&format!("/proc/{pid}/stat")), ticks(&format!("/proc/{pid}/task/{pid}/stat")))
    } else {
        (0, 0)
    };
    stop.store(true, Ordering::Relaxed);
    if let Some(watcher) = watcher {
        let _ = watcher.join();
    }
    drop(child);
    let summary: serde_json::Value = serde_json::from_str(&json).map_err(|error| format!("no summary: {error}"))?;
    let rate = summary["steps_per_second"].as_f64().ok_or("no steps_per_second")?;
    Ok(Run { rate, asked: asked.load(Ordering::Relaxed), ticks })
}

/// One request; whether it was answered with 200.
fn get(address: &str, path: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect(address) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    if stream.write_all(format!("GET {path} HTTP/1.1\r\n\r\n").as_bytes()).is_err() {
        return false;
    }
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).is_ok() && answer.starts_with(b"HTTP/1.1 200")
}

/// A child process killed and waited for when dropped.
struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The optimizer example, release, default features, in a target directory of its own.
fn build(root: &Path) -> Result<PathBuf, String> {
    let target = root.join("target").join("serve-bench");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
        .current_dir(root)
        .args(["build", "--release", "--example", "optimizer", "-p", "timing-suite", "--target-dir"])
        .arg(&target)
        .status()
        .map_err(|error| format!("cannot run cargo: {error}"))?;
    if !status.success() {
        return Err(format!("building the optimizer failed: {status}"));
    }
    Ok(target.join("release").join("examples").join("optimizer"))
}
