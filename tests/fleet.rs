//! The fleet test (issue 19): real servers on loopback. Three server-example processes with different
//! workloads, a Prometheus server scraping them every second, a Pushgateway and an optimizer-example run
//! that pushes at its end; then Prometheus's HTTP API is asked what a user of a fleet asks it, and its answers
//! are checked against the workers' own summaries. Every process started is stopped by its pid, whatever
//! happens (a guard kills them as the test ends or panics).
//!
//! Needs Debian's `prometheus` and `prometheus-pushgateway` (`.ci/run` installs them) and the examples built
//! with the same profile and features: `.ci/run` runs
//! `cargo build --release --features fleet --examples && cargo test --release --features fleet --test fleet`.

#![cfg(all(feature = "fleet", feature = "timing", feature = "push"))]

mod common;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use timing_runtime::{Spread, TrainingSummary};

/// The histogram bounds of the exposition, in nanoseconds (`export/prometheus.rs`).
const BOUNDS_NS: [u64; 25] = [
    100,
    250,
    500,
    1_000,
    2_500,
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// The processes the test started, killed and waited for by pid when it ends, however it ends.
struct Fleet {
    processes: Vec<(String, Child)>,
    dir: PathBuf,
}

impl Fleet {
    fn start(&mut self, name: &str, command: &mut Command) -> usize {
        let log = std::fs::File::create(self.dir.join(format!("{name}.log"))).expect("a log file");
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {name} ({:?}): {error}", command.get_program()));
        self.processes.push((name.to_owned(), child));
        self.processes.len() - 1
    }

    fn stop(&mut self, index: usize) {
        let (_, child) = &mut self.processes[index];
        let _ = child.kill();
        let _ = child.wait();
    }

    /// The tail of a process's log, for a failure's message.
    fn log(&self, name: &str) -> String {
        let text = std::fs::read_to_string(self.dir.join(format!("{name}.log"))).unwrap_or_default();
        text.lines().rev().take(15).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for index in 0..self.processes.len() {
            self.stop(index);
        }
        // A failed assertion: what the services said, to tell why.
        if std::thread::panicking() {
            for (name, _) in &self.processes {
                eprintln!("--- {name} ---\n{}", self.log(name));
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `count` distinct free loopback addresses: the listeners are held until all are chosen, so that the system
/// cannot give one port twice.
fn free_addresses(count: usize) -> Vec<String> {
    let listeners: Vec<TcpListener> =
        (0..count).map(|_| TcpListener::bind("127.0.0.1:0").expect("a free port")).collect();
    listeners.iter().map(|listener| listener.local_addr().expect("its address").to_string()).collect()
}

/// An example built beside this test (`target/<profile>/examples`).
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's path");
    let profile = exe.parent().and_then(Path::parent).expect("target/<profile>");
    let path = profile.join("examples").join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --release --features fleet --examples` first",
        path.display()
    );
    path
}

/// A Debian package's program, or a clear failure.
fn program(name: &str, package: &str) -> PathBuf {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).map(|dir| dir.join(name)).find(|path| path.exists()))
        .unwrap_or_default();
    found.unwrap_or_else(|| panic!("`{name}` not found: install Debian's `{package}` package (.ci/run does)"))
}

fn agent() -> ureq::Agent {
    common::http_agent(10)
}

fn get(url: &str) -> Option<String> {
    let mut response = agent().get(url).call().ok()?;
    (response.status().as_u16() == 200).then(|| response.body_mut().read_to_string().ok()).flatten()
}

fn train(address: &str, steps: u64) {
    let body = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"trainBatch","params":{{"steps":{steps}}}}}"#);
    let mut response = agent().post(&format!("http://{address}/rpc")).send(body).expect("the worker answers");
    let text = response.body_mut().read_to_string().expect("a body");
    assert!(text.contains("\"result\""), "{text}");
}

/// `text` as a URL query value.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => char::from(byte).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// An instant vector from Prometheus: each series' labels and value.
fn query(prometheus: &str, promql: &str) -> Vec<(BTreeMap<String, String>, f64)> {
    let Some(text) = get(&format!("http://{prometheus}/api/v1/query?query={}", encode(promql))) else {
        return Vec::new();
    };
    let answer: Value = serde_json::from_str(&text).unwrap_or_default();
    let results = answer["data"]["result"].as_array().cloned().unwrap_or_default();
    results
        .iter()
        .filter_map(|series| {
            let labels =
                series["metric"].as_object()?.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned()));
            let value: f64 = series["value"][1].as_str()?.parse().ok()?;
            Some((labels.collect(), value))
        })
        .collect()
}

/// Polls `check` every 250 ms until it gives a value, for at most `seconds`.
fn wait_for<T>(what: &str, seconds: u64, mut check: impl FnMut() -> Option<T>) -> T {
    let until = Instant::now() + Duration::from_secs(seconds);
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < until, "gave up waiting for {what} after {seconds} s");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The index of the exposition bucket a duration falls in.
fn bucket_of(ns: f64) -> usize {
    BOUNDS_NS.iter().position(|bound| ns <= *bound as f64).unwrap_or(BOUNDS_NS.len())
}

/// The value at quantile `q` of the merged spreads.
fn quantile(spreads: &[&Spread], q: f64) -> u64 {
    let mut buckets: Vec<(u64, u64)> = spreads.iter().flat_map(|spread| spread.buckets.iter().copied()).collect();
    buckets.sort_unstable();
    let total: u64 = buckets.iter().map(|(_, count)| count).sum();
    let rank = (q * total as f64).ceil() as u64;
    let mut seen = 0;
    buckets
        .into_iter()
        .find(|(_, count)| {
            seen += count;
            seen >= rank
        })
        .map_or(0, |(value, _)| value)
}

#[test]
fn a_fleet_seen_through_prometheus_agrees_with_its_workers() {
    let started = Instant::now();
    let dir = std::env::temp_dir().join(format!("timing-fleet-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a work directory");
    let mut fleet = Fleet { processes: Vec::new(), dir: dir.clone() };
    let (prometheus_bin, pushgateway_bin) =
        (program("prometheus", "prometheus"), program("prometheus-pushgateway", "prometheus-pushgateway"));
    let (server, optimizer) = (example("server"), example("optimizer"));

    // Three workers with different workloads, a Pushgateway and a Prometheus scraping them every second.
    let samples = [128, 512, 2_048];
    let mut addresses = free_addresses(5);
    let (prometheus, gateway) = (addresses.pop().expect("five"), addresses.pop().expect("five"));
    let workers = addresses;
    let mut worker_process = Vec::new();
    for (index, (address, samples)) in workers.iter().zip(samples).enumerate() {
        let mut command = Command::new(&server);
        command.args(["--listen", address, "--samples", &samples.to_string()]);
        worker_process.push(fleet.start(&format!("worker{index}"), &mut command));
    }
    // Its own persistence file: Debian's default keeps what earlier runs pushed.
    fleet.start(
        "pushgateway",
        Command::new(&pushgateway_bin).args([
            format!("--web.listen-address={gateway}"),
            format!("--persistence.file={}", dir.join("pushgateway.data").display()),
        ]),
    );
    let targets = workers.iter().map(|address| format!("'{address}'")).collect::<Vec<_>>().join(", ");
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: workers\n    \
         static_configs:\n      - targets: [{targets}]\n  - job_name: pushgateway\n    honor_labels: true\n    \
         static_configs:\n      - targets: ['{gateway}']\n"
    );
    std::fs::write(dir.join("prometheus.yml"), config).expect("the config");
    fleet.start(
        "prometheus",
        Command::new(&prometheus_bin).args([
            format!("--config.file={}", dir.join("prometheus.yml").display()),
            format!("--storage.tsdb.path={}", dir.join("data").display()),
            format!("--web.listen-address={prometheus}"),
        ]),
    );
    for address in workers.iter().chain([&gateway, &prometheus]) {
        let ready = if *address == prometheus { "/-/ready" } else { "/metrics" };
        wait_for(&format!("{address} to answer"), 30, || get(&format!("http://{address}{ready}")));
    }

    // Training on every worker, and a short run that pushes at its end.
    for round in 1..=2 {
        for (address, steps) in workers.iter().zip([300, 600, 900]) {
            train(address, steps * round);
        }
    }
    let output = Command::new(&optimizer)
        .args(["--steps", "500", "--json", "--push", &format!("http://{gateway}"), "--instance", "fleet-test"])
        .output()
        .expect("the optimizer runs");
    assert!(output.status.success(), "optimizer: {}", String::from_utf8_lossy(&output.stderr));
    let pushed: TrainingSummary = serde_json::from_slice(&output.stdout).expect("its --json summary");

    // The workers' own summaries, and Prometheus once it has scraped them since.
    let summaries: Vec<TrainingSummary> = workers
        .iter()
        .map(|address| {
            serde_json::from_str(&get(&format!("http://{address}/summary")).expect("a summary")).expect("JSON")
        })
        .collect();
    wait_for("Prometheus to scrape every worker's final counts", 30, || {
        let scraped = query(&prometheus, r#"timing_steps_total{job="workers"}"#);
        let all = workers.iter().zip(&summaries).all(|(address, summary)| {
            scraped.iter().any(|(labels, value)| labels["instance"] == *address && *value == summary.total_steps as f64)
        });
        all.then_some(())
    });

    // 1. Time per phase over the fleet, against the sum of the workers' own.
    let by_phase = query(&prometheus, r#"sum by (phase) (timing_phase_seconds_total{job="workers"})"#);
    let mut phases_checked = Vec::new();
    for (labels, seconds) in &by_phase {
        let phase = &labels["phase"];
        let local: f64 = summaries.iter().map(|summary| summary.phase_breakdown.ns(phase) as f64 / 1e9).sum();
        assert!((seconds - local).abs() <= 0.01 * local, "phase {phase}: Prometheus {seconds} s, workers {local} s");
        phases_checked.push(format!("{phase} {seconds:.6} s (workers: {local:.6} s)"));
    }
    assert_eq!(by_phase.len(), 3, "{by_phase:?}");

    // 2. The fleet's p95 step time, against the p95 of the merged local data: within one bucket.
    let p95 = query(
        &prometheus,
        r#"histogram_quantile(0.95, sum by (le) (timing_step_duration_seconds_bucket{job="workers"}))"#,
    );
    let fleet_p95 = p95.first().map(|(_, seconds)| seconds * 1e9).expect("a p95");
    let spreads: Vec<&Spread> = summaries.iter().map(|summary| &summary.step_spread).collect();
    let local_p95 = quantile(&spreads, 0.95) as f64;
    assert!(
        bucket_of(fleet_p95).abs_diff(bucket_of(local_p95)) <= 1,
        "p95: Prometheus {fleet_p95} ns, local {local_p95} ns"
    );

    // 3. The pushed run.
    let pushed_steps = wait_for("the pushed job to be scraped", 20, || {
        query(&prometheus, r#"timing_steps_total{job="optimizer",instance="fleet-test"}"#)
            .first()
            .map(|(_, value)| *value)
    });
    assert_eq!(pushed_steps, pushed.total_steps as f64);

    // The README's PromQL cookbook, as written there: each query answers.
    let cookbook = [
        "sum by (phase) (rate(timing_phase_seconds_total[5m])) / ignoring(phase) group_left \
         sum(rate(timing_step_duration_seconds_sum[5m]))",
        "histogram_quantile(0.95, sum by (instance, le) (rate(timing_step_duration_seconds_bucket[5m])))",
        "histogram_quantile(0.95, sum by (le) (rate(timing_step_duration_seconds_bucket[5m])))",
        "sum by (job) (rate(timing_steps_total[1m]))",
        "max by (instance) (rate(timing_phase_seconds_total[5m]) / ignoring(phase) group_left \
         rate(timing_steps_total[5m]))",
    ];
    // Rates need training between scrapes: a few more batches, a scrape apart.
    for _ in 0..3 {
        workers.iter().for_each(|address| train(address, 200));
        std::thread::sleep(Duration::from_millis(1_100));
    }
    let mut answers = Vec::new();
    for promql in cookbook {
        answers.push(wait_for(&format!("an answer to {promql}"), 15, || {
            let answer = query(&prometheus, promql);
            // An idle series (the pushed job's, whose counters stand still) answers NaN: a rate of 0 over 0.
            answer.iter().any(|(_, value)| value.is_finite()).then_some(answer)
        }));
    }

    // 4. A worker killed and started again is a counter reset: its rate stays non-negative, all are up.
    let restarted = &workers[1];
    fleet.stop(worker_process[1]);
    wait_for("Prometheus to see the worker down", 20, || {
        let up = query(&prometheus, &format!(r#"up{{instance="{restarted}"}}"#));
        up.first().filter(|(_, value)| *value == 0.0).map(|_| ())
    });
    let mut command = Command::new(&server);
    command.args(["--listen", restarted, "--samples", &samples[1].to_string()]);
    fleet.start("worker1-again", &mut command);
    wait_for("the restarted worker to answer", 30, || get(&format!("http://{restarted}/metrics")));
    train(restarted, 100);
    wait_for("Prometheus to scrape the restarted worker", 30, || {
        let scraped = query(&prometheus, &format!(r#"timing_steps_total{{instance="{restarted}"}}"#));
        scraped.first().filter(|(_, value)| *value == 100.0).map(|_| ())
    });
    let resets = query(&prometheus, &format!(r#"resets(timing_steps_total{{instance="{restarted}"}}[5m])"#));
    assert!(resets.first().is_some_and(|(_, value)| *value >= 1.0), "{resets:?}");
    let rates = query(&prometheus, r#"rate(timing_steps_total{job="workers"}[1m])"#);
    assert!(rates.len() == 3 && rates.iter().all(|(_, rate)| *rate >= 0.0), "{rates:?}");
    let up = wait_for("every worker up", 20, || {
        let up = query(&prometheus, r#"up{job="workers"}"#);
        (up.len() == 3 && up.iter().all(|(_, value)| *value == 1.0)).then_some(up)
    });

    let elapsed = started.elapsed();
    println!("fleet test, {:.1} s:", elapsed.as_secs_f64());
    println!("  sum by (phase) (timing_phase_seconds_total): {}", phases_checked.join("; "));
    println!("  histogram_quantile(0.95, ...): {fleet_p95:.0} ns; merged local p95 {local_p95:.0} ns");
    println!("  pushed job optimizer/fleet-test: {pushed_steps} steps");
    println!(
        "  restarted worker: resets {}, rates {:?}, up {}",
        resets[0].1,
        rates.iter().map(|r| r.1).collect::<Vec<_>>(),
        up.len()
    );
    for (promql, answer) in cookbook.iter().zip(&answers) {
        let shown: Vec<String> = answer
            .iter()
            .map(|(labels, value)| {
                let labels: Vec<String> = labels.iter().map(|(name, value)| format!("{name}={value}")).collect();
                format!("{{{}}} {value:.4e}", labels.join(","))
            })
            .collect();
        println!("  {}\n    {}", promql.split_whitespace().collect::<Vec<_>>().join(" "), shown.join("\n    "));
    }
    assert!(elapsed < Duration::from_secs(120), "the fleet test took {elapsed:?}");
}
