//! A run logged to a real MLflow tracking server (issue 30): `.ci/run` installs MLflow from PyPI into a
//! virtual environment and runs `cargo test --features mlflow-server --test mlflow` with `TIMING_MLFLOW`
//! naming its `mlflow`; the test starts `mlflow server` on a free loopback port with a SQLite store, in a
//! process group of its own that is stopped however the test ends, and checks through MLflow's own REST
//! API what a run logged: its metrics at their steps, equal to the run's figures; its params; its three
//! artifacts, byte for byte; its status, finished, or failed for a run dropped by a panic.

#![cfg(all(feature = "mlflow-server", feature = "timing", target_os = "linux"))]

mod common;

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{exclusive, spin};
use serde_json::Value;
use timing_runtime::{MlflowRun, last_batch, summary, timed};

#[timed(phase = "regions")]
fn regions() {
    spin(30);
}

#[timed(phase = "error")]
fn error() {
    spin(10);
}

#[timed(step)]
fn step() {
    regions();
    error();
}

#[timed(batch)]
fn batch(steps: usize) {
    for _ in 0..steps {
        step();
    }
}

/// `mlflow server` in a process group of its own (it starts workers), stopped with the group.
struct Server {
    child: Child,
    base: String,
    dir: PathBuf,
}

impl Server {
    fn start() -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a port").port();
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("mlflow-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a directory");
        Server::start_at(port, dir)
    }

    /// A server on `port` over the store in `dir`: a new one, or the one stopped before, again.
    fn start_at(port: u16, dir: PathBuf) -> Server {
        let mlflow = std::env::var("TIMING_MLFLOW").unwrap_or_else(|_| "mlflow".to_owned());
        let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("server.log")).expect("a log");
        let child = Command::new(&mlflow)
            .args(["server", "--host", "127.0.0.1", "--port", &port.to_string(), "--workers", "1"])
            .arg("--backend-store-uri")
            .arg(format!("sqlite:///{}", dir.join("mlflow.db").display()))
            .arg("--artifacts-destination")
            .arg(dir.join("artifacts"))
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("the log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start `{mlflow} server` (MLflow from PyPI; see .ci/run): {error}"));
        let mut server = Server { child, base: format!("http://127.0.0.1:{port}"), dir };
        let started = Instant::now();
        loop {
            if common::http_agent(2).get(&format!("{}/health", server.base)).call().is_ok_and(|r| r.status() == 200) {
                return server;
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("mlflow server exited ({status}): {}", server.log());
            }
            assert!(started.elapsed() < Duration::from_secs(120), "mlflow server not up in 120 s: {}", server.log());
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// A GET of MLflow's REST API, as JSON.
    fn get(&self, path: &str) -> Value {
        let mut answer = common::http_agent(10).get(&format!("{}{path}", self.base)).call().expect("MLflow answers");
        let text = answer.body_mut().read_to_string().expect("a body");
        serde_json::from_str(&text).unwrap_or_else(|error| panic!("{path}: not JSON ({error}): {text}"))
    }

    fn bytes(&self, path: &str) -> Vec<u8> {
        let mut answer = common::http_agent(10).get(&format!("{}{path}", self.base)).call().expect("MLflow answers");
        answer.body_mut().with_config().limit(64 << 20).read_to_vec().expect("a body")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // The group: mlflow's workers with it.
        let group = i32::try_from(self.child.id()).unwrap_or(0);
        #[allow(unsafe_code)]
        // SAFETY: `killpg` sends a signal to the process group the server was started as; it touches no
        // memory of ours.
        unsafe {
            libc::killpg(group, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(50));
        }
        #[allow(unsafe_code)]
        // SAFETY: as above.
        unsafe {
            libc::killpg(group, libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

/// A metric's history: (step, value) in step order.
fn history(server: &Server, run_id: &str, key: &str) -> Vec<(u64, f64)> {
    let found = server.get(&format!("/api/2.0/mlflow/metrics/get-history?run_id={run_id}&metric_key={key}"));
    let mut points: Vec<(u64, f64)> = found["metrics"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|metric| (metric["step"].as_u64().unwrap_or(u64::MAX), metric["value"].as_f64().unwrap_or(f64::NAN)))
        .collect();
    points.sort_by_key(|(step, _)| *step);
    points
}

#[test]
fn a_run_logs_its_batches_params_artifacts_and_status() {
    let _guard = exclusive();
    let server = Server::start();
    let mut run = MlflowRun::start(&server.base, "timing test", "five batches", &[("lr", "0.001")]).expect("a run");
    let mut logged = Vec::new();
    for _ in 0..5 {
        batch(40);
        let timing = last_batch().expect("a batch");
        run.log_batch(&timing);
        logged.push(timing);
    }
    assert!(run.flush(Duration::from_secs(30)) && run.dropped() == 0, "{:?}", run.last_error());
    let run_id = run.run_id().to_owned();
    let experiment_id = run.experiment_id().to_owned();
    let whole = summary();
    run.finish(&whole).expect("finished");

    let got = server.get(&format!("/api/2.0/mlflow/runs/get?run_id={run_id}"));
    assert_eq!(got["run"]["info"]["status"], "FINISHED", "{got}");
    let params: Vec<(String, String)> = got["run"]["data"]["params"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|param| (param["key"].as_str().unwrap_or("").to_owned(), param["value"].as_str().unwrap_or("").to_owned()))
        .collect();
    for (key, value) in [("lr", "0.001"), ("timing.granularity", "Detailed"), ("timing.threads", "1")] {
        assert!(params.contains(&(key.to_owned(), value.to_owned())), "{key}={value} not in {params:?}");
    }
    assert!(params.iter().any(|(key, _)| key == "timing.version"), "{params:?}");

    // Each batch's metrics at the run's step count after it, equal to what the batch said.
    let rates = history(&server, &run_id, "steps_per_second");
    let expected: Vec<(u64, f64)> =
        logged.iter().enumerate().map(|(index, batch)| (40 * (index as u64 + 1), batch.steps_per_second)).collect();
    assert_eq!(rates.len(), 5, "{rates:?}");
    for ((step, value), (want_step, want)) in rates.iter().zip(&expected) {
        assert_eq!(step, want_step);
        assert!((value - want).abs() <= want.abs() * 1e-9, "{value} against {want}");
    }
    let shares = history(&server, &run_id, "phase.regions.share_pct");
    assert_eq!(shares.iter().map(|(step, _)| *step).collect::<Vec<_>>(), [40, 80, 120, 160, 200]);
    for ((_, share), batch) in shares.iter().zip(&logged) {
        let steps = batch.step_timings.as_deref().expect("step records");
        let regions: u64 = steps.iter().map(|step| step.phase_ns("regions")).sum();
        let total: u64 = steps.iter().map(|step| step.total_ns).sum();
        let want = regions as f64 * 100.0 / total as f64;
        assert!((share - want).abs() < 0.01, "{share} against {want}");
    }
    // The run's own figures at its last step, equal to its summary's.
    let final_share = history(&server, &run_id, "run.phase.regions.share_pct");
    let want = whole.phase_breakdown.phases.iter().find(|share| share.phase == "regions").expect("regions").pct;
    assert_eq!(final_share.len(), 1);
    assert_eq!(final_share[0].0, 200);
    assert!((final_share[0].1 - want).abs() < 0.01, "{final_share:?} against {want}");

    // The artifacts, byte for byte.
    let listed = server.get(&format!("/api/2.0/mlflow/artifacts/list?run_id={run_id}"));
    let mut files: Vec<&str> =
        listed["files"].as_array().into_iter().flatten().filter_map(|file| file["path"].as_str()).collect();
    files.sort_unstable();
    assert_eq!(files, ["flamegraph.svg", "report.html", "summary.json"], "{listed}");
    let artifact = |name: &str| {
        server.bytes(&format!("/api/2.0/mlflow-artifacts/artifacts/{experiment_id}/{run_id}/artifacts/{name}"))
    };
    let same = |name: &str, want: Vec<u8>| {
        let got = artifact(name);
        let first = got.iter().zip(&want).position(|(a, b)| a != b).unwrap_or(got.len().min(want.len()));
        let around = |bytes: &[u8]| {
            String::from_utf8_lossy(&bytes[first.saturating_sub(80)..(first + 80).min(bytes.len())]).into_owned()
        };
        assert!(
            got == want,
            "{name}: {} bytes against {}, first difference at {first}:\n{}\n---\n{}",
            got.len(),
            want.len(),
            around(&got),
            around(&want)
        );
    };
    same("summary.json", serde_json::to_vec_pretty(&whole).expect("JSON"));
    same("report.html", whole.to_html("run").expect("a page").into_bytes());
    same(
        "flamegraph.svg",
        whole.call_tree.flamegraph_svg("self time by call path").expect("a flamegraph").into_bytes(),
    );

    // The same experiment's name finds the same experiment.
    let again = MlflowRun::start(&server.base, "timing test", "again", &[]).expect("a run");
    assert_eq!(again.experiment_id(), experiment_id);
    again.fail().expect("marked failed");

    // A run dropped in a panic is marked failed (an unwinding without the panic hook's message, which in
    // CI's log would read as a failure).
    let panicked = std::panic::catch_unwind(|| {
        let run = MlflowRun::start(&server.base, "timing test", "panics", &[]).expect("a run");
        let id = run.run_id().to_owned();
        std::panic::resume_unwind(Box::new(id));
    });
    let id = panicked.expect_err("it panicked").downcast::<String>().expect("the run's id");
    let got = server.get(&format!("/api/2.0/mlflow/runs/get?run_id={id}"));
    assert_eq!(got["run"]["info"]["status"], "FAILED", "{got}");
}

#[test]
fn a_run_goes_on_at_full_speed_while_the_server_is_down_and_logs_again_once_it_is_back() {
    let _guard = exclusive();
    let server = Server::start();
    let port: u16 = server.base.rsplit(':').next().and_then(|port| port.parse().ok()).expect("a port");
    let dir = server.dir.clone();
    let mut run = MlflowRun::start(&server.base, "timing test", "server goes away", &[]).expect("a run");
    let run_id = run.run_id().to_owned();
    let log = |run: &mut MlflowRun| {
        batch(40);
        let timing = last_batch().expect("a batch");
        // Handed over, not sent: the server's state does not hold the training up.
        let start = Instant::now();
        run.log_batch(&timing);
        assert!(start.elapsed() < Duration::from_millis(100), "log_batch waited {:?}", start.elapsed());
    };
    for _ in 0..3 {
        log(&mut run);
    }
    assert!(run.flush(Duration::from_secs(30)));
    // The server stops (its whole process group): batches go on, and are dropped and counted.
    drop(server);
    for _ in 0..3 {
        log(&mut run);
    }
    assert!(run.flush(Duration::from_secs(60)), "the batches for a server that is gone were not given up");
    assert_eq!(run.dropped(), 3, "{:?}", run.last_error());
    assert!(run.last_error().is_some_and(|error| error.contains("could not reach")), "{:?}", run.last_error());
    // Back on the same port and store: later batches arrive again, and the run finishes.
    let server = Server::start_at(port, dir);
    for _ in 0..3 {
        log(&mut run);
    }
    assert!(run.flush(Duration::from_secs(30)));
    assert_eq!(run.dropped(), 3, "{:?}", run.last_error());
    run.finish(&summary()).expect("finished");
    let steps: Vec<u64> = history(&server, &run_id, "steps_per_second").iter().map(|(step, _)| *step).collect();
    assert_eq!(steps, [40, 80, 120, 280, 320, 360], "the batches before and after, not those while it was down");
    let got = server.get(&format!("/api/2.0/mlflow/runs/get?run_id={run_id}"));
    assert_eq!(got["run"]["info"]["status"], "FINISHED", "{got}");
}
