//! Memory the runtime keeps for the life of the process (histogram octaves, histograms, counter slabs, step
//! totals, allocation tables), carved from large chunks of its own rather than allocated one by one.
//!
//! Allocated one by one, each was a small block placed among the user's own: an octave is made when a
//! duration first lands in it, at a moment set by how long a call took, in the middle of a step. A block
//! that is never freed, between blocks an allocation-heavy program allocates and frees, changed how glibc
//! served that program's allocations from then on (`benches/memo.rs`, 200 steps under callgrind: `_int_malloc`
//! 12.1 to 13.2 million instructions from one run of the same binary to the next, against 9.4 million
//! uninstrumented). A chunk is large enough that the system allocator maps it apart from its heap, and its
//! pages become resident only as they are used, so memory still follows what was recorded.

use std::alloc::{GlobalAlloc, Layout, System};
use std::ptr::NonNull;

use parking_lot::Mutex;

/// Bytes a chunk holds: above glibc's default threshold for mapping an allocation on its own (128 KiB).
const CHUNK: usize = 256 * 1024;
/// Values larger than this are allocated on their own, so that a chunk is not left mostly unused.
const LARGEST: usize = CHUNK / 8;

/// The free part of the current chunk.
struct Free {
    next: usize,
    end: usize,
}

static FREE: Mutex<Free> = Mutex::new(Free { next: 0, end: 0 });

/// Moves `value` into memory that is never freed and returns it, as `Box::leak(Box::new(value))` does.
pub(crate) fn leak<T: Sync + 'static>(value: T) -> &'static T {
    match place(Layout::new::<T>()) {
        Some(at) => {
            let at = at.cast::<T>();
            // SAFETY: `place` gave memory of `T`'s size and alignment that nothing else uses and that is
            // never freed; it is written once, here, before any reference to it exists.
            #[allow(unsafe_code)]
            unsafe {
                at.as_ptr().write(value);
                at.as_ref()
            }
        }
        None => Box::leak(Box::new(value)),
    }
}

/// Room for `layout` in the current chunk, or in a new one; `None` for a value too large or too aligned for
/// a chunk, or when no chunk can be had (the caller then allocates it on its own).
fn place(layout: Layout) -> Option<NonNull<u8>> {
    if layout.size() == 0 || layout.size() > LARGEST || layout.align() > 4096 {
        return None;
    }
    let mut free = FREE.lock();
    let mut start = free.next.checked_add(layout.align() - 1)? & !(layout.align() - 1);
    if free.next == 0 || start.checked_add(layout.size())? > free.end {
        // The rest of the chunk (less than `LARGEST`) is left unused.
        let chunk = Layout::from_size_align(CHUNK, 4096).ok()?;
        // From the system allocator, whatever the program's global one is: not an allocation of the user's,
        // which a counting allocator would count.
        // SAFETY: `chunk` has a non-zero size.
        #[allow(unsafe_code)]
        let base = unsafe { System.alloc(chunk) };
        if base.is_null() {
            return None;
        }
        let base = base as usize;
        *free = Free { next: base, end: base + CHUNK };
        start = base;
    }
    free.next = start + layout.size();
    NonNull::new(start as *mut u8)
}

#[cfg(test)]
mod tests {
    use super::{CHUNK, leak};

    #[test]
    fn values_are_aligned_apart_and_kept() {
        #[repr(align(128))]
        struct Aligned([u8; 200]);
        let values: Vec<&'static Aligned> = (0..(3 * CHUNK / 256)).map(|i| leak(Aligned([i as u8; 200]))).collect();
        for (i, value) in values.iter().enumerate() {
            assert_eq!(std::ptr::from_ref(*value) as usize % 128, 0);
            assert!(value.0.iter().all(|byte| *byte == i as u8));
        }
        let mut addresses: Vec<usize> = values.iter().map(|value| std::ptr::from_ref(*value) as usize).collect();
        addresses.sort_unstable();
        assert!(addresses.windows(2).all(|pair| pair[1] - pair[0] >= 256));
        // Too large for a chunk: allocated on its own, still kept.
        let large = leak([7u8; CHUNK]);
        assert!(large.iter().all(|byte| *byte == 7));
    }
}
