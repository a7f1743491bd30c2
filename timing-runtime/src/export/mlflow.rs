//! A run in MLflow's tracking server, over its REST API: an experiment found by name (made when missing),
//! a run with the library's and the user's params, metrics at their step index handed over at each
//! batch's end and sent by a thread of the run's own as the run goes, and at the end the run's
//! `summary.json`, `report.html` and `flamegraph.svg` as artifacts and its status. ureq's blocking
//! client, each request with a time limit; a failure is an error returned (starting and finishing) or a
//! batch dropped and counted (in between), never a panic, a stalled training loop or a wait without end.
//! A run dropped before it is finished (a panic in a batch) is marked failed.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::model::{BatchTiming, TrainingSummary};

/// Why a request to MLflow failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MlflowError {
    /// The tracking server's address or a name cannot be used, or the server does not serve artifacts.
    Invalid(String),
    /// The server could not be reached, or did not answer in time.
    Transport(String),
    /// The server answered with a status other than success.
    Refused {
        /// What was asked.
        request: String,
        /// The HTTP status.
        status: u16,
        /// What the server said.
        body: String,
    },
}

impl fmt::Display for MlflowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MlflowError::Invalid(why) => write!(f, "cannot log to MLflow: {why}"),
            MlflowError::Transport(why) => write!(f, "could not reach the MLflow server: {why}"),
            MlflowError::Refused { request, status, body } => {
                write!(f, "MLflow refused {request} (HTTP {status}): {}", body.trim())
            }
        }
    }
}

impl std::error::Error for MlflowError {}

/// The time one request may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Metrics a `log-batch` request carries at most (MLflow's limit).
const METRICS_A_REQUEST: usize = 1_000;

/// A run being logged to an MLflow tracking server (feature `mlflow`).
///
/// Starting it and finishing it talk to the server and say how that went; the batches in between are
/// handed to a thread of the run's own, which sends them while the training goes on: [`log_batch`]
/// never waits on the server. Batches it cannot send (the server down, slow or refusing, or more than
/// 1,024 waiting) are dropped and counted ([`dropped`]); once the server answers again, later
/// batches arrive.
///
/// [`log_batch`]: MlflowRun::log_batch
/// [`dropped`]: MlflowRun::dropped
///
/// ```no_run
/// use timing_runtime::MlflowRun;
///
/// let mut run = MlflowRun::start("http://127.0.0.1:5000", "optimizer", "adam, lr 1e-3", &[("lr", "1e-3")])?;
/// for _ in 0..10 {
///     // ... a batch of steps ...
///     if let Some(batch) = timing_runtime::last_batch() {
///         run.log_batch(&batch);
///     }
/// }
/// run.finish(&timing_runtime::summary())?;
/// # Ok::<(), timing_runtime::MlflowError>(())
/// ```
pub struct MlflowRun {
    client: Arc<Client>,
    sender: Arc<Sender>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Steps logged so far: the step index of the next metrics.
    steps: u64,
    finished: bool,
}

/// Batches waiting to be sent at most; more are dropped and counted.
pub(crate) const QUEUED: usize = 1_024;

/// How long [`MlflowRun::finish`] waits for the batches still waiting to be sent.
const FLUSH: Duration = Duration::from_secs(30);

/// What talks to the server: its address, the run's ids, and the client.
struct Client {
    agent: ureq::Agent,
    base: String,
    experiment_id: String,
    run_id: String,
    artifact_uri: String,
}

/// The batches between the training and the sending thread.
struct Sender {
    state: Mutex<Waiting>,
    wake: Condvar,
    dropped: AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// A batch's metrics waiting to be sent: its step index, its time (ms since 1970) and the metrics.
type Metrics = (u64, u64, Vec<(String, f64)>);

#[derive(Default)]
struct Waiting {
    batches: VecDeque<Metrics>,
    /// The thread is sending one.
    sending: bool,
    stopping: bool,
}

impl fmt::Debug for MlflowRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MlflowRun")
            .field("base", &self.client.base)
            .field("experiment_id", &self.client.experiment_id)
            .field("run_id", &self.client.run_id)
            .field("steps", &self.steps)
            .finish_non_exhaustive()
    }
}

impl MlflowRun {
    /// Starts a run named `run_name` in the experiment named `experiment` (made when missing) of the
    /// tracking server at `tracking_uri` (`http://host:port`), with the params `timing.version` and
    /// `timing.granularity` and `params`.
    ///
    /// # Errors
    /// [`MlflowError::Invalid`] for an address that is not `http://` or an empty experiment name, before
    /// anything is sent; [`MlflowError::Transport`] and [`MlflowError::Refused`] as the server answers.
    pub fn start(
        tracking_uri: &str,
        experiment: &str,
        run_name: &str,
        params: &[(&str, &str)],
    ) -> Result<MlflowRun, MlflowError> {
        let base = tracking_uri.trim_end_matches('/');
        if !base.starts_with("http://") || base.len() <= "http://".len() {
            return Err(MlflowError::Invalid(format!("`{tracking_uri}` is not an http://host:port address")));
        }
        if experiment.trim().is_empty() {
            return Err(MlflowError::Invalid("the experiment's name is empty".into()));
        }
        let agent: ureq::Agent =
            ureq::Agent::config_builder().timeout_global(Some(TIMEOUT)).http_status_as_error(false).build().into();
        let mut client = Client {
            agent,
            base: base.to_owned(),
            experiment_id: String::new(),
            run_id: String::new(),
            artifact_uri: String::new(),
        };
        client.experiment_id = client.experiment(experiment)?;
        let created = client.post(
            "runs/create",
            &json!({
                "experiment_id": client.experiment_id,
                "run_name": run_name,
                "start_time": now_ms(),
                "tags": [{ "key": "mlflow.runName", "value": run_name }],
            }),
        )?;
        let info = &created["run"]["info"];
        client.run_id = text(&info["run_id"], "runs/create: no run_id")?;
        client.artifact_uri = text(&info["artifact_uri"], "runs/create: no artifact_uri")?;
        let sender = Arc::new(Sender {
            state: Mutex::new(Waiting::default()),
            wake: Condvar::new(),
            dropped: AtomicU64::new(0),
            last_error: Mutex::new(None),
        });
        // From here on, an error marks the run failed (the drop).
        let mut run = MlflowRun { client: Arc::new(client), sender, thread: None, steps: 0, finished: false };
        // The granularity in force, read where the recorder keeps it (this layer does not reach up to the
        // crate's root).
        #[cfg(feature = "timing")]
        let granularity = format!("{:?}", crate::store::registry::state().0);
        #[cfg(not(feature = "timing"))]
        let granularity = format!("{:?}", crate::model::TimingGranularity::None);
        let mut all = vec![("timing.version", env!("CARGO_PKG_VERSION")), ("timing.granularity", granularity.as_str())];
        all.extend_from_slice(params);
        let params: Vec<Value> = all.iter().map(|(key, value)| json!({ "key": key, "value": value })).collect();
        // MLflow takes 100 params a request.
        for chunk in params.chunks(100) {
            run.client.post("runs/log-batch", &json!({ "run_id": run.client.run_id, "params": chunk }))?;
        }
        let (client, sender) = (Arc::clone(&run.client), Arc::clone(&run.sender));
        run.thread = Some(
            std::thread::Builder::new()
                .name("timing-mlflow".into())
                .spawn(move || send(&client, &sender))
                .map_err(|error| MlflowError::Invalid(format!("no thread to send batches: {error}")))?,
        );
        Ok(run)
    }

    /// The run's id in MLflow.
    #[must_use]
    pub fn run_id(&self) -> &str {
        &self.client.run_id
    }

    /// The experiment's id in MLflow.
    #[must_use]
    pub fn experiment_id(&self) -> &str {
        &self.client.experiment_id
    }

    /// Hands a batch's metrics to the sending thread, at the step index the run has reached with it (the
    /// steps of the batches logged so far, this one's included): `steps_per_second`; with step records
    /// (granularity `Step` or finer), `step_p50_ms`, `step_p95_ms`, and per phase `phase.NAME.share_pct`
    /// (of the batch's step time) and `phase.NAME.per_step_ms`; with the counting allocator,
    /// `allocations_per_step`. Never waits on the server: with 1,024 batches waiting already, this
    /// one is dropped and counted.
    pub fn log_batch(&mut self, batch: &BatchTiming) {
        self.steps = self.steps.saturating_add(batch.steps as u64);
        let metrics = batch_metrics(batch);
        let mut state = self.sender.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.batches.len() >= QUEUED {
            self.sender.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        state.batches.push_back((self.steps, now_ms(), metrics));
        self.sender.wake.notify_all();
    }

    /// Batches whose metrics did not reach the server: the queue was full, or the server could not be
    /// reached, answered too late or refused them.
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.sender.dropped.load(Ordering::Relaxed)
    }

    /// Why the latest batch that could not be sent was not, if one was not.
    #[must_use]
    pub fn last_error(&self) -> Option<String> {
        self.sender.last_error.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Waits until the batches handed over so far are sent (or dropped), for at most `timeout`; says
    /// whether they all were.
    pub fn flush(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = self.sender.state.lock().unwrap_or_else(PoisonError::into_inner);
        while !state.batches.is_empty() || state.sending {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            state = self.sender.wake.wait_timeout(state, left).unwrap_or_else(PoisonError::into_inner).0;
        }
        true
    }

    /// Sends what is waiting (for at most 30 s), logs the run's own figures at its last step
    /// (`run.steps_per_second`, `run.step_p50_ms`, `run.step_p95_ms`, `run.phase.NAME.share_pct`,
    /// `run.phase.NAME.per_step_ms`, `run.instrumentation_pct`, with allocations
    /// `run.allocations_per_step`) and the param `timing.threads`, uploads `summary.json`, `report.html`
    /// and `flamegraph.svg`, and marks the run finished.
    ///
    /// # Errors
    /// As the server answers; [`MlflowError::Invalid`] when it does not serve artifacts (started without
    /// `--serve-artifacts` where that is not the default) or a file cannot be made. The run is then marked
    /// failed.
    pub fn finish(mut self, summary: &TrainingSummary) -> Result<(), MlflowError> {
        self.flush(FLUSH);
        self.steps = self.steps.max(summary.total_steps as u64);
        let client = &self.client;
        client.log_metrics(self.steps, now_ms(), &summary_metrics(summary))?;
        client.post(
            "runs/log-batch",
            &json!({ "run_id": client.run_id, "params": [{ "key": "timing.threads", "value": summary.threads.to_string() }] }),
        )?;
        let json = serde_json::to_vec_pretty(summary).map_err(|error| MlflowError::Invalid(error.to_string()))?;
        client.upload("summary.json", json)?;
        let page = summary.to_html("run").map_err(|error| MlflowError::Invalid(format!("the page: {error}")))?;
        client.upload("report.html", page.into_bytes())?;
        let flamegraph = summary
            .call_tree
            .flamegraph_svg("self time by call path")
            .map_err(|error| MlflowError::Invalid(format!("the flamegraph: {error}")))?;
        client.upload("flamegraph.svg", flamegraph.into_bytes())?;
        client.set_status("FINISHED")?;
        self.finished = true;
        Ok(())
    }

    /// Marks the run failed now (what dropping an unfinished run does).
    ///
    /// # Errors
    /// As the server answers.
    pub fn fail(mut self) -> Result<(), MlflowError> {
        self.finished = true;
        self.client.set_status("FAILED")
    }
}

/// The sending thread: each batch in turn, until the run is dropped with none waiting.
fn send(client: &Client, sender: &Sender) {
    loop {
        let (step, timestamp, metrics) = {
            let mut state = sender.state.lock().unwrap_or_else(PoisonError::into_inner);
            loop {
                if let Some(batch) = state.batches.pop_front() {
                    state.sending = true;
                    break batch;
                }
                if state.stopping {
                    return;
                }
                state = sender.wake.wait(state).unwrap_or_else(PoisonError::into_inner);
            }
        };
        if let Err(error) = client.log_metrics(step, timestamp, &metrics) {
            sender.dropped.fetch_add(1, Ordering::Relaxed);
            *sender.last_error.lock().unwrap_or_else(PoisonError::into_inner) = Some(error.to_string());
        }
        sender.state.lock().unwrap_or_else(PoisonError::into_inner).sending = false;
        sender.wake.notify_all();
    }
}

impl Client {
    fn set_status(&self, status: &str) -> Result<(), MlflowError> {
        let update = json!({ "run_id": self.run_id, "status": status, "end_time": now_ms() });
        self.post("runs/update", &update).map(drop)
    }

    fn log_metrics(&self, step: u64, timestamp: u64, metrics: &[(String, f64)]) -> Result<(), MlflowError> {
        let metrics: Vec<Value> = metrics
            .iter()
            .filter(|(_, value)| value.is_finite())
            .map(|(key, value)| json!({ "key": key, "value": value, "timestamp": timestamp, "step": step }))
            .collect();
        for chunk in metrics.chunks(METRICS_A_REQUEST) {
            self.post("runs/log-batch", &json!({ "run_id": self.run_id, "metrics": chunk }))?;
        }
        Ok(())
    }
    /// The experiment's id, made when there is none by that name.
    fn experiment(&self, name: &str) -> Result<String, MlflowError> {
        let url = format!("{}/api/2.0/mlflow/experiments/get-by-name", self.base);
        let response = self
            .agent
            .get(&url)
            .query("experiment_name", name)
            .call()
            .map_err(|error| MlflowError::Transport(error.to_string()))?;
        let status = response.status().as_u16();
        let body = response.into_body().read_to_string().unwrap_or_default();
        match status {
            200 => {
                let found: Value = serde_json::from_str(&body).map_err(|error| MlflowError::Refused {
                    request: "experiments/get-by-name".into(),
                    status,
                    body: format!("not JSON: {error}"),
                })?;
                text(&found["experiment"]["experiment_id"], "experiments/get-by-name: no experiment_id")
            }
            404 => {
                let made = self.post("experiments/create", &json!({ "name": name }))?;
                text(&made["experiment_id"], "experiments/create: no experiment_id")
            }
            _ => Err(MlflowError::Refused { request: "experiments/get-by-name".into(), status, body }),
        }
    }

    fn post(&self, request: &str, body: &Value) -> Result<Value, MlflowError> {
        let url = format!("{}/api/2.0/mlflow/{request}", self.base);
        let response = self
            .agent
            .post(&url)
            .header("Content-Type", "application/json")
            .send(body.to_string())
            .map_err(|error| MlflowError::Transport(error.to_string()))?;
        let status = response.status().as_u16();
        let text = response.into_body().read_to_string().unwrap_or_default();
        if !(200..300).contains(&status) {
            return Err(MlflowError::Refused { request: request.to_owned(), status, body: text });
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Puts `bytes` as the artifact `name` of the run, through the server's artifact proxy.
    fn upload(&self, name: &str, bytes: Vec<u8>) -> Result<(), MlflowError> {
        // `mlflow-artifacts:/EXPERIMENT/RUN/artifacts` (or with a host: `mlflow-artifacts://host/..`).
        let Some(rest) = self.artifact_uri.strip_prefix("mlflow-artifacts:") else {
            return Err(MlflowError::Invalid(format!(
                "the server stores artifacts at {} and does not serve them: start it with --serve-artifacts",
                self.artifact_uri
            )));
        };
        let path = rest.trim_start_matches('/');
        let path = if rest.starts_with("//") { path.split_once('/').map_or("", |(_, path)| path) } else { path };
        let url = format!("{}/api/2.0/mlflow-artifacts/artifacts/{path}/{name}", self.base);
        let response =
            self.agent.put(&url).send(&bytes[..]).map_err(|error| MlflowError::Transport(error.to_string()))?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(());
        }
        let body = response.into_body().read_to_string().unwrap_or_default();
        Err(MlflowError::Refused { request: format!("the upload of {name}"), status, body })
    }
}

impl Drop for MlflowRun {
    /// Stops the sending thread (it ends once the batch it is sending is sent or its request times out,
    /// 10 s at most); a run dropped before it was finished (a panic in a batch, an error returned early)
    /// is marked failed, within the request's time limit, an error doing so dropped with it.
    fn drop(&mut self) {
        {
            let mut state = self.sender.state.lock().unwrap_or_else(PoisonError::into_inner);
            state.stopping = true;
            // What is still waiting is dropped with the run.
            let left = state.batches.len() as u64;
            state.batches.clear();
            self.sender.dropped.fetch_add(left, Ordering::Relaxed);
            self.sender.wake.notify_all();
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        if !self.finished {
            let _ = self.client.set_status("FAILED");
        }
    }
}

/// A JSON string, or the error `missing` says.
fn text(value: &Value, missing: &str) -> Result<String, MlflowError> {
    value.as_str().map(str::to_owned).ok_or_else(|| MlflowError::Invalid(missing.to_owned()))
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| u64::try_from(since.as_millis()).unwrap_or(0))
}

/// A name as an MLflow metric key may have it: letters, digits, `_ - . / ` and space; anything else `_`.
fn key(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || "_-./ ".contains(c) { c } else { '_' }).collect()
}

#[allow(clippy::cast_precision_loss)]
fn ms(ns: f64) -> f64 {
    ns / 1e6
}

/// A batch's metrics, as [`MlflowRun::log_batch`] names them.
#[allow(clippy::cast_precision_loss)]
pub(crate) fn batch_metrics(batch: &BatchTiming) -> Vec<(String, f64)> {
    let mut metrics = vec![("steps_per_second".to_owned(), batch.steps_per_second)];
    let Some(steps) = batch.step_timings.as_deref().filter(|steps| !steps.is_empty()) else { return metrics };
    let mut times: Vec<u64> = steps.iter().map(|step| step.total_ns).collect();
    times.sort_unstable();
    let rank = |q: f64| times[((q * times.len() as f64).ceil() as usize).clamp(1, times.len()) - 1];
    metrics.push(("step_p50_ms".to_owned(), ms(rank(0.5) as f64)));
    metrics.push(("step_p95_ms".to_owned(), ms(rank(0.95) as f64)));
    let total: u64 = times.iter().sum();
    let mut phases: Vec<(&str, u64)> = Vec::new();
    for step in steps {
        for time in &step.phases {
            match phases.iter_mut().find(|(name, _)| *name == time.phase) {
                Some((_, ns)) => *ns += time.ns,
                None => phases.push((&time.phase, time.ns)),
            }
        }
    }
    for (phase, ns) in phases {
        let share = if total == 0 { 0.0 } else { ns as f64 * 100.0 / total as f64 };
        metrics.push((format!("phase.{}.share_pct", key(phase)), share));
        metrics.push((format!("phase.{}.per_step_ms", key(phase)), ms(ns as f64 / steps.len() as f64)));
    }
    let allocations: Option<u64> = steps.iter().map(|step| step.allocations).sum();
    if let Some(allocations) = allocations {
        metrics.push(("allocations_per_step".to_owned(), allocations as f64 / steps.len() as f64));
    }
    metrics
}

/// The run's own figures, as [`MlflowRun::finish`] names them.
#[allow(clippy::cast_precision_loss)]
pub(crate) fn summary_metrics(summary: &TrainingSummary) -> Vec<(String, f64)> {
    let mut metrics = vec![
        ("run.steps_per_second".to_owned(), summary.steps_per_second),
        ("run.step_p50_ms".to_owned(), ms(summary.step_distribution.p50_ns as f64)),
        ("run.step_p95_ms".to_owned(), ms(summary.step_distribution.p95_ns as f64)),
        ("run.instrumentation_pct".to_owned(), summary.phase_breakdown.instrumentation_pct),
    ];
    for share in &summary.phase_breakdown.phases {
        metrics.push((format!("run.phase.{}.share_pct", key(&share.phase)), share.pct));
        metrics.push((format!("run.phase.{}.per_step_ms", key(&share.phase)), ms(share.per_step.mean_ns)));
    }
    if let Some(allocations) = &summary.allocations {
        metrics.push(("run.allocations_per_step".to_owned(), allocations.per_step.count.mean));
    }
    metrics
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_what_mlflow_allows() {
        assert_eq!(key("line search/2.b-c_d"), "line search/2.b-c_d");
        assert_eq!(key("<odd> \"phase\""), "_odd_ _phase_");
    }

    #[test]
    fn bad_addresses_are_refused_before_anything_is_sent() {
        for (uri, experiment) in [("https://x", "e"), ("http://", "e"), ("127.0.0.1:5000", "e"), ("http://x", " ")] {
            assert!(matches!(MlflowRun::start(uri, experiment, "r", &[]), Err(MlflowError::Invalid(_))), "{uri}");
        }
    }

    #[test]
    fn a_server_that_is_not_there_is_an_error_not_a_hang() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        let address = listener.local_addr().expect("its address");
        drop(listener);
        let started = std::time::Instant::now();
        let error = MlflowRun::start(&format!("http://{address}"), "e", "r", &[]).expect_err("nothing there");
        assert!(matches!(error, MlflowError::Transport(_)), "{error}");
        assert!(started.elapsed() < TIMEOUT);
    }
}
