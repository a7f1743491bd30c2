//! `serve(address)` (issue 29) as a client sees it, over real sockets on loopback: the page, `/metrics`
//! and `/summary.json` follow a run while it trains; every request it cannot serve gets its own 4xx; a
//! stuck client holds one connection and nothing else, too many get 503, and the server stops at once
//! when dropped, with clients still connected.

#![cfg(all(feature = "serve", feature = "timing"))]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{exclusive, spin};
use timing_runtime::{serve, timed};

#[timed(phase = "regions")]
fn regions() {
    spin(20);
}

#[timed(step)]
fn step() {
    regions();
}

#[timed(batch)]
fn batch() {
    for _ in 0..10 {
        step();
    }
}

/// An answer: its status, its head's lines and its body.
struct Answer {
    status: u16,
    head: String,
    body: String,
}

/// Sends `request` as written and reads the whole answer (the server closes every connection).
fn send(address: SocketAddr, request: &[u8]) -> Answer {
    let mut stream = TcpStream::connect(address).expect("the server accepts");
    stream.set_read_timeout(Some(Duration::from_secs(20))).expect("a timeout");
    stream.write_all(request).expect("the request is sent");
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).expect("the answer is read");
    let text = String::from_utf8(bytes).expect("answers are UTF-8");
    let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
    let status = head.split(' ').nth(1).and_then(|status| status.parse().ok()).expect("a status");
    Answer { status, head: head.to_owned(), body: body.to_owned() }
}

fn get(address: SocketAddr, path: &str) -> Answer {
    send(address, format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes())
}

/// `timing_steps_total` in an exposition.
fn steps_in(metrics: &str) -> u64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("timing_steps_total "))
        .and_then(|value| value.parse().ok())
        .expect("timing_steps_total")
}

/// Trains batches on a thread of its own until `stop` is set.
fn train_until(stop: &'static AtomicBool) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            batch();
        }
    })
}

#[test]
fn the_page_metrics_and_summary_follow_the_run_while_it_trains() {
    let _guard = exclusive();
    static STOP: AtomicBool = AtomicBool::new(false);
    let server = serve(":0").expect("a loopback port");
    let address = server.local_addr();
    assert!(address.ip().is_loopback(), "a port alone binds loopback: {address}");
    let trainer = train_until(&STOP);
    std::thread::sleep(Duration::from_millis(300));
    let first = get(address, "/metrics");
    assert_eq!(first.status, 200, "{}", first.head);
    assert!(first.head.contains("Content-Type: text/plain; version=0.0.4"), "{}", first.head);
    // The server makes a summary every 500 ms while it is asked: the count grows.
    let started = Instant::now();
    let later = loop {
        std::thread::sleep(Duration::from_millis(100));
        let later = get(address, "/metrics");
        if steps_in(&later.body) > steps_in(&first.body) {
            break later;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "no new summary in 5 s: {}", steps_in(&later.body));
    };

    let json = get(address, "/summary.json");
    assert_eq!(json.status, 200);
    assert!(json.head.contains("Content-Type: application/json"));
    let run: timing_runtime::TrainingSummary = serde_json::from_str(&json.body).expect("a summary");
    assert!(run.total_steps >= steps_in(&later.body) as usize && run.phase_breakdown.phases[0].phase == "regions");
    // With the call tree (made at most every 10 s), or without it for a reader that polls.
    assert!(run.call_tree.nodes.iter().any(|node| node.name == "regions" && node.depth == 2), "{:?}", run.call_tree);
    let light = get(address, "/summary.json?calltree=false");
    let light: timing_runtime::TrainingSummary = serde_json::from_str(&light.body).expect("a summary");
    assert!(light.call_tree.nodes.is_empty() && light.total_steps >= run.total_steps);

    let page = get(address, "/");
    assert_eq!(page.status, 200);
    assert!(page.head.contains("Content-Type: text/html; charset=utf-8"));
    assert!(page.body.starts_with("<!DOCTYPE html>") && page.body.contains("<body data-live=\"\">"));
    assert!(page.body.contains("id=\"live-status\"") && page.body.contains("regions"));
    // HEAD: the head of GET, its length included, and no body.
    let head = send(address, b"HEAD /metrics HTTP/1.1\r\n\r\n");
    assert_eq!((head.status, head.body.as_str()), (200, ""));
    assert!(head.head.contains("Content-Length: "));
    STOP.store(true, Ordering::Relaxed);
    trainer.join().expect("the trainer ends");
}

#[test]
fn requests_it_cannot_serve_get_their_own_4xx() {
    let server = serve("127.0.0.1:0").expect("a loopback port");
    let address = server.local_addr();
    let cases: [(&[u8], u16, &str); 8] = [
        (b"GET /nothing HTTP/1.1\r\n\r\n", 404, "nothing at /nothing"),
        (b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 405, "only GET and HEAD"),
        (b"DELETE / HTTP/1.1\r\n\r\n", 405, "only GET and HEAD"),
        (b"garbage\r\n\r\n", 400, "METHOD TARGET"),
        (b"GET / HTTP/3\r\n\r\n", 400, "HTTP/1.0 and HTTP/1.1"),
        (b"GET / HTTP/1.1\r\nContent-Length: 100\r\n\r\n", 413, "no body"),
        (b"GET / HTTP/1.1\r\nbroken header\r\n\r\n", 400, "without a `:`"),
        (b"GET / HTTP/1.1\r\n\xff\xfe: x\r\n\r\n", 400, "not UTF-8"),
    ];
    for (request, status, says) in cases {
        let answer = send(address, request);
        assert_eq!(answer.status, status, "{:?}: {}", String::from_utf8_lossy(request), answer.head);
        assert!(answer.body.contains(says), "{:?}: {}", String::from_utf8_lossy(request), answer.body);
    }
    assert!(send(address, b"PUT / HTTP/1.1\r\n\r\n").head.contains("Allow: GET, HEAD"));
    // A head of 20 KiB (one long header) is refused as too large, not read on and on.
    let mut long = b"GET / HTTP/1.1\r\nX-Long: ".to_vec();
    long.extend(std::iter::repeat_n(b'a', 20 * 1024));
    long.extend_from_slice(b"\r\n\r\n");
    assert_eq!(send(address, &long).status, 431);
}

#[test]
fn a_stuck_client_holds_one_connection_and_too_many_get_503() {
    let server = serve(":0").expect("a loopback port");
    let address = server.local_addr();
    // Clients that connect and send nothing, or half a request.
    let mut stuck: Vec<TcpStream> = (0..16).map(|_| TcpStream::connect(address).expect("accepted")).collect();
    stuck[0].write_all(b"GET /met").expect("half a request");
    // Once the server has taken them all in (each is accepted in turn), the next is refused at once.
    let started = Instant::now();
    loop {
        let start = Instant::now();
        let refused = get(address, "/metrics");
        if refused.status == 503 {
            assert!(start.elapsed() < Duration::from_secs(1), "503 at once: {:?}", start.elapsed());
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "16 stuck clients and still answered: {}", refused.head);
        std::thread::sleep(Duration::from_millis(50));
    }
    // Once they go, the server answers again.
    stuck.clear();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = get(address, "/metrics");
        if answer.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "still refused 10 s after the stuck clients left");
        std::thread::sleep(Duration::from_millis(50));
    }
    // A client that stays connected without finishing its request is cut off after its deadline (5 s),
    // with 408, while others are answered at once beside it.
    let mut slow = TcpStream::connect(address).expect("accepted");
    slow.write_all(b"GET / HTTP/1.1\r\n").expect("a line");
    let start = Instant::now();
    assert_eq!(get(address, "/metrics").status, 200);
    assert!(start.elapsed() < Duration::from_secs(2), "answered beside a slow client: {:?}", start.elapsed());
    slow.set_read_timeout(Some(Duration::from_secs(20))).expect("a timeout");
    let mut answer = String::new();
    slow.read_to_string(&mut answer).expect("an answer");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let waited = start.elapsed();
    assert!(waited > Duration::from_secs(4) && waited < Duration::from_secs(10), "cut off after {waited:?}");
}

#[test]
fn dropping_the_server_stops_it_at_once_with_clients_still_connected() {
    let server = serve(":0").expect("a loopback port");
    let address = server.local_addr();
    let _stuck: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(address).expect("accepted")).collect();
    std::thread::sleep(Duration::from_millis(100));
    let start = Instant::now();
    drop(server);
    assert!(start.elapsed() < Duration::from_secs(1), "stopped in {:?}", start.elapsed());
    assert!(TcpStream::connect(address).is_err(), "nothing listens on {address} once stopped");
    // The port is free again for another server.
    let again = serve(&address.to_string()).expect("the same port, bound again");
    assert_eq!(get(again.local_addr(), "/metrics").status, 200);
}

#[test]
fn an_address_that_cannot_be_served_is_an_error() {
    assert!(serve("not an address").is_err());
    assert!(serve("127.0.0.1:99999").is_err());
    let taken = serve(":0").expect("a loopback port");
    let error = serve(&taken.local_addr().to_string()).expect_err("the port is taken");
    assert_eq!(error.kind(), std::io::ErrorKind::AddrInUse);
}
