use timing_runtime::timed;

#[timed(step)]
#[timed]
fn make_step() {}

fn main() {}
