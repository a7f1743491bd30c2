use timing_runtime::timed;

#[timed]
struct Params {
    rate: f64,
}

fn main() {}
