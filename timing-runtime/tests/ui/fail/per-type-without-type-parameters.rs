use timing_runtime::timed;

#[timed(per_type)]
fn scale(value: f64) -> f64 {
    value * 2.0
}

fn main() {
    scale(1.0);
}
