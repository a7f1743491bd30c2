//! The server example (issues 7 and 19): a batch trained on request comes back with its timing over
//! JSON-RPC, on HTTP and on WebSocket; `/metrics` serves the Prometheus exposition; a bad request gets a
//! JSON-RPC error and changes neither the model nor the metrics.

#![cfg(feature = "timing")]

#[path = "../examples/server.rs"]
#[allow(dead_code, clippy::cast_precision_loss, clippy::cast_possible_truncation)]
mod server;

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use server::{Model, RpcResponse};

/// The recorded data is process-wide: one test at a time, from a clean slate.
static EXCLUSIVE: Mutex<()> = Mutex::new(());

/// A server on an ephemeral loopback port, on a runtime of its own; returns its address.
fn start() -> (std::net::SocketAddr, tokio::runtime::Runtime) {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("a port");
    let address = listener.local_addr().expect("its address");
    let app = server::app(Arc::new(Mutex::new(Model::new(256))));
    runtime.spawn(async move { axum::serve(listener, app).await });
    (address, runtime)
}

fn agent() -> ureq::Agent {
    common::http_agent(30)
}

/// Posts `body` to `/rpc`: the HTTP status and the response.
fn call(address: std::net::SocketAddr, body: &str) -> (u16, RpcResponse) {
    let mut response = agent().post(&format!("http://{address}/rpc")).send(body).expect("the server answers");
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().expect("a body");
    (status, serde_json::from_str(&text).unwrap_or_else(|error| panic!("{error}: {text}")))
}

fn get(address: std::net::SocketAddr, path: &str) -> String {
    let mut response = agent().get(&format!("http://{address}{path}")).call().expect("the server answers");
    assert_eq!(response.status().as_u16(), 200);
    response.body_mut().read_to_string().expect("a body")
}

fn steps_total(metrics: &str) -> Option<f64> {
    metrics.lines().find_map(|line| line.strip_prefix("timing_steps_total ")?.parse().ok())
}

#[test]
fn a_batch_response_carries_its_timing_and_metrics_follow() {
    let _exclusive = EXCLUSIVE.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    timing_runtime::reset();
    let (address, _runtime) = start();
    let train = |id: u64, steps: u64| {
        call(address, &format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"trainBatch","params":{{"steps":{steps}}}}}"#))
    };
    let (status, first) = train(1, 200);
    let (_, second) = train(2, 300);
    assert_eq!((status, first.id.clone(), second.id.clone()), (200, 1.into(), 2.into()));
    let (first, second) = (first.result.expect("a result"), second.result.expect("a result"));
    assert!(second.error < first.error, "training goes on across requests: {} then {}", first.error, second.error);
    let timing = second.timing.expect("timing is on");
    assert_eq!(timing.steps, 300);
    assert!(timing.compute_ns > 0 && timing.steps_per_second > 0.0, "{timing:?}");
    let records = timing.step_timings.as_ref().expect("per-step records at the default granularity");
    assert_eq!(records.len(), 300);
    assert!(records.iter().all(|step| step.total_ns >= step.phase_ns("gradient")));
    assert!(records.iter().map(|step| step.total_ns).sum::<u64>() <= timing.compute_ns);

    let metrics = get(address, "/metrics");
    assert_eq!(steps_total(&metrics), Some(500.0), "{metrics}");
    assert!(metrics.contains(r#"timing_phase_seconds_total{phase="gradient"}"#), "{metrics}");
    let summary: timing_runtime::TrainingSummary = serde_json::from_str(&get(address, "/summary")).expect("JSON");
    assert_eq!(summary.total_steps, 500);

    // Bad requests: a JSON-RPC error each, and nothing trained.
    let bad = [
        ("not json", 400, -32700),
        (r#"{"id":3,"method":"trainBatch","params":{"steps":5}}"#, 400, -32600),
        (r#"{"jsonrpc":"2.0","id":4,"method":"trainEpoch","params":{"steps":5}}"#, 200, -32601),
        (r#"{"jsonrpc":"2.0","id":5,"method":"trainBatch","params":{"steps":0}}"#, 200, -32602),
        (r#"{"jsonrpc":"2.0","id":6,"method":"trainBatch","params":{"steps":"many"}}"#, 200, -32602),
        (r#"{"jsonrpc":"2.0","id":7,"method":"trainBatch","params":{"steps":1000001}}"#, 200, -32602),
    ];
    for (body, expected_status, code) in bad {
        let (status, response) = call(address, body);
        let error = response.error.unwrap_or_else(|| panic!("no error for {body}"));
        assert_eq!((status, error.code), (expected_status, code), "{body}: {}", error.message);
        assert!(response.result.is_none() && !error.message.is_empty());
    }
    assert_eq!(steps_total(&get(address, "/metrics")), Some(500.0));
    // A notification (no id) is served and not answered.
    let notification = r#"{"jsonrpc":"2.0","method":"trainBatch","params":{"steps":7}}"#;
    let response = agent().post(&format!("http://{address}/rpc")).send(notification).expect("the server answers");
    assert_eq!(response.status().as_u16(), 204);
    assert_eq!(steps_total(&get(address, "/metrics")), Some(507.0));
    let (_, third) = train(8, 10);
    assert!(third.result.expect("a result").error < second.error, "the model was left as it was");
}

#[test]
fn json_rpc_over_websocket() {
    let _exclusive = EXCLUSIVE.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let (address, runtime) = start();
    runtime.block_on(async {
        let (mut socket, _) =
            tokio_tungstenite::connect_async(format!("ws://{address}/ws")).await.expect("the upgrade succeeds");
        let request = r#"{"jsonrpc":"2.0","id":"a","method":"trainBatch","params":{"steps":50}}"#;
        socket.send(tokio_tungstenite::tungstenite::Message::text(request)).await.expect("sent");
        let wait = Duration::from_secs(30);
        let answer =
            tokio::time::timeout(wait, socket.next()).await.expect("in time").expect("an answer").expect("a message");
        let response: RpcResponse = serde_json::from_str(answer.to_text().expect("text")).expect("JSON-RPC");
        assert_eq!(response.id, "a");
        assert_eq!(response.result.and_then(|result| result.timing).map(|timing| timing.steps), Some(50));
        socket.send(tokio_tungstenite::tungstenite::Message::text("{}")).await.expect("sent");
        let answer =
            tokio::time::timeout(wait, socket.next()).await.expect("in time").expect("an answer").expect("a message");
        let response: RpcResponse = serde_json::from_str(answer.to_text().expect("text")).expect("JSON-RPC");
        assert_eq!(response.error.map(|error| error.code), Some(-32600));
        socket.close(None).await.expect("closed");
    });
}

#[test]
fn get_step_replays_from_the_nearest_keyframe_and_says_how_long_it_took() {
    let _exclusive = EXCLUSIVE.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    timing_runtime::reset();
    let (address, _runtime) = start();
    let (_, trained) = call(address, r#"{"jsonrpc":"2.0","id":1,"method":"trainBatch","params":{"steps":250}}"#);
    let trained = trained.result.expect("trained");
    let (status, rebuilt) = call(address, r#"{"jsonrpc":"2.0","id":2,"method":"getStep","params":{"step":230}}"#);
    assert_eq!(status, 200);
    let rebuilt = rebuilt.result.expect("rebuilt");
    let recompute = rebuilt.recompute.expect("its timing");
    assert_eq!((recompute.keyframe_step, recompute.target_step, recompute.steps_recomputed), (200, 230, 30));
    assert!(recompute.compute_ns > 0 && recompute.per_step_ns > 0.0, "{recompute:?}");
    assert!(rebuilt.timing.is_none());
    // Step 230's error, above the error after all 250 (the model was still descending).
    assert!(rebuilt.error > trained.error, "{} then {}", rebuilt.error, trained.error);
    // Step 250 itself is a keyframe away from 200 and the trained state: the same error.
    let (_, last) = call(address, r#"{"jsonrpc":"2.0","id":3,"method":"getStep","params":{"step":250}}"#);
    assert!((last.result.expect("rebuilt").error - trained.error).abs() < 1e-12);
    // Replayed steps are not trained steps; the summary counts them apart.
    let summary: timing_runtime::TrainingSummary = serde_json::from_str(&get(address, "/summary")).expect("JSON");
    assert_eq!(summary.total_steps, 250);
    assert_eq!(summary.recomputations.map(|replays| (replays.count, replays.steps_replayed)), Some((2, 80)));
    // A step not trained yet is a bad parameter.
    let (_, ahead) = call(address, r#"{"jsonrpc":"2.0","id":4,"method":"getStep","params":{"step":251}}"#);
    assert_eq!(ahead.error.map(|error| error.code), Some(-32602));
}
