//! `cargo bench -p timing-benches --bench alloc`: what counting adds to each allocation. One global
//! allocator that passes each call to the contender chosen for the run (the same test and jump for all): the
//! system allocator alone, `timing_runtime::alloc::Counting` around it (outside every span, inside a span,
//! inside a phase of a step), and `stats_alloc`'s counting wrapper. hotpath's allocation tracking needs its
//! `hotpath-alloc` feature, which changes what its `#[measure]` does for the `table` benchmark in this crate,
//! so it is measured by the `alloc` benchmark of `benches/alloc-peers`, in the same way.
//!
//! Each measurement: 2 million allocations of 64 bytes, each freed at once (the allocator's fast path,
//! where a wrapper's cost shows most), best of 11 runs, in nanoseconds per allocation and free.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU8, Ordering::Relaxed};

use timing_runtime::timed;

static MODE: AtomicU8 = AtomicU8::new(0);
static COUNTING: timing_runtime::alloc::Counting = timing_runtime::alloc::Counting::system();
static STATS: stats_alloc::StatsAlloc<System> = stats_alloc::StatsAlloc::system();

struct Switch;

#[allow(unsafe_code)]
// SAFETY: each call goes whole to one allocator, chosen by a mode that changes only between runs, when no
// block of the previous mode's is outstanding (blocks of the system allocator and of the wrappers around it
// are the same blocks, so a block freed under another mode is still freed by the system allocator).
unsafe impl GlobalAlloc for Switch {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's guarantees, passed on.
        unsafe {
            match MODE.load(Relaxed) {
                1 => COUNTING.alloc(layout),
                2 => STATS.alloc(layout),
                _ => System.alloc(layout),
            }
        }
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        // SAFETY: as `alloc`.
        unsafe {
            match MODE.load(Relaxed) {
                1 => COUNTING.dealloc(block, layout),
                2 => STATS.dealloc(block, layout),
                _ => System.dealloc(block, layout),
            }
        }
    }
}

#[global_allocator]
static ALLOCATOR: Switch = Switch;

#[path = "alloc_loop.rs"]
mod alloc_loop;

use alloc_loop::per_allocation;

#[timed(phase = "allocating")]
fn in_phase() -> f64 {
    per_allocation()
}

#[timed(step)]
fn in_step() -> f64 {
    in_phase()
}

#[timed]
fn in_span() -> f64 {
    per_allocation()
}

fn main() {
    // As when `Counting` is the global allocator from the start: it has counted by the thread's first timed
    // call, which registers the thread with a table to count in.
    MODE.store(1, Relaxed);
    drop(black_box(Box::new(0u8)));
    black_box(in_span());
    MODE.store(0, Relaxed);
    let measure = |mode: u8, f: fn() -> f64| {
        MODE.store(mode, Relaxed);
        let ns = f();
        MODE.store(0, Relaxed);
        ns
    };
    let system = measure(0, per_allocation);
    let rows = [
        ("system allocator", system),
        ("timing Counting, outside every span", measure(1, per_allocation)),
        ("timing Counting, inside a span", measure(1, in_span)),
        ("timing Counting, inside a phase of a step", measure(1, in_step)),
        ("stats_alloc StatsAlloc", measure(2, per_allocation)),
    ];
    println!("| allocator | ns per allocation and free | over the system allocator |");
    println!("|---|---|---|");
    for (name, ns) in rows {
        println!("| {name} | {ns:.1} | {:+.1} |", ns - system);
    }
    let run = timing_runtime::summary();
    let counted = run.span("in_phase").and_then(|stats| stats.allocations).map_or(0, |allocations| allocations.count);
    println!("\nallocations counted in the phase: {counted} (expected {})", alloc_loop::TOTAL);
}
