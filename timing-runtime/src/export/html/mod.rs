//! The run as one self-contained HTML page: a header with the run's settings, the phase breakdown, charts
//! of the phases over the run and of the time per step (plotters, as inline SVG), the call tree as
//! inferno's interactive flamegraph, the spans in a table that sorts by column, and the slow steps. No
//! network access when opened: styles, script and pictures are all in the file.

mod charts;

use std::fmt::Write;
use std::path::Path;

use crate::export::format::{Bytes, Duration, Thousands};
use crate::model::{CallTree, SpanStats, TrainingSummary};

/// Rows of the span table at most, the costliest: a page stays quick to open with any number of names.
const SPAN_ROWS: usize = 500;

impl TrainingSummary {
    /// The run as one self-contained HTML page titled `title`, for any browser, with no network access
    /// needed; needs the `html` feature.
    ///
    /// ```
    /// let page = timing_runtime::summary().to_html("my run")?;
    /// assert!(page.starts_with("<!DOCTYPE html>") && page.contains("<title>my run"));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    /// When a chart cannot be drawn.
    pub fn to_html(&self, title: &str) -> std::io::Result<String> {
        self.page(title, false, None)
    }

    /// The same page, made to update itself: it asks its server for itself again once a second and puts
    /// the new header and sections in place of the old, keeping the tables' sort order, the scroll position
    /// and (for ten seconds at a time) the flamegraph's zoom; when the server stops answering, it says the
    /// program has stopped and keeps the last numbers. `flamegraph` is the call tree's section drawn
    /// already by [`flamegraph_section`] (from a tree made less often than the summary), or `None` to draw
    /// this summary's.
    #[cfg(feature = "serve")]
    pub(crate) fn live_page(&self, title: &str, flamegraph: Option<&str>) -> std::io::Result<String> {
        self.page(title, true, flamegraph)
    }

    fn page(&self, title: &str, live: bool, flamegraph: Option<&str>) -> std::io::Result<String> {
        let mut page = String::with_capacity(64 * 1024);
        let title = escape(title);
        let _ = write!(
            page,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <title>{title}: where the step time went</title>\n<link rel=\"icon\" href=\"data:,\">\n\
             <style>\n{}</style>\n</head>\n<body{}>\n",
            include_str!("page.css"),
            if live { " data-live=\"\"" } else { "" }
        );
        self.header(&mut page, &title);
        if live {
            page.push_str("<p id=\"live-status\" class=\"note\" role=\"status\">Live: updated once a second.</p>\n");
        }
        self.breakdown(&mut page);
        section(&mut page, "over-the-run", "Over the run");
        match charts::over_the_run(self)? {
            Some(svg) => {
                chart(&mut page, "Phase shares and steps per second over the run", &svg);
                self.legend(&mut page);
            }
            // Saved before summaries kept the series, or every batch ran its steps on other threads.
            None if self.batches > 0 => note(
                &mut page,
                "This summary has no batch series: it was saved by a version before 0.1.0 kept one, or its \
                 batches ran all their steps on other threads (a pool's), where a thread's own \
                 <code>#[timed(batch)]</code> would show the run over time.",
            ),
            None => note(
                &mut page,
                "No batches were recorded: mark the function whose call is a batch of steps with \
                 <code>#[timed(batch)]</code> (or use <code>scope!(\"name\", batch)</code>) to see the run over time.",
            ),
        }
        if let Some(svg) = charts::machine_over_the_run(self)? {
            chart(&mut page, "CPU share of batch time and resident memory over the run", &svg);
            let _ = writeln!(
                page,
                "<ul class=\"legend\"><li><span class=\"line\" style=\"border-color: {}\"></span>% of batch time on a CPU \
                 (left axis)</li><li><span class=\"line\" style=\"border-color: {}\"></span>resident memory (right axis)</li></ul>",
                charts::css(charts::CPU),
                charts::css(charts::MEMORY)
            );
        }
        page.push_str("</section>\n");
        section(&mut page, "per-step", "Time per step");
        match charts::per_step(self)? {
            Some(svg) => chart(&mut page, "Histograms of the time per step, by phase", &svg),
            None => note(&mut page, "No steps were recorded."),
        }
        page.push_str("</section>\n");
        match flamegraph {
            Some(section) => page.push_str(section),
            None => page.push_str(&flamegraph_section(&self.call_tree)),
        }
        self.span_table(&mut page);
        self.slow_step_table(&mut page);
        let _ = write!(page, "<script>\n{}</script>\n</body>\n</html>\n", include_str!("page.js"));
        Ok(page)
    }

    /// Writes [`to_html`](Self::to_html)'s page to `path`; needs the `html` feature.
    ///
    /// # Errors
    /// When a chart cannot be drawn or the file cannot be written.
    pub fn write_html(&self, path: impl AsRef<Path>, title: &str) -> std::io::Result<()> {
        std::fs::write(path, self.to_html(title)?)
    }

    fn header(&self, page: &mut String, title: &str) {
        let _ = writeln!(page, "<header>\n<h1>{title}</h1>\n<dl>");
        let mut item = |name: &str, value: String| {
            let _ = writeln!(page, "<dt>{name}</dt><dd>{value}</dd>");
        };
        item("Steps", Thousands(self.total_steps as u64).to_string());
        item("Batches", Thousands(self.batches as u64).to_string());
        if self.batches > 0 {
            let parts = &self.batch_breakdown;
            item(
                "Batch time",
                format!(
                    "{}: steps {:.1}%, between steps {:.1}%{}",
                    Duration(self.batch_ns),
                    parts.steps_pct,
                    parts.between_steps_pct,
                    if parts.unsplit_ns > 0 { format!(", not split {:.1}%", parts.unsplit_pct) } else { String::new() }
                ),
            );
        }
        item("Threads", self.threads.to_string());
        item("Wall time", Duration(self.wall_ns).to_string());
        item("Step time", format!("{} (all threads)", Duration(self.total_ns)));
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let rate = self.steps_per_second.round() as u64;
        item("Rate", format!("{} steps/s", Thousands(rate)));
        item("Granularity", format!("{:?}", self.granularity));
        let cost = if self.instrumentation_ns_per_call > 0.0 {
            let kept = if self.instrumentation_subtracted { "left out of phases" } else { "in the phases" };
            format!("{:.1} ns per timed call ({kept})", self.instrumentation_ns_per_call)
        } else {
            "not measured".to_owned()
        };
        item("Instrumentation", cost);
        if let Some(budget) = &self.budget {
            let kept = if budget.kept { "kept" } else { "not kept" };
            let sampled: Vec<String> = budget
                .sampled
                .iter()
                .take(5)
                .map(|span| format!("{} 1 in {:.1}", escape(&span.name), span.rate))
                .collect();
            let sampled = if sampled.is_empty() { String::new() } else { format!("; timed {}", sampled.join(", ")) };
            item(
                "Budget",
                format!("{}% ({kept}): instrumentation {:.2}%{sampled}", budget.percent, budget.instrumentation_pct),
            );
        }
        if let Some(machine) = &self.machine {
            item("Machine", escape(&crate::export::text::machine_line(machine)));
        }
        if let Some(allocations) = &self.allocations {
            #[allow(clippy::cast_precision_loss)]
            let bytes = Bytes(allocations.in_spans.bytes as f64);
            item("Allocations", format!("{} in spans ({bytes})", Thousands(allocations.in_spans.count)));
        }
        let version = if self.version.is_empty() { "unknown" } else { &self.version };
        item("timing-runtime", escape(version));
        page.push_str("</dl>\n</header>\n");
    }

    /// The over-the-run chart's legend, below it rather than over its areas: a chip per phase, in the
    /// breakdown's order and colours, the time outside phases, and the rate's line.
    fn legend(&self, page: &mut String) {
        page.push_str("<ul class=\"legend\">");
        for (share, color) in self.phase_breakdown.phases.iter().zip(charts::phase_colors(self)) {
            let _ = write!(page, "<li>{}{}</li>", chip(&charts::css(color)), escape(&share.phase));
        }
        let _ = write!(page, "<li>{}outside phases</li>", chip(&charts::css(charts::OVERHEAD)));
        page.push_str("<li><span class=\"line\"></span>steps / s (right axis)</li></ul>\n");
    }

    fn breakdown(&self, page: &mut String) {
        section(page, "breakdown", "Where the step time went");
        let breakdown = &self.phase_breakdown;
        if self.total_ns == 0 {
            note(page, "No step time was recorded.");
            page.push_str("</section>\n");
            return;
        }
        let allocations = breakdown.phases.iter().any(|share| share.allocations.is_some());
        page.push_str(
            "<table id=\"phases\">\n<thead><tr><th>Phase</th><th>Share</th><th>Time</th><th>Mean per step</th>\
             <th>Median</th><th>p95</th><th>Max</th>",
        );
        if allocations {
            page.push_str("<th>Allocations per step</th><th>Bytes per step</th>");
        }
        page.push_str("</tr></thead>\n<tbody>\n");
        for (share, color) in breakdown.phases.iter().zip(charts::phase_colors(self)) {
            let per_step = &share.per_step;
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let mean = per_step.mean_ns.round() as u64;
            let _ = write!(
                page,
                "<tr><td>{}{}</td><td>{:.1}%</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
                chip(&charts::css(color)),
                escape(&share.phase),
                share.pct,
                Duration(share.ns),
                Duration(mean),
                Duration(per_step.p50_ns),
                Duration(per_step.p95_ns),
                Duration(per_step.max_ns),
            );
            if allocations {
                let (count, bytes) = share
                    .allocations
                    .as_ref()
                    .map_or((0.0, 0.0), |allocations| (allocations.count.mean, allocations.bytes.mean));
                let _ = write!(page, "<td>{count:.1}</td><td>{}</td>", Bytes(bytes));
            }
            page.push_str("</tr>\n");
        }
        let outside = chip(&charts::css(charts::OVERHEAD));
        let columns = if allocations { 7 } else { 5 };
        let mut other = |name: &str, pct: f64, ns: u64| {
            let _ = writeln!(
                page,
                "<tr><td>{outside}{name}</td><td>{pct:.1}%</td><td>{}</td><td colspan=\"{columns}\"></td></tr>",
                Duration(ns)
            );
        };
        other("Unphased (outside every phase)", breakdown.unphased_pct, breakdown.unphased_ns);
        if breakdown.instrumentation_ns > 0 {
            other("Instrumentation", breakdown.instrumentation_pct, breakdown.instrumentation_ns);
        }
        page.push_str("</tbody>\n</table>\n</section>\n");
    }

    fn span_table(&self, page: &mut String) {
        section(page, "spans", "Spans");
        if self.spans.is_empty() {
            note(page, "No spans were recorded (granularity coarser than Detailed, or no timed calls).");
            page.push_str("</section>\n");
            return;
        }
        let allocations = self.spans.iter().any(|span| span.allocations.is_some());
        page.push_str(
            "<p class=\"note\">Click a column's header to sort by it.</p>\n<table id=\"span-table\" class=\"sortable\">\n\
             <thead><tr><th>Span</th><th>Calls</th><th aria-sort=\"descending\">Total</th><th>Self</th><th>Mean</th>\
             <th>Median</th><th>p95</th><th>p99</th><th>Max</th>",
        );
        if allocations {
            page.push_str("<th>Allocations</th><th>Bytes</th>");
        }
        page.push_str("</tr></thead>\n<tbody>\n");
        for span in self.spans.iter().take(SPAN_ROWS) {
            span_row(page, span, allocations);
        }
        page.push_str("</tbody>\n</table>\n");
        if self.spans.len() > SPAN_ROWS {
            let _ = writeln!(
                page,
                "<p class=\"note\">The {SPAN_ROWS} spans of most total time of {}; the JSON summary has all.</p>",
                self.spans.len()
            );
        }
        page.push_str("</section>\n");
    }

    fn slow_step_table(&self, page: &mut String) {
        section(page, "slow-steps", "Slow steps");
        if self.slow_steps.is_empty() {
            note(
                page,
                "No step stood out of its batch (slower than its mean plus three standard deviations); steps are \
                 compared at granularity Step or finer, within batches.",
            );
            page.push_str("</section>\n");
            return;
        }
        page.push_str(
            "<table id=\"slow-step-table\" class=\"sortable\">\n<thead><tr><th>Thread</th><th>Batch</th>\
             <th>Step in its batch</th><th aria-sort=\"descending\">Time</th><th>Batch mean</th>\
             <th>Phase that grew most</th><th>Grew by</th></tr></thead>\n<tbody>\n",
        );
        for slow in &self.slow_steps {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let (mean, excess) = (slow.batch_mean_ns.round() as u64, slow.excess_ns.max(0.0).round() as u64);
            let phase = slow.phase.as_deref().map_or_else(|| "(outside phases)".to_owned(), escape);
            // Unknown (a record made by hand) sorts first.
            let number = |value: Option<u64>| {
                value.map_or_else(
                    || "<td data-value=\"0\">–</td>".to_owned(),
                    |n| format!("<td data-value=\"{n}\">{n}</td>"),
                )
            };
            let _ = writeln!(
                page,
                "<tr>{}{}<td data-value=\"{}\">{}</td><td data-value=\"{}\">{}</td><td data-value=\"{mean}\">{}</td>\
                 <td>{phase}</td><td data-value=\"{excess}\">{}</td></tr>",
                number(slow.thread),
                number(slow.batch),
                slow.step,
                slow.step,
                slow.total_ns,
                Duration(slow.total_ns),
                Duration(mean),
                Duration(excess),
            );
        }
        page.push_str("</tbody>\n</table>\n</section>\n");
    }
}

fn span_row(page: &mut String, span: &SpanStats, allocations: bool) {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let mean = span.mean_ns.round() as u64;
    let _ = write!(
        page,
        "<tr><td class=\"name\">{}</td><td data-value=\"{}\">{}</td>",
        breakable(&span.name),
        span.count,
        Thousands(span.count)
    );
    // Estimated times (under a budget) are marked, with their 95% margins, as the text report marks them.
    let estimated =
        [span.estimate.map(|estimate| estimate.total_ns_margin), span.estimate.map(|estimate| estimate.self_ns_margin)];
    for (ns, margin) in [span.total_ns, span.self_ns].into_iter().zip(estimated) {
        match (margin, span.estimate) {
            (Some(margin), Some(estimate)) => {
                let _ = write!(
                    page,
                    "<td data-value=\"{ns}\" class=\"estimate\" title=\"estimated: {} of {} calls timed\">~{} ±{}</td>",
                    estimate.timed,
                    span.count,
                    Duration(ns),
                    Duration(margin)
                );
            }
            _ => {
                let _ = write!(page, "<td data-value=\"{ns}\">{}</td>", Duration(ns));
            }
        }
    }
    for ns in [mean, span.p50_ns, span.p95_ns, span.p99_ns, span.max_ns] {
        let _ = write!(page, "<td data-value=\"{ns}\">{}</td>", Duration(ns));
    }
    if allocations {
        let counts = span.allocations.unwrap_or_default();
        #[allow(clippy::cast_precision_loss)]
        let bytes = Bytes(counts.bytes as f64);
        let _ = write!(
            page,
            "<td data-value=\"{}\">{}</td><td data-value=\"{}\">{bytes}</td>",
            counts.count,
            Thousands(counts.count),
            counts.bytes
        );
    }
    page.push_str("</tr>\n");
}

/// The call tree's section of the page: a note and the flamegraph.
pub(crate) fn flamegraph_section(tree: &CallTree) -> String {
    let mut page = String::new();
    section(&mut page, "call-tree", "Call tree");
    note(
        &mut page,
        "Widths are total time: a frame is as wide as its own time and its callees' together. Click a frame \
         to zoom in, Search (or Ctrl-F in the frame) to find a name.",
    );
    flamegraph(&mut page, tree);
    page.push_str("</section>\n");
    page
}

/// The flamegraph in a frame of its own: inferno's script looks its elements up in its document, which
/// must hold no other SVG.
#[allow(clippy::cast_precision_loss)]
fn flamegraph(page: &mut String, tree: &CallTree) {
    let svg = match tree.flamegraph_svg("Time by call path (widths: total time, own and callees')") {
        Ok(svg) => svg,
        Err(error) => return note(page, &format!("No call tree to draw: {}.", escape(&error.to_string()))),
    };
    let svg = svg.find("<svg").map_or(svg.as_str(), |start| &svg[start..]);
    // The frame as tall as the drawing, read off its root element.
    let height = svg
        .split_once("height=\"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .and_then(|(height, _)| height.parse::<u32>().ok())
        .unwrap_or(600);
    // The flamegraph keeps its zoom in its page's address, which a frame made from `srcdoc` cannot change:
    // that is skipped, not thrown.
    let document = format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\">\
         <style>body {{ margin: 0 }} svg {{ width: 100%; display: block }}</style>\
         <script>const replaceState = history.replaceState.bind(history); \
         history.replaceState = (...args) => {{ try {{ replaceState(...args); }} catch {{}} }};</script>\
         </head><body>{svg}</body></html>"
    );
    let _ = writeln!(
        page,
        "<iframe class=\"flamegraph\" id=\"flamegraph\" title=\"Flamegraph of the call tree\" height=\"{}\" \
         srcdoc=\"{}\"></iframe>",
        height.saturating_add(8),
        escape(&document)
    );
}

fn section(page: &mut String, id: &str, heading: &str) {
    let _ = writeln!(page, "<section id=\"{id}\">\n<h2>{heading}</h2>");
}

fn chart(page: &mut String, label: &str, svg: &str) {
    // The drawing keeps its own size as its aspect ratio and scales to the page's width.
    let label = escape(label);
    let svg = svg.replacen("<svg ", &format!("<svg class=\"chart\" role=\"img\" aria-label=\"{label}\" "), 1);
    page.push_str(&svg);
    page.push('\n');
}

/// A span's name, escaped, that may wrap only after a path's `::` or before a `<` of type arguments, never
/// inside an identifier (`Shape::intersec` / `t` was seen with any break allowed).
fn breakable(name: &str) -> String {
    escape(name).replace("::", "::<wbr>").replace("&lt;", "<wbr>&lt;")
}

fn note(page: &mut String, text: &str) {
    let _ = writeln!(page, "<p class=\"note\">{text}</p>");
}

fn chip(color: &str) -> String {
    format!("<span class=\"chip\" style=\"background: {color}\"></span>")
}

/// `text` with the characters that HTML gives a meaning to written as references, for element text and
/// quoted attribute values alike.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{BatchPoint, PhaseBreakdown, PhaseTime, Spread, TimingGranularity};

    /// A run of `phases` made by hand: steps of 1 µs, half in each phase.
    fn run(phases: &[&str]) -> TrainingSummary {
        let split = phases.iter().map(|phase| ((*phase).to_owned(), 500_000 / phases.len() as u64)).collect();
        let mut run = TrainingSummary {
            total_steps: 1_000,
            total_ns: 1_000_000,
            phase_breakdown: PhaseBreakdown::from_ns(1_000_000, split),
            step_spread: Spread { buckets: vec![(900, 400), (1_000, 500), (1_500, 100)] },
            granularity: TimingGranularity::Detailed,
            ..TrainingSummary::default()
        };
        for share in &mut run.phase_breakdown.phases {
            share.spread = Spread { buckets: vec![(0, 10), (400, 900), (800, 90)] };
        }
        run.batch_points = (0..10)
            .map(|index| BatchPoint {
                batches: 1,
                steps: 100,
                start_ns: index * 110_000,
                end_ns: index * 110_000 + 100_000,
                batch_ns: 100_000,
                step_ns: 100_000,
                phases: phases
                    .iter()
                    .map(|phase| PhaseTime {
                        phase: (*phase).to_owned().into(),
                        ns: 50_000 / phases.len() as u64,
                        ..PhaseTime::default()
                    })
                    .collect(),
                cpu_ns: 90_000,
                cpu_batch_ns: 100_000,
                resident_bytes: (40 + index) << 20,
            })
            .collect();
        run
    }

    #[test]
    fn estimated_spans_are_marked_with_their_margins_and_the_budget_is_said() {
        let mut sampled = run(&["regions"]);
        let span = |name: &str, estimate| SpanStats {
            name: name.to_owned(),
            count: 1_000,
            total_ns: 2_000_000,
            self_ns: 1_500_000,
            estimate,
            ..SpanStats::default()
        };
        let estimate = crate::model::Estimate { timed: 40, total_ns_margin: 300_000, self_ns_margin: 200_000 };
        sampled.spans = vec![span("counted", Some(estimate)), span("timed", None)];
        sampled.budget = Some(crate::model::BudgetReport {
            percent: 1.0,
            instrumentation_pct: 0.8,
            kept: true,
            sampled: vec![crate::model::SampledSpan { name: "counted".into(), calls: 1_000, timed: 40, rate: 25.0 }],
        });
        let page = sampled.to_html("run").expect("a page");
        assert!(page.contains("title=\"estimated: 40 of 1000 calls timed\">~2.0ms ±300.0µs</td>"), "{page}");
        assert!(page.contains(">~1.5ms ±200.0µs</td>"), "{page}");
        assert!(page.contains("<td data-value=\"2000000\">2.0ms</td>"), "an exact span is unmarked: {page}");
        assert!(page.contains("<dt>Budget</dt><dd>1% (kept): instrumentation 0.80%; timed counted 1 in 25.0</dd>"));
    }

    #[test]
    fn the_header_splits_batch_time_into_steps_and_the_time_between_them() {
        let mut batched = run(&["regions"]);
        batched.batches = 10;
        batched.batch_ns = 1_100_000;
        batched.batch_breakdown = crate::model::BatchBreakdown::new(1_100_000, 1_000_000, 0);
        let page = batched.to_html("run").expect("a page");
        assert!(page.contains("<dt>Batch time</dt><dd>1.1ms: steps 90.9%, between steps 9.1%</dd>"), "{page}");
        assert!(!run(&["regions"]).to_html("run").expect("a page").contains("Batch time"));
    }

    #[test]
    fn the_phase_table_gives_bytes_per_step_beside_allocations() {
        let mut counted = run(&["regions", "error"]);
        let per_step = |mean: f64| crate::model::PerStep { mean, ..crate::model::PerStep::default() };
        counted.phase_breakdown.phases[0].allocations =
            Some(crate::model::StepAllocations { count: per_step(38.0), bytes: per_step(6_144.0) });
        let page = counted.to_html("run").expect("a page");
        assert!(page.contains("<th>Allocations per step</th><th>Bytes per step</th>"), "{page}");
        assert!(page.contains("<td>38.0</td><td>6.0 KiB</td>"), "{page}");
        // Without a counting allocator, neither column.
        assert!(!run(&["regions"]).to_html("run").expect("a page").contains("per step</th><th>Bytes"));
    }

    #[test]
    fn names_are_escaped_everywhere() {
        let page = run(&["<b>old</b> & \"new\"", "plain"]).to_html("a <title> & more").expect("a page");
        assert!(!page.contains("<b>old</b>"), "a phase name written as markup");
        assert!(!page.contains("<title> &"));
        // In the breakdown table and in both charts (plotters escapes its own text).
        assert!(page.matches("&lt;b&gt;old&lt;/b&gt; &amp; &quot;new&quot;").count() >= 3, "{page}");
    }

    #[test]
    fn an_empty_run_gets_a_page_that_says_what_is_missing() {
        let page = TrainingSummary::default().to_html("empty").expect("a page");
        for missing in
            ["No step time was recorded", "No batches were recorded", "No steps were recorded", "No call tree"]
        {
            assert!(page.contains(missing), "{missing}");
        }
        assert!(page.contains("No spans were recorded") && page.contains("No step stood out"));
        assert!(!page.contains("<svg"));
    }

    #[test]
    fn both_charts_are_drawn_from_the_summary() {
        let page = run(&["regions", "error"]).to_html("run").expect("a page");
        let charts = page.matches("<svg class=\"chart\"").count();
        assert_eq!(charts, 3);
        assert!(page.contains("CPU share of batch time, and resident memory, over the run"), "{page}");
        // Without the machine's figures, no third chart.
        let mut unread = run(&["regions"]);
        unread
            .batch_points
            .iter_mut()
            .for_each(|point| (point.cpu_ns, point.cpu_batch_ns, point.resident_bytes) = (0, 0, 0));
        assert_eq!(unread.to_html("run").expect("a page").matches("<svg class=\"chart\"").count(), 2);
        // The steps of a phase without time in them are counted, not drawn on the log axis.
        assert!(page.contains("regions: median") && page.contains("10 steps without it"));
    }

    #[test]
    fn coarse_points_and_a_lone_point_draw() {
        let mut coarse = run(&["regions"]);
        coarse.batch_points.iter_mut().for_each(|point| {
            point.step_ns = 0;
            point.phases.clear();
        });
        assert!(coarse.to_html("coarse").is_ok());
        let mut lone = run(&["regions"]);
        lone.batch_points.truncate(1);
        assert!(lone.to_html("lone").expect("a page").contains("<svg class=\"chart\""));
        lone.batch_points[0].end_ns = lone.batch_points[0].start_ns;
        assert!(lone.to_html("instant").is_ok());
    }
}
