//! The shapes in edition 2018.
#![cfg_attr(not(timing_lint_shapes), deny(warnings))]

use tr::timed;

fn log(line: &str) {
    println!("{line}");
}

include!("../../shapes/sync.rs");
include!("../../shapes/asynchronous.rs");

#[cfg(timing_lint_shapes)]
mod lints {
    use tr::timed;
    include!("../../shapes/lints.rs");
    include!("../../shapes/lints_async.rs");
}

fn main() {
    run_sync();
    run_async();
}
