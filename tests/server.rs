//! The server example (issue 7): a batch trained on request comes back as JSON with its timing, and the
//! client parses it into the same types.

#![cfg(feature = "timing")]

#[path = "../examples/server.rs"]
#[allow(dead_code, clippy::cast_precision_loss, clippy::cast_possible_truncation)]
mod server;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};

use server::{ErrorResponse, TrainResponse};

#[test]
fn a_batch_response_carries_its_timing_over_the_wire() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let accept = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        server::serve(stream).unwrap();
    });
    let stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut lines = BufReader::new(stream).lines();
    let mut ask = |line: &str| -> String {
        writeln!(writer, "{line}").unwrap();
        lines.next().unwrap().unwrap()
    };

    let first: TrainResponse = serde_json::from_str(&ask(r#"{"id":1,"steps":200}"#)).unwrap();
    let second: TrainResponse = serde_json::from_str(&ask(r#"{"id":2,"steps":300}"#)).unwrap();
    assert_eq!((first.id, second.id), (1, 2));
    assert!(second.error < first.error, "training goes on across requests: {} then {}", first.error, second.error);
    let timing = second.timing.expect("timing is on");
    assert_eq!(timing.steps, 300);
    assert!(timing.compute_ns > 0 && timing.steps_per_second > 0.0, "{timing:?}");
    let records = timing.step_timings.as_ref().expect("per-step records at the default granularity");
    assert_eq!(records.len(), 300);
    assert!(records.iter().all(|step| step.total_ns >= step.phase_ns("gradient")));
    assert!(records.iter().map(|step| step.total_ns).sum::<u64>() <= timing.compute_ns);

    let refused: ErrorResponse = serde_json::from_str(&ask(r#"{"id":3,"steps":0}"#)).unwrap();
    assert!(refused.error.contains("steps must be"), "{refused:?}");
    let garbage: ErrorResponse = serde_json::from_str(&ask("not json")).unwrap();
    assert!(garbage.error.starts_with("bad request"), "{garbage:?}");

    // Closing the connection ends the server's loop.
    drop((writer, lines));
    accept.join().unwrap();
}
