//! `timing top`: a run in the terminal, live from a program's `serve` address (its `/summary.json`, asked
//! for every `--interval` on a thread of its own, so that keys and resizes are answered at once), or a
//! saved summary shown the same way without updates. The phase shares as bars, steps per second with a
//! sparkline of the last minute, the step's p50 and p95, the spans of most self time, the slowest steps
//! and the machine's line. `q` (or Esc, or Ctrl-C) quits; when the program stops answering the view says
//! so and keeps the last numbers.

use std::collections::VecDeque;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Sparkline, Table};
use ratatui::{DefaultTerminal, Frame};
use timing_runtime::{SlowStep, TrainingSummary};

use crate::load;

/// The sparkline's reach.
const MINUTE: Duration = Duration::from_secs(60);

/// A summary fetched no later than this, or the fetch fails.
const FETCH_DEADLINE: Duration = Duration::from_secs(3);

/// Summaries larger than this are refused rather than read (a run's JSON is some hundreds of KiB).
const MAX_SUMMARY_BYTES: u64 = 256 << 20;

pub fn top(source: &str, interval: Duration) -> Result<u8, String> {
    let mut view = View::new(source);
    let updates = if source.starts_with("http://") || source.starts_with("https://") {
        Some(fetch_every(summary_url(source), interval))
    } else {
        view.show(load(source)?);
        view.state = State::Saved;
        None
    };
    let mut terminal = ratatui::try_init().map_err(|error| format!("cannot use the terminal: {error}"))?;
    let result = watch(&mut terminal, &mut view, updates.as_ref());
    ratatui::restore();
    result.map(|()| 0)
}

/// `/summary.json` of a `serve` address without the call tree, which the view does not show and which is
/// most of a summary's size; the address itself when it names a JSON file.
fn summary_url(source: &str) -> String {
    if source.ends_with(".json") {
        source.to_owned()
    } else {
        format!("{}/summary.json?calltree=false", source.trim_end_matches('/'))
    }
}

/// Fetches `url` now and every `interval`, on a thread that ends when the view no longer listens.
fn fetch_every(url: String, interval: Duration) -> Receiver<Result<TrainingSummary, String>> {
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(FETCH_DEADLINE))
            .http_status_as_error(true)
            .build()
            .into();
        loop {
            let fetched = agent
                .get(&url)
                .call()
                .map_err(|error| error.to_string())
                .and_then(|mut answer| {
                    answer
                        .body_mut()
                        .with_config()
                        .limit(MAX_SUMMARY_BYTES)
                        .read_to_string()
                        .map_err(|error| error.to_string())
                })
                .and_then(|text| {
                    serde_json::from_str::<TrainingSummary>(&text).map_err(|error| format!("not a summary: {error}"))
                });
            if send.send(fetched).is_err() {
                return;
            }
            std::thread::sleep(interval);
        }
    });
    receive
}

/// What the view knows of its source.
enum State {
    /// Nothing fetched yet, and why (the latest error), if a fetch failed.
    Waiting(Option<String>),
    Live {
        at: Instant,
    },
    Stopped {
        since: Instant,
        error: String,
    },
    Saved,
}

struct View {
    source: String,
    state: State,
    summary: Option<TrainingSummary>,
    /// Steps completed at each update of the last minute, for the rate's sparkline.
    counts: VecDeque<(Instant, u64)>,
    /// The slow steps in the order they first appeared, the latest first, and those seen so far.
    recent: VecDeque<SlowStep>,
    seen: std::collections::HashSet<(Option<u64>, Option<u64>, usize)>,
}

/// Slow steps listed at most.
const RECENT: usize = 64;

impl View {
    fn new(source: &str) -> View {
        View {
            source: source.to_owned(),
            state: State::Waiting(None),
            summary: None,
            counts: VecDeque::new(),
            recent: VecDeque::new(),
            seen: std::collections::HashSet::new(),
        }
    }

    fn show(&mut self, summary: TrainingSummary) {
        let now = Instant::now();
        // A reset (or a restarted program) counts from 0 again: the history before it says nothing now.
        if self.counts.back().is_some_and(|(_, steps)| *steps > summary.total_steps as u64) {
            self.counts.clear();
            self.recent.clear();
            self.seen.clear();
        }
        // The summary keeps the slowest steps of the run; those it did not have before are the latest.
        // In one summary (the first, or a saved run) the later batches come first.
        let mut new: Vec<&SlowStep> = summary
            .slow_steps
            .iter()
            .filter(|slow| !self.seen.contains(&(slow.thread, slow.batch, slow.step)))
            .collect();
        new.sort_by_key(|slow| (slow.batch, slow.step));
        for slow in new {
            self.seen.insert((slow.thread, slow.batch, slow.step));
            self.recent.push_front(slow.clone());
        }
        self.recent.truncate(RECENT);
        self.counts.push_back((now, summary.total_steps as u64));
        while self.counts.front().is_some_and(|(at, _)| now.duration_since(*at) > MINUTE) {
            self.counts.pop_front();
        }
        self.summary = Some(summary);
        self.state = State::Live { at: now };
    }

    fn failed(&mut self, error: String) {
        self.state = match std::mem::replace(&mut self.state, State::Saved) {
            State::Live { .. } => State::Stopped { since: Instant::now(), error },
            State::Stopped { since, .. } => State::Stopped { since, error },
            State::Waiting(_) => State::Waiting(Some(error)),
            State::Saved => State::Saved,
        };
    }

    /// Steps per second between the updates of the last minute; for a saved run, the rate of each batch
    /// point of the run's last minute.
    fn rates(&self) -> Vec<u64> {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let whole = |rate: f64| rate.max(0.0).round() as u64;
        if matches!(self.state, State::Saved) {
            let points = self.summary.as_ref().map(|run| run.batch_points.as_slice()).unwrap_or_default();
            let end = points.iter().map(|point| point.end_ns).max().unwrap_or(0);
            let since = end.saturating_sub(u64::try_from(MINUTE.as_nanos()).unwrap_or(u64::MAX));
            return points
                .iter()
                .filter(|point| point.end_ns >= since)
                .map(|point| whole(point.steps_per_second()))
                .collect();
        }
        self.counts
            .iter()
            .zip(self.counts.iter().skip(1))
            .map(|((then, before), (now, after))| {
                #[allow(clippy::cast_precision_loss)]
                let steps = after.saturating_sub(*before) as f64;
                whole(steps / now.duration_since(*then).as_secs_f64().max(1e-3))
            })
            .collect()
    }
}

fn watch(
    terminal: &mut DefaultTerminal,
    view: &mut View,
    updates: Option<&Receiver<Result<TrainingSummary, String>>>,
) -> Result<(), String> {
    let failed = |error: std::io::Error| format!("the terminal failed: {error}");
    loop {
        terminal.draw(|frame| draw(frame, view)).map_err(failed)?;
        // Keys and resizes at once; a new summary when the fetching thread has one.
        if event::poll(Duration::from_millis(100)).map_err(failed)? {
            match event::read().map_err(failed)? {
                Event::Key(key) if key.kind != KeyEventKind::Release => {
                    let quit = matches!(key.code, KeyCode::Char('q' | 'Q') | KeyCode::Esc)
                        || (key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL));
                    if quit {
                        return Ok(());
                    }
                }
                _ => {}
            }
        }
        if let Some(updates) = updates {
            match updates.recv_timeout(Duration::ZERO) {
                Ok(Ok(summary)) => view.show(summary),
                Ok(Err(error)) => view.failed(error),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => view.failed("the fetching thread ended".to_owned()),
            }
        }
    }
}

fn draw(frame: &mut Frame, view: &View) {
    let run = view.summary.as_ref();
    let phases = run.map_or(0, |run| run.phase_breakdown.phases.len() + 2);
    let [head, bars, rate, tables] = Layout::vertical([
        Constraint::Length(5),
        Constraint::Length(u16::try_from(phases.clamp(1, 12)).unwrap_or(12) + 2),
        Constraint::Length(6),
        Constraint::Min(6),
    ])
    .areas(frame.area());
    frame.render_widget(header(view), head);
    let Some(run) = run else { return };
    frame.render_widget(phase_bars(run, bars.width.saturating_sub(2)), bars);
    let rates = view.rates();
    let (now, most) = (rates.last().copied().unwrap_or(0), rates.iter().copied().max().unwrap_or(0));
    let reach = if matches!(view.state, State::Saved) { "the run's last minute, by batch" } else { "last minute" };
    let [rate, machine] = Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(rate);
    frame.render_widget(
        Sparkline::default()
            .block(Block::default().borders(Borders::ALL).title(format!(
                " steps/s, {reach}: now {}, at most {} ",
                thousands(now),
                thousands(most)
            )))
            .data(&rates)
            .style(Style::default().fg(Color::Green)),
        rate,
    );
    frame.render_widget(machine_over_the_run(run, machine.width.saturating_sub(2)), machine);
    let [spans, slow] = Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(tables);
    frame.render_widget(span_table(run, spans.height.saturating_sub(3)), spans);
    frame.render_widget(slow_steps(&view.recent, slow.height.saturating_sub(3)), slow);
}

/// The CPU share of the batches' wall time over the run's batch points (the latest `width`), in percent,
/// titled with the resident memory now: the machine beside the rate.
fn machine_over_the_run(run: &TrainingSummary, width: u16) -> Sparkline<'static> {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
    let shares: Vec<u64> = run
        .batch_points
        .iter()
        .filter(|point| point.cpu_batch_ns > 0)
        .map(|point| (point.cpu_ns as f64 * 100.0 / point.cpu_batch_ns as f64).round().min(100.0) as u64)
        .collect();
    let shares = shares[shares.len().saturating_sub(usize::from(width))..].to_vec();
    #[allow(clippy::cast_precision_loss)]
    let mib = |bytes: u64| bytes as f64 / f64::from(1 << 20);
    // The memory over the run: at its first batch point that read it, and now.
    let first = run.batch_points.iter().map(|point| point.resident_bytes).find(|bytes| *bytes > 0);
    let title = match (&run.machine, first) {
        (Some(machine), Some(first)) => format!(
            " CPU % of batch time by batch ({:.0}% in all); resident {:.1} MiB, from {:.1} ",
            machine.cpu_pct,
            mib(machine.resident_bytes),
            mib(first)
        ),
        (Some(machine), None) => format!(
            " CPU % of batch time by batch ({:.0}% in all); resident {:.1} MiB ",
            machine.cpu_pct,
            mib(machine.resident_bytes)
        ),
        (None, _) => " CPU % of batch time: not read ".to_owned(),
    };
    Sparkline::default()
        .block(Block::default().borders(Borders::ALL).title(title))
        .data(shares)
        .max(100)
        .style(Style::default().fg(Color::Magenta))
}

fn header(view: &View) -> Paragraph<'static> {
    let (state, color) = match &view.state {
        State::Waiting(None) => ("waiting for the first summary".to_owned(), Color::Yellow),
        State::Waiting(Some(error)) => (format!("no summary yet: {error}"), Color::Yellow),
        State::Live { at } => (format!("live, updated {:.1} s ago", at.elapsed().as_secs_f64()), Color::Green),
        State::Stopped { since, error } => (
            format!(
                "the program has stopped: no answer for {:.0} s ({error}); these are its last numbers",
                since.elapsed().as_secs_f64()
            ),
            Color::Red,
        ),
        State::Saved => ("a saved run: no updates".to_owned(), Color::Cyan),
    };
    let mut lines = vec![Line::from(Span::styled(state, Style::default().fg(color).add_modifier(Modifier::BOLD)))];
    if let Some(run) = &view.summary {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let rate = run.steps_per_second.round() as u64;
        lines.push(Line::from(format!(
            "Steps {}   Rate {} steps/s   Step p50 {}  p95 {}   Threads {}   Batches {}",
            thousands(run.total_steps as u64),
            thousands(rate),
            duration(run.step_distribution.p50_ns),
            duration(run.step_distribution.p95_ns),
            run.threads,
            thousands(run.batches as u64),
        )));
        let machine = run.machine.as_ref().map_or_else(String::new, |machine| {
            let stalled = machine.waiting_batches + machine.preempted_batches;
            #[allow(clippy::cast_precision_loss)]
            let resident = machine.resident_bytes as f64 / f64::from(1 << 20);
            format!(
                "   Machine: batches on a CPU {:.1}% of their time, {stalled} stalled, resident {resident:.1} MiB",
                machine.cpu_pct
            )
        });
        lines.push(Line::from(format!(
            "Wall {}   Step time {}{machine}",
            duration(run.wall_ns),
            duration(run.total_ns)
        )));
    }
    Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(format!(" timing top: {} ", view.source)))
}

/// Each phase's share of the step time as a bar of `width` columns at most, the time outside phases
/// after them.
fn phase_bars(run: &TrainingSummary, width: u16) -> Paragraph<'static> {
    const COLORS: [Color; 6] = [Color::Blue, Color::Yellow, Color::Green, Color::Magenta, Color::Cyan, Color::Red];
    let breakdown = &run.phase_breakdown;
    // Each phase's colour by its name, as the page chooses them: the breakdown's order changes with the
    // shares, a phase's colour must not.
    let color = |name: &str| {
        let hash = name.bytes().fold(0x811c_9dc5_u32, |hash, byte| (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193));
        COLORS[hash as usize % COLORS.len()]
    };
    let mut rows: Vec<(String, f64, Color)> =
        breakdown.phases.iter().map(|share| (share.phase.clone(), share.pct, color(&share.phase))).collect();
    rows.push(("(unphased)".to_owned(), breakdown.unphased_pct, Color::Gray));
    rows.push(("(instrumentation)".to_owned(), breakdown.instrumentation_pct, Color::DarkGray));
    let name_width = rows.iter().map(|(name, _, _)| name.chars().count()).max().unwrap_or(0).min(28);
    let bar_width = usize::from(width).saturating_sub(name_width + 10).max(4);
    let lines: Vec<Line> = rows
        .into_iter()
        .take(12)
        .map(|(name, pct, color)| {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
            let filled = ((pct / 100.0) * bar_width as f64).round().clamp(0.0, bar_width as f64) as usize;
            let name: String = name.chars().take(name_width).collect();
            Line::from(vec![
                Span::raw(format!("{name:<name_width$} ")),
                Span::styled("█".repeat(filled), Style::default().fg(color)),
                Span::styled("░".repeat(bar_width - filled), Style::default().fg(Color::DarkGray)),
                Span::raw(format!(" {pct:5.1}%")),
            ])
        })
        .collect();
    Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(" Phases: share of step time "))
}

fn span_table(run: &TrainingSummary, rows: u16) -> Table<'static> {
    let mut spans: Vec<_> = run.spans.iter().collect();
    spans.sort_by(|a, b| b.self_ns.cmp(&a.self_ns).then_with(|| a.name.cmp(&b.name)));
    let body = spans.into_iter().take(usize::from(rows)).map(|span| {
        let estimated = if span.estimate.is_some() { "~" } else { "" };
        Row::new(vec![
            Cell::from(span.name.clone()),
            Cell::from(thousands(span.count)),
            Cell::from(format!("{estimated}{}", duration(span.self_ns))),
            Cell::from(format!("{estimated}{}", duration(span.total_ns))),
        ])
    });
    Table::new(body, [Constraint::Fill(1), Constraint::Length(12), Constraint::Length(10), Constraint::Length(10)])
        .header(Row::new(["Span", "Calls", "Self", "Total"]).style(Style::default().add_modifier(Modifier::BOLD)))
        .block(Block::default().borders(Borders::ALL).title(" Spans by self time "))
}

fn slow_steps(recent: &VecDeque<SlowStep>, rows: u16) -> Table<'static> {
    let body = recent.iter().take(usize::from(rows)).map(|slow| {
        let place = match (slow.thread, slow.batch) {
            (Some(thread), Some(batch)) => format!("t{thread} b{batch} s{}", slow.step),
            _ => format!("s{}", slow.step),
        };
        Row::new(vec![
            Cell::from(place),
            Cell::from(duration(slow.total_ns)),
            Cell::from(slow.phase.clone().unwrap_or_else(|| "(outside)".to_owned())),
        ])
    });
    Table::new(body, [Constraint::Length(16), Constraint::Length(9), Constraint::Fill(1)])
        .header(Row::new(["Step", "Time", "Grew most"]).style(Style::default().add_modifier(Modifier::BOLD)))
        .block(Block::default().borders(Borders::ALL).title(" Slow steps, latest first "))
}

/// `1,234,567`.
fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// `812ns`, `11.8µs`, `2.0ms`, `3.5s`.
fn duration(ns: u64) -> String {
    #[allow(clippy::cast_precision_loss)]
    let value = ns as f64;
    match ns {
        0..1_000 => format!("{ns}ns"),
        1_000..1_000_000 => format!("{:.1}µs", value / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1}ms", value / 1e6),
        _ => format!("{:.1}s", value / 1e9),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_the_report_writes_them() {
        assert_eq!(
            (thousands(0), thousands(999), thousands(1_234_567)),
            ("0".into(), "999".into(), "1,234,567".into())
        );
        assert_eq!(
            [duration(812), duration(11_800), duration(2_000_000), duration(3_500_000_000)],
            ["812ns", "11.8µs", "2.0ms", "3.5s"]
        );
    }

    #[test]
    fn a_serve_address_is_asked_for_its_summary() {
        assert_eq!(summary_url("http://127.0.0.1:9185/"), "http://127.0.0.1:9185/summary.json?calltree=false");
        assert_eq!(summary_url("http://127.0.0.1:9185"), "http://127.0.0.1:9185/summary.json?calltree=false");
        assert_eq!(summary_url("http://host/run/summary.json"), "http://host/run/summary.json");
    }

    #[test]
    fn the_rate_follows_the_updates_and_a_reset_starts_it_again() {
        let mut view = View::new("http://x/");
        let run = |steps| TrainingSummary { total_steps: steps, ..TrainingSummary::default() };
        let start = Instant::now();
        view.show(run(100));
        std::thread::sleep(Duration::from_millis(50));
        view.show(run(200));
        let elapsed = start.elapsed().as_secs_f64();
        let rates = view.rates();
        assert_eq!(rates.len(), 1);
        // 100 steps in at least 50 ms, and at most as long as the test took.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let slowest = (100.0 / elapsed).floor() as u64;
        assert!((slowest..=2_000).contains(&rates[0]), "100 steps in {elapsed} s: {rates:?}");
        view.show(run(10));
        assert!(view.rates().is_empty(), "a reset starts the history again");
        // Slow steps: the ones a summary did not have before come first.
        let slow = |batch, step| SlowStep { batch: Some(batch), thread: Some(1), step, ..SlowStep::default() };
        let with = |slow_steps| TrainingSummary { total_steps: 20, slow_steps, ..TrainingSummary::default() };
        view.show(with(vec![slow(2, 5), slow(1, 9)]));
        view.show(with(vec![slow(2, 5), slow(1, 9), slow(3, 1)]));
        let order: Vec<(Option<u64>, usize)> = view.recent.iter().map(|slow| (slow.batch, slow.step)).collect();
        assert_eq!(order, [(Some(3), 1), (Some(2), 5), (Some(1), 9)]);
        view.failed("refused".into());
        assert!(matches!(view.state, State::Stopped { .. }));
    }
}
