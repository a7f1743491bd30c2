use timing_runtime::timed;

#[timed(phase)]
fn regions() {}

fn main() {}
