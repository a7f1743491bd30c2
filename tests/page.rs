//! The run's page as a person sees it (issue 20): a run recorded here is written with `to_html`, opened
//! from its file in headless Chromium, and looked at through the DevTools protocol: no console error or
//! exception, no request but for the file itself, every section, chart and table present with the run's
//! phase and span names (names HTML would misread among them), the span table sorting when a header is
//! clicked, the flamegraph's own script running and zooming on a click, and a screenshot of the whole page
//! (`target/tmp/page/report.png`).
//!
//! Needs Debian's `chromium` (`.ci/run` installs it) and the `browser` feature: `.ci/run` runs
//! `cargo test --features browser --test page`. Chromium is started on loopback with a new profile and no
//! background networking, bounded in time, and killed by its pid however the test ends.

#![cfg(all(feature = "browser", feature = "html", feature = "timing"))]

mod common;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{exclusive, spin};
use serde_json::{Value, json};
use timing_runtime::{summary, timed};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

#[timed(phase = "line search")]
fn line_search(micros: u64) {
    spin(micros);
}

#[timed(phase = "gradient")]
fn gradient() {
    spin(4);
    project();
}

/// A span name with every character HTML gives a meaning to.
#[timed(name = "<project> & \"co\"")]
fn project() {
    spin(1);
}

#[timed(phase = "update")]
fn update() {
    spin(2);
    Optimizer::apply_the_momentum_of_every_parameter();
}

struct Optimizer;

impl Optimizer {
    /// A long name of a method, as real code has: it may wrap after its `::`, never inside a word.
    #[timed(name = "Optimizer::apply_the_momentum_of_every_parameter")]
    fn apply_the_momentum_of_every_parameter() {
        spin(1);
    }
}

#[timed(step)]
fn step(line_search_micros: u64) {
    line_search(line_search_micros);
    gradient();
    update();
}

#[timed(batch)]
fn batch(index: u64) {
    for step_index in 0..20 {
        // One stalled step, in the line search, for the slow-step table.
        let stall = if index == 5 && step_index == 7 { 3_000 } else { 0 };
        step(3 + index / 3 + stall);
    }
}

/// Chromium, killed and waited for by its pid when the test ends, however it ends.
struct Browser {
    child: Child,
    profile: PathBuf,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

const DEADLINE: Duration = Duration::from_secs(60);

impl Browser {
    fn start(dir: &Path) -> Browser {
        let profile = dir.join("profile");
        let _ = std::fs::remove_dir_all(&profile);
        std::fs::create_dir_all(&profile).expect("a profile directory");
        let log = std::fs::File::create(dir.join("chromium.log")).expect("a log file");
        let child = Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                "--window-size=1100,900",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start chromium (Debian's package `chromium`): {error}"));
        Browser { child, profile }
    }

    /// The DevTools port, which Chromium writes into the profile once it listens.
    fn port(&mut self) -> u16 {
        let started = Instant::now();
        let file = self.profile.join("DevToolsActivePort");
        loop {
            if let Some(port) = std::fs::read_to_string(&file).ok().and_then(|text| text.lines().next()?.parse().ok()) {
                return port;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("chromium exited before listening: {status}");
            }
            assert!(started.elapsed() < DEADLINE, "chromium did not listen within {DEADLINE:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A DevTools protocol connection to one page: commands and their answers, and every event seen meanwhile.
struct Page {
    socket: WebSocket<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    events: Vec<Value>,
}

impl Page {
    fn connect(port: u16) -> Page {
        let started = Instant::now();
        let list = loop {
            let answer = common::http_agent(5).get(&format!("http://127.0.0.1:{port}/json/list")).call();
            if let Ok(mut answer) = answer {
                let text = answer.body_mut().read_to_string().expect("the target list");
                let list: Value = serde_json::from_str(&text).expect("the target list is JSON");
                if list.as_array().is_some_and(|targets| targets.iter().any(|target| target["type"] == "page")) {
                    break list;
                }
            }
            assert!(started.elapsed() < DEADLINE, "no page target within {DEADLINE:?}");
            std::thread::sleep(Duration::from_millis(50));
        };
        let target = list.as_array().into_iter().flatten().find(|target| target["type"] == "page").expect("a page");
        let url = target["webSocketDebuggerUrl"].as_str().expect("a debugger address");
        let (socket, _) = tungstenite::connect(url).expect("the page's DevTools socket");
        if let MaybeTlsStream::Plain(stream) = socket.get_ref() {
            stream.set_read_timeout(Some(Duration::from_secs(5))).expect("a read timeout");
        }
        Page { socket, next_id: 1, events: Vec::new() }
    }

    fn read(&mut self) -> Value {
        loop {
            match self.socket.read().expect("a DevTools message within 5 s") {
                Message::Text(text) => return serde_json::from_str(&text).expect("DevTools speaks JSON"),
                Message::Close(_) => panic!("chromium closed the DevTools connection"),
                _ => {}
            }
        }
    }

    /// Sends a command and returns its result, keeping the events that arrive before it.
    fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let command = json!({ "id": id, "method": method, "params": params });
        self.socket.send(Message::text(command.to_string())).expect("a DevTools command sent");
        let started = Instant::now();
        loop {
            let message = self.read();
            if message["id"] == id {
                assert!(message.get("error").is_none(), "{method} failed: {message}");
                return message["result"].clone();
            }
            self.events.push(message);
            assert!(started.elapsed() < DEADLINE, "no answer to {method} within {DEADLINE:?}");
        }
    }

    /// Waits for an event of `method`, among those seen already or to come.
    fn wait_for(&mut self, method: &str) {
        let started = Instant::now();
        while !self.events.iter().any(|event| event["method"] == method) {
            let message = self.read();
            self.events.push(message);
            assert!(started.elapsed() < DEADLINE, "no {method} within {DEADLINE:?}");
        }
    }

    /// The value of a script run in the page (awaited if it is a promise), as JSON.
    fn eval(&mut self, script: &str) -> Value {
        let result =
            self.call("Runtime.evaluate", json!({ "expression": script, "returnByValue": true, "awaitPromise": true }));
        assert!(result.get("exceptionDetails").is_none(), "the script threw: {script}\n{result}");
        result["result"]["value"].clone()
    }

    /// Console errors and warnings, uncaught exceptions and the browser's own error entries (a resource that
    /// failed to load, a blocked request), as text.
    fn problems(&self) -> Vec<String> {
        self.events
            .iter()
            .filter(|event| match event["method"].as_str() {
                Some("Runtime.exceptionThrown") => true,
                Some("Runtime.consoleAPICalled") => {
                    matches!(event["params"]["type"].as_str(), Some("error" | "warning" | "assert"))
                }
                Some("Log.entryAdded") => {
                    matches!(event["params"]["entry"]["level"].as_str(), Some("error" | "warning"))
                }
                _ => false,
            })
            .map(Value::to_string)
            .collect()
    }
}

fn strings(value: &Value) -> Vec<String> {
    value.as_array().into_iter().flatten().filter_map(|item| item.as_str().map(str::to_owned)).collect()
}

#[test]
fn the_page_opens_clean_and_shows_the_run() {
    let _guard = exclusive();
    for index in 0..30 {
        batch(index);
    }
    let run = summary();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("page");
    std::fs::create_dir_all(&dir).expect("a directory for the page");
    let file = dir.join("report.html");
    run.write_html(&file, "page test").expect("the page is written");

    let mut browser = Browser::start(&dir);
    let port = browser.port();
    let mut page = Page::connect(port);
    for domain in ["Runtime.enable", "Log.enable", "Page.enable", "Network.enable"] {
        page.call(domain, json!({}));
    }
    let url = format!("file://{}", file.canonicalize().expect("the page's path").display());
    page.call("Page.navigate", json!({ "url": url }));
    page.wait_for("Page.loadEventFired");
    // The flamegraph lays itself out in a timeout after its load: two frames later it has.
    page.eval("new Promise((done) => setTimeout(() => requestAnimationFrame(() => requestAnimationFrame(done)), 100))");

    let phases: Vec<String> = run.phase_breakdown.phases.iter().map(|share| share.phase.clone()).collect();
    assert_eq!(phases.len(), 3, "{phases:?}");

    // Every section, in order.
    let sections = strings(&page.eval("Array.from(document.querySelectorAll('section'), (s) => s.id)"));
    assert_eq!(sections, ["breakdown", "over-the-run", "per-step", "call-tree", "spans", "slow-steps"]);

    // Both charts drawn, each naming every phase (the one over the run in its legend, below it); the
    // breakdown table lists them with their shares.
    for (chart, names) in [("over-the-run", "ul.legend"), ("per-step", "svg.chart")] {
        let text = page.eval(&format!("document.querySelector('#{chart} {names}')?.textContent ?? ''"));
        let text = text.as_str().unwrap_or_default();
        assert!(!text.is_empty(), "no chart in #{chart}");
        for phase in &phases {
            assert!(text.contains(phase.as_str()), "#{chart} does not name phase {phase}: {text}");
        }
    }
    // The legend is below the chart, not over its areas; the areas run the whole width of the plot, from
    // the first batch to the last (the widest horizontal grid line is the plot's width).
    let layout = page.eval(
        "(() => { const svg = document.querySelector('#over-the-run svg.chart'); \
         const legend = document.querySelector('#over-the-run ul.legend').getBoundingClientRect(); \
         const grid = Array.from(svg.querySelectorAll('line, polyline'), (e) => e.getBBox()).filter((b) => b.height < 1); \
         const areas = Array.from(svg.querySelectorAll('polygon'), (e) => e.getBBox()); \
         return { below: legend.top >= svg.getBoundingClientRect().bottom - 0.5, \
                  plot: Math.max(...grid.map((b) => b.width)), \
                  covered: Math.max(...areas.map((b) => b.width)), \
                  left: Math.min(...grid.filter((b) => b.width > 100).map((b) => b.x)), \
                  from: Math.min(...areas.map((b) => b.x)) }; })()",
    );
    assert_eq!(layout["below"], true, "the legend overlaps the chart: {layout}");
    let (plot, covered) = (layout["plot"].as_f64().unwrap_or(0.0), layout["covered"].as_f64().unwrap_or(0.0));
    assert!(plot > 100.0 && covered >= plot - 3.0, "the areas leave part of the plot blank: {layout}");
    // A filled area for each phase and one for the time outside phases.
    let areas = page.eval("document.querySelectorAll('#over-the-run svg.chart polygon').length");
    assert_eq!(areas.as_u64(), Some(phases.len() as u64 + 1), "the stacked areas");
    let bars = page.eval("document.querySelectorAll('#per-step svg.chart rect').length");
    assert!(bars.as_u64().unwrap_or(0) > 10, "histogram bars: {bars}");
    let rows =
        strings(&page.eval("Array.from(document.querySelectorAll('#phases tbody tr'), (r) => r.cells[0].textContent)"));
    for phase in &phases {
        assert!(rows.contains(phase), "breakdown table rows {rows:?} lack {phase}");
    }

    // The span table: every name as written (the odd one too), then sorted by calls by a click, both ways.
    let names = strings(
        &page.eval("Array.from(document.querySelectorAll('#span-table tbody tr'), (r) => r.cells[0].textContent)"),
    );
    for span in &run.spans {
        assert!(names.contains(&span.name), "span table {names:?} lacks {}", span.name);
    }
    let calls = |page: &mut Page| -> Vec<u64> {
        let values = page.eval(
            "Array.from(document.querySelectorAll('#span-table tbody tr'), (r) => Number(r.cells[1].dataset.value))",
        );
        values.as_array().into_iter().flatten().filter_map(Value::as_u64).collect()
    };
    page.eval("document.querySelectorAll('#span-table thead th')[1].click()");
    let descending = calls(&mut page);
    assert!(descending.windows(2).all(|pair| pair[0] >= pair[1]), "after one click: {descending:?}");
    assert_eq!(descending.first().copied(), run.spans.iter().map(|span| span.count).max());
    page.eval("document.querySelectorAll('#span-table thead th')[1].click()");
    let ascending = calls(&mut page);
    assert!(ascending.windows(2).all(|pair| pair[0] <= pair[1]), "after two clicks: {ascending:?}");

    // A long method name may wrap after its `::`, never inside a word.
    let wrapping = page.eval(
        "(() => { const cell = Array.from(document.querySelectorAll('#span-table td.name')).find((td) => td.textContent.startsWith('Optimizer::')); \
         const style = getComputedStyle(cell); \
         return { wordBreak: style.wordBreak, overflowWrap: style.overflowWrap, breaks: cell.querySelectorAll('wbr').length, text: cell.textContent }; })()",
    );
    assert_eq!(wrapping["text"], "Optimizer::apply_the_momentum_of_every_parameter", "{wrapping}");
    assert_eq!((wrapping["wordBreak"].as_str(), wrapping["overflowWrap"].as_str()), (Some("normal"), Some("normal")));
    assert_eq!(wrapping["breaks"], 1, "{wrapping}");

    // The stalled step (the 8th of the 6th batch), with the phase that grew.
    let slow = strings(&page.eval(
        "Array.from(document.querySelectorAll('#slow-step-table tbody tr'), \
         (r) => [1, 2, 5].map((i) => r.cells[i].textContent).join(' '))",
    ));
    assert!(slow.iter().any(|row| row == "6 7 line search"), "slow steps: {slow:?}");

    // The flamegraph: its script ran (it measured its font), its frames name the spans, and a click on a
    // frame zooms (the "Reset Zoom" button shows).
    let flame = page.eval(
        "(() => { const frame = document.getElementById('flamegraph').contentWindow; \
         const names = Array.from(frame.document.querySelectorAll('#frames g title'), (t) => t.textContent); \
         return { ready: typeof frame.known_font_width === 'number', names, \
                  hidden: frame.document.getElementById('unzoom').classList.contains('hide') }; })()",
    );
    assert_eq!(flame["ready"], true, "the flamegraph's script did not run: {flame}");
    // Its widths are inclusive, and its caption says so, as the note above it does.
    let caption = page.eval(
        "document.getElementById('flamegraph').contentWindow.document.getElementById('title')?.textContent ?? ''",
    );
    assert!(caption.as_str().is_some_and(|caption| caption.contains("total time")), "caption: {caption}");
    let note = page.eval("document.querySelector('#call-tree p.note').textContent");
    assert!(note.as_str().is_some_and(|note| note.starts_with("Widths are total time")), "{note}");
    assert_eq!(flame["hidden"], true, "{flame}");
    let titles = strings(&flame["names"]);
    for span in ["step", "line_search", "<project> & \"co\""] {
        assert!(titles.iter().any(|title| title.starts_with(span)), "flamegraph frames {titles:?} lack {span}");
    }
    let zoomed = page.eval(
        "(() => { const frame = document.getElementById('flamegraph').contentWindow; \
         const target = Array.from(frame.document.querySelectorAll('#frames g')).find((g) => g.querySelector('title').textContent.startsWith('gradient')); \
         target.querySelector('rect').dispatchEvent(new frame.MouseEvent('click', { bubbles: true })); \
         return !frame.document.getElementById('unzoom').classList.contains('hide'); })()",
    );
    assert_eq!(zoomed, true, "a click on a frame did not zoom");

    // A screenshot of the whole page.
    let height = page.eval("document.documentElement.scrollHeight").as_u64().unwrap_or(900);
    page.call(
        "Emulation.setDeviceMetricsOverride",
        json!({ "width": 1100, "height": height, "deviceScaleFactor": 1, "mobile": false }),
    );
    let shot = page.call("Page.captureScreenshot", json!({ "format": "png", "captureBeyondViewport": true }));
    let png = decode_base64(shot["data"].as_str().expect("screenshot data"));
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 20_000, "a screenshot of {} bytes", png.len());
    std::fs::write(dir.join("report.png"), &png).expect("the screenshot is written");

    // Self-contained: the browser asked for nothing but the file itself.
    let requests: Vec<String> = page
        .events
        .iter()
        .filter(|event| event["method"] == "Network.requestWillBeSent")
        .filter_map(|event| event["params"]["request"]["url"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(requests, std::slice::from_ref(&url), "the page asked for more than itself");

    let problems = page.problems();
    assert!(problems.is_empty(), "the page logged problems:\n{}", problems.join("\n"));
    drop(page);
    drop(browser);
}

/// The optimizer example, started with `--serve` on a loopback port of the system's choosing, killed and
/// waited for by its pid however the test ends.
struct Example {
    child: Child,
    url: String,
}

impl Example {
    fn start() -> Example {
        let exe = std::env::current_exe().expect("the test's path");
        let profile = exe.parent().and_then(Path::parent).expect("target/<profile>");
        let path = profile.join("examples").join("optimizer");
        assert!(path.exists(), "{} is not built: run `cargo build --example optimizer` first", path.display());
        let mut child = Command::new(path)
            // Batches of 5,000 steps: a few a second, so that the chart (160 slices at most, and points merged
            // past 256) still grows over the test's seconds, in a debug build or a release one.
            .args(["--steps", "100000000", "--batch", "5000", "--json", "--serve", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the optimizer starts");
        let stderr = child.stderr.take().expect("its stderr");
        let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
        let url = lines
            .find_map(|line| line.ok()?.strip_prefix("serving the run live at ").map(str::to_owned))
            .expect("the optimizer says where it serves");
        // The rest of its stderr is read and dropped, so that it never waits on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Example { child, url }
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the live page shows now: the steps in its header, the points of its chart over the run, each
/// phase's colour in the legend, its updates so far, its status line and state.
fn live_state(page: &mut Page) -> Value {
    page.eval(
        "(() => { const steps = Array.from(document.querySelectorAll('header dt')).find((dt) => dt.textContent === 'Steps'); \
         const area = document.querySelector('#over-the-run svg.chart polygon'); \
         const colors = {}; \
         for (const item of document.querySelectorAll('#over-the-run ul.legend li')) { \
           const chip = item.querySelector('.chip'); if (chip) colors[item.textContent] = chip.style.background; } \
         return { steps: Number((steps?.nextElementSibling?.textContent ?? '0').replace(/,/g, '')), \
                  points: area ? area.points.length : 0, colors, \
                  updates: Number(document.body.dataset.updates ?? 0), live: document.body.dataset.live, \
                  status: document.getElementById('live-status')?.textContent ?? '', \
                  stopped: document.getElementById('live-status')?.classList.contains('stopped') ?? false }; })()",
    )
}

/// Waits (up to 20 s) until the live page has updated `more` times since `state`.
fn after_updates(page: &mut Page, state: &Value, more: u64) -> Value {
    let started = Instant::now();
    loop {
        let now = live_state(page);
        if now["updates"].as_u64().unwrap_or(0) >= state["updates"].as_u64().unwrap_or(0) + more {
            return now;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "the page did not update: {now}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_live_page_follows_a_running_optimizer_and_says_when_it_stopped() {
    // One browser at a time: beside the other test's, the optimizer's and Chromium's load would bend the
    // steps it stalls on purpose.
    let _guard = exclusive();
    let mut optimizer = Example::start();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("live-page");
    std::fs::create_dir_all(&dir).expect("a directory");
    let mut browser = Browser::start(&dir);
    let port = browser.port();
    let mut page = Page::connect(port);
    for domain in ["Runtime.enable", "Log.enable", "Page.enable"] {
        page.call(domain, json!({}));
    }
    // Some batches first, so that the chart has points when the page opens.
    std::thread::sleep(Duration::from_millis(1_500));
    page.events.retain(|event| event["method"] != "Page.loadEventFired");
    page.call("Page.navigate", json!({ "url": optimizer.url }));
    page.wait_for("Page.loadEventFired");
    let first = live_state(&mut page);
    assert_eq!(first["live"], "", "a live page: {first}");
    // The spans table sorted by the reader (by calls, descending) stays so through updates.
    page.eval("document.querySelectorAll('#span-table thead th')[1].click()");
    let later = after_updates(&mut page, &first, 3);
    assert!(later["steps"].as_u64() > first["steps"].as_u64(), "the step count grows: {first} then {later}");
    assert!(later["points"].as_u64() > first["points"].as_u64(), "the chart grows: {first} then {later}");
    for (phase, color) in first["colors"].as_object().expect("legend colours") {
        assert_eq!(&later["colors"][phase], color, "{phase} changed colour: {first} then {later}");
    }
    let sorted = page.eval(
        "(() => { const th = document.querySelectorAll('#span-table thead th')[1]; \
         const calls = Array.from(document.querySelectorAll('#span-table tbody tr'), (r) => Number(r.cells[1].dataset.value)); \
         return { sort: th.getAttribute('aria-sort'), ordered: calls.every((c, i) => i === 0 || calls[i - 1] >= c) }; })()",
    );
    assert_eq!(sorted, json!({ "sort": "descending", "ordered": true }), "the reader's sort was lost");
    let problems = page.problems();
    assert!(problems.is_empty(), "the live page logged problems:\n{}", problems.join("\n"));

    // A page opened late shows the run from its start: as many points as the page open all along.
    page.events.retain(|event| event["method"] != "Page.loadEventFired");
    page.call("Page.navigate", json!({ "url": optimizer.url }));
    page.wait_for("Page.loadEventFired");
    let late = live_state(&mut page);
    assert!(late["points"].as_u64() >= later["points"].as_u64(), "the late page lacks early batches: {late}");
    let height = page.eval("document.documentElement.scrollHeight").as_u64().unwrap_or(900);
    page.call(
        "Emulation.setDeviceMetricsOverride",
        json!({ "width": 1100, "height": height, "deviceScaleFactor": 1, "mobile": false }),
    );
    let shot = page.call("Page.captureScreenshot", json!({ "format": "png", "captureBeyondViewport": true }));
    std::fs::write(dir.join("live.png"), decode_base64(shot["data"].as_str().expect("screenshot data")))
        .expect("the screenshot is written");

    // The program ends: the page says so and keeps its last numbers.
    let before = live_state(&mut page);
    let _ = optimizer.child.kill();
    let _ = optimizer.child.wait();
    let started = Instant::now();
    let stopped = loop {
        let now = live_state(&mut page);
        if now["stopped"] == true {
            break now;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "the page did not notice the stop: {now}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(stopped["live"], "stopped");
    assert!(stopped["status"].as_str().is_some_and(|status| status.starts_with("The program has stopped")));
    assert!(stopped["steps"].as_u64() >= before["steps"].as_u64() && stopped["points"].as_u64() > Some(0));
    drop(page);
    drop(browser);
}

/// Standard base64 (what DevTools sends screenshots in), padding allowed.
fn decode_base64(text: &str) -> Vec<u8> {
    let value = |byte: u8| match byte {
        b'A'..=b'Z' => Some(byte - b'A'),
        b'a'..=b'z' => Some(byte - b'a' + 26),
        b'0'..=b'9' => Some(byte - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let sextets: Vec<u8> = text.bytes().filter_map(value).collect();
    let mut out = Vec::with_capacity(sextets.len() * 3 / 4);
    for chunk in sextets.chunks(4) {
        let bits =
            chunk.iter().enumerate().fold(0u32, |bits, (index, sextet)| bits | u32::from(*sextet) << (18 - 6 * index));
        let bytes = bits.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
}
