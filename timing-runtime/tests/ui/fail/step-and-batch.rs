use timing_runtime::timed;

#[timed(step, batch)]
fn make_step() {}

fn main() {}
