//! What each thread keeps of what it recorded, and how reports read it: the registry of thread slots, each
//! thread's call tree with its counters, the duration histograms, the step totals and the captured timeline
//! events. Written by its owning thread without locks (plain stores, sequence-locked step totals), read by
//! any thread. Imports only `model` (see `docs/architecture.md`).

/// Declares a module `$name` that counts events on the calling thread (`count`, `so_far`), for tests that
/// must know which way the runtime went.
#[cfg(test)]
macro_rules! thread_counter {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        pub(crate) mod $name {
            use std::cell::Cell;

            thread_local! {
                static COUNT: Cell<u64> = const { Cell::new(0) };
            }

            pub(crate) fn count() {
                COUNT.with(|count| count.set(count.get() + 1));
            }

            pub(crate) fn so_far() -> u64 {
                COUNT.with(Cell::get)
            }
        }
    };
}
#[cfg(test)]
pub(crate) use thread_counter;

pub(crate) mod account;
pub(crate) mod allocs;
pub(crate) mod arena;
pub(crate) mod batches;
pub(crate) mod counters;
pub(crate) mod events;
pub(crate) mod hist;
pub(crate) mod paths;
pub(crate) mod recomputes;
pub(crate) mod registry;
pub(crate) mod steps;
pub(crate) mod tree;
