//! `main` itself can be timed.

use timing_runtime::timed;

#[timed(batch)]
fn main() {
    assert_eq!(1 + 1, 2);
}
