use timing_runtime::timed;

#[timed(phase = x"regions")]
fn regions() {}

fn main() {
    regions();
}
