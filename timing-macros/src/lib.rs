//! The `#[timed]` attribute. This crate is an implementation detail of `timing-runtime`, which re-exports
//! the attribute: depend on `timing-runtime`, not on this crate.

mod args;
mod expand;
mod function;
mod impl_block;
mod item;
mod locate;

use proc_macro::TokenStream;

/// Records every call of the function it is put on: its time, its phase, and whether it is a step or a
/// batch of steps.
///
/// # Arguments
/// | argument | meaning |
/// |---|---|
/// | `phase = "regions"` | the call's time, less that of timed calls with a phase of their own inside it, is phase `regions` |
/// | `name = "solve"` | the span's name in reports; the function's name by default |
/// | `step` | every call is one optimizer step |
/// | `batch` | every call is one batch of steps |
/// | `crate = path` | where `timing_runtime` is, for a crate that re-exports `timed` |
/// | `per_type` | a generic function's instantiations are spans of their own, `name<f64>`, `name<Dual>`: at a cost of a few nanoseconds a call (a per-thread lookup by the type arguments' names) |
///
/// Arguments combine (`#[timed(name = "x", phase = "y")]`), except `step` with `batch`.
///
/// Functions of the same name are different spans, told apart in reports by module path, or by file and
/// line within one module; a `name` given merges every function it is given to. On an `impl` block,
/// `#[timed]` (with a `phase` or `crate`, not `name`, `step` or `batch`) puts `#[timed(name =
/// "Type::method")]` on each method that has no `#[timed]` of its own and is not `const`.
///
/// ```
/// use timing_runtime::timed;
///
/// #[timed(phase = "regions")]
/// fn compute_regions(radii: &[f64]) -> f64 {
///     radii.iter().map(|r| std::f64::consts::PI * r * r).sum()
/// }
///
/// #[timed(step)]
/// fn make_step(radii: &mut [f64]) -> f64 {
///     let area = compute_regions(radii);
///     radii.iter_mut().for_each(|r| *r *= 0.99);
///     area
/// }
///
/// #[timed(batch)]
/// fn train_batch(radii: &mut [f64], steps: usize) {
///     for _ in 0..steps {
///         make_step(radii);
///     }
/// }
///
/// train_batch(&mut [1.0, 2.0], 100);
/// ```
///
/// # What it expands to
/// A function keeps its attributes, signature and body token for token (the items a body starts with are
/// re-emitted by syn's printer, with their spans, to go ahead of the guard); a guard is put in front of the
/// body, after any items it starts with, and closes the span when it drops (on return, on `?`, and while
/// unwinding). The body stays in the user's braces, whose edition decides when temporaries drop:
///
/// ```text
/// #[inline]
/// fn compute_regions(radii: &[f64]) -> f64 {
///     let __timing_guard = {
///         static __TIMING_CALLSITE: ::timing_runtime::__private::Callsite =
///             ::timing_runtime::__private::Callsite::new(
///                 "compute_regions", Some("regions"), Kind::Span, module_path!(), file!(), line!())
///             .named_after_function();
///         ::timing_runtime::__private::Callsite::enter_as(&__TIMING_CALLSITE, Kind::Span)
///     };
///     radii.iter().map(|r| std::f64::consts::PI * r * r).sum()
/// }
/// ```
///
/// The `static` is per function, not per instantiation: all instantiations of a generic function share one
/// span (give them different `name`s through wrapper functions to tell them apart). Inner attributes
/// (`#![allow(...)]`) stay at the top of the body. The runtime is found under the name the crate's
/// Cargo.toml gives `timing-runtime`; `crate = path` names a re-export instead.
///
/// An `async fn` that may suspend becomes a future that opens the span on every poll and closes it when the
/// poll returns; its statistics count busy time (the sum of polls) in `total_ns` and first poll to
/// completion in `wall_ns`, and futures dropped before completing in `cancelled`. The `async` block carries
/// the user's `async` and braces, and returns the declared type first, in a branch never taken, so that
/// every `return` and the tail coerce to it as in the `async fn` itself:
///
/// ```text
/// async fn fetch(id: u32) -> Result<Box<dyn Display>, Error> {
///     #[allow(clippy::async_yields_async)]
///     let __timing_future = async move {
///         #[allow(unreachable_code, …)]
///         if false { let __timing_never: Result<Box<dyn Display>, Error> = loop {}; return __timing_never; }
///         #[deny(clippy::async_yields_async)]
///         { body }
///     };
///     #[allow(clippy::implicit_return)]
///     { ::timing_runtime::__private::Instrumented::new({ static …; &__TIMING_CALLSITE }, __timing_future).await }
/// }
/// ```
///
/// An `async fn` that cannot suspend (no `.await` outside its own `async` blocks, and no macro that might
/// hide one) finishes in its first poll; it gets the guard of a function, which times that poll, and clippy
/// still sees it as an `async fn` without `.await`.
///
/// Under `#[async_trait]`, which turns the `async fn` into a function that boxes an `async` block before
/// `#[timed]` sees it, the boxed block's polls are timed, as for an `async fn`.
///
/// A function that is not `async` but returns `impl Future` is timed as a function: the span covers the
/// call that builds the future, not the future's work. Make it an `async fn` to time the work.
///
/// With the cargo feature `timing` off (`default-features = false` on `timing-runtime`), the arguments are
/// checked and the function is returned exactly as written.
///
/// # Errors
/// `#[timed]` on anything but a function with a body, on a `const fn` or a naked function, with an unknown,
/// repeated or malformed argument, or twice on one function, is a compile error at the offending token,
/// with the feature on and off; the function is still emitted, so that the error is the only one. Where
/// rustc refuses the attribute itself (on a statement, a closure, or as `#[timed = ...]`), its error is the
/// only one.
#[proc_macro_attribute]
pub fn timed(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::timed(args.into(), item.into(), cfg!(feature = "timing")).into()
}
