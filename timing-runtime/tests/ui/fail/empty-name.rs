use timing_runtime::timed;

#[timed(name = "")]
fn regions() {}

fn main() {}
