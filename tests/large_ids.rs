//! Span names and phases beyond the hot path's tables (4,096 names, 256 phases) take the slow path and
//! are counted as exactly. In a process of its own: once a process has that many, its other spans are
//! slower.

#![cfg(feature = "timing")]

mod common;

use common::{exclusive, spin};
use timing_runtime::summary;

/// A call site made at run time, as `#[timed]` makes one at compile time, so that a test can have more span
/// names and phases than the hot path's tables hold.
fn leaked_callsite(
    name: String,
    phase: Option<String>,
    kind: timing_runtime::__private::Kind,
) -> &'static timing_runtime::__private::Callsite {
    let leak = |text: String| -> &'static str { Box::leak(text.into_boxed_str()) };
    Box::leak(Box::new(timing_runtime::__private::Callsite::new(leak(name), phase.map(leak), kind, "m", "f", 1)))
}

/// A span whose phase is given its id before either test makes hundreds more, so that the id is within the
/// hot tables whichever test runs first; ids are handed out at a call site's first call.
fn small_phase_span() -> &'static timing_runtime::__private::Callsite {
    static SITE: std::sync::OnceLock<&'static timing_runtime::__private::Callsite> = std::sync::OnceLock::new();
    SITE.get_or_init(|| {
        let site =
            leaked_callsite("small inner".into(), Some("small phase".into()), timing_runtime::__private::Kind::Span);
        drop(site.enter());
        site
    })
}

#[test]
fn names_and_phases_beyond_the_hot_tables_are_counted_exactly() {
    use timing_runtime::__private::Kind;
    let _exclusive = exclusive();
    small_phase_span();
    const SPANS: usize = 4_200;
    const PHASES: usize = 300;
    const STEPS: usize = 3;
    let spans: Vec<_> = (0..SPANS)
        .map(|i| leaked_callsite(format!("many {i}"), Some(format!("many phase {}", i % PHASES)), Kind::Span))
        .collect();
    // Without a phase of its own: its time is its caller's phase, large id or not.
    let inner = leaked_callsite("many inner".into(), None, Kind::Span);
    let step = leaked_callsite("many step".into(), None, Kind::Step);
    for _ in 0..STEPS {
        let _step = step.enter();
        for site in &spans {
            let _outer = site.enter();
            let _inner = inner.enter();
            spin(1);
        }
    }
    let run = summary();
    assert_eq!(run.total_steps, STEPS);
    // Every name, so those on both sides of the table's end are checked, wherever the ids given out before
    // put it.
    for i in 0..SPANS {
        let stats = run.span(&format!("many {i}")).unwrap_or_else(|| panic!("many {i}: {run:#?}"));
        assert_eq!(stats.count, STEPS as u64, "many {i}");
        assert!(stats.total_ns >= STEPS as u64 * 1_000, "many {i}: {stats:?}");
    }
    let inner_stats = run.span("many inner").unwrap();
    assert_eq!(inner_stats.count, (SPANS * STEPS) as u64);
    let spans_per_phase = (SPANS / PHASES) as u64;
    let mut in_phases = 0;
    for phase in 0..PHASES {
        let ns = run.phase_breakdown.ns(&format!("many phase {phase}"));
        // Each of the phase's calls spun 1 µs inside `inner`, which has no phase of its own.
        assert!(ns >= spans_per_phase * STEPS as u64 * 1_000, "many phase {phase}: {ns} ns");
        in_phases += ns;
    }
    assert!(in_phases <= run.total_ns, "{in_phases} ns in phases of {} ns", run.total_ns);
    assert!(in_phases >= inner_stats.total_ns, "{in_phases} ns in phases, {} ns inside", inner_stats.total_ns);
}

#[test]
fn inside_a_span_with_a_large_phase_a_small_phase_takes_its_time_and_an_unphased_span_leaves_it() {
    use timing_runtime::__private::Kind;
    let _exclusive = exclusive();
    let inner = small_phase_span();
    // Enough phases that the outer one's id is beyond the tables, whatever ran before.
    for phase in 0..300 {
        drop(leaked_callsite(format!("filler {phase}"), Some(format!("filler phase {phase}")), Kind::Span).enter());
    }
    let outer = leaked_callsite("large outer".into(), Some("large phase".into()), Kind::Span);
    let plain = leaked_callsite("large plain".into(), None, Kind::Span);
    let step = leaked_callsite("large step".into(), None, Kind::Step);
    let run_step = || {
        let _step = step.enter();
        let _outer = outer.enter();
        spin(100);
        {
            let _plain = plain.enter();
            spin(200);
        }
        let _inner = inner.enter();
        spin(500);
    };
    // Warm: every edge is known, so only the large phase keeps the spans inside it off the hot path, where
    // the unphased one would take a phase id the tables do not have.
    run_step();
    timing_runtime::reset();
    run_step();
    let run = summary();
    let small = run.phase_breakdown.ns("small phase");
    let large = run.phase_breakdown.ns("large phase");
    assert!(small >= 500_000, "small {small} ns");
    assert!(
        (300_000..600_000).contains(&large),
        "large {large} ns (its own 100 µs and the unphased call's 200 µs, not the inner 500 µs)"
    );
    assert!(small + large <= run.total_ns);
}
