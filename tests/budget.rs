//! The overhead budget (issue 28): under `Budget::percent`, calls that do not open a phase are timed 1 in N
//! and the others counted and estimated; the figures stay right on average and say how far off they may be.

#![cfg(feature = "timing")]

mod common;

use common::{exclusive, spin_ns};
use timing_runtime::{Budget, TrainingSummary, set_budget, summary, timed};

/// A deterministic generator for the workload's call durations (not the sampler's: its seed is the budget's).
struct Work(u64);

impl Work {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[timed]
fn short(nanos: u64) {
    spin_ns(nanos);
}

#[timed]
fn nested(nanos: u64) {
    short(nanos / 2);
    spin_ns(nanos / 2);
}

#[timed]
fn descend(depth: u32, nanos: u64) {
    spin_ns(nanos);
    if depth > 0 {
        descend(depth - 1, nanos);
    }
}

#[timed(phase = "many short calls")]
fn many(work: &mut Work) {
    for _ in 0..40 {
        short(2_000 + work.next() % 6_000);
    }
}

#[timed(phase = "nested and recursive")]
fn deeper(work: &mut Work) {
    for _ in 0..10 {
        nested(4_000 + work.next() % 6_000);
    }
    descend(8, 2_000 + work.next() % 1_000);
}

#[timed(phase = "plain")]
fn plain() {
    spin_ns(60_000);
}

#[timed(step)]
fn step(work: &mut Work) {
    many(work);
    deeper(work);
    plain();
}

fn run(steps: usize, seed: u64) -> TrainingSummary {
    timing_runtime::reset();
    let mut work = Work(seed | 1);
    for _ in 0..steps {
        step(&mut work);
    }
    summary()
}

/// A phase's share of the time the program spent outside the instrumentation: what the shares mean in a
/// run with a budget and in one without alike (each run's instrumentation is its own).
fn share(run: &TrainingSummary, phase: &str) -> f64 {
    let breakdown = &run.phase_breakdown;
    let work = run.total_ns.saturating_sub(breakdown.instrumentation_ns) as f64;
    100.0 * breakdown.ns(phase) as f64 / work
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// A budget so small that no run keeps to it: each name is then timed `MIN_TIMED` (16) times a window and
/// counted the rest of the time, as sampled as the runtime ever samples.
fn tiny_budget(seed: u64) -> Budget {
    Budget::percent(0.001).with_seed(seed)
}

#[test]
fn sampled_runs_agree_with_exact_ones_on_shares_totals_and_counts() {
    let _exclusive = exclusive();
    // Runs of each kind in turn, so that a slower stretch of the machine falls on both; medians of five.
    let (mut exact, mut sampled) = (Vec::new(), Vec::new());
    for round in 0..5 {
        set_budget(Budget::EXACT).unwrap();
        exact.push(run(300, 7));
        set_budget(tiny_budget(round)).unwrap();
        sampled.push(run(300, 7));
    }
    set_budget(Budget::EXACT).unwrap();
    let last = sampled.last().unwrap();
    let budget = last.budget.as_ref().expect("the budget is reported");
    assert!(!budget.kept, "{budget:?}");
    for name in ["short", "nested", "descend"] {
        let site = budget.sampled.iter().find(|site| site.name == name).unwrap_or_else(|| panic!("{name}: {budget:?}"));
        // Recursion's outermost calls are always timed: a ninth of `descend`'s.
        assert!(site.rate > 2.0, "{name} is sampled: {site:?}");
    }
    // Phases, steps and calls that open a phase stay exact.
    for name in ["many", "deeper", "plain", "step"] {
        assert!(last.span(name).unwrap().estimate.is_none(), "{name}");
    }
    // A debug build's calls cost ten times a release build's (more on the monotonic clock), and their
    // calibrated cost, which both kinds of run leave out of the phases, is that much further off; a span's
    // total holds the instrumentation of the calls it made, which a sampled run has less of. So 1 point and
    // 3% hold for release builds on the TSC (`.ci/run` runs this test in one), 2 points and 10% elsewhere.
    let release = !cfg!(debug_assertions) && std::env::var_os("TIMING_NO_TSC").is_none();
    let (points, fraction) = if release { (1.0, 0.03) } else { (2.0, 0.10) };
    for phase in ["many short calls", "nested and recursive", "plain"] {
        let (exact, sampled) = (
            median(exact.iter().map(|run| share(run, phase)).collect()),
            median(sampled.iter().map(|run| share(run, phase)).collect()),
        );
        assert!((exact - sampled).abs() <= points, "{phase}: {exact:.2}% exact, {sampled:.2}% sampled");
    }
    for name in ["short", "nested", "descend", "many", "deeper", "plain"] {
        let total =
            |runs: &[TrainingSummary]| median(runs.iter().map(|run| run.span(name).unwrap().total_ns as f64).collect());
        let (exact_ns, sampled_ns) = (total(&exact), total(&sampled));
        assert!(
            (sampled_ns / exact_ns - 1.0).abs() <= fraction,
            "{name}: {sampled_ns} ns sampled, {exact_ns} ns exact"
        );
        for (exact, sampled) in exact.iter().zip(&sampled) {
            assert_eq!(exact.span(name).unwrap().count, sampled.span(name).unwrap().count, "{name}");
        }
    }
}

/// Calls of 1, 5 or 25 µs, in an order fixed by the workload's seed: timed 1 in N, their total is an
/// estimate whose error comes from which calls were timed, far above the machine's noise.
#[timed]
fn varied(micros: u64) {
    spin_ns(micros * 1_000);
}

#[timed(phase = "varied calls")]
fn varied_calls(work: &mut Work) {
    for _ in 0..40 {
        varied([1, 5, 25][(work.next() % 3) as usize]);
    }
}

#[timed(step)]
fn varied_step(work: &mut Work) {
    varied_calls(work);
}

/// The exact total of the varied workload's `varied` calls, as the spins ask (each spin runs a little
/// longer: the reads of the clock that end it).
fn varied_run(steps: usize) -> TrainingSummary {
    timing_runtime::reset();
    let mut work = Work(11);
    for _ in 0..steps {
        varied_step(&mut work);
    }
    summary()
}

#[test]
fn stated_intervals_cover_the_exact_totals_and_are_not_wider_than_need_be() {
    let _exclusive = exclusive();
    const RUNS: u64 = 100;
    const STEPS: usize = 60;
    set_budget(Budget::EXACT).unwrap();
    // The exact figure: the median of a few exact runs (their spread is the machine's, a fraction of a
    // percent; an interval's is the sampling's, tens of percent).
    let exact = median((0..5).map(|_| varied_run(STEPS).span("varied").unwrap().total_ns as f64).collect());
    let (mut covered, mut errors, mut margins) = (0, Vec::new(), Vec::new());
    for seed in 0..RUNS {
        set_budget(tiny_budget(seed)).unwrap();
        let run = varied_run(STEPS);
        let span = run.span("varied").unwrap();
        let estimate = span.estimate.expect("sampled");
        // Most calls estimated (a busy stretch of the machine keeps the rate down for a window).
        assert!(estimate.timed < span.count / 2, "{estimate:?} of {}", span.count);
        let error = (span.total_ns as f64 - exact).abs();
        if error <= estimate.total_ns_margin as f64 {
            covered += 1;
        }
        errors.push(error);
        margins.push(estimate.total_ns_margin as f64);
    }
    set_budget(Budget::EXACT).unwrap();
    // At least 90 of 100 covered: intervals not too narrow.
    assert!(covered >= 90, "{covered} of {RUNS} intervals cover the exact total ({exact} ns); margins {margins:?}");
    // Not so wide that they say nothing: the median half-width is at most twice the error that 95% of the
    // runs stay within (a correct 95% interval's half-width is about that error itself).
    errors.sort_by(f64::total_cmp);
    let error_95 = errors[(errors.len() * 95) / 100 - 1];
    let margin = median(margins);
    assert!(margin <= 2.0 * error_95, "median margin {margin} ns, 95% of errors within {error_95} ns");
    assert!(margin < 0.5 * exact, "median margin {margin} ns of {exact} ns");
}

/// A call whose time changes mid-run: 2 µs for the first half, 20 µs for the second.
#[timed]
fn changing(micros: u64) {
    spin_ns(micros * 1_000);
}

#[timed(phase = "changing calls")]
fn changing_calls(micros: u64) {
    for _ in 0..20 {
        changing(micros);
    }
}

#[timed(step)]
fn changing_step(micros: u64) {
    changing_calls(micros);
}

#[test]
fn when_a_call_gets_slower_the_rate_adapts_and_the_estimate_follows() {
    let _exclusive = exclusive();
    // A budget the fast calls keep to without sampling (20 ns of 2 µs is 1%), which the slow ones leave
    // room to spare in: the rate falls then rises; and one no run keeps to, where it only rises.
    for (budget, halves) in [(Budget::percent(5.0), 1), (tiny_budget(3), 2)] {
        set_budget(budget).unwrap();
        timing_runtime::reset();
        for _ in 0..400 {
            changing_step(2);
        }
        let fast = summary();
        for _ in 0..400 {
            changing_step(20);
        }
        let both = summary();
        set_budget(Budget::EXACT).unwrap();
        let (fast, both) = (fast.span("changing").unwrap().clone(), both.span("changing").unwrap().clone());
        assert_eq!((fast.count, both.count), (8_000, 16_000));
        // What the calls took, as spun (each spin runs a little over: the clock reads that end it).
        let asked = 8_000.0 * 2_000.0 + 8_000.0 * 20_000.0;
        let margin = both.estimate.map_or(0.0, |estimate| estimate.total_ns_margin as f64);
        let error = both.total_ns as f64 - asked;
        // Below it by at most the estimate's lag: the slow calls right after the change count at the fast
        // calls' estimate until the moving average catches up, which the margin does not hold (a debug run
        // came out 8% and 11% low, its margin 7%).
        assert!(error > -(margin + asked * 0.25), "{halves}: {} ns for {asked} ns spun: {both:?}", both.total_ns);
        // Above it by what preempted calls took besides: a busy stretch of this VM added 14% once, so not
        // more than half again.
        assert!(error < margin + asked * 0.5, "{halves}: {} ns for {asked} ns spun: {both:?}", both.total_ns);
        // The second half's calls were estimated from the second half's timed calls: without that the
        // total would be the first half's mean times the calls, a fraction of it.
        assert!(both.total_ns as f64 > asked * 0.75, "{both:?}");
        if halves == 2 {
            assert!(fast.estimate.is_some() && both.estimate.is_some(), "{fast:?} {both:?}");
        }
    }
}

#[timed(per_type)]
fn typed<T: Default>() -> T {
    spin_ns(500);
    T::default()
}

/// An `async fn` that awaits: its polls are timed, each on the slow path, whatever the budget.
#[timed]
async fn polled(micros: u64) -> u64 {
    std::future::ready(()).await;
    spin_ns(micros * 1_000);
    micros
}

#[timed(phase = "mixed")]
fn mixed() -> u64 {
    let mut sum = 0;
    for _ in 0..20 {
        sum += u64::from(typed::<u8>()) + typed::<u64>();
    }
    // An `async fn`'s polls are always timed (they close on the slow path), budget or not.
    let mut future = std::pin::pin!(polled(1));
    let waker = std::task::Waker::noop();
    if let std::task::Poll::Ready(value) = future.as_mut().poll(&mut std::task::Context::from_waker(waker)) {
        sum += value;
    }
    sum
}

#[timed(step)]
fn mixed_step() -> u64 {
    mixed()
}

#[test]
fn per_type_spans_are_sampled_apart_and_async_polls_stay_exact() {
    let _exclusive = exclusive();
    set_budget(tiny_budget(9)).unwrap();
    timing_runtime::reset();
    for _ in 0..500 {
        std::hint::black_box(mixed_step());
    }
    let run = summary();
    set_budget(Budget::EXACT).unwrap();
    let types: Vec<_> = run.spans.iter().filter(|span| span.name.starts_with("typed")).collect();
    assert_eq!(types.len(), 2, "{types:?}");
    for span in types {
        assert_eq!(span.count, 10_000, "{span:?}");
        let estimate = span.estimate.unwrap_or_else(|| panic!("sampled: {span:?}"));
        assert!(estimate.timed < 2_000, "{span:?}");
        // 500 ns spun a call (and a little more: the clock reads that end each spin, and the call itself),
        // within the stated margin, which a preempted timed call widens as much as it moves the estimate.
        let (total, margin) = (span.total_ns as f64, estimate.total_ns_margin as f64);
        assert!(total > 10_000.0 * 500.0 - margin && total < 10_000.0 * 1_000.0 + margin, "{span:?}");
    }
    let polled = run.span("polled").unwrap();
    assert_eq!(polled.count, 500);
    assert!(polled.estimate.is_none(), "{polled:?}");
    assert!(polled.total_ns >= 500 * 1_000_000 / 1_000, "{polled:?}");
}

#[test]
fn a_budget_out_of_range_is_refused_and_the_one_in_force_kept() {
    let _exclusive = exclusive();
    set_budget(Budget::percent(2.0)).unwrap();
    for bad in [0.0, -1.0, 100.5, f64::NAN, f64::INFINITY] {
        assert!(set_budget(Budget::percent(bad)).is_err(), "{bad}");
    }
    assert_eq!(timing_runtime::budget().percent, Some(2.0));
    assert_eq!(Budget::parse("1%"), Ok(Budget::percent(1.0)));
    assert_eq!(Budget::parse(" 0.5 "), Ok(Budget::percent(0.5)));
    assert_eq!(Budget::parse("exact"), Ok(Budget::EXACT));
    assert!(Budget::parse("fast").is_err());
    assert!(Budget::parse("200%").is_err());
    set_budget(Budget::EXACT).unwrap();
    assert!(timing_runtime::budget().is_exact());
}

/// A recursive function with a phase: its inner calls open no phase (their caller's is theirs), so they are
/// sampled as any other; the outermost one opens it and is timed.
#[timed(phase = "phased recursion")]
fn phased_descend(depth: u32) {
    spin_ns(1_000);
    if depth > 0 {
        phased_descend(depth - 1);
    }
}

#[timed(step)]
fn phased_step() {
    phased_descend(9);
}

#[test]
fn a_phased_recursion_is_sampled_below_its_outermost_call() {
    let _exclusive = exclusive();
    set_budget(tiny_budget(5)).unwrap();
    timing_runtime::reset();
    for _ in 0..2_000 {
        phased_step();
    }
    let run = summary();
    set_budget(Budget::EXACT).unwrap();
    let span = run.span("phased_descend").unwrap();
    assert_eq!(span.count, 20_000);
    let estimate = span.estimate.unwrap_or_else(|| panic!("sampled: {span:?}"));
    // The 2,000 outermost calls are timed; of the 18,000 inner ones, few.
    assert!(estimate.timed < 6_000, "{span:?}");
    // Its phase holds the step, as timed exactly (the step has no time of its own but the calls).
    let share = run.phase_breakdown.phases.iter().find(|share| share.phase == "phased recursion").unwrap();
    assert!(share.ns + run.phase_breakdown.instrumentation_ns + 2_000 * 1_000 >= run.total_ns, "{run:#?}");
}
