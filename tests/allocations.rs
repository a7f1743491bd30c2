//! Allocations beside the time (issue 18): with `Counting` as the global allocator, known numbers of boxes
//! and vectors in each phase of each step, on several threads, give exactly these numbers in every figure:
//! per span, per phase per step, per step record and in the run's totals. Frees on another thread, `async`
//! polls, the runtime's own allocations and allocations from thread-local destructors are checked too.

#![cfg(feature = "timing")]

mod common;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use common::exclusive;
use timing_runtime::alloc::Counting;
use timing_runtime::{Allocations, last_batch, summary, timed};

#[global_allocator]
static ALLOCATOR: Counting = Counting::system();

/// `n` boxes of a `u64` in a vector of exactly `n`: `n + 1` allocations of `16 n` bytes, all freed before
/// the span closes.
#[timed(phase = "boxes")]
fn boxes(n: usize) -> usize {
    let boxes: Vec<Box<u64>> = (0..n as u64).map(Box::new).collect();
    boxes.len()
}

/// A vector of 16 bytes grown to 32: an allocation of 16, a reallocation to 32 (an allocation of 32 and a
/// free of 16), and the free of the 32.
#[timed(phase = "vectors")]
fn vectors() -> usize {
    let mut bytes: Vec<u8> = Vec::with_capacity(16);
    bytes.extend_from_slice(&[7; 32]);
    bytes.len()
}

/// The phases, and a byte of the step's own.
#[timed(step)]
fn step(n: usize) -> usize {
    let own = Box::new(1u8);
    boxes(n) + vectors() + usize::from(*own)
}

#[timed(batch)]
fn train(n: usize, steps: usize) -> usize {
    (0..steps).map(|_| step(n)).sum()
}

const STEPS: usize = 25;

fn expected_step(n: u64) -> (u64, u64) {
    (n + 1 + 2 + 1, 16 * n + 48 + 1)
}

#[test]
fn every_figure_is_exact_on_several_threads() {
    let _exclusive = exclusive();
    let boxes_per_thread = [2u64, 5, 9];
    let records: Vec<_> = std::thread::scope(|scope| {
        let workers: Vec<_> = boxes_per_thread
            .iter()
            .map(|n| {
                scope.spawn(move || {
                    train(*n as usize, STEPS);
                    last_batch().and_then(|batch| batch.step_timings).expect("step records at Detailed")
                })
            })
            .collect();
        workers.into_iter().map(|worker| worker.join().expect("the worker ran")).collect()
    });
    // Each step's record, by phase and whole.
    for (n, steps) in boxes_per_thread.iter().zip(&records) {
        assert_eq!(steps.len(), STEPS);
        for record in steps {
            assert_eq!((record.allocations, record.allocated_bytes), {
                let (count, bytes) = expected_step(*n);
                (Some(count), Some(bytes))
            });
            let phase = |name: &str| {
                let time = record.phases.iter().find(|time| time.phase == name).expect("the phase is in the record");
                (time.allocations, time.allocated_bytes)
            };
            assert_eq!(phase("boxes"), (Some(n + 1), Some(16 * n)));
            assert_eq!(phase("vectors"), (Some(2), Some(48)));
        }
    }
    let run = summary();
    let steps = (STEPS * boxes_per_thread.len()) as u64;
    let total_boxes: u64 = boxes_per_thread.iter().map(|n| n * STEPS as u64).sum();
    // Per span: what the span made while it was the innermost one.
    let of = |name: &str| run.span(name).and_then(|stats| stats.allocations).expect("counted");
    let both = |count, bytes| Allocations { count, bytes, frees: count, freed_bytes: bytes };
    assert_eq!(of("boxes"), both(total_boxes + steps, 16 * total_boxes));
    assert_eq!(
        of("vectors"),
        Allocations { count: 2 * steps, bytes: 48 * steps, frees: 2 * steps, freed_bytes: 48 * steps }
    );
    assert_eq!(of("step"), both(steps, steps));
    assert_eq!(of("train"), Allocations::default());
    // Per phase per step: means exact, and percentiles exact below 128.
    let phase = |name: &str| {
        let share = run.phase_breakdown.phases.iter().find(|share| share.phase == name).expect("a phase");
        share.allocations.expect("counted")
    };
    let boxes = phase("boxes");
    assert!((boxes.count.mean - (total_boxes + steps) as f64 / steps as f64).abs() < 1e-9, "{boxes:?}");
    assert_eq!((boxes.count.p50, boxes.count.max), (6, 10));
    // Above 127, a bucket is 1/64 of its power of two wide, and its midpoint stands for it.
    assert_eq!(boxes.bytes.p50, 80);
    assert!(boxes.bytes.max.abs_diff(144) <= 1, "{boxes:?}");
    let vectors = phase("vectors");
    assert_eq!((vectors.count.mean, vectors.count.p95, vectors.bytes.max), (2.0, 2, 48));
    // The run: every allocation in spans is one of the above.
    let totals = run.allocations.expect("a counting allocator is installed");
    let expected_in_spans =
        [of("boxes"), of("vectors"), of("step")].iter().fold(Allocations::default(), |mut sum, a| {
            sum.add(a);
            sum
        });
    assert_eq!(totals.in_spans, expected_in_spans);
    let (count, bytes) = expected_step(5);
    assert_eq!((totals.per_step.count.p50, totals.per_step.bytes.p50), (count, bytes));
    assert_eq!(totals.per_step.count.max, expected_step(9).0);
    // The report shows them, and JSON carries them both ways.
    let report = run.to_string();
    let boxes_line = report.lines().find(|line| line.trim_start().starts_with("Boxes:") && line.ends_with(" B"));
    assert!(report.contains("Allocations:") && boxes_line.is_some_and(|line| line.contains("6.3")), "{report}");
    let json = serde_json::to_string(&run).expect("serialised");
    assert_eq!(serde_json::from_str::<timing_runtime::TrainingSummary>(&json).expect("read back"), run);
}

#[timed]
fn make_on_one_thread() -> Box<[u8; 64]> {
    Box::new([1; 64])
}

/// Frees the block inside its span: a parameter is dropped after the function's body, so after its span
/// (the span is the body's, as with the feature off).
#[timed]
fn free_on_another(block: Box<[u8; 64]>) -> u8 {
    let first = block[0];
    drop(block);
    first
}

#[test]
fn a_free_counts_where_it_happens() {
    let _exclusive = exclusive();
    let block = std::thread::spawn(make_on_one_thread).join().expect("the thread ran");
    std::thread::spawn(move || free_on_another(block)).join().expect("the thread ran");
    let run = summary();
    let of = |name: &str| run.span(name).and_then(|stats| stats.allocations).expect("counted");
    assert_eq!(of("make_on_one_thread"), Allocations { count: 1, bytes: 64, frees: 0, freed_bytes: 0 });
    assert_eq!(of("free_on_another"), Allocations { count: 0, bytes: 0, frees: 1, freed_bytes: 64 });
}

/// Pending once, then ready.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        if std::mem::replace(&mut self.0, true) { Poll::Ready(()) } else { Poll::Pending }
    }
}

#[timed]
async fn across_polls() -> usize {
    let made = std::hint::black_box(vec![0u8; 100]);
    YieldOnce(false).await;
    made.len()
}

#[timed]
fn poller() -> usize {
    let mut future = Box::pin(across_polls());
    let mut context = Context::from_waker(Waker::noop());
    let first = future.as_mut().poll(&mut context).is_pending();
    // Between the polls: the poller's own.
    let between = std::hint::black_box(vec![0u8; 10]);
    let Poll::Ready(length) = future.as_mut().poll(&mut context) else { panic!("ready at the second poll") };
    usize::from(first) + length + between.len()
}

#[test]
fn an_async_fn_is_charged_what_its_polls_allocate() {
    let _exclusive = exclusive();
    assert_eq!(std::thread::spawn(poller).join().expect("the thread ran"), 111);
    let run = summary();
    let of = |name: &str| run.span(name).and_then(|stats| stats.allocations).expect("counted");
    // The vector made in the first poll and freed in the second.
    assert_eq!(of("across_polls"), Allocations { count: 1, bytes: 100, frees: 1, freed_bytes: 100 });
    // The pinned future's box and the vector between the polls, and both freed.
    let poller = of("poller");
    assert_eq!((poller.count, poller.frees), (2, 2));
    assert_eq!(poller.bytes - 10, poller.freed_bytes - 10);
}

thread_local! {
    /// Allocates, and calls a timed function, from its destructor, after the runtime's own thread state may
    /// be gone.
    static LATE: Late = const { Late };
}

struct Late;

impl Drop for Late {
    fn drop(&mut self) {
        let late: Vec<u64> = (0..100).collect();
        std::hint::black_box(make_on_one_thread());
        std::hint::black_box(late);
    }
}

#[test]
fn allocations_from_thread_local_destructors_neither_panic_nor_abort() {
    let _exclusive = exclusive();
    std::thread::spawn(|| {
        LATE.with(|_| {});
        make_on_one_thread();
    })
    .join()
    .expect("the thread exited cleanly");
}

#[test]
fn allocations_outside_every_span_are_counted_apart() {
    let _exclusive = exclusive();
    let outside = std::thread::spawn(|| {
        make_on_one_thread();
        let before = summary().allocations.expect("counted").outside_spans;
        std::hint::black_box(vec![0u8; 1_000]);
        let after = summary().allocations.expect("counted").outside_spans;
        (after.count - before.count, after.bytes - before.bytes)
    })
    .join()
    .expect("the thread ran");
    assert_eq!(outside, (1, 1_000));
}

/// One box a level, made before the call below it and freed after: at each level the innermost span changes
/// twice, and past 64 levels the frames live in storage that moves as the stack grows.
#[timed]
fn nested_boxes(level: u32) -> u32 {
    let own = Box::new(level);
    let below = if level == 0 { 0 } else { nested_boxes(level - 1) };
    *own + below
}

#[timed]
fn sibling_boxes(n: usize) -> usize {
    boxes(n) + vectors() + boxes(n)
}

#[test]
fn each_allocation_counts_where_it_is_made_however_the_innermost_span_changes() {
    let _exclusive = exclusive();
    let (levels, n) = (300u32, 3usize);
    std::thread::spawn(move || {
        // Many levels, then siblings that make no allocation between them: each sibling's are its own.
        assert_eq!(nested_boxes(levels), levels * (levels + 1) / 2);
        assert_eq!(sibling_boxes(n), 2 * n + 32);
    })
    .join()
    .expect("the thread ran");
    let run = summary();
    let of = |name: &str| run.span(name).and_then(|stats| stats.allocations).expect("counted");
    let boxes_made = u64::from(levels) + 1;
    assert_eq!(
        of("nested_boxes"),
        Allocations { count: boxes_made, bytes: 4 * boxes_made, frees: boxes_made, freed_bytes: 4 * boxes_made }
    );
    let n = n as u64;
    assert_eq!(of("boxes").count, 2 * (n + 1));
    assert_eq!(of("vectors").count, 2);
    assert_eq!(of("sibling_boxes"), Allocations::default());
}

/// Two boxes a call, in a function that is sampled under a budget.
#[timed]
fn sampled_boxes(level: u32) -> u32 {
    let (a, b) = (Box::new(level), Box::new(level));
    let below = if level == 0 { 0 } else { sampled_boxes(level - 1) };
    *a + *b - level + below
}

/// A box a call, and no timed call: a leaf, which without a counting allocator would go untimed without a
/// frame.
#[timed]
fn leaf_box(value: u32) -> u32 {
    *std::hint::black_box(Box::new(value))
}

#[timed(phase = "sampled")]
fn sampled_calls() -> u32 {
    let one = Box::new(1u32);
    (0..50).map(|level| sampled_boxes(2) + leaf_box(level)).sum::<u32>() + *one
}

#[timed(step)]
fn sampled_step() -> u32 {
    sampled_calls()
}

#[test]
fn under_a_budget_an_untimed_call_allocates_in_its_own_span() {
    let _exclusive = exclusive();
    // So small that no run keeps to it: nearly every call of `sampled_boxes` is counted, not timed.
    timing_runtime::set_budget(timing_runtime::Budget::percent(0.001).with_seed(4)).expect("a budget");
    std::thread::spawn(|| {
        for _ in 0..4_000 {
            std::hint::black_box(sampled_step());
        }
    })
    .join()
    .expect("the thread ran");
    timing_runtime::set_budget(timing_runtime::Budget::EXACT).expect("exact");
    let run = summary();
    let boxes = run.span("sampled_boxes").expect("recorded");
    let estimate = boxes.estimate.expect("sampled");
    // The outermost call of each recursion is timed (a third of the calls); the inner ones mostly not.
    assert!(estimate.timed * 2 < boxes.count, "{boxes:?}");
    // 4,000 steps of 50 calls of 3 levels, two boxes a level, each where it was made.
    let calls = 4_000 * 50 * 3;
    assert_eq!(boxes.count, calls);
    assert_eq!(boxes.allocations.expect("counted").count, 2 * calls);
    let leaf = run.span("leaf_box").expect("recorded");
    assert!(leaf.estimate.is_some_and(|estimate| estimate.timed * 4 < leaf.count), "{leaf:?}");
    assert_eq!(leaf.allocations.expect("counted").count, 4_000 * 50);
    assert_eq!(run.span("sampled_calls").and_then(|stats| stats.allocations).expect("counted").count, 4_000);
}
