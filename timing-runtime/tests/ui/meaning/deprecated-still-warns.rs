//! `#[deprecated]` on a timed function still warns at its call sites.

#![deny(deprecated)]

use timing_runtime::timed;

#[deprecated = "use `step_v2`"]
#[timed(step)]
fn step() {}

fn main() {
    step();
}
