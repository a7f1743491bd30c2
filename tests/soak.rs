//! A soak test of the server example (issue 27): rounds of a mixed load from client threads on loopback
//! (batches of 1 to 200 steps, `getStep`, malformed JSON, wrong types, unknown methods, a 100 KB
//! parameter, an oversized body, half-open connections, `/metrics` and `/summary` scrapes). Every bad
//! request gets its error, nothing panics, a batch's p99 does not grow, and the process's resident memory
//! is printed round by round; with `SOAK_ROUNDS` set (a long run), it must stay within 5% once warm.

#![cfg(feature = "timing")]

#[path = "../examples/server.rs"]
#[allow(dead_code, clippy::cast_precision_loss, clippy::cast_possible_truncation)]
mod server;

mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use server::{Model, RpcResponse};

fn resident_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    statm.split_whitespace().nth(1).and_then(|pages| pages.parse::<u64>().ok()).unwrap_or(0) * 4
}

/// The slope of a least-squares line through `values`, a unit of them per index.
fn slope(values: &[u64]) -> f64 {
    let count = values.len() as f64;
    let mean_x = (count - 1.0) / 2.0;
    let mean_y = values.iter().sum::<u64>() as f64 / count.max(1.0);
    let (mut covariance, mut variance) = (0.0, 0.0);
    for (index, value) in values.iter().enumerate() {
        covariance += (index as f64 - mean_x) * (*value as f64 - mean_y);
        variance += (index as f64 - mean_x).powi(2);
    }
    covariance / variance.max(1.0)
}

/// glibc's own account of its heap (`mallinfo2`): the bytes in use in its arenas (`uordblks`), free in them
/// (`fordblks`) and in blocks mapped apart (`hblkhd`). Beside the resident set it tells a heap that holds
/// more live data (a leak, ours or anyone's) from one whose arenas hold more free space (the allocator's).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn heap_kib() -> Option<(u64, u64, u64)> {
    #[repr(C)]
    struct Mallinfo2 {
        arena: usize,
        ordblks: usize,
        smblks: usize,
        hblks: usize,
        hblkhd: usize,
        usmblks: usize,
        fsmblks: usize,
        uordblks: usize,
        fordblks: usize,
        keepcost: usize,
    }
    unsafe extern "C" {
        fn mallinfo2() -> Mallinfo2;
    }
    // SAFETY: glibc's `mallinfo2` (2.33 on) takes nothing and returns this struct by value.
    let info = unsafe { mallinfo2() };
    let kib = |bytes: usize| bytes as u64 / 1024;
    Some((kib(info.uordblks), kib(info.fordblks), kib(info.hblkhd)))
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn heap_kib() -> Option<(u64, u64, u64)> {
    None
}

/// xorshift, seeded per client.
struct Random(u64);

impl Random {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// A body above the server's limit (axum's 2 MiB), sent as one request in fifty.
const OVERSIZED: &str = "oversized";

/// What one request was, and what it must get.
enum Expect {
    Result,
    Error(i64),
    Status(u16),
}

/// One request of the mix: its path, its body and what it must get.
fn request(random: &mut Random, id: u64) -> (&'static str, String, Expect) {
    let rpc =
        |method: &str, params: &str| format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}","params":{params}}}"#);
    match random.below(100) {
        0..=64 => ("/rpc", rpc("trainBatch", &format!(r#"{{"steps":{}}}"#, 1 + random.below(200))), Expect::Result),
        65..=74 => ("/rpc", rpc("getStep", &format!(r#"{{"step":{}}}"#, random.below(100))), Expect::Result),
        75..=79 => ("/rpc", "{\"jsonrpc\":\"2.0\",\"id\":".to_owned(), Expect::Error(-32700)),
        80..=84 => ("/rpc", rpc("trainBatch", r#"{"steps":"many"}"#), Expect::Error(-32602)),
        85..=87 => ("/rpc", rpc("trainEpoch", r#"{"steps":5}"#), Expect::Error(-32601)),
        88..=89 => {
            ("/rpc", rpc("trainBatch", &format!(r#"{{"steps":"{}"}}"#, "9".repeat(100_000))), Expect::Error(-32602))
        }
        90..=91 => ("/rpc", OVERSIZED.to_owned(), Expect::Status(413)),
        92..=95 => ("/metrics", String::new(), Expect::Status(200)),
        _ => ("/summary", String::new(), Expect::Status(200)),
    }
}

fn client(address: SocketAddr, seed: u64, requests: u64, latencies: &Mutex<Vec<Duration>>) {
    let mut agent = common::http_agent(60);
    let mut random = Random(seed);
    let oversized = "x".repeat(3 << 20);
    for index in 0..requests {
        let (path, body, expect) = request(&mut random, seed * 1_000_000 + index);
        let url = format!("http://{address}{path}");
        let started = Instant::now();
        let response = if body.is_empty() {
            agent.get(&url).call()
        } else if body == OVERSIZED {
            // Made once per client and sent again: the client's own 3 MiB blocks, one a request, moved glibc's
            // threshold for mapping a block apart and were most of the process's growth.
            agent.post(&url).send(oversized.as_str())
        } else {
            agent.post(&url).send(&body)
        };
        if matches!(expect, Expect::Status(413)) {
            // The server closes a connection whose body it refused, maybe before the body is all sent: the
            // next request goes on a new connection.
            agent = common::http_agent(60);
        }
        let mut response = match response {
            Ok(response) => response,
            Err(_) if matches!(expect, Expect::Status(413)) => continue,
            Err(error) => panic!("{path}: no answer: {error}"),
        };
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        match expect {
            Expect::Status(expected) => assert_eq!(status, expected, "{path}: {text}"),
            Expect::Result | Expect::Error(_) => {
                let answer: RpcResponse = serde_json::from_str(&text).unwrap_or_else(|error| panic!("{error}: {text}"));
                match expect {
                    Expect::Result => {
                        assert!(answer.result.is_some(), "{body:.200}: {text:.300}");
                        if body.contains("trainBatch") {
                            latencies.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(started.elapsed());
                        }
                    }
                    Expect::Error(code) => {
                        assert_eq!(answer.error.map(|error| error.code), Some(code), "{body:.200}: {text:.300}");
                    }
                    Expect::Status(_) => {}
                }
            }
        }
    }
}

/// glibc's threshold for mapping a block apart, fixed at its default: left to move, it rises to the size of
/// the largest block freed (the 2 MiB of a refused body's buffer), and from then on such blocks come from
/// the arenas of the threads that made them, which grow round after round (52 to 92 MiB over 16 rounds
/// here). That is the allocator's behaviour, not the library's; a server that refuses large bodies sets it
/// so, or uses another allocator. The test runs in a child process started with it.
const THRESHOLD: (&str, &str) = ("MALLOC_MMAP_THRESHOLD_", "131072");

#[test]
fn a_server_under_mixed_load_answers_everything_and_its_memory_stays_flat() {
    if std::env::var_os(THRESHOLD.0).is_none() {
        let exe = std::env::current_exe().expect("the test knows where it is");
        let mut child = std::process::Command::new(exe)
            .args(["--exact", "a_server_under_mixed_load_answers_everything_and_its_memory_stays_flat", "--nocapture"])
            .env(THRESHOLD.0, THRESHOLD.1)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the test runs itself");
        // Read as it comes, keeping the figures and the last lines: the server logs a line a batch, which a
        // long run makes by the gigabyte.
        let mut figures = Vec::new();
        let mut tail = std::collections::VecDeque::new();
        let mut stderr = std::io::BufReader::new(child.stderr.take().expect("piped"));
        let mut bytes = Vec::new();
        // Bytes, not `lines()`: one line that is not UTF-8 would end `lines()`, and a child whose pipe is no
        // longer read blocks in its next write, with the server's threads behind it.
        while std::io::BufRead::read_until(&mut stderr, b'\n', &mut bytes).is_ok_and(|read| read > 0) {
            let line = String::from_utf8_lossy(&bytes).trim_end().to_owned();
            bytes.clear();
            if line.starts_with("resident") {
                figures.push(line);
            } else if !line.starts_with("{\"timing\"") {
                tail.push_back(line);
                if tail.len() > 200 {
                    tail.pop_front();
                }
            }
        }
        let status = child.wait().expect("the child ran");
        let tail: Vec<String> = tail.into();
        assert!(status.success(), "{}\n{}", figures.join("\n"), tail.join("\n"));
        eprintln!("{}", figures.join("\n"));
        return;
    }
    let _exclusive = common::exclusive();
    let rounds: usize = std::env::var("SOAK_ROUNDS").ok().and_then(|value| value.parse().ok()).unwrap_or(30).max(4);
    const CLIENTS: u64 = 8;
    const REQUESTS: u64 = 250;
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("a port");
    let address = listener.local_addr().expect("its address");
    let app = server::app(Arc::new(Mutex::new(Model::new(64))));
    runtime.spawn(async move { axum::serve(listener, app).await });
    // Some steps first, so that getStep has something to rebuild.
    client(address, 99, 20, &Mutex::new(Vec::new()));
    let mut resident = Vec::new();
    let mut heap = Vec::new();
    let mut p99 = Vec::new();
    for round in 0..rounds {
        // Half-open connections: opened, a few bytes sent, left for the round.
        let half_open: Vec<TcpStream> = (0..20)
            .filter_map(|_| TcpStream::connect(address).ok())
            .map(|mut stream| {
                let _ = stream.write_all(b"POST /rpc HTTP/1.1\r\nContent-Length: 100\r\n\r\n{");
                stream
            })
            .collect();
        let latencies = Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for client_index in 0..CLIENTS {
                let latencies = &latencies;
                scope.spawn(move || client(address, 1 + round as u64 * CLIENTS + client_index, REQUESTS, latencies));
            }
        });
        drop(half_open);
        let mut latencies = latencies.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
        latencies.sort();
        p99.push(latencies.get(latencies.len() * 99 / 100).copied().unwrap_or_default());
        resident.push(resident_kib());
        heap.push(heap_kib());
    }
    eprintln!("resident KiB by round: {resident:?}; p99 of trainBatch by round: {p99:?}");
    if heap.iter().all(Option::is_some) {
        let column = |pick: fn(&(u64, u64, u64)) -> u64| heap.iter().flatten().map(pick).collect::<Vec<_>>();
        eprintln!(
            "resident heap KiB by round, glibc's mallinfo2: in use {:?}; free in arenas {:?}; mapped apart {:?}",
            column(|heap| heap.0),
            column(|heap| heap.1),
            column(|heap| heap.2)
        );
    }
    // Warmed up after the first half of the rounds: the resident set rises over the first rounds, then
    // levels off, moving a few percent either way from round to round. glibc's own account says where the
    // rise goes: about a third is live data that stops growing (the server's keyframes, at most 1,024, the
    // threads' records), two thirds free space its arenas keep (60 rounds: in use 2.4 -> 4.2 MiB, free in
    // arenas 4.5 -> 9.0 MiB, both flat from round 25 on). The slope of a least-squares line through the
    // second half, in bytes a request, is printed with the curve for the resident set and for both parts of
    // the heap. Asserted only in a long run (`SOAK_ROUNDS` set, as the benchmark sets it): at the default
    // length the second half still holds the end of the warm-up, and the rounds' scatter makes the slope
    // uncertain by about 12 bytes.
    let half = rounds / 2;
    let late = &resident[half..];
    let warm = resident[..half].iter().max().copied().unwrap_or(0);
    let high = late.iter().max().copied().unwrap_or(0);
    let requests = (CLIENTS * REQUESTS) as f64;
    eprintln!(
        "resident set over the second half: {:+.1} bytes a request, highest {high} KiB against {warm} KiB in the \
         first half",
        slope(late) * 1024.0 / requests
    );
    if heap.iter().all(Option::is_some) {
        let in_use: Vec<u64> = heap[half..].iter().flatten().map(|heap| heap.0).collect();
        let free: Vec<u64> = heap[half..].iter().flatten().map(|heap| heap.1).collect();
        eprintln!(
            "resident heap over the second half: in use {:+.1} bytes a request, free in arenas {:+.1}",
            slope(&in_use) * 1024.0 / requests,
            slope(&free) * 1024.0 / requests
        );
    }
    if std::env::var_os("SOAK_ROUNDS").is_some() {
        assert!(high <= warm + warm / 20, "resident memory rose by more than 5% once warm: {resident:?} KiB");
    }
    // The p99 latency of a batch does not grow (over noise: twice the warmed-up rounds' worst).
    let warm_p99 = p99[half - 2..half].iter().max().copied().unwrap_or_default();
    let late_p99 = p99[p99.len() - 2..].iter().min().copied().unwrap_or_default();
    assert!(late_p99 <= warm_p99 * 2 + Duration::from_millis(5), "p99 grew: {p99:?}");
    // Every trained step is in the summary.
    assert!(timing_runtime::summary().total_steps > 0);
}
