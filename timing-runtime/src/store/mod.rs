//! What each thread keeps of what it recorded, and how reports read it: the registry of thread slots, each
//! thread's call tree with its counters, the duration histograms, the step totals and the captured timeline
//! events. Written by its owning thread without locks (plain stores, sequence-locked step totals), read by
//! any thread. Imports only `model` (see `docs/architecture.md`).

pub(crate) mod account;
pub(crate) mod counters;
pub(crate) mod events;
pub(crate) mod hist;
pub(crate) mod paths;
pub(crate) mod registry;
pub(crate) mod steps;
pub(crate) mod tree;
