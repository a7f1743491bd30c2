use timing_runtime::timed;

#[timed]
mod optimizer {}

fn main() {}
