//! A thread's exit folds what it recorded in work and memory that follow its own call paths, not the
//! process's (issue 27): a pool that recycles threads in a process with many paths paid, at every exit,
//! tables sized by every path, left behind in per-thread arenas (64 threads of 4,000 paths: +508 MiB).
//! Its own process: the global allocator here notes the largest block a watched thread asks for.

#![cfg(feature = "timing")]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use timing_runtime::{summary, timed};

/// The largest block a watched thread allocated, in bytes.
static LARGEST: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Set on the thread whose allocations are watched; no destructor, so it reads as it was while the
    /// thread's other thread-locals are torn down.
    static WATCHED: Cell<bool> = const { Cell::new(false) };
}

struct Watching;

#[allow(unsafe_code)]
// SAFETY: every call goes to `System` as it came; the only addition is a relaxed maximum.
unsafe impl GlobalAlloc for Watching {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if WATCHED.try_with(Cell::get).unwrap_or(false) {
            LARGEST.fetch_max(layout.size(), Relaxed);
        }
        // SAFETY: the caller's guarantees, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        // SAFETY: as `alloc`.
        unsafe { System.dealloc(block, layout) }
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if WATCHED.try_with(Cell::get).unwrap_or(false) {
            LARGEST.fetch_max(new_size, Relaxed);
        }
        // SAFETY: as `alloc`.
        unsafe { System.realloc(block, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Watching = Watching;

/// Names enough for many call paths: each of `NAMES` timed functions calls every one of them, `depth`
/// levels down, so that a thread makes `NAMES + NAMES² + NAMES³` paths at depth 3 (recursion would not: a
/// call inside a call of its name folds into it).
const NAMES: usize = 24;

macro_rules! fan_out {
    ($($name:ident = $index:literal),* $(,)?) => {
        $(
            #[timed]
            fn $name(depth: u32) -> u64 {
                if depth == 0 { $index } else { (0..NAMES).map(|next| call(next, depth - 1)).sum() }
            }
        )*

        fn call(index: usize, depth: u32) -> u64 {
            match index {
                $($index => $name(depth),)*
                _ => 0,
            }
        }
    };
}

fan_out!(
    f0 = 0,
    f1 = 1,
    f2 = 2,
    f3 = 3,
    f4 = 4,
    f5 = 5,
    f6 = 6,
    f7 = 7,
    f8 = 8,
    f9 = 9,
    f10 = 10,
    f11 = 11,
    f12 = 12,
    f13 = 13,
    f14 = 14,
    f15 = 15,
    f16 = 16,
    f17 = 17,
    f18 = 18,
    f19 = 19,
    f20 = 20,
    f21 = 21,
    f22 = 22,
    f23 = 23,
);

#[timed]
fn one_call() -> u32 {
    7
}

#[test]
fn a_threads_exit_costs_what_it_recorded_not_what_the_process_did() {
    let _exclusive = common::exclusive();
    // 4 threads of 14,424 paths each, each under a root of its own: 57,700 paths in the process.
    let workers: Vec<_> = (0..4u32)
        .map(|worker| {
            std::thread::spawn(move || {
                let ((), _) = timing_runtime::batch(&format!("root-{worker}"), || {
                    std::hint::black_box((0..NAMES).map(|index| call(index, 2)).sum::<u64>());
                });
            })
        })
        .collect();
    workers.into_iter().for_each(|worker| worker.join().expect("joined"));
    // A thread of one call, watched from its first allocation to its exit.
    std::thread::spawn(|| {
        WATCHED.with(|watched| watched.set(true));
        std::hint::black_box(one_call());
    })
    .join()
    .expect("joined");
    let largest = LARGEST.load(Relaxed);
    // Folding 57,700 paths' tables would take blocks of 450 KiB (their ids) and 1.8 MiB (their totals).
    assert!(largest < 128 * 1024, "a thread of one call allocated a block of {largest} bytes");
    // Nothing it or the others recorded was lost.
    let run = summary();
    assert_eq!(run.span("one_call").map(|stats| stats.count), Some(1));
    assert_eq!(run.span("f0").map(|stats| stats.count), Some(4 * (1 + NAMES + NAMES * NAMES) as u64));
}
