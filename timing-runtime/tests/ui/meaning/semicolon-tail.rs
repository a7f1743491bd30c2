// The same error as without `#[timed]`: at the return type, with the fix to remove the semicolon.
use timing_runtime::timed;

#[timed]
fn one() -> i32 {
    1;
}

fn main() {
    let _ = one();
}
