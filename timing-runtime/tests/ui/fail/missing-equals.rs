use timing_runtime::timed;

#[timed(phase "regions")]
fn regions() {}

fn main() {
    regions();
}
