//! The rules the numbers follow (issue 2), checked on work of known duration.

#![cfg(feature = "timing")]

mod common;

use std::sync::{Arc, Barrier};
use std::time::Instant;

use common::{exclusive, near, spin, wall_since};
use timing_runtime::{TimingGranularity, last_batch, reset, set_granularity, summary, timed};

#[timed(phase = "gradient")]
fn gradient() {
    spin(400);
}

#[timed(phase = "regions")]
fn regions() {
    spin(300);
    intersections();
}

/// No phase of its own: its time is the caller's phase.
#[timed]
fn intersections() {
    spin(100);
}

#[timed(phase = "error")]
fn error() {
    spin(100);
}

#[timed(step)]
fn make_step() {
    gradient();
    regions();
    error();
    spin(100);
}

#[timed(batch)]
fn train_batch(steps: usize) {
    for _ in 0..steps {
        make_step();
    }
}

#[test]
fn phases_take_their_share_and_add_up_to_100() {
    let _exclusive = exclusive();
    // Shares are of total time, which one step the scheduler stretched by milliseconds moves (the VM's other
    // core may be busy): a run whose shares are off is run again, up to three times; the rules that hold
    // whatever the scheduler does are checked in every run.
    let mut shares_held = false;
    for _ in 0..3 {
        reset();
        train_batch(20);
        let run = summary();
        let breakdown = &run.phase_breakdown;
        assert_eq!(run.total_steps, 20);
        assert_eq!(breakdown.pct("update"), 0.0);
        let sum: f64 = breakdown.phases.iter().map(|share| share.pct).sum::<f64>() + breakdown.overhead_pct;
        assert!((sum - 100.0).abs() < 1e-9, "{sum}");
        let ns: u64 = breakdown.phases.iter().map(|share| share.ns).sum::<u64>() + breakdown.overhead_ns;
        assert_eq!(ns, run.total_ns);
        // 400 + 400 + 100 + 100 µs of 1000 a step: the un-phased callee belongs to "regions". Medians per
        // step, which a step the scheduler stretched does not move.
        let median = |phase: &str| {
            breakdown.phases.iter().find(|share| share.phase == phase).map_or(0.0, |share| share.per_step.p50_ns as f64)
        };
        assert!(near(median("gradient"), 400_000.0, 0.1), "{run:#?}");
        assert!(near(median("regions"), 400_000.0, 0.1), "{run:#?}");
        assert!(near(median("error"), 100_000.0, 0.2), "{run:#?}");
        if near(breakdown.pct("gradient"), 40.0, 0.25) && near(breakdown.overhead_pct, 10.0, 0.6) {
            shares_held = true;
            break;
        }
        eprintln!("shares off in this run, once more: {breakdown:#?}");
    }
    assert!(shares_held, "the shares were off in three runs in a row");
}

#[timed(phase = "outer")]
fn outer_phase() {
    spin(200);
    inner_phase();
}

#[timed(phase = "inner")]
fn inner_phase() {
    spin(600);
}

#[timed(step)]
fn nested_step() {
    outer_phase();
}

#[test]
fn a_phase_inside_another_counts_to_the_inner_one() {
    let _exclusive = exclusive();
    for _ in 0..10 {
        nested_step();
    }
    let breakdown = summary().phase_breakdown;
    // Medians per step: a step the scheduler stretched (the VM's other core may be busy) moves a share, not
    // a median. 600 µs of the inner phase and 200 µs of the outer one's own.
    let median = |phase: &str| {
        breakdown.phases.iter().find(|share| share.phase == phase).map_or(0.0, |share| share.per_step.p50_ns as f64)
    };
    assert!(near(median("inner"), 600_000.0, 0.1), "{breakdown:#?}");
    assert!(near(median("outer"), 200_000.0, 0.2), "{breakdown:#?}");
}

#[test]
fn total_time_is_the_sum_of_step_times_and_the_rate_is_over_wall_time() {
    let _exclusive = exclusive();
    let start = Instant::now();
    train_batch(10);
    let wall = wall_since(start);
    let run = summary();
    let batch = last_batch().expect("a batch was completed on this thread");
    let steps = batch.step_timings.as_ref().expect("step records at Detailed");
    assert_eq!(steps.len(), 10);
    let sum: u64 = steps.iter().map(|step| step.total_ns).sum();
    assert!(sum.abs_diff(run.total_ns) <= 10, "records {sum} vs summary {}", run.total_ns);
    assert!(run.total_ns >= 10 * 1_000_000 && run.total_ns <= wall, "{} of {wall}", run.total_ns);
    // One thread: the steps' wall time is at least their sum and within the batch; the rate is over it.
    assert!(run.wall_ns + 10 >= run.total_ns && run.wall_ns <= wall, "{} of {wall}", run.wall_ns);
    assert!(near(run.steps_per_second, 10.0 / (run.wall_ns as f64 / 1e9), 1e-9));
    assert_eq!(run.batches, 1);
    assert_eq!(batch.steps, 10);
    // Each record is rounded to whole nanoseconds on its own: the sums may differ by a nanosecond a step.
    assert!(batch.compute_ns + 10 >= run.total_ns && batch.compute_ns <= wall + wall / 1000, "{batch:?} {wall}");
    assert!(near(batch.steps_per_second, batch.steps_per_second(), 1e-12));
    for step in steps {
        // A preempted thread only adds time, so every step holds its 400 µs and most hold no more.
        assert!(step.phase_ns("gradient") >= 300_000, "{step:?}");
        assert_eq!(step.phase_ns("update"), 0);
        let phased: u64 = step.phases.iter().map(|phase| phase.ns).sum();
        assert!(phased <= step.total_ns);
    }
    let mut gradients: Vec<u64> = steps.iter().map(|step| step.phase_ns("gradient")).collect();
    gradients.sort_unstable();
    assert!(near(gradients[gradients.len() / 2] as f64, 400_000.0, 0.25), "{gradients:?}");
}

#[timed(name = "descend")]
fn recurse(depth: u32) {
    spin(20);
    if depth > 1 {
        recurse(depth - 1);
    }
}

#[test]
fn a_recursive_span_counts_its_outermost_call_only() {
    let _exclusive = exclusive();
    let start = Instant::now();
    recurse(50);
    let wall = wall_since(start);
    let run = summary();
    let stats = run.span("descend").expect("recorded under its given name");
    assert_eq!(stats.count, 50);
    assert!(stats.total_ns <= wall && stats.total_ns >= 50 * 20_000, "{stats:?} of {wall}");
    assert!(stats.self_ns <= stats.total_ns);
    assert!(run.span("recurse").is_none());
}

#[timed(phase = "gradient")]
fn outside_any_step() {
    spin(50);
}

#[test]
fn spans_outside_steps_have_statistics_but_no_share() {
    let _exclusive = exclusive();
    for _ in 0..3 {
        outside_any_step();
    }
    let run = summary();
    let stats = run.span("outside_any_step").expect("recorded");
    assert_eq!(stats.count, 3);
    assert!(stats.min_ns >= 50_000 && stats.min_ns <= stats.max_ns, "{stats:?}");
    assert!(near(stats.mean_ns, stats.total_ns as f64 / 3.0, 1e-9));
    assert_eq!(run.total_steps, 0);
    assert!(run.phase_breakdown.phases.is_empty());
}

#[test]
fn granularity_levels_record_what_they_promise() {
    let _exclusive = exclusive();

    set_granularity(TimingGranularity::None);
    train_batch(3);
    assert_eq!(summary().total_steps, 0);
    assert!(last_batch().is_none());

    set_granularity(TimingGranularity::Batch);
    train_batch(3);
    let batch = last_batch().expect("batches are recorded at Batch");
    assert_eq!((batch.steps, batch.step_timings.is_none()), (3, true));
    let run = summary();
    assert_eq!(run.total_steps, 3);
    assert!(run.total_ns > 0 && run.spans.is_empty() && run.phase_breakdown.phases.is_empty(), "{run:#?}");

    reset();
    set_granularity(TimingGranularity::Step);
    train_batch(3);
    let steps = last_batch().and_then(|batch| batch.step_timings).expect("step records at Step");
    assert_eq!(steps.len(), 3);
    assert!(steps.iter().all(|step| step.total_ns >= 1_000_000 && step.phases.is_empty()), "{steps:?}");
    assert!(summary().spans.is_empty());

    set_granularity(TimingGranularity::Detailed);
    assert_eq!(timing_runtime::granularity(), TimingGranularity::Detailed);
}

#[test]
fn steps_of_every_thread_are_merged_live_and_after_exit() {
    let _exclusive = exclusive();
    let ready = Arc::new(Barrier::new(3));
    let finish = Arc::new(Barrier::new(3));
    let live: Vec<_> = (0..2)
        .map(|_| {
            let (ready, finish) = (Arc::clone(&ready), Arc::clone(&finish));
            std::thread::spawn(move || {
                train_batch(5);
                let mine = last_batch().map(|batch| batch.steps);
                ready.wait();
                finish.wait();
                mine
            })
        })
        .collect();
    let exited = std::thread::spawn(|| train_batch(7));
    exited.join().unwrap();
    ready.wait();
    let run = summary();
    assert_eq!(run.total_steps, 5 + 5 + 7, "{run:#?}");
    assert_eq!(run.batches, 3);
    assert_eq!(run.span("gradient").map(|stats| stats.count), Some(17));
    assert!(last_batch().is_none(), "no batch ran on this thread");
    finish.wait();
    for thread in live {
        assert_eq!(thread.join().unwrap(), Some(5));
    }
    assert_eq!(summary().total_steps, 17);
}

#[test]
fn reset_forgets_everything_on_every_thread() {
    let _exclusive = exclusive();
    train_batch(2);
    std::thread::spawn(|| train_batch(2)).join().unwrap();
    assert_eq!(summary().total_steps, 4);
    reset();
    let run = summary();
    assert_eq!((run.total_steps, run.total_ns, run.batches), (0, 0, 0));
    assert!(run.spans.is_empty(), "{run:#?}");
    assert!(last_batch().is_none());
    train_batch(1);
    assert_eq!(summary().total_steps, 1);
    assert_eq!(summary().span("gradient").map(|stats| stats.count), Some(1));
}

#[timed(step)]
fn outer_step() {
    make_step();
}

#[test]
fn a_step_inside_a_step_is_a_span_of_the_outer_one() {
    let _exclusive = exclusive();
    outer_step();
    let run = summary();
    assert_eq!(run.total_steps, 1);
    assert_eq!(run.span("make_step").map(|stats| stats.count), Some(1));
}

#[test]
fn the_report_prints_steps_rate_and_breakdown() {
    let _exclusive = exclusive();
    train_batch(5);
    let run = summary();
    let report = run.to_string();
    assert!(report.starts_with("Summary:\n  Steps: 5\n  Threads: 1\n  Wall time: "), "{report}");
    assert!(report.contains("steps/sec"), "{report}");
    let line = |label: &str, pct: f64| format!("    {label:<16} {pct:>5.1}%");
    assert!(report.contains(&line("Gradient:", run.phase_breakdown.pct("gradient"))), "{report}");
    assert!(report.contains(&line("Unphased:", run.phase_breakdown.unphased_pct)), "{report}");
    assert!(report.contains(&line("Instrumentation:", run.phase_breakdown.instrumentation_pct)), "{report}");
    let gradient = report.find("Gradient:").unwrap();
    assert!(gradient < report.find("Error:").unwrap(), "largest share first:\n{report}");
}

#[test]
fn every_type_survives_a_json_round_trip() {
    let _exclusive = exclusive();
    train_batch(3);
    let run = summary();
    let json = serde_json::to_string(&run).unwrap();
    assert_eq!(serde_json::from_str::<timing_runtime::TrainingSummary>(&json).unwrap(), run);
    let batch = last_batch().unwrap();
    let json = serde_json::to_string(&batch).unwrap();
    assert_eq!(serde_json::from_str::<timing_runtime::BatchTiming>(&json).unwrap(), batch);
}

#[timed(step, phase = "gradient")]
fn short_step() {
    spin(100);
}

/// A batch that does work of its own between its steps, as a real one clones its state or checks for
/// repeats: 200 µs around each 100 µs step.
#[timed(batch)]
fn batch_with_work_between(steps: usize) {
    for _ in 0..steps {
        spin(200);
        short_step();
    }
}

#[test]
fn batch_time_is_its_steps_and_its_own_time_between_them() {
    let _exclusive = exclusive();
    batch_with_work_between(10);
    // A batch whose steps ran on another thread: its time is not split.
    let ((), _) = timing_runtime::batch("pooled", || {
        let handle = timing_runtime::batch_handle().expect("open");
        std::thread::spawn(move || handle.in_scope(short_step)).join().unwrap();
    });
    let run = summary();
    let parts = &run.batch_breakdown;
    assert_eq!(parts.steps_ns + parts.between_steps_ns + parts.unsplit_ns, run.batch_ns, "{parts:?}");
    assert!((parts.steps_pct + parts.between_steps_pct + parts.unsplit_pct - 100.0).abs() < 1e-9, "{parts:?}");
    // The steps on the batch's own thread: 10 of them, as the run counts them (the pooled one is apart).
    let own_steps: u64 = run.spans.iter().find(|stats| stats.name == "short_step").map_or(0, |stats| stats.total_ns);
    assert!(parts.steps_ns <= own_steps && parts.steps_ns >= 10 * 100_000, "{parts:?}");
    assert!(parts.between_steps_ns >= 10 * 200_000, "{parts:?}");
    assert!(parts.unsplit_ns >= 100_000, "{parts:?}");
    // In every output.
    assert!(run.to_string().contains("between steps"), "{run}");
    let metric = run.to_prometheus();
    assert!(metric.contains("timing_batch_seconds_total{part=\"between_steps\"}"), "{metric}");
    let json: serde_json::Value = serde_json::from_str(&serde_json::to_string(&run).unwrap()).unwrap();
    assert_eq!(json["batch_breakdown"]["between_steps_ns"].as_u64(), Some(parts.between_steps_ns));
}
