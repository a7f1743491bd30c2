//! An optimizer behind a server, as real ones run: JSON-RPC `trainBatch` over HTTP and over WebSocket
//! (axum on tokio), each response carrying the batch's timing, `getStep` rebuilding a past step from the
//! nearest keyframe (with the recomputation's timing), and `GET /metrics` for Prometheus.
//!
//! ```text
//! cargo run --release --example server -- --listen 127.0.0.1:7878 [--samples N]
//! curl -s 127.0.0.1:7878/rpc -d '{"jsonrpc":"2.0","id":1,"method":"trainBatch","params":{"steps":500}}'
//! {"jsonrpc":"2.0","id":1,"result":{"error":0.0123,"timing":{"steps":500,"compute_ns":812345,...}}}
//! curl -s 127.0.0.1:7878/rpc -d '{"jsonrpc":"2.0","id":2,"method":"getStep","params":{"step":432}}'
//! {"jsonrpc":"2.0","id":2,"result":{"error":0.41,"recompute":{"keyframe_step":400,"target_step":432,...}}}
//! curl -s 127.0.0.1:7878/metrics        # the Prometheus exposition of everything trained so far
//! curl -s 127.0.0.1:7878/summary        # the same as a TrainingSummary in JSON
//! ```
//!
//! WebSocket: `ws://127.0.0.1:7878/ws`, one JSON-RPC request per text message, one response each. A request
//! that cannot be served gets a JSON-RPC error object and changes neither the model nor the metrics.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use timing_runtime::{BatchTiming, RecomputeTiming, timed};

/// The most steps one request may ask for.
pub const MAX_STEPS: usize = 1_000_000;
/// Steps between the keyframes the model keeps, from which `getStep` replays.
pub const KEYFRAME_EVERY: u64 = 100;
/// Keyframes kept at most: past that, every other one is dropped (the oldest kept), so that a server left
/// on for weeks keeps a bounded history, each older step a longer replay away.
pub const MAX_KEYFRAMES: usize = 1_024;

/// A least-squares fit of `y = a·x + b` to noisy samples of `y = 3x - 2`, by gradient descent; `samples`
/// sets the work of a step.
pub struct Model {
    a: f64,
    b: f64,
    xs: Vec<f64>,
    ys: Vec<f64>,
    /// Steps trained so far.
    steps_done: u64,
    /// `(step, a, b)` every `KEYFRAME_EVERY` steps from step 0 (fewer once there are `MAX_KEYFRAMES`): what
    /// the model was after that many steps.
    keyframes: Vec<(u64, f64, f64)>,
}

impl Model {
    pub fn new(samples: usize) -> Self {
        let xs: Vec<f64> = (0..samples.max(2)).map(|i| i as f64 / samples.max(2) as f64 * 4.0).collect();
        let ys = xs.iter().enumerate().map(|(i, x)| 3.0 * x - 2.0 + 0.01 * ((i * 37 % 17) as f64 - 8.0)).collect();
        Model { a: 0.0, b: 0.0, xs, ys, steps_done: 0, keyframes: vec![(0, 0.0, 0.0)] }
    }

    /// The model's error after step `target` of its training, rebuilt from the nearest keyframe before it
    /// by replaying the steps between, and the recomputation's timing; `None` for a step not trained yet.
    pub fn at_step(&self, target: u64) -> Option<(f64, RecomputeTiming)> {
        if target > self.steps_done {
            return None;
        }
        let &(keyframe, a, b) = self.keyframes.iter().rev().find(|(step, ..)| *step <= target)?;
        let mut replay =
            Model { a, b, xs: self.xs.clone(), ys: self.ys.clone(), steps_done: keyframe, keyframes: Vec::new() };
        let (error, timing) = timing_runtime::recompute(keyframe, target, || {
            (keyframe..target).for_each(|_| {
                step(&mut replay);
            });
            error(&replay)
        });
        Some((error, timing))
    }
}

#[timed(phase = "gradient")]
fn gradient(model: &Model) -> (f64, f64) {
    let n = model.xs.len() as f64;
    model.xs.iter().zip(&model.ys).fold((0.0, 0.0), |(ga, gb), (x, y)| {
        let residual = model.a * x + model.b - y;
        (ga + 2.0 * residual * x / n, gb + 2.0 * residual / n)
    })
}

#[timed(phase = "update")]
fn update(model: &mut Model, (ga, gb): (f64, f64)) {
    model.a -= 0.1 * ga;
    model.b -= 0.1 * gb;
}

#[timed(phase = "error")]
fn error(model: &Model) -> f64 {
    let n = model.xs.len() as f64;
    model.xs.iter().zip(&model.ys).map(|(x, y)| (model.a * x + model.b - y).powi(2)).sum::<f64>() / n
}

#[timed(step)]
fn step(model: &mut Model) -> f64 {
    let g = gradient(model);
    update(model, g);
    error(model)
}

/// Trains one batch of `steps` steps, or stops where the model diverges: `start_batch`'s guard ends the batch
/// at either return, and `finish` gives its timing.
fn train(model: &mut Model, steps: usize) -> Result<(f64, Option<BatchTiming>), String> {
    let batch = timing_runtime::start_batch("train_batch");
    let mut error = f64::NAN;
    for done in 0..steps {
        error = step(model);
        if !error.is_finite() {
            return Err(format!("the model diverged at step {done} of the batch"));
        }
        model.steps_done += 1;
        if model.steps_done % KEYFRAME_EVERY == 0 {
            if model.keyframes.len() == MAX_KEYFRAMES {
                let mut index = 0;
                model.keyframes.retain(|_| {
                    index += 1;
                    index % 2 == 1
                });
            }
            model.keyframes.push((model.steps_done, model.a, model.b));
        }
    }
    Ok((error, batch.finish()))
}

/// What `trainBatch` returns: the model's error after the batch and how the batch's time was spent; what
/// `getStep` returns: the model's error after that step and how it was recomputed.
#[derive(Debug, Deserialize, Serialize, PartialEq)]
pub struct TrainResult {
    pub error: f64,
    /// `trainBatch`'s; `None` when timing is compiled out or switched off.
    #[serde(default)]
    pub timing: Option<BatchTiming>,
    /// `getStep`'s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recompute: Option<RecomputeTiming>,
}

/// What a request asks the model to do.
enum Call {
    Train(usize),
    GetStep(u64),
}

/// A JSON-RPC 2.0 error object.
#[derive(Debug, Deserialize, Serialize, PartialEq)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
}

/// A JSON-RPC 2.0 response: a result or an error.
#[derive(Debug, Deserialize, Serialize, PartialEq)]
pub struct RpcResponse {
    pub jsonrpc: String,
    pub id: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<TrainResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RpcError>,
}

impl RpcResponse {
    fn failure(id: Value, code: i64, message: String) -> Self {
        RpcResponse { jsonrpc: "2.0".into(), id, result: None, error: Some(RpcError { code, message }) }
    }
}

/// The model, shared by every connection; one batch trains at a time.
pub type Shared = Arc<Mutex<Model>>;

/// What a request asks for, checked whole before anything is trained: its id (`None` for a notification,
/// which gets no answer), and the call or the response that says what is wrong.
fn parse_request(body: &str) -> (Option<Value>, Result<Call, RpcResponse>) {
    let request: Value = match serde_json::from_str(body) {
        Ok(request) => request,
        Err(error) => {
            let response = RpcResponse::failure(Value::Null, -32700, format!("parse error: {error}"));
            return (Some(Value::Null), Err(response));
        }
    };
    // A notification is a well-formed request without an id; a malformed one is answered, with a null id.
    let well_formed = request.get("jsonrpc").and_then(Value::as_str) == Some("2.0")
        && request.get("method").is_some_and(Value::is_string);
    let notification = well_formed && request.get("id").is_none();
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    let reply = (!notification).then(|| id.clone());
    let fail = |code, message: String| (reply.clone(), Err(RpcResponse::failure(id.clone(), code, message)));
    if request.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return fail(-32600, "invalid request: \"jsonrpc\" must be \"2.0\"".into());
    }
    let param = |name: &str| request.get("params").and_then(|params| params.get(name)).and_then(Value::as_u64);
    match request.get("method").and_then(Value::as_str) {
        Some("trainBatch") => match param("steps").and_then(|steps| usize::try_from(steps).ok()) {
            Some(steps) if (1..=MAX_STEPS).contains(&steps) => (reply.clone(), Ok(Call::Train(steps))),
            _ => fail(-32602, format!("invalid params: \"steps\" must be a whole number from 1 to {MAX_STEPS}")),
        },
        Some("getStep") => match param("step") {
            Some(step) => (reply.clone(), Ok(Call::GetStep(step))),
            None => fail(-32602, "invalid params: \"step\" must be a whole number".into()),
        },
        Some(other) => {
            fail(-32601, format!("method not found: `{other}` (this server has `trainBatch` and `getStep`)"))
        }
        None => fail(-32600, "invalid request: no \"method\"".into()),
    }
}

/// Serves one JSON-RPC request: trains the batch it asks for, on a blocking thread, and answers; a
/// notification (a request without an id) is served and not answered.
pub async fn handle(model: Shared, body: String) -> Option<RpcResponse> {
    let (id, call) = parse_request(&body);
    let call = match call {
        Ok(call) => call,
        Err(response) => return id.map(|_| response),
    };
    let served = tokio::task::spawn_blocking(move || {
        let mut model = model.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match call {
            Call::Train(steps) => train(&mut model, steps)
                .map_err(|diverged| (-32603, format!("internal error: {diverged}")))
                .map(|(error, timing)| {
                    // One structured line per batch, for the server's log: grep '"timing":"batch"'.
                    #[cfg(feature = "json")]
                    if let Some(batch) = &timing {
                        eprintln!("{}", batch.json_line());
                    }
                    TrainResult { error, timing, recompute: None }
                }),
            Call::GetStep(target) => match model.at_step(target) {
                Some((error, recompute)) => Ok(TrainResult { error, timing: None, recompute: Some(recompute) }),
                None => Err((
                    -32602,
                    format!("invalid params: step {target} is not trained yet ({} steps so far)", model.steps_done),
                )),
            },
        }
    })
    .await;
    let answer_to = id?;
    Some(match served {
        Ok(Err((code, message))) => RpcResponse::failure(answer_to, code, message),
        Ok(Ok(result)) => RpcResponse { jsonrpc: "2.0".into(), id: answer_to, result: Some(result), error: None },
        Err(error) => RpcResponse::failure(answer_to, -32603, format!("internal error: training failed: {error}")),
    })
}

async fn rpc(State(model): State<Shared>, body: String) -> Response {
    let Some(response) = handle(model, body).await else { return StatusCode::NO_CONTENT.into_response() };
    let status = match &response.error {
        Some(error) if error.code == -32700 || error.code == -32600 => StatusCode::BAD_REQUEST,
        _ => StatusCode::OK,
    };
    (status, axum::Json(response)).into_response()
}

async fn websocket(State(model): State<Shared>, upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(move |socket| serve_socket(model, socket))
}

/// One JSON-RPC request per text message, one response each, until the client closes.
async fn serve_socket(model: Shared, mut socket: WebSocket) {
    while let Some(Ok(message)) = socket.recv().await {
        let body = match message {
            Message::Text(text) => text.to_string(),
            Message::Close(_) => break,
            _ => continue,
        };
        let Some(response) = handle(Arc::clone(&model), body).await else { continue };
        let text = serde_json::to_string(&response).unwrap_or_default();
        if socket.send(Message::Text(text.into())).await.is_err() {
            break;
        }
    }
}

/// A scrape that could not be served is an error, never an empty success that Prometheus would store.
async fn metrics() -> Response {
    match tokio::task::spawn_blocking(|| timing_runtime::summary().to_prometheus()).await {
        Ok(text) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response(),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, format!("cannot make the summary: {error}")).into_response(),
    }
}

async fn summary() -> Response {
    match tokio::task::spawn_blocking(timing_runtime::summary).await {
        Ok(run) => axum::Json(run).into_response(),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, format!("cannot make the summary: {error}")).into_response(),
    }
}

/// The server's routes over `model`.
pub fn app(model: Shared) -> Router {
    Router::new()
        .route("/rpc", post(rpc))
        .route("/ws", get(websocket))
        .route("/metrics", get(metrics))
        .route("/summary", get(summary))
        .with_state(model)
}

/// Options: `--listen ADDRESS` and `--samples N`.
fn options() -> Result<(String, usize), String> {
    let (mut listen, mut samples) = ("127.0.0.1:7878".to_owned(), 256);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => listen = args.next().ok_or("--listen needs an address")?,
            "--samples" => {
                let value = args.next().ok_or("--samples needs a number")?;
                samples = value
                    .parse()
                    .ok()
                    .filter(|n| *n >= 2)
                    .ok_or(format!("--samples takes 2 or more, not `{value}`"))?;
            }
            other => return Err(format!("unknown option `{other}`; usage: server [--listen ADDRESS] [--samples N]")),
        }
    }
    Ok((listen, samples))
}

#[allow(dead_code)]
fn main() -> std::process::ExitCode {
    let (listen, samples) = match options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot start the runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let served = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&listen).await?;
        eprintln!("listening on {listen}: POST /rpc, GET /ws, GET /metrics, GET /summary");
        axum::serve(listener, app(Arc::new(Mutex::new(Model::new(samples))))).await
    });
    match served {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("cannot serve on {listen}: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
