use timing_runtime::timed;

#[timed(phase = "regions", name = "r", phase = "error")]
fn regions() {}

fn main() {}
