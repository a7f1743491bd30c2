//! `cargo bench -p timing-benches-alloc-peers --bench alloc`: hotpath's allocation tracking, measured as
//! `cargo bench -p timing-benches --bench alloc` measures ours (the same switching global allocator, the same
//! 2 million allocations and frees of 64 bytes, best of 11 runs), inside a `#[hotpath::measure]` function.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU8, Ordering::Relaxed};

static MODE: AtomicU8 = AtomicU8::new(0);
static HOTPATH: hotpath::CountingAllocator = hotpath::CountingAllocator::new();

struct Switch;

#[allow(unsafe_code)]
// SAFETY: each call goes whole to one allocator, chosen by a mode that changes only between runs; hotpath's
// wrapper passes every call to the system allocator, so a block is always the system allocator's.
unsafe impl GlobalAlloc for Switch {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's guarantees, passed on.
        unsafe { if MODE.load(Relaxed) == 1 { HOTPATH.alloc(layout) } else { System.alloc(layout) } }
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        // SAFETY: as `alloc`.
        unsafe {
            if MODE.load(Relaxed) == 1 {
                HOTPATH.dealloc(block, layout);
            } else {
                System.dealloc(block, layout);
            }
        }
    }
}

#[global_allocator]
static ALLOCATOR: Switch = Switch;

#[path = "../alloc_loop.rs"]
mod alloc_loop;

use alloc_loop::per_allocation;

#[hotpath::measure]
fn measured() -> f64 {
    per_allocation()
}

fn main() {
    let guard = hotpath::HotpathGuardBuilder::new("alloc-peers").build();
    let system = per_allocation();
    MODE.store(1, Relaxed);
    let hotpath = measured();
    MODE.store(0, Relaxed);
    println!("| allocator | ns per allocation and free | over the system allocator |");
    println!("|---|---|---|");
    println!("| system allocator | {system:.1} | +0.0 |");
    println!("| hotpath CountingAllocator, inside #[measure] | {hotpath:.1} | {:+.1} |", hotpath - system);
    // hotpath prints its report when the guard drops; this benchmark's table is above it.
    drop(guard);
}
