//! The counting allocator: a `GlobalAlloc` that wraps another and charges each allocation, reallocation and
//! free to the innermost timed span open on the calling thread (so to its phase and step, by the rule time
//! follows), or to "outside every span".
//!
//! What it adds to each call of the wrapped allocator: two thread-local reads (the hot state and the
//! thread's table), the innermost frame's name and phase, and relaxed loads and stores to counters only this
//! thread writes. No lock, no atomic read-modify-write, nothing shared between threads but one flag that is
//! read. It never allocates through the global allocator (the one thing that could recurse): the table's
//! blocks come from `System`. The runtime's own allocations (the slow path, reports, histograms at a step's
//! end) are made with the thread marked quiet and are not counted.

use std::alloc::{GlobalAlloc, Layout, System};

use crate::record::hot::with_hot;
use crate::store::allocs;

/// A global allocator that counts, beside the time, the allocations each timed span, phase and step makes,
/// and passes every call to the allocator it wraps (`System` unless told otherwise).
///
/// ```no_run
/// use timing_runtime::alloc::Counting;
///
/// #[global_allocator]
/// static ALLOCATOR: Counting = Counting::system();
/// ```
///
/// Wrapping another allocator: `static ALLOCATOR: Counting<mimalloc::MiMalloc> = Counting::new(MiMalloc);`.
///
/// Counted on threads from their first timed call on (earlier, a thread has nowhere to count); a free is
/// charged to the span open where it happens, which may be another thread than the allocation's. With the
/// `timing` feature off it counts nothing and costs nothing over the allocator it wraps.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counting<A = System> {
    inner: A,
}

impl Counting<System> {
    /// Counting around the system allocator.
    #[must_use]
    pub const fn system() -> Self {
        Counting { inner: System }
    }
}

impl<A> Counting<A> {
    /// Counting around `inner`.
    pub const fn new(inner: A) -> Self {
        Counting { inner }
    }

    /// The allocator it wraps.
    pub const fn inner(&self) -> &A {
        &self.inner
    }
}

#[allow(unsafe_code)]
// SAFETY: every call is passed unchanged to `inner`, whose guarantees carry over: each pointer returned comes
// from the same method of `inner`, and each pointer and layout given are passed to it as they came. Counting
// touches only thread-local state and this thread's counters, never the memory.
unsafe impl<A: GlobalAlloc> GlobalAlloc for Counting<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's guarantees for `layout`, passed on.
        let block = unsafe { self.inner.alloc(layout) };
        if !block.is_null() {
            count(Call::Allocation(layout.size() as u64));
        }
        block
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `alloc`.
        let block = unsafe { self.inner.alloc_zeroed(layout) };
        if !block.is_null() {
            count(Call::Allocation(layout.size() as u64));
        }
        block
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        // SAFETY: the caller's guarantees for `block` and `layout`, passed on.
        unsafe { self.inner.dealloc(block, layout) };
        count(Call::Free(layout.size() as u64));
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's guarantees for `block`, `layout` and `new_size`, passed on.
        let moved = unsafe { self.inner.realloc(block, layout, new_size) };
        if !moved.is_null() {
            // One allocation of the new size and one free of the old block.
            count(Call::Reallocation(new_size as u64, layout.size() as u64));
        }
        moved
    }
}

/// What an allocator call was.
#[derive(Clone, Copy)]
enum Call {
    Allocation(u64),
    Free(u64),
    /// A reallocation: the new size and the old.
    Reallocation(u64, u64),
}

/// Charges an allocator call to the innermost open span on this thread, or to outside every span; an
/// allocation also to the phase of the step in progress. Frees count in no step figure.
#[inline(always)]
fn count(call: Call) {
    allocs::note_counting();
    if allocs::is_quiet() {
        return;
    }
    with_hot(|hot| {
        let Some(table) = hot.alloc_table.get() else { return };
        let counters = match hot.innermost() {
            None => table.outside(),
            Some((name, phase)) => {
                if let (true, Call::Allocation(bytes) | Call::Reallocation(bytes, _)) = (hot.step_active.get(), call) {
                    table.add_to_step(phase, bytes);
                }
                match table.for_name(name) {
                    Some(counters) => counters,
                    None => return,
                }
            }
        };
        match call {
            Call::Allocation(bytes) => counters.add_allocation(bytes),
            Call::Free(bytes) => counters.add_free(bytes),
            Call::Reallocation(bytes, freed) => {
                counters.add_allocation(bytes);
                counters.add_free(freed);
            }
        }
    });
}
