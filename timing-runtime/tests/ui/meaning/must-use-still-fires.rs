//! `#[must_use]` on a timed function still warns at a call that drops the value.

#![deny(unused_must_use)]

use timing_runtime::timed;

#[timed]
#[must_use]
fn rate() -> f64 {
    0.1
}

fn main() {
    rate();
}
