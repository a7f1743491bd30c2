//! The shapes in edition 2015 (no `async fn`).
#![cfg_attr(not(timing_lint_shapes), deny(warnings))]

extern crate timing_runtime;

use timing_runtime::timed;

fn log(line: &str) {
    println!("{line}");
}

include!("../../shapes/sync.rs");

#[cfg(timing_lint_shapes)]
mod lints {
    use timing_runtime::timed;
    include!("../../shapes/lints.rs");
}

fn main() {
    run_sync();
}
