//! The counting allocator: a `GlobalAlloc` that wraps another and charges each allocation, reallocation and
//! free to the innermost timed span open on the calling thread (so to its phase and step, by the rule time
//! follows), or to "outside every span".
//!
//! What it adds to each call of the wrapped allocator: a check that the innermost frame is still the one
//! whose counters the thread's `Place` holds (its depth, span name and phase), and relaxed loads and stores
//! to counters only this thread writes; the counters are looked up when the innermost frame changes. No
//! lock, no atomic read-modify-write, nothing shared between threads but one flag that is read. It never allocates through the global allocator (the one thing that could recurse): the table's
//! blocks come from `System`. The runtime's own allocations (the slow path, reports, histograms at a step's
//! end) are made with the thread marked quiet and are not counted.

use std::alloc::{GlobalAlloc, Layout, System};

use std::ptr::NonNull;

use crate::record::hot::{FrameCells, Hot, with_hot};
use crate::store::allocs::{self, AllocCounters, Place, StepCounts};

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
            count(|span, step| {
                span.add_allocation(layout.size() as u64);
                allocs::add_to_step(step, layout.size() as u64);
            });
        }
        block
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `alloc`.
        let block = unsafe { self.inner.alloc_zeroed(layout) };
        if !block.is_null() {
            count(|span, step| {
                span.add_allocation(layout.size() as u64);
                allocs::add_to_step(step, layout.size() as u64);
            });
        }
        block
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        // Counted first, so that the wrapped allocator's free is a tail call.
        count(|span, _| span.add_free(layout.size() as u64));
        // SAFETY: the caller's guarantees for `block` and `layout`, passed on.
        unsafe { self.inner.dealloc(block, layout) };
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's guarantees for `block`, `layout` and `new_size`, passed on.
        let moved = unsafe { self.inner.realloc(block, layout, new_size) };
        if !moved.is_null() {
            // One allocation of the new size and one free of the old block.
            count(|span, step| {
                span.add_allocation(new_size as u64);
                span.add_free(layout.size() as u64);
                allocs::add_to_step(step, new_size as u64);
            });
        }
        moved
    }
}

/// Charges an allocator call to the innermost open span on this thread, or to outside every span, with its
/// phase of the step in progress (or a sink that is never read): `charge` adds to them. Each caller gives a
/// closure of its own, so that each has its own copy of this, small enough to inline into the allocator.
#[inline(always)]
fn count(charge: impl FnOnce(&AllocCounters, &StepCounts)) {
    with_hot(|hot| {
        allocs::with_place(|place| {
            let found = place.get(hot.depth.get(), |frame| {
                #[allow(unsafe_code)]
                // SAFETY: `frame` is what `find_place` gave `Place::set`: a `FrameCells` of this thread's hot
                // state (alive as long as the thread), or of the recorder's frames beyond it, which move or are
                // freed only inside `with_recorder`, where the thread is quiet (`Quiet` forgets the place as it
                // begins and ends), after `forget_place` (`reserve_frame`, `set_deep_frames`). `get` calls this
                // only while the place is not forgotten, so the frame is alive, and it is this thread's alone.
                unsafe { frame.cast::<FrameCells>().as_ref() }.key()
            });
            if let Some((span, step)) = found.or_else(|| find_place(hot, place)) {
                charge(span, step);
            }
        });
    });
}

/// Finds where the innermost frame counts, and remembers it for the allocations after this one; `None` when
/// nothing counts (the runtime at work, no table).
#[cold]
#[inline(never)]
fn find_place(hot: &Hot, place: &Place) -> Option<(&'static AllocCounters, &'static StepCounts)> {
    // Before the quiet return: the runtime's own allocations as a thread registers tell it that a counting
    // allocator is installed, so that the thread gets a table at once.
    allocs::note_counting();
    if place.is_quiet() {
        return None;
    }
    let table = hot.alloc_table.get()?;
    let depth = hot.depth.get();
    let Some(frame) = hot.frame_cells(depth as usize) else { return Some((table.outside(), table.no_step())) };
    let (span, step) = match hot.innermost() {
        None => (table.outside(), table.no_step()),
        Some((name, phase)) => {
            let step = if hot.step_active.get() { table.in_step(phase) } else { table.no_step() };
            (table.for_name_or_lost(name), step)
        }
    };
    place.set(depth, NonNull::from(frame).cast(), frame.key(), span, step);
    Some((span, step))
}
