//! Everything a timed call executes: the clock, the call sites `#[timed]` declares, the hot path and the
//! guard that closes a span, the slow path (`recorder`) with the ends of steps and batches, `async fn`
//! polls, the calibration of the instrumentation's own cost, and the counting allocator. Writes into `store`; imports `model` and
//! `store` only (see `docs/architecture.md`).
//!
//! Within the folder, files import downwards: `clock`, `charge` and `callsite` first, then `budget`, then `hot` and `machine`, then
//! `alloc`, `calibrate`, `records`, `recorder` and `finish`, then `guard` and `future`, which the generated code calls.

pub(crate) mod alloc;
pub(crate) mod budget;
pub(crate) mod calibrate;
pub(crate) mod callsite;
pub(crate) mod charge;
pub(crate) mod clock;
mod finish;
pub(crate) mod future;
pub(crate) mod guard;
pub(crate) mod hot;
pub(crate) mod machine;
pub(crate) mod recorder;
mod records;

/// Held by the unit tests that switch a process-wide setting (timeline capture, which sends every span to
/// the slow path) and by those that count which path a thread's calls took, which tests run in parallel
/// would otherwise see change under them.
#[cfg(test)]
pub(crate) static SETTINGS_LOCK: parking_lot::Mutex<()> = parking_lot::Mutex::new(());
