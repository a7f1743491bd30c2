//! The page's charts, drawn by plotters to SVG: the phase shares and the rate over the run, from the batch
//! series, and each phase's time per step, from the recorded histograms. Text is written as SVG text for
//! the browser to draw, so no font file is needed here.

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::export::format::Duration;
use crate::model::{BatchPoint, Spread, TrainingSummary};

/// Phase colours, each phase's chosen by its name (see [`phase_colors`]); the tables use the same ones.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(0, 109, 119),
];

/// The time outside every phase.
pub(super) const OVERHEAD: RGBColor = RGBColor(200, 200, 200);

/// The colour of each phase of the breakdown, in its order, chosen by the phase's name and not by its
/// place: the breakdown is ordered by share, which changes from one update of a live page to the next and
/// from run to run, and a phase must keep its colour through both. Each name hashes to a colour of the
/// palette; names that meet on one (taken in name order, so the outcome depends on the set of names only)
/// take the next free one, until more phases than colours make them share.
pub(super) fn phase_colors(run: &TrainingSummary) -> Vec<RGBColor> {
    let phases = &run.phase_breakdown.phases;
    let mut by_name: Vec<usize> = (0..phases.len()).collect();
    by_name.sort_by(|&a, &b| phases[a].phase.cmp(&phases[b].phase));
    let mut taken = [false; PALETTE.len()];
    let mut colors = vec![PALETTE[0]; phases.len()];
    for (round, index) in by_name.into_iter().enumerate() {
        if round % PALETTE.len() == 0 {
            taken = [false; PALETTE.len()];
        }
        let mut slot = fnv1a(&phases[index].phase) % PALETTE.len();
        while taken[slot] {
            slot = (slot + 1) % PALETTE.len();
        }
        taken[slot] = true;
        colors[index] = PALETTE[slot];
    }
    colors
}

/// FNV-1a: a hash that is the same in every process and version, as a colour by name needs.
fn fnv1a(text: &str) -> usize {
    let hash = text.bytes().fold(0x811c_9dc5_u32, |hash, byte| (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193));
    hash as usize
}

/// `#rrggbb`, for the page's legend chips.
pub(super) fn css(color: RGBColor) -> String {
    format!("#{:02x}{:02x}{:02x}", color.0, color.1, color.2)
}

/// A drawing failed: what was being drawn, and why.
fn failed(chart: &str) -> impl Fn(DrawingAreaErrorKind<std::io::Error>) -> std::io::Error + '_ {
    move |error| std::io::Error::other(format!("drawing {chart}: {error}"))
}

const WIDTH: u32 = 960;

/// The run's time cut into equal slices, each with the step time, phase time and steps of the batch points
/// that overlap it (a point's spread evenly over its own time): with threads, the whole process in each
/// slice, whichever thread's batch ended first.
struct Slice {
    /// Its start and end, in seconds into the run.
    from: f64,
    to: f64,
    step_ns: f64,
    /// By the breakdown's phase order.
    phase_ns: Vec<f64>,
    steps_per_second: f64,
    /// The batch wall time and the threads' CPU time in it, from the batches that had their CPU time read,
    /// and the largest resident memory among its batches' ends.
    measured_ns: f64,
    cpu_ns: f64,
    resident_bytes: u64,
}

impl Slice {
    /// The top of stacked layer `layer` (the phases in order, then the time outside them), in percent of
    /// the slice's step time; 0 for every layer of a slice without step time (no batch in it, or a
    /// granularity too coarse for phases), which draws nothing rather than a false 100%.
    fn top_pct(&self, layer: usize) -> f64 {
        if self.step_ns <= 0.0 {
            return 0.0;
        }
        if layer >= self.phase_ns.len() {
            return 100.0;
        }
        let below: f64 = self.phase_ns.iter().take(layer + 1).sum();
        (below * 100.0 / self.step_ns).min(100.0)
    }
}

/// Slices at most: about one per batch up to this many.
const SLICES: usize = 160;

#[allow(clippy::cast_precision_loss)]
fn slices(points: &[BatchPoint], phases: &[&str]) -> Vec<Slice> {
    let start = points.iter().map(|point| point.start_ns).min().unwrap_or(0) as f64;
    let end = points.iter().map(|point| point.end_ns).max().unwrap_or(0) as f64;
    let count = points.len().clamp(2, SLICES);
    let width = ((end - start) / count as f64).max(1.0);
    let mut slices: Vec<Slice> = (0..count)
        .map(|index| Slice {
            from: (start + width * index as f64) / 1e9,
            to: (start + width * (index as f64 + 1.0)) / 1e9,
            step_ns: 0.0,
            phase_ns: vec![0.0; phases.len()],
            steps_per_second: 0.0,
            measured_ns: 0.0,
            cpu_ns: 0.0,
            resident_bytes: 0,
        })
        .collect();
    for point in points {
        let (from, to) = (point.start_ns as f64, (point.end_ns as f64).max(point.start_ns as f64 + 1.0));
        let first = (((from - start) / width) as usize).min(count - 1);
        let last = (((to - start) / width) as usize).min(count - 1);
        for (index, slice) in slices.iter_mut().enumerate().take(last + 1).skip(first) {
            let (slice_from, slice_to) = (start + width * index as f64, start + width * (index + 1) as f64);
            let part = (to.min(slice_to) - from.max(slice_from)).max(0.0) / (to - from);
            slice.step_ns += point.step_ns as f64 * part;
            slice.steps_per_second += point.steps as f64 * part / (width / 1e9);
            slice.measured_ns += point.cpu_batch_ns as f64 * part;
            slice.cpu_ns += point.cpu_ns as f64 * part;
            slice.resident_bytes = slice.resident_bytes.max(point.resident_bytes);
            for (phase, ns) in phases.iter().zip(&mut slice.phase_ns) {
                let of_phase: f64 =
                    point.phases.iter().filter(|time| time.phase == *phase).map(|time| time.ns as f64).sum();
                *ns += of_phase * part;
            }
        }
    }
    slices
}

/// The share of each phase (and of the overhead) in the step time of each slice of the run, stacked, with
/// the process's steps per second on a second axis, against seconds into the run; `None` without batches.
pub(super) fn over_the_run(run: &TrainingSummary) -> std::io::Result<Option<String>> {
    if run.batch_points.is_empty() {
        return Ok(None);
    }
    let phases: Vec<&str> = run.phase_breakdown.phases.iter().map(|share| share.phase.as_str()).collect();
    let slices = slices(&run.batch_points, &phases);
    // From the run's start to its last batch's end.
    #[allow(clippy::cast_precision_loss)]
    let x_end = (run.batch_points.iter().map(|point| point.end_ns).max().unwrap_or(0) as f64 / 1e9).max(1e-9);
    let rate_max = slices.iter().map(|slice| slice.steps_per_second).fold(0.0, f64::max).max(1e-9) * 1.15;

    let mut svg = String::new();
    {
        let fail = failed("the phases over the run");
        let root = SVGBackend::with_string(&mut svg, (WIDTH, 400)).into_drawing_area();
        root.fill(&WHITE).map_err(&fail)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("Share of step time by phase, and steps per second, over the run", ("sans-serif", 17))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .right_y_label_area_size(72)
            .build_cartesian_2d(0.0..x_end, 0.0..100.0)
            .map_err(&fail)?
            .set_secondary_coord(0.0..x_end, 0.0..rate_max);
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc("seconds into the run")
            .y_desc("% of step time")
            .y_label_formatter(&|pct| format!("{pct:.0}%"))
            .draw()
            .map_err(&fail)?;
        chart
            .configure_secondary_axes()
            .y_desc("steps / s")
            .y_label_formatter(&|rate| compact(*rate))
            .draw()
            .map_err(&fail)?;
        // Layers from the top one (the overhead, reaching 100%) down, each filled from 0 so that the next
        // covers all but its own band.
        let layers = phases.len() + 1;
        let colors = phase_colors(run);
        for layer in (0..layers).rev() {
            let color = colors.get(layer).copied().unwrap_or(OVERHEAD);
            // Each slice drawn across its whole width, from its start to its end: drawn at its middle, the
            // areas left the chart blank before the first slice's middle and after the last's.
            let series =
                slices.iter().flat_map(|slice| [(slice.from, slice.top_pct(layer)), (slice.to, slice.top_pct(layer))]);
            // The legend is the page's, below the chart: drawn here, it covered the areas.
            chart.draw_series(AreaSeries::new(series, 0.0, color.mix(0.9)).border_style(color)).map_err(&fail)?;
        }
        let rates =
            slices.iter().flat_map(|slice| [(slice.from, slice.steps_per_second), (slice.to, slice.steps_per_second)]);
        chart.draw_secondary_series(LineSeries::new(rates, BLACK.stroke_width(2))).map_err(&fail)?;
        root.present().map_err(&fail)?;
    }
    Ok(Some(svg))
}

/// What the machine gave the run, over it: the share of the batches' wall time their threads were on a CPU
/// (a fall the code did not make is the machine's: a busy core, a sleep), and the process's resident
/// memory; `None` when the batches say neither.
pub(super) fn machine_over_the_run(run: &TrainingSummary) -> std::io::Result<Option<String>> {
    let points = &run.batch_points;
    if !points.iter().any(|point| point.cpu_batch_ns > 0 || point.resident_bytes > 0) {
        return Ok(None);
    }
    let slices = slices(points, &[]);
    #[allow(clippy::cast_precision_loss)]
    let x_end = (points.iter().map(|point| point.end_ns).max().unwrap_or(0) as f64 / 1e9).max(1e-9);
    #[allow(clippy::cast_precision_loss)]
    let mib = |bytes: u64| bytes as f64 / f64::from(1 << 20);
    let memory_max = slices.iter().map(|slice| mib(slice.resident_bytes)).fold(0.0, f64::max).max(1e-3) * 1.15;
    let mut svg = String::new();
    {
        let fail = failed("the machine over the run");
        let root = SVGBackend::with_string(&mut svg, (WIDTH, 260)).into_drawing_area();
        root.fill(&WHITE).map_err(&fail)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("CPU share of batch time, and resident memory, over the run", ("sans-serif", 17))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .right_y_label_area_size(72)
            .build_cartesian_2d(0.0..x_end, 0.0..105.0)
            .map_err(&fail)?
            .set_secondary_coord(0.0..x_end, 0.0..memory_max);
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc("seconds into the run")
            .y_desc("% on a CPU")
            .y_label_formatter(&|pct| format!("{pct:.0}%"))
            .draw()
            .map_err(&fail)?;
        chart
            .configure_secondary_axes()
            .y_desc("resident MiB")
            .y_label_formatter(&|value| compact(*value))
            .draw()
            .map_err(&fail)?;
        // Slices without a measured batch are left out of the CPU line rather than drawn at 0.
        let cpu = slices.iter().filter(|slice| slice.measured_ns > 0.0).flat_map(|slice| {
            let pct = (slice.cpu_ns * 100.0 / slice.measured_ns).min(105.0);
            [(slice.from, pct), (slice.to, pct)]
        });
        chart.draw_series(LineSeries::new(cpu, CPU.stroke_width(2))).map_err(&fail)?;
        let memory = slices
            .iter()
            .filter(|slice| slice.resident_bytes > 0)
            .flat_map(|slice| [(slice.from, mib(slice.resident_bytes)), (slice.to, mib(slice.resident_bytes))]);
        chart.draw_secondary_series(LineSeries::new(memory, MEMORY.stroke_width(2))).map_err(&fail)?;
        root.present().map_err(&fail)?;
    }
    Ok(Some(svg))
}

/// The machine chart's lines, in the page's legend too.
pub(super) const CPU: RGBColor = RGBColor(214, 39, 40);
pub(super) const MEMORY: RGBColor = RGBColor(31, 119, 180);

/// Bins of a log-scaled histogram.
const BINS: usize = 40;

/// One histogram a row: the step time, then each phase's time per step, on one shared logarithmic axis so
/// that rows compare; steps that spent nothing in a phase are counted in its caption, as a log axis has no
/// place for 0. `None` without steps.
pub(super) fn per_step(run: &TrainingSummary) -> std::io::Result<Option<String>> {
    let mut rows: Vec<(String, &Spread, RGBColor, (u64, u64))> = Vec::new();
    let step = &run.step_distribution;
    rows.push(("step".to_owned(), &run.step_spread, RGBColor(90, 90, 90), (step.p50_ns, step.p95_ns)));
    let colors = phase_colors(run);
    for (share, color) in run.phase_breakdown.phases.iter().zip(colors) {
        let spread = (share.per_step.p50_ns, share.per_step.p95_ns);
        rows.push((share.phase.clone(), &share.spread, color, spread));
    }
    rows.retain(|(_, spread, _, _)| spread.buckets.iter().any(|(value, count)| *value > 0 && *count > 0));
    let positive = rows.iter().flat_map(|(_, spread, _, _)| spread.buckets.iter().filter(|(value, _)| *value > 0));
    let (low, high) = positive.fold((u64::MAX, 0), |(low, high), (value, _)| (low.min(*value), high.max(*value)));
    if rows.is_empty() {
        return Ok(None);
    }
    #[allow(clippy::cast_precision_loss)]
    let (low, high) = (low as f64 * 0.9, (high as f64 * 1.1).max(low as f64 * 1.2));
    let ratio = (high / low).ln();
    let bin_of = |value: f64| {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let bin = ((value / low).ln() / ratio * BINS as f64) as usize;
        bin.min(BINS - 1)
    };
    #[allow(clippy::cast_precision_loss)]
    let edge = |bin: usize| low * (ratio * bin as f64 / BINS as f64).exp();

    let row_height = 150u32;
    let rows_count = u32::try_from(rows.len()).unwrap_or(u32::MAX);
    let mut svg = String::new();
    {
        let fail = failed("the time per step");
        let root =
            SVGBackend::with_string(&mut svg, (WIDTH, row_height.saturating_mul(rows_count))).into_drawing_area();
        root.fill(&WHITE).map_err(&fail)?;
        let areas = root.split_evenly((rows.len(), 1));
        for ((name, spread, color, (p50, p95)), area) in rows.iter().zip(&areas) {
            let mut bins = [0u64; BINS];
            let mut zeros = 0u64;
            for (value, count) in &spread.buckets {
                #[allow(clippy::cast_precision_loss)]
                match *value {
                    0 => zeros = zeros.saturating_add(*count),
                    value => bins[bin_of(value as f64)] = bins[bin_of(value as f64)].saturating_add(*count),
                }
            }
            let without = if zeros > 0 { format!(", {zeros} steps without it") } else { String::new() };
            let caption = format!("{name}: median {}, p95 {}{without}", Duration(*p50), Duration(*p95));
            draw_histogram(area, &caption, &bins, *color, (low, high), &edge).map_err(&fail)?;
        }
        root.present().map_err(&fail)?;
    }
    Ok(Some(svg))
}

fn draw_histogram(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    caption: &str,
    bins: &[u64; BINS],
    color: RGBColor,
    (low, high): (f64, f64),
    edge: &dyn Fn(usize) -> f64,
) -> Result<(), DrawingAreaErrorKind<std::io::Error>> {
    #[allow(clippy::cast_precision_loss)]
    let most = bins.iter().copied().max().unwrap_or(0).max(1) as f64 * 1.1;
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 14))
        .margin_left(12)
        .margin_right(84)
        .margin_top(4)
        .x_label_area_size(24)
        .y_label_area_size(56)
        .build_cartesian_2d((low..high).log_scale(), 0.0..most)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .y_desc("steps")
        .y_labels(4)
        .x_label_formatter(&|ns| {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let ns = *ns as u64;
            Duration(ns).to_string()
        })
        .y_label_formatter(&|count| compact(*count))
        .draw()?;
    #[allow(clippy::cast_precision_loss)]
    let bars = bins
        .iter()
        .enumerate()
        .filter(|(_, count)| **count > 0)
        .map(|(bin, count)| Rectangle::new([(edge(bin), 0.0), (edge(bin + 1), *count as f64)], color.filled()));
    chart.draw_series(bars)?;
    Ok(())
}

/// A count or rate in few characters: `950`, `12.5k`, `3.2M`.
fn compact(value: f64) -> String {
    match value.abs() {
        v if v >= 1e6 => format!("{:.1}M", value / 1e6),
        v if v >= 1e4 => format!("{:.0}k", value / 1e3),
        v if v >= 1e3 => format!("{:.1}k", value / 1e3),
        v if v >= 10.0 || v == 0.0 => format!("{value:.0}"),
        _ => format!("{value:.1}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::PhaseTime;

    fn point(start_ns: u64, end_ns: u64, steps: u64, regions_ns: u64, step_ns: u64) -> BatchPoint {
        let regions = PhaseTime { phase: "regions".into(), ns: regions_ns, ..PhaseTime::default() };
        BatchPoint {
            batches: 1,
            steps,
            start_ns,
            end_ns,
            batch_ns: end_ns - start_ns,
            step_ns,
            phases: vec![regions],
            ..BatchPoint::default()
        }
    }

    #[test]
    fn slices_add_up_the_threads_and_keep_every_step() {
        // Two threads, each running batches of 1 ms back to back, 100 steps each: 200,000 steps/s in all.
        let mut points = Vec::new();
        for index in 0..10 {
            let start = index * 1_000_000;
            points.push(point(start, start + 1_000_000, 100, 600_000, 1_000_000));
            points.push(point(start + 500_000, start + 1_500_000, 100, 200_000, 1_000_000));
        }
        let slices = slices(&points, &["regions"]);
        assert_eq!(slices.len(), 20);
        let width_s = 10.5e-3 / 20.0;
        let steps: f64 = slices.iter().map(|slice| slice.steps_per_second * width_s).sum();
        assert!((steps - 2_000.0).abs() < 1e-6, "{steps}");
        let step_ns: f64 = slices.iter().map(|slice| slice.step_ns).sum();
        assert!((step_ns - 20e6).abs() < 1e-3, "{step_ns}");
        // Where both threads run, the rate is both threads' and the share their mean.
        let middle = &slices[10];
        assert!((middle.steps_per_second - 200_000.0).abs() < 1.0, "{}", middle.steps_per_second);
        assert!((middle.phase_ns[0] / middle.step_ns - 0.4).abs() < 1e-9);
        assert!(slices.windows(2).all(|pair| pair[0].from < pair[1].from && pair[0].to == pair[1].from));
        // The slices cover the batches from the first one's start to the last one's end, edge to edge.
        let (first, last) = (slices.first().map(|slice| slice.from), slices.last().map(|slice| slice.to));
        assert_eq!(first, Some(0.0));
        assert!(last.is_some_and(|last| (last - 10.5e-3).abs() < 1e-12), "{last:?}");
    }

    #[test]
    fn layers_stack_to_100_and_a_slice_without_step_time_draws_nothing() {
        let slice = Slice {
            from: 0.0,
            to: 1.0,
            step_ns: 1_000.0,
            phase_ns: vec![500.0, 200.0],
            steps_per_second: 1.0,
            measured_ns: 0.0,
            cpu_ns: 0.0,
            resident_bytes: 0,
        };
        assert_eq!([0, 1, 2].map(|layer| slice.top_pct(layer)), [50.0, 70.0, 100.0]);
        let empty = Slice { step_ns: 0.0, phase_ns: vec![0.0, 0.0], ..slice };
        assert_eq!([0, 1, 2].map(|layer| empty.top_pct(layer)), [0.0, 0.0, 0.0]);
        // Phases that add up to more than their step (a file edited by hand) stop at the top.
        let over = Slice { step_ns: 100.0, phase_ns: vec![90.0, 90.0], ..empty };
        assert_eq!(over.top_pct(1), 100.0);
    }

    #[test]
    fn a_lone_instant_point_still_slices() {
        let slices = slices(&[point(5, 5, 1, 0, 0)], &["regions"]);
        assert_eq!(slices.len(), 2);
        assert!(slices.iter().all(|slice| slice.steps_per_second.is_finite()));
    }
}
