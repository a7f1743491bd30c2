//! The `#[timed]` attribute. This crate is an implementation detail of `timing-runtime`, which re-exports
//! the attribute and documents it: depend on `timing-runtime`, not on this crate.

mod args;
mod expand;
mod item;

use proc_macro::TokenStream;

/// Records every call of the function it is put on; documented in `timing_runtime::timed`.
#[proc_macro_attribute]
pub fn timed(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::timed(args.into(), item.into(), cfg!(feature = "timing")).into()
}
