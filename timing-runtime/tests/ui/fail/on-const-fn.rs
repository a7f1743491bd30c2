use timing_runtime::timed;

#[timed]
const fn rate() -> f64 {
    0.1
}

fn main() {}
