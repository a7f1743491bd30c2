//! Gradient descent that places circles so that their areas and pairwise overlaps match targets (the
//! area-proportional Venn diagram problem), timed with `#[timed]`. Shaped as real optimizers are: a step of
//! phases, many short timed calls (one per pair of circles) and a recursive one (the area the circles cover,
//! by subdividing the plane where a circle's edge passes), so that what the report shows is what such code
//! costs.
//!
//! ```text
//! cargo run --release --example optimizer -- [--steps N] [--batch N] [--circles N] [--threads N] [--json]
//!                                            [--out DIR] [--push URL [--instance NAME]] [--double PHASE]
//!                                            [--serve ADDRESS] [--compare BEFORE.json AFTER.json]
//! ```
//!
//! `--out DIR` writes `report.html` (the run as one page: charts, flamegraph, tables), `summary.json` (the
//! `TrainingSummary`), `trace.json` (Chrome Trace Event Format, for Perfetto or `chrome://tracing`),
//! `flamegraph.svg`, `calltree.txt` and `metrics.prom` (the Prometheus exposition). `--push URL` pushes the
//! run's metrics to a Prometheus Pushgateway when it ends, as job `optimizer` and instance `NAME` (default
//! `local`). `--mlflow URL [--experiment NAME]` logs the run to an MLflow tracking server: params, each
//! batch's metrics at its step index, and at the end `summary.json`, `report.html` and `flamegraph.svg`.
//! `--serve 127.0.0.1:PORT` serves the run live while it trains (the page at `/`, `/metrics`,
//! `/summary.json`) and goes on serving it after training until interrupted. `--double regions|error|gradient` does that phase's
//! work twice in every step, to see a regression as `timing diff` sees it. `--compare` prints what changed
//! between two `summary.json` files.

use std::f64::consts::PI;
use std::ops::{Add, Mul, Sub};
use std::process::ExitCode;

use timing_runtime::{summary, timed};

/// Every allocation counted beside the time, by span, phase and step (feature `allocations`, on by
/// default; the `example` benchmark builds without it to time the spans alone).
#[cfg(feature = "allocations")]
#[global_allocator]
static ALLOCATOR: timing_runtime::alloc::Counting = timing_runtime::alloc::Counting::system();

/// A forward-mode dual number: a value and its derivatives by each of the problem's radii, in a vector of
/// its own, as autodiff code with a number of variables known only at run time keeps them: every operation
/// allocates one.
#[derive(Clone, Debug)]
struct Dual {
    value: f64,
    derivatives: Vec<f64>,
}

impl Dual {
    /// Variable `index` of `count`, at `value`.
    fn variable(value: f64, index: usize, count: usize) -> Dual {
        let mut derivatives = vec![0.0; count];
        derivatives[index] = 1.0;
        Dual { value, derivatives }
    }

    fn constant(value: f64, count: usize) -> Dual {
        Dual { value, derivatives: vec![0.0; count] }
    }
}

impl Add for &Dual {
    type Output = Dual;
    fn add(self, other: &Dual) -> Dual {
        let derivatives = self.derivatives.iter().zip(&other.derivatives).map(|(a, b)| a + b).collect();
        Dual { value: self.value + other.value, derivatives }
    }
}

impl Mul for &Dual {
    type Output = Dual;
    // The product rule: (a b)' = a' b + a b'.
    #[allow(clippy::suspicious_arithmetic_impl)]
    fn mul(self, other: &Dual) -> Dual {
        let derivatives =
            self.derivatives.iter().zip(&other.derivatives).map(|(a, b)| a * other.value + self.value * b).collect();
        Dual { value: self.value * other.value, derivatives }
    }
}

impl Mul<f64> for &Dual {
    type Output = Dual;
    fn mul(self, factor: f64) -> Dual {
        Dual { value: self.value * factor, derivatives: self.derivatives.iter().map(|d| d * factor).collect() }
    }
}

impl Sub<f64> for &Dual {
    type Output = Dual;
    fn sub(self, constant: f64) -> Dual {
        Dual { value: self.value - constant, derivatives: self.derivatives.clone() }
    }
}

/// One circle: centre and radius.
#[derive(Clone, Copy, Debug)]
struct Circle {
    x: f64,
    y: f64,
    r: f64,
}

/// What the fit aims for: each circle's area and each pair's overlap; and the area all of them cover, which
/// the fit follows rather than aims for (the report tells whether it ends near).
struct Targets {
    areas: Vec<f64>,
    /// `overlaps[i][j]` for `i < j`.
    overlaps: Vec<Vec<f64>>,
    covered: f64,
}

/// The geometry of one pair of circles, with the derivatives of its overlap area.
#[derive(Clone, Copy, Default)]
struct Lens {
    distance: f64,
    area: f64,
    /// d(area)/d(distance): minus the length of the common chord.
    d_distance: f64,
    /// d(area)/d(r_i) and d(area)/d(r_j): the arc of each circle that lies inside the other.
    d_ri: f64,
    d_rj: f64,
}

struct Regions {
    lenses: Vec<Vec<Lens>>,
}

struct Gradient {
    circles: Vec<Circle>,
}

/// The overlap of two circles of radii `ri`, `rj` whose centres are `d` apart, and its derivatives: a short
/// call, made for every pair in every step.
#[timed]
fn lens(d: f64, ri: f64, rj: f64) -> Lens {
    if d >= ri + rj {
        return Lens { distance: d, ..Lens::default() };
    }
    if d <= (ri - rj).abs() {
        // One circle inside the other: the overlap is the smaller circle.
        let (area, d_ri, d_rj) =
            if ri <= rj { (PI * ri * ri, 2.0 * PI * ri, 0.0) } else { (PI * rj * rj, 0.0, 2.0 * PI * rj) };
        return Lens { distance: d, area, d_distance: 0.0, d_ri, d_rj };
    }
    let alpha_i = ((d * d + ri * ri - rj * rj) / (2.0 * d * ri)).clamp(-1.0, 1.0).acos();
    let alpha_j = ((d * d + rj * rj - ri * ri) / (2.0 * d * rj)).clamp(-1.0, 1.0).acos();
    let area =
        ri * ri * (alpha_i - alpha_i.sin() * alpha_i.cos()) + rj * rj * (alpha_j - alpha_j.sin() * alpha_j.cos());
    let chord = 2.0 * ri * alpha_i.sin();
    Lens { distance: d, area, d_distance: -chord, d_ri: 2.0 * ri * alpha_i, d_rj: 2.0 * rj * alpha_j }
}

#[timed(phase = "regions")]
fn compute_regions(circles: &[Circle]) -> Regions {
    let lenses = circles
        .iter()
        .enumerate()
        .map(|(i, a)| circles[i + 1..].iter().map(|b| lens((a.x - b.x).hypot(a.y - b.y), a.r, b.r)).collect())
        .collect();
    Regions { lenses }
}

#[timed(phase = "error")]
fn compute_errors(circles: &[Circle], regions: &Regions, targets: &Targets) -> f64 {
    let areas: f64 = circles.iter().zip(&targets.areas).map(|(c, target)| (PI * c.r * c.r - target).powi(2)).sum();
    let overlaps: f64 = regions
        .lenses
        .iter()
        .zip(&targets.overlaps)
        .flat_map(|(lenses, targets)| lenses.iter().zip(targets))
        .map(|(lens, target)| (lens.area - target).powi(2))
        .sum();
    areas + overlaps
}

/// A square of the plane: its lower-left corner and its side.
#[derive(Clone, Copy, Debug)]
struct Square {
    x: f64,
    y: f64,
    side: f64,
}

/// Subdivisions of the circles' bounding square when measuring the area they cover.
const COVER_DEPTH: u32 = 3;

/// The area the circles cover (their union), to the resolution of `COVER_DEPTH` halvings of the bounding
/// square's side.
#[timed(phase = "error")]
fn covered_area(circles: &[Circle]) -> f64 {
    let (mut low_x, mut low_y, mut high_x, mut high_y) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for c in circles {
        (low_x, low_y) = (low_x.min(c.x - c.r), low_y.min(c.y - c.r));
        (high_x, high_y) = (high_x.max(c.x + c.r), high_y.max(c.y + c.r));
    }
    let side = (high_x - low_x).max(high_y - low_y);
    cover(circles, Square { x: low_x, y: low_y, side }, COVER_DEPTH)
}

/// The area of `square` inside some circle: all of it when one circle holds it, none when no circle's
/// edge or inside reaches it, otherwise that of its four quarters (at `depth` 0, all or none by its
/// centre). Recursive, as region traversals of real optimizers are.
#[timed]
fn cover(circles: &[Circle], square: Square, depth: u32) -> f64 {
    let half = square.side / 2.0;
    let (centre_x, centre_y) = (square.x + half, square.y + half);
    let mut reached = false;
    for c in circles {
        let (dx, dy) = ((c.x - centre_x).abs(), (c.y - centre_y).abs());
        if (dx + half).hypot(dy + half) <= c.r {
            return square.side * square.side;
        }
        reached |= (dx - half).max(0.0).hypot((dy - half).max(0.0)) < c.r;
    }
    if !reached {
        return 0.0;
    }
    if depth == 0 {
        let inside = circles.iter().any(|c| (c.x - centre_x).hypot(c.y - centre_y) <= c.r);
        return if inside { square.side * square.side } else { 0.0 };
    }
    [(0.0, 0.0), (half, 0.0), (0.0, half), (half, half)]
        .iter()
        .map(|(x, y)| cover(circles, Square { x: square.x + x, y: square.y + y, side: half }, depth - 1))
        .sum()
}

/// The area error, the sum over circles of (π r² − target)², with its derivatives by each radius, by
/// forward-mode autodiff: a handful of allocations per circle per step, as autodiff code makes.
#[timed]
fn area_error(circles: &[Circle], targets: &Targets) -> Dual {
    let count = circles.len();
    let mut total = Dual::constant(0.0, count);
    for (i, (c, target)) in circles.iter().zip(&targets.areas).enumerate() {
        let r = Dual::variable(c.r, i, count);
        let residual = &(&(&r * &r) * PI) - *target;
        total = &total + &(&residual * &residual);
    }
    total
}

#[timed(phase = "gradient")]
fn compute_gradients(circles: &[Circle], regions: &Regions, targets: &Targets) -> Gradient {
    let mut gradient: Vec<Circle> = circles.iter().map(|_| Circle { x: 0.0, y: 0.0, r: 0.0 }).collect();
    for (g, d) in gradient.iter_mut().zip(&area_error(circles, targets).derivatives) {
        g.r += d;
    }
    for (i, lenses) in regions.lenses.iter().enumerate() {
        for (offset, lens) in lenses.iter().enumerate() {
            let j = i + 1 + offset;
            let residual = 2.0 * (lens.area - targets.overlaps[i][offset]);
            if lens.distance > 1e-12 {
                let (dx, dy) =
                    ((circles[i].x - circles[j].x) / lens.distance, (circles[i].y - circles[j].y) / lens.distance);
                let pull = residual * lens.d_distance;
                gradient[i].x += pull * dx;
                gradient[i].y += pull * dy;
                gradient[j].x -= pull * dx;
                gradient[j].y -= pull * dy;
            }
            gradient[i].r += residual * lens.d_ri;
            gradient[j].r += residual * lens.d_rj;
        }
    }
    Gradient { circles: gradient }
}

/// Adam's moment estimates, one per coordinate of every circle.
struct Moments {
    first: Vec<f64>,
    second: Vec<f64>,
    steps: i32,
}

// On an `impl` block, each method is timed as `Type::method` (here `Moments::new`).
#[timed]
impl Moments {
    fn new(circles: usize) -> Self {
        Moments { first: vec![0.0; 3 * circles], second: vec![0.0; 3 * circles], steps: 0 }
    }
}

#[timed(phase = "update")]
fn apply_gradients(circles: &mut [Circle], moments: &mut Moments, gradient: &Gradient, learning_rate: f64) {
    const BETA1: f64 = 0.9;
    const BETA2: f64 = 0.999;
    moments.steps = moments.steps.saturating_add(1);
    let (correct1, correct2) = (1.0 - BETA1.powi(moments.steps), 1.0 - BETA2.powi(moments.steps));
    let coordinates = circles.iter_mut().flat_map(|c| [&mut c.x, &mut c.y, &mut c.r]);
    let gradients = gradient.circles.iter().flat_map(|g| [g.x, g.y, g.r]);
    for (((value, g), m), v) in coordinates.zip(gradients).zip(&mut moments.first).zip(&mut moments.second) {
        *m = BETA1 * *m + (1.0 - BETA1) * g;
        *v = BETA2 * *v + (1.0 - BETA2) * g * g;
        *value -= learning_rate * (*m / correct1) / ((*v / correct2).sqrt() + 1e-9);
    }
    for c in circles {
        c.r = c.r.max(0.05);
    }
}

/// Where a fit stands: its error, and the area its circles cover.
#[derive(Clone, Copy, Debug)]
struct Fit {
    error: f64,
    covered: f64,
}

/// The phase whose work `--double PHASE` does twice in every step (0: none, 1: regions, 2: error, 3:
/// gradient): what a regression looks like to `timing diff`.
static DOUBLED: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

#[timed(step)]
fn make_step(circles: &mut [Circle], moments: &mut Moments, targets: &Targets, learning_rate: f64) -> Fit {
    let doubled = DOUBLED.load(std::sync::atomic::Ordering::Relaxed);
    let regions = compute_regions(circles);
    if doubled == 1 {
        std::hint::black_box(compute_regions(circles));
    }
    let error = compute_errors(circles, &regions, targets);
    let covered = covered_area(circles);
    if doubled == 2 {
        std::hint::black_box(covered_area(circles));
    }
    let gradient = compute_gradients(circles, &regions, targets);
    if doubled == 3 {
        std::hint::black_box(compute_gradients(circles, &regions, targets));
    }
    apply_gradients(circles, moments, &gradient, learning_rate);
    Fit { error, covered }
}

#[timed(batch)]
fn train_batch(circles: &mut [Circle], moments: &mut Moments, targets: &Targets, steps: usize) -> Fit {
    let mut fit = Fit { error: f64::NAN, covered: f64::NAN };
    for _ in 0..steps {
        fit = make_step(circles, moments, targets, 0.01);
    }
    fit
}

/// A deterministic problem of `n` circles: targets from a hidden layout, and a start far from it.
fn problem(n: usize, seed: u64) -> (Vec<Circle>, Targets) {
    let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    let mut random = move || {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        #[allow(clippy::cast_precision_loss)]
        let unit = (state >> 11) as f64 / (1u64 << 53) as f64;
        unit
    };
    let hidden: Vec<Circle> =
        (0..n).map(|_| Circle { x: 4.0 * random(), y: 4.0 * random(), r: 0.6 + random() }).collect();
    let areas = hidden.iter().map(|c| PI * c.r * c.r).collect();
    let overlaps =
        compute_regions(&hidden).lenses.iter().map(|lenses| lenses.iter().map(|l| l.area).collect()).collect();
    let covered = covered_area(&hidden);
    // Started overlapping, so that every pair has a gradient to follow.
    let start = (0..n).map(|_| Circle { x: 1.0 + 2.0 * random(), y: 1.0 + 2.0 * random(), r: 1.0 }).collect();
    (start, Targets { areas, overlaps, covered })
}

struct Options {
    steps: usize,
    batch: usize,
    circles: usize,
    threads: usize,
    json: bool,
    out: Option<std::path::PathBuf>,
    compare: Option<(String, String)>,
    push: Option<String>,
    instance: String,
    serve: Option<String>,
    mlflow: Option<String>,
    experiment: String,
}

const USAGE: &str = "usage: optimizer [--steps N] [--batch N] [--circles N] [--threads N] [--json] [--out DIR] \
                     [--push URL [--instance NAME]] [--serve ADDRESS] [--mlflow URL [--experiment NAME]] \
                     [--double PHASE] [--budget PCT] \
                     [--compare BEFORE.json AFTER.json]";

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        steps: 10_000,
        batch: 1_000,
        circles: 6,
        threads: 1,
        json: false,
        out: None,
        compare: None,
        push: None,
        instance: "local".into(),
        serve: None,
        mlflow: None,
        experiment: "optimizer".into(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> Result<usize, String> {
            let value = args.next().ok_or_else(|| format!("{name} needs a value"))?;
            match value.parse::<usize>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(format!("{name} takes a positive whole number, not `{value}`")),
            }
        };
        match arg.as_str() {
            "--steps" => options.steps = number("--steps")?,
            "--batch" => options.batch = number("--batch")?,
            "--circles" => options.circles = number("--circles")?.max(2),
            "--threads" => options.threads = number("--threads")?,
            "--json" => options.json = true,
            "--out" => options.out = Some(args.next().ok_or("--out needs a directory")?.into()),
            "--push" => options.push = Some(args.next().ok_or("--push needs a Pushgateway address")?),
            "--instance" => options.instance = args.next().ok_or("--instance needs a name")?,
            "--serve" => options.serve = Some(args.next().ok_or("--serve needs an address, such as 127.0.0.1:9185")?),
            "--mlflow" => options.mlflow = Some(args.next().ok_or("--mlflow needs a tracking server's URL")?),
            "--experiment" => options.experiment = args.next().ok_or("--experiment needs a name")?,
            "--double" => {
                let phase = args.next().ok_or("--double needs a phase: regions, error or gradient")?;
                let which = match phase.as_str() {
                    "regions" => 1,
                    "error" => 2,
                    "gradient" => 3,
                    other => return Err(format!("--double takes regions, error or gradient, not `{other}`")),
                };
                DOUBLED.store(which, std::sync::atomic::Ordering::Relaxed);
            }
            "--compare" => {
                let before = args.next().ok_or("--compare needs two summary.json files")?;
                let after = args.next().ok_or("--compare needs two summary.json files")?;
                options.compare = Some((before, after));
            }
            "--budget" => {
                let budget = args.next().ok_or("--budget needs a percentage, such as 1%")?;
                let budget = timing_runtime::Budget::parse(&budget).map_err(|error| format!("--budget: {error}"))?;
                timing_runtime::set_budget(budget).map_err(|error| format!("--budget: {error}"))?;
            }
            "--help" | "-h" => return Err(USAGE.into()),
            other => return Err(format!("unknown option `{other}` (try --help)")),
        }
    }
    Ok(options)
}

/// The area of circles of radii `radii`: timed per type, so that `total_area<f64>` and `total_area<f32>`
/// are spans of their own (what a lower-precision build would cost, seen side by side).
#[timed(per_type)]
fn total_area<T: Into<f64> + Copy>(radii: &[T]) -> f64 {
    radii.iter().map(|r| std::f64::consts::PI * (*r).into() * (*r).into()).sum()
}

/// Trains one problem on this thread; returns the first error, the final fit and the covered area aimed at.
fn train(options: &Options, seed: u64, progress: Option<&indicatif::ProgressBar>) -> (f64, Fit, f64) {
    let (mut circles, targets) = problem(options.circles, seed);
    let mut moments = Moments::new(circles.len());
    let radii: Vec<f64> = circles.iter().map(|circle| circle.r).collect();
    #[allow(clippy::cast_possible_truncation)]
    let radii_f32: Vec<f32> = radii.iter().map(|r| *r as f32).collect();
    std::hint::black_box((total_area(&radii), total_area(&radii_f32)));
    let first = compute_errors(&circles, &compute_regions(&circles), &targets);
    // A few warm-up steps written as a loop body: `scope!(.., step)` makes each iteration a step.
    for _ in 0..10 {
        let _step = timing_runtime::scope!("warm_up_step", step);
        let regions = compute_regions(&circles);
        let gradient = compute_gradients(&circles, &regions, &targets);
        apply_gradients(&mut circles, &mut moments, &gradient, 0.001);
    }
    let mut done = 0;
    let mut fit = Fit { error: f64::NAN, covered: f64::NAN };
    while done < options.steps {
        let steps = options.batch.min(options.steps - done);
        fit = train_batch(&mut circles, &mut moments, &targets, steps);
        done += steps;
        mlflow::log_batch();
        if let Some(progress) = progress {
            progress.inc(steps as u64);
            if let Some(batch) = timing_runtime::last_batch() {
                progress.set_message(format!("error {:.3e}, {:.0} steps/s", fit.error, batch.steps_per_second));
            }
        }
    }
    (first, fit, targets.covered)
}

fn main() -> ExitCode {
    let options = match parse_options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::FAILURE;
        }
    };
    if let Some((before, after)) = &options.compare {
        return match compare(before, after) {
            Ok(comparison) => {
                print!("{comparison}");
                ExitCode::SUCCESS
            }
            Err(message) => {
                eprintln!("{message}");
                ExitCode::FAILURE
            }
        };
    }
    if options.out.is_some() {
        // Keep the newest million spans of each thread for the trace.
        timing_runtime::set_timeline(1_000_000);
    }
    if let Some(url) = &options.mlflow {
        if let Err(message) = mlflow::start(url, &options) {
            eprintln!("{message}");
            return ExitCode::FAILURE;
        }
    }
    let server = match options.serve.as_deref().map(serve).transpose() {
        Ok(server) => server,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::FAILURE;
        }
    };
    let total = (options.steps * options.threads) as u64;
    let progress = (!options.json).then(|| {
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} steps {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    // On several threads, the whole run is also one batch whose timing comes back from the call that ran
    // it; its steps run on the worker threads, inside the batch's handle, so they count to it.
    let run_all = || {
        let handle = timing_runtime::batch_handle();
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..options.threads)
                .map(|thread| {
                    let (options, progress, handle) = (&options, progress.as_ref(), handle.clone());
                    scope.spawn(move || {
                        let work = || train(options, 7 + thread as u64, progress);
                        match &handle {
                            Some(handle) => handle.in_scope(work),
                            None => work(),
                        }
                    })
                })
                .collect();
            let failed = (f64::NAN, Fit { error: f64::NAN, covered: f64::NAN }, f64::NAN);
            workers.into_iter().map(|worker| worker.join().unwrap_or(failed)).collect::<Vec<_>>()
        })
    };
    let (errors, run_batch) = if options.threads > 1 {
        timing_runtime::batch("parallel_run", run_all)
    } else {
        (vec![train(&options, 7, progress.as_ref())], None)
    };
    if let Some(progress) = progress {
        progress.finish_and_clear();
    }
    let run = summary();
    if let Err(message) = mlflow::finish(&run) {
        eprintln!("{message}");
        return ExitCode::FAILURE;
    }
    if let Some(dir) = &options.out {
        if let Err(message) = write_outputs(dir, &run) {
            eprintln!("{message}");
            return ExitCode::FAILURE;
        }
        eprintln!(
            "wrote report.html, summary.json, trace.json, flamegraph.svg, calltree.txt and metrics.prom to {}",
            dir.display()
        );
    }
    if let Some(gateway) = &options.push {
        if let Err(message) = push(&run, gateway, &options.instance) {
            eprintln!("{message}");
            return ExitCode::FAILURE;
        }
        eprintln!("pushed the run's metrics to {gateway} as job optimizer, instance {}", options.instance);
    }
    if options.json {
        match serde_json::to_string_pretty(&run) {
            Ok(json) => println!("{json}"),
            Err(error) => {
                eprintln!("could not write the summary as JSON: {error}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        let errors: Vec<String> = errors
            .iter()
            .map(|(first, fit, covered)| {
                format!("error {first:.3e} -> {:.3e}, covering {:.2} of {covered:.2}", fit.error, fit.covered)
            })
            .collect();
        println!("Fitted {} circles on {} thread(s): {}", options.circles, options.threads, errors.join("; "));
        if let Some(batch) = &run_batch {
            println!(
                "The run as one batch on {} threads: {} steps in {:.1} ms, {:.0} steps/s",
                options.threads,
                batch.steps,
                batch.compute_ns as f64 / 1e6,
                batch.steps_per_second
            );
        }
        println!();
        print!("{run}");
    }
    if let Some(server) = server {
        keep_serving(&server);
    }
    ExitCode::SUCCESS
}

/// The run logged to an MLflow tracking server (`--mlflow URL`): each batch's metrics as it ends, from
/// whichever thread ran it, and the run's figures and files at the end.
#[cfg(feature = "mlflow")]
mod mlflow {
    use std::sync::Mutex;

    use timing_runtime::MlflowRun;

    static RUN: Mutex<Option<MlflowRun>> = Mutex::new(None);

    pub fn start(url: &str, options: &super::Options) -> Result<(), String> {
        let (steps, batch, circles, threads) = (
            options.steps.to_string(),
            options.batch.to_string(),
            options.circles.to_string(),
            options.threads.to_string(),
        );
        let params = [
            ("steps", steps.as_str()),
            ("batch", batch.as_str()),
            ("circles", circles.as_str()),
            ("threads", threads.as_str()),
        ];
        let run = MlflowRun::start(url, &options.experiment, "optimizer", &params)
            .map_err(|error| format!("--mlflow: {error}"))?;
        eprintln!("logging to MLflow at {url}: experiment {}, run {}", run.experiment_id(), run.run_id());
        *RUN.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(run);
        Ok(())
    }

    /// Hands the batch this thread just ended to the run's sending thread (it never waits on the server).
    pub fn log_batch() {
        let mut run = RUN.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let (Some(active), Some(batch)) = (run.as_mut(), timing_runtime::last_batch()) {
            active.log_batch(&batch);
        }
    }

    pub fn finish(summary: &timing_runtime::TrainingSummary) -> Result<(), String> {
        let Some(run) = RUN.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take() else { return Ok(()) };
        if run.dropped() > 0 {
            eprintln!("--mlflow: {} batches were not logged ({})", run.dropped(), run.last_error().unwrap_or_default());
        }
        run.finish(summary).map_err(|error| format!("--mlflow: {error}"))
    }
}

#[cfg(not(feature = "mlflow"))]
mod mlflow {
    pub fn start(_: &str, _: &super::Options) -> Result<(), String> {
        Err("--mlflow needs the example built with the `mlflow` feature".into())
    }

    pub fn log_batch() {}

    pub fn finish(_: &timing_runtime::TrainingSummary) -> Result<(), String> {
        Ok(())
    }
}

/// Serves the run live at `address` (the page at `/`, `/metrics`, `/summary.json`).
#[cfg(feature = "serve")]
fn serve(address: &str) -> Result<timing_runtime::Server, String> {
    let server = timing_runtime::serve(address).map_err(|error| format!("--serve {address}: {error}"))?;
    eprintln!("serving the run live at {}", server.url());
    Ok(server)
}

/// The page and /metrics go on showing the finished run until the program is interrupted.
#[cfg(feature = "serve")]
fn keep_serving(server: &timing_runtime::Server) -> ! {
    eprintln!("training done; serving the run at {} until interrupted (Ctrl-C)", server.url());
    loop {
        std::thread::park();
    }
}

#[cfg(not(feature = "serve"))]
enum NoServer {}

#[cfg(not(feature = "serve"))]
fn serve(_: &str) -> Result<NoServer, String> {
    Err("--serve needs the example built with the `serve` feature".into())
}

#[cfg(not(feature = "serve"))]
fn keep_serving(server: &NoServer) -> ! {
    match *server {}
}

/// Writes the run's outputs into `dir`, which is created if needed.
fn write_outputs(dir: &std::path::Path, run: &timing_runtime::TrainingSummary) -> Result<(), String> {
    let write = |name: &str, contents: &str| {
        std::fs::write(dir.join(name), contents)
            .map_err(|error| format!("cannot write {}: {error}", dir.join(name).display()))
    };
    std::fs::create_dir_all(dir).map_err(|error| format!("cannot create {}: {error}", dir.display()))?;
    let json = serde_json::to_string_pretty(run).map_err(|error| format!("cannot encode the summary: {error}"))?;
    write("summary.json", &json)?;
    #[cfg(feature = "json")]
    write("trace.json", &timing_runtime::timeline().to_chrome_trace())?;
    write("calltree.txt", &run.call_tree.to_string())?;
    write("metrics.prom", &run.to_prometheus())?;
    #[cfg(feature = "flamegraph")]
    {
        let svg = run
            .call_tree
            .flamegraph_svg("optimizer: self time by call path")
            .map_err(|error| format!("cannot draw the flamegraph: {error}"))?;
        write("flamegraph.svg", &svg)?;
    }
    #[cfg(feature = "html")]
    {
        let page = run.to_html("optimizer").map_err(|error| format!("cannot draw the page: {error}"))?;
        write("report.html", &page)?;
    }
    Ok(())
}

/// Pushes the run's metrics to the Pushgateway at `gateway`.
#[cfg(feature = "push")]
fn push(run: &timing_runtime::TrainingSummary, gateway: &str, instance: &str) -> Result<(), String> {
    run.push(gateway, "optimizer", instance).map_err(|error| error.to_string())
}

#[cfg(not(feature = "push"))]
fn push(_: &timing_runtime::TrainingSummary, _: &str, _: &str) -> Result<(), String> {
    Err("--push needs the example built with the `push` feature".into())
}

/// What changed between two runs' `summary.json` files.
fn compare(before: &str, after: &str) -> Result<timing_runtime::Comparison, String> {
    let read = |path: &str| -> Result<timing_runtime::TrainingSummary, String> {
        let text = std::fs::read_to_string(path).map_err(|error| format!("cannot read {path}: {error}"))?;
        serde_json::from_str(&text).map_err(|error| format!("{path} is not a summary.json: {error}"))
    };
    Ok(read(before)?.compare(&read(after)?))
}
