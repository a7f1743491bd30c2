use timing_runtime::timed;

#[timed("regions")]
fn regions() {}

fn main() {}
