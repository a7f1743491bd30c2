use timing_runtime::timed;

#[timed(phase = "regions" extra)]
fn regions() {}

fn main() {}
