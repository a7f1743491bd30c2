//! The measurement both allocation benchmarks make (`benches/alloc.rs`, and `benches/alloc-peers`, a crate
//! of its own that includes this file), so that their numbers compare: 2 million allocations of 64 bytes,
//! each freed at once, best of 11 runs, in nanoseconds per allocation and free.

use std::hint::black_box;
use std::time::Instant;

const ALLOCATIONS: u64 = 2_000_000;
const RUNS: usize = 11;

/// Allocations the loop makes in all its runs.
#[allow(dead_code)]
pub const TOTAL: u64 = ALLOCATIONS * RUNS as u64;

/// Nanoseconds per allocation and free of 64 bytes, best of `RUNS`.
pub fn per_allocation() -> f64 {
    (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            for i in 0..ALLOCATIONS {
                black_box(Box::new([i; 8]));
            }
            #[allow(clippy::cast_precision_loss)]
            let ns = start.elapsed().as_nanos() as f64 / ALLOCATIONS as f64;
            ns
        })
        .fold(f64::INFINITY, f64::min)
}
