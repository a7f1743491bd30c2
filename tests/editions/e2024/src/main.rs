//! The shapes in edition 2024.
#![cfg_attr(not(timing_lint_shapes), deny(warnings))]

use timing_runtime::timed;

fn log(line: &str) {
    println!("{line}");
}

include!("../../shapes/sync.rs");
include!("../../shapes/asynchronous.rs");

#[cfg(timing_lint_shapes)]
mod lints {
    use timing_runtime::timed;
    include!("../../shapes/lints.rs");
    include!("../../shapes/lints_async.rs");
}

fn main() {
    run_sync();
    run_async();
}
