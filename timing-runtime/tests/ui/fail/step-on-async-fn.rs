use timing_runtime::timed;

#[timed(step)]
async fn make_step() {}

fn main() {}
