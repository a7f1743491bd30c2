use timing_runtime::timed;

#[timed(phaze = "regions")]
fn regions() {}

fn main() {}
