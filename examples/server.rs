//! Training behind a server: each request trains one batch, and the response carries the batch's timing,
//! as a websocket or RPC server of an optimizer would send it to its client.
//!
//! Line-delimited JSON over TCP on loopback, with std only:
//!
//! ```text
//! cargo run --release --example server            # listens on 127.0.0.1:7878
//! printf '{"id":1,"steps":500}\n' | nc 127.0.0.1 7878
//! {"id":1,"error":0.0123,"timing":{"steps":500,"compute_ns":812345,"step_timings":null,...}}
//! ```

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};

use serde::{Deserialize, Serialize};
use timing_runtime::{BatchTiming, TimingGranularity, timed};

/// What a client asks for: train `steps` more steps.
#[derive(Debug, Deserialize, Serialize)]
pub struct TrainRequest {
    pub id: u64,
    pub steps: usize,
}

/// What the server answers: the model's error after the batch and how the batch's time was spent.
#[derive(Debug, Deserialize, Serialize, PartialEq)]
pub struct TrainResponse {
    pub id: u64,
    pub error: f64,
    /// `None` when timing is compiled out or switched off.
    pub timing: Option<BatchTiming>,
}

/// A line that could not be served.
#[derive(Debug, Deserialize, Serialize, PartialEq)]
pub struct ErrorResponse {
    pub error: String,
}

/// A least-squares fit of `y = a·x + b` to noisy samples of `y = 3x - 2`, by gradient descent.
pub struct Model {
    a: f64,
    b: f64,
    xs: Vec<f64>,
    ys: Vec<f64>,
}

impl Model {
    pub fn new() -> Self {
        let xs: Vec<f64> = (0..256).map(|i| f64::from(i) / 64.0).collect();
        let ys = xs.iter().enumerate().map(|(i, x)| 3.0 * x - 2.0 + 0.01 * ((i * 37 % 17) as f64 - 8.0)).collect();
        Model { a: 0.0, b: 0.0, xs, ys }
    }
}

impl Default for Model {
    fn default() -> Self {
        Self::new()
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

fn train(model: &mut Model, steps: usize) -> f64 {
    (0..steps).fold(f64::NAN, |_, _| step(model))
}

/// Serves one request line: trains the batch it asks for and returns the response line.
pub fn handle_line(model: &mut Model, line: &str) -> String {
    let response = match serde_json::from_str::<TrainRequest>(line) {
        Ok(request) if request.steps > 0 && request.steps <= 1_000_000 => {
            // The batch's timing comes back from the call that ran it.
            let (error, timing) = timing_runtime::batch("train_batch", || train(model, request.steps));
            if let Some(batch) = &timing {
                // One structured line per batch, for the server's log: grep '"timing":"batch"'.
                eprintln!("{}", batch.json_line());
            }
            serde_json::to_string(&TrainResponse { id: request.id, error, timing })
        }
        Ok(request) => serde_json::to_string(&ErrorResponse {
            error: format!("steps must be between 1 and 1000000, not {}", request.steps),
        }),
        Err(error) => serde_json::to_string(&ErrorResponse { error: format!("bad request: {error}") }),
    };
    response.unwrap_or_else(|error| format!("{{\"error\":\"{error}\"}}"))
}

/// Serves one connection until the client closes it; each connection trains its own model.
pub fn serve(stream: TcpStream) -> std::io::Result<()> {
    let mut model = Model::new();
    let mut writer = stream.try_clone()?;
    for line in BufReader::new(stream).lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        writeln!(writer, "{}", handle_line(&mut model, &line))?;
    }
    Ok(())
}

#[allow(dead_code)]
fn main() -> std::io::Result<()> {
    // Per-step records are what a client plotting step times wants; `Batch` would send totals only.
    timing_runtime::set_granularity(TimingGranularity::Step);
    let address = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:7878".to_owned());
    let listener = TcpListener::bind(&address)?;
    eprintln!("listening on {address}; send lines like {{\"id\":1,\"steps\":500}}");
    for stream in listener.incoming() {
        let stream = stream?;
        std::thread::spawn(move || {
            if let Err(error) = serve(stream) {
                eprintln!("connection closed: {error}");
            }
        });
    }
    Ok(())
}
