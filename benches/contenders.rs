//! The same workloads under each contender: a leaf function; a step that calls four phases that each call a
//! leaf (nine spans a step); a function that recurses 8 calls deep; mutual recursion a thousand calls deep;
//! and a "real-shaped" step (phases, recursion and many short calls, as an optimizer's step is). Shared by
//! the divan benchmarks and the table binary.

#![allow(dead_code)]

/// The real-shaped workload (recursive memoized calls over dual numbers that allocate), bare and timed.
#[path = "memo_scene.rs"]
pub mod memo_scene;

use std::hint::black_box;

/// Spans in one call of a nested workload's `step`.
pub const SPANS_PER_STEP: u64 = 9;

/// Defines `leaf` and `step` with the same attribute and body prologue on every function.
macro_rules! workload {
    ($module:ident, [$($attr:tt)*], { $($prologue:tt)* }) => {
        pub mod $module {
            use std::hint::black_box;

            $($attr)*
            #[inline(never)]
            pub fn leaf(x: u64) -> u64 {
                $($prologue)*
                black_box(x).wrapping_mul(3)
            }

            $($attr)*
            #[inline(never)]
            pub fn phase_a(x: u64) -> u64 {
                $($prologue)*
                leaf(x)
            }

            $($attr)*
            #[inline(never)]
            pub fn phase_b(x: u64) -> u64 {
                $($prologue)*
                leaf(x + 1)
            }

            $($attr)*
            #[inline(never)]
            pub fn phase_c(x: u64) -> u64 {
                $($prologue)*
                leaf(x + 2)
            }

            $($attr)*
            #[inline(never)]
            pub fn phase_d(x: u64) -> u64 {
                $($prologue)*
                leaf(x + 3)
            }

            $($attr)*
            #[inline(never)]
            pub fn step(x: u64) -> u64 {
                $($prologue)*
                phase_a(x) ^ phase_b(x) ^ phase_c(x) ^ phase_d(x)
            }

            $($attr)*
            #[inline(never)]
            pub fn recurse(depth: u64) -> u64 {
                $($prologue)*
                if depth == 0 { black_box(depth) } else { recurse(depth - 1).wrapping_add(1) }
            }

            $($attr)*
            #[inline(never)]
            pub fn ping(depth: u64) -> u64 {
                $($prologue)*
                if depth == 0 { black_box(depth) } else { pong(depth - 1).wrapping_add(1) }
            }

            $($attr)*
            #[inline(never)]
            pub fn pong(depth: u64) -> u64 {
                $($prologue)*
                if depth == 0 { black_box(depth) } else { ping(depth - 1).wrapping_add(1) }
            }

            $($attr)*
            #[inline(never)]
            pub fn assemble(x: u64) -> u64 {
                $($prologue)*
                (0..crate::contenders::REAL_LEAVES).fold(x, |acc, i| acc ^ leaf(acc.wrapping_add(i)))
            }

            $($attr)*
            #[inline(never)]
            pub fn traverse(x: u64) -> u64 {
                $($prologue)*
                recurse(crate::contenders::REAL_DEPTH) ^ x
            }

            $($attr)*
            #[inline(never)]
            pub fn solve(x: u64) -> u64 {
                $($prologue)*
                phase_a(x) ^ phase_b(x)
            }

            $($attr)*
            #[inline(never)]
            pub fn real_step(x: u64) -> u64 {
                $($prologue)*
                assemble(x) ^ traverse(x) ^ solve(x)
            }
        }
    };
}

/// Calls of `recurse` in one call of a contender's `recursive`: a call and 8 recursive ones beneath it.
pub const SPANS_PER_RECURSION: u64 = 9;
/// Depth of the mutual recursion of the deep workload (calls of `ping` and `pong`, less one).
pub const DEEP_DEPTH: u64 = 999;
/// Short calls (`leaf`) in the real-shaped step's first phase, and the depth of its recursion.
pub const REAL_LEAVES: u64 = 8;
pub const REAL_DEPTH: u64 = 12;
/// Timed calls in one step of the memo workload: the step, `Scene::new`, `error`, `update`; `area` once
/// for each of the 127 regions and once more for each region it recurses into (7 · 2⁶ − 7 = 441 calls
/// beyond the whole's), so 442; `closeness` once per region of two sets or more (120) and `disk` once per
/// circle (7).
pub const SPANS_PER_MEMO_STEP: u64 = 4 + 442 + 120 + 7;
/// Spans in one real-shaped step: the step; `assemble` and its leaves; `traverse` and its recursion;
/// `solve` and two phases of a leaf each.
pub const SPANS_PER_REAL_STEP: u64 = 1 + (1 + REAL_LEAVES) + (1 + REAL_DEPTH + 1) + (1 + 4);

workload!(baseline, [], {});
workload!(tracing_instrument, [#[tracing::instrument(skip_all)]], {});
workload!(fastrace_trace, [#[fastrace::trace]], {});
workload!(puffin_scope, [], {
    puffin::profile_function!();
});
workload!(firestorm_scope, [], {
    firestorm::profile_fn!(leaf);
});
workload!(time_graph_instrument, [#[time_graph::instrument]], {});
workload!(hotpath_measure, [#[hotpath::measure]], {});

/// Ours, with the phases and the step marked as a user would.
pub mod timed {
    use std::hint::black_box;

    use timing_runtime::timed;

    #[timed]
    #[inline(never)]
    pub fn leaf(x: u64) -> u64 {
        black_box(x).wrapping_mul(3)
    }

    #[timed(phase = "a")]
    #[inline(never)]
    pub fn phase_a(x: u64) -> u64 {
        leaf(x)
    }

    #[timed(phase = "b")]
    #[inline(never)]
    pub fn phase_b(x: u64) -> u64 {
        leaf(x + 1)
    }

    #[timed(phase = "c")]
    #[inline(never)]
    pub fn phase_c(x: u64) -> u64 {
        leaf(x + 2)
    }

    #[timed(phase = "d")]
    #[inline(never)]
    pub fn phase_d(x: u64) -> u64 {
        leaf(x + 3)
    }

    #[timed(step)]
    #[inline(never)]
    pub fn step(x: u64) -> u64 {
        phase_a(x) ^ phase_b(x) ^ phase_c(x) ^ phase_d(x)
    }

    #[timed]
    #[inline(never)]
    pub fn recurse(depth: u64) -> u64 {
        if depth == 0 { black_box(depth) } else { recurse(depth - 1).wrapping_add(1) }
    }

    #[timed]
    #[inline(never)]
    pub fn ping(depth: u64) -> u64 {
        if depth == 0 { black_box(depth) } else { pong(depth - 1).wrapping_add(1) }
    }

    #[timed]
    #[inline(never)]
    pub fn pong(depth: u64) -> u64 {
        if depth == 0 { black_box(depth) } else { ping(depth - 1).wrapping_add(1) }
    }

    #[timed(phase = "assemble")]
    #[inline(never)]
    pub fn assemble(x: u64) -> u64 {
        (0..crate::contenders::REAL_LEAVES).fold(x, |acc, i| acc ^ leaf(acc.wrapping_add(i)))
    }

    #[timed(phase = "traverse")]
    #[inline(never)]
    pub fn traverse(x: u64) -> u64 {
        recurse(crate::contenders::REAL_DEPTH) ^ x
    }

    #[timed(phase = "solve")]
    #[inline(never)]
    pub fn solve(x: u64) -> u64 {
        phase_a(x) ^ phase_b(x)
    }

    #[timed(step)]
    #[inline(never)]
    pub fn real_step(x: u64) -> u64 {
        assemble(x) ^ traverse(x) ^ solve(x)
    }
}

/// Two reads of the time-stamp counter around the body: the floor for any exact span.
pub mod tsc_pair {
    use std::hint::black_box;

    #[inline(always)]
    fn rdtsc() -> u64 {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `rdtsc` has no preconditions on x86-64.
        return unsafe { core::arch::x86_64::_rdtsc() };
        #[cfg(not(target_arch = "x86_64"))]
        0
    }

    #[inline(never)]
    pub fn leaf(x: u64) -> u64 {
        let start = rdtsc();
        let value = black_box(x).wrapping_mul(3);
        black_box(rdtsc().wrapping_sub(start));
        value
    }
}

/// Two `Instant::now()` reads around the body.
pub mod instant_pair {
    use std::hint::black_box;
    use std::time::Instant;

    #[inline(never)]
    pub fn leaf(x: u64) -> u64 {
        let start = Instant::now();
        let value = black_box(x).wrapping_mul(3);
        black_box(start.elapsed());
        value
    }
}

/// A tracing layer that times every span (busy time, summed on close), as a timing subscriber would.
mod timing_layer {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Instant;

    use tracing::Subscriber;
    use tracing::span::{Attributes, Id};
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::Context;
    use tracing_subscriber::registry::LookupSpan;

    pub static TOTAL_NS: AtomicU64 = AtomicU64::new(0);

    struct Busy {
        entered: Option<Instant>,
        ns: u64,
    }

    pub struct TimingLayer;

    impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for TimingLayer {
        fn on_new_span(&self, _: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
            if let Some(span) = ctx.span(id) {
                span.extensions_mut().insert(Busy { entered: None, ns: 0 });
            }
        }

        fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
            if let Some(busy) =
                ctx.span(id).as_ref().map(|span| span.extensions_mut()).as_mut().and_then(|e| e.get_mut::<Busy>())
            {
                busy.entered = Some(Instant::now());
            }
        }

        fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
            if let Some(span) = ctx.span(id) {
                if let Some(busy) = span.extensions_mut().get_mut::<Busy>() {
                    if let Some(start) = busy.entered.take() {
                        busy.ns += u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
                    }
                }
            }
        }

        fn on_close(&self, id: Id, ctx: Context<'_, S>) {
            if let Some(span) = ctx.span(&id) {
                if let Some(busy) = span.extensions_mut().remove::<Busy>() {
                    TOTAL_NS.fetch_add(busy.ns, Ordering::Relaxed);
                }
            }
        }
    }
}

struct DiscardSpans;

impl fastrace::collector::Reporter for DiscardSpans {
    fn report(&mut self, spans: Vec<fastrace::collector::SpanRecord>) {
        black_box(spans.len());
    }
}

/// Turns `contender` on in its recording configuration (once per process and contender). Peers are set up
/// only when measured, so that their background threads (fastrace's collector, hotpath's worker) do not run
/// during other contenders' runs.
pub fn setup(contender: Contender) {
    use std::sync::Once;
    use tracing_subscriber::layer::SubscriberExt;
    static TRACING: Once = Once::new();
    static FASTRACE: Once = Once::new();
    static PUFFIN: Once = Once::new();
    static TIME_GRAPH: Once = Once::new();
    static HOTPATH: Once = Once::new();
    match contender {
        Contender::Tracing => TRACING.call_once(|| {
            let subscriber = tracing_subscriber::registry().with(timing_layer::TimingLayer);
            let _ = tracing::subscriber::set_global_default(subscriber);
        }),
        Contender::Fastrace => {
            FASTRACE.call_once(|| fastrace::set_reporter(DiscardSpans, fastrace::collector::Config::default()));
        }
        Contender::Puffin => PUFFIN.call_once(|| puffin::set_scopes_on(true)),
        Contender::TimeGraph => TIME_GRAPH.call_once(|| time_graph::enable_data_collection(true)),
        // hotpath records only while a guard is alive; this one lives for the process.
        Contender::Hotpath => {
            HOTPATH.call_once(|| std::mem::forget(hotpath::HotpathGuardBuilder::new("timing-benches").build()));
        }
        _ => {}
    }
}

/// What is timed in one call of a workload's function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    Leaf,
    Nested,
    Recursive,
    Deep,
    Real,
    /// A step of `benches/memo.rs`: its own code, for ours and the uninstrumented baseline only.
    Memo,
}

impl Workload {
    pub const ALL: [Workload; 6] =
        [Workload::Leaf, Workload::Nested, Workload::Recursive, Workload::Deep, Workload::Real, Workload::Memo];

    /// Timed calls in one call of the workload's function.
    pub fn spans(self) -> u64 {
        match self {
            Workload::Leaf => 1,
            Workload::Nested => SPANS_PER_STEP,
            Workload::Recursive => SPANS_PER_RECURSION,
            Workload::Deep => DEEP_DEPTH + 1,
            Workload::Real => SPANS_PER_REAL_STEP,
            Workload::Memo => SPANS_PER_MEMO_STEP,
        }
    }

    /// The name of its flag and column.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Leaf => "leaf",
            Workload::Nested => "nested",
            Workload::Recursive => "recursive",
            Workload::Deep => "deep",
            Workload::Real => "real",
            Workload::Memo => "memo",
        }
    }
}

/// A contender's run of `calls` calls of `f` (each of `spans` timed calls), with whatever the contender
/// needs around a batch of calls so that it keeps recording and its memory stays bounded (a root span, a
/// frame, a clear).
pub fn batch(contender: Contender, calls: u64, spans: u64, f: fn(u64) -> u64) -> u64 {
    let run = || (0..calls).fold(0u64, |acc, i| acc ^ f(black_box(i)));
    match contender {
        Contender::Fastrace => {
            // fastrace records at most 10,240 spans under one local parent: a root per 10,000 spans.
            let mut acc = 0;
            let mut done = 0;
            while done < calls {
                let chunk = (calls - done).min((10_000 / spans).max(1));
                let root = fastrace::Span::root("batch", fastrace::prelude::SpanContext::random());
                let _parent = root.set_local_parent();
                acc ^= (done..done + chunk).fold(0u64, |acc, i| acc ^ f(black_box(i)));
                done += chunk;
            }
            acc
        }
        Contender::Puffin => {
            let acc = {
                puffin::profile_scope!("batch");
                run()
            };
            puffin::GlobalProfiler::lock().new_frame();
            acc
        }
        Contender::Firestorm => {
            let acc = run();
            firestorm::clear();
            acc
        }
        Contender::TimeGraph => {
            let acc = run();
            time_graph::clear_collected_data();
            acc
        }
        _ => run(),
    }
}

/// Who is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Contender {
    Baseline,
    TscPair,
    InstantPair,
    Timed,
    TimedBudget,
    TimedGranularityNone,
    TimeGraph,
    Firestorm,
    Puffin,
    Fastrace,
    Tracing,
    Hotpath,
}

impl Contender {
    pub const ALL: [Contender; 12] = [
        Contender::Baseline,
        Contender::TscPair,
        Contender::InstantPair,
        Contender::Timed,
        Contender::TimedBudget,
        Contender::TimedGranularityNone,
        Contender::TimeGraph,
        Contender::Firestorm,
        Contender::Puffin,
        Contender::Fastrace,
        Contender::Tracing,
        Contender::Hotpath,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Contender::Baseline => "no instrumentation",
            Contender::TscPair => "two rdtsc reads (floor)",
            Contender::InstantPair => "two Instant::now() reads",
            Contender::Timed => "timing #[timed] (Detailed)",
            Contender::TimedBudget => "timing #[timed] under a 1% budget",
            Contender::TimedGranularityNone => "timing #[timed] at granularity None",
            Contender::TimeGraph => "time-graph #[instrument]",
            Contender::Firestorm => "firestorm profile_fn!",
            Contender::Puffin => "puffin profile_function!",
            Contender::Fastrace => "fastrace #[trace] under a root",
            Contender::Tracing => "tracing #[instrument] + registry + timing layer",
            Contender::Hotpath => "hotpath #[measure]",
        }
    }

    pub fn is_peer(self) -> bool {
        matches!(
            self,
            Contender::TimeGraph
                | Contender::Firestorm
                | Contender::Puffin
                | Contender::Fastrace
                | Contender::Tracing
                | Contender::Hotpath
        )
    }

    pub fn leaf(self) -> fn(u64) -> u64 {
        match self {
            Contender::Baseline => baseline::leaf,
            Contender::TscPair => tsc_pair::leaf,
            Contender::InstantPair => instant_pair::leaf,
            Contender::Timed | Contender::TimedBudget | Contender::TimedGranularityNone => timed::leaf,
            Contender::TimeGraph => time_graph_instrument::leaf,
            Contender::Firestorm => firestorm_scope::leaf,
            Contender::Puffin => puffin_scope::leaf,
            Contender::Fastrace => fastrace_trace::leaf,
            Contender::Tracing => tracing_instrument::leaf,
            Contender::Hotpath => hotpath_measure::leaf,
        }
    }

    /// The nested workload's step, for contenders that time nested calls.
    pub fn step(self) -> Option<fn(u64) -> u64> {
        self.workload(Workload::Nested)
    }

    /// The function one call of which is one call of `workload`: for the leaf, every contender; for the
    /// others, the contenders that time calls.
    pub fn workload(self, workload: Workload) -> Option<fn(u64) -> u64> {
        macro_rules! workload_of {
            ($module:ident) => {{
                fn recursive(x: u64) -> u64 {
                    $module::recurse(SPANS_PER_RECURSION - 1) ^ x
                }
                fn deep(x: u64) -> u64 {
                    $module::ping(DEEP_DEPTH) ^ x
                }
                Some(match workload {
                    Workload::Leaf => $module::leaf,
                    Workload::Nested => $module::step,
                    Workload::Recursive => recursive,
                    Workload::Deep => deep,
                    Workload::Real => $module::real_step,
                    Workload::Memo => return None,
                })
            }};
        }
        match (self, workload) {
            (Contender::Baseline, Workload::Memo) => return Some(memo_scene::bare::one_step),
            (Contender::Timed | Contender::TimedBudget, Workload::Memo) => return Some(memo_scene::timed::one_step),
            _ => {}
        }
        match self {
            Contender::Baseline => workload_of!(baseline),
            Contender::Timed | Contender::TimedBudget | Contender::TimedGranularityNone => workload_of!(timed),
            Contender::TimeGraph => workload_of!(time_graph_instrument),
            Contender::Firestorm => workload_of!(firestorm_scope),
            Contender::Puffin => workload_of!(puffin_scope),
            Contender::Fastrace => workload_of!(fastrace_trace),
            Contender::Tracing => workload_of!(tracing_instrument),
            Contender::Hotpath => workload_of!(hotpath_measure),
            Contender::TscPair | Contender::InstantPair => (workload == Workload::Leaf).then(|| self.leaf()),
        }
    }

    /// Sets the contender up, and the runtime's granularity for its run.
    pub fn prepare(self) {
        setup(self);
        let granularity = match self {
            Contender::TimedGranularityNone => timing_runtime::TimingGranularity::None,
            _ => timing_runtime::TimingGranularity::Detailed,
        };
        timing_runtime::set_granularity(granularity);
        // Under the budget, nearly every call of these workloads goes untimed: a call costs more than 1% of
        // the little work each does, so the rate goes to its largest, and the row measures an untimed call.
        let budget = if self == Contender::TimedBudget {
            timing_runtime::Budget::percent(1.0)
        } else {
            timing_runtime::Budget::EXACT
        };
        let _ = timing_runtime::set_budget(budget);
    }
}
