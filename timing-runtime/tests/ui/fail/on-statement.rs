use timing_runtime::timed;

fn main() {
    #[timed]
    let steps = 10;
    let _ = steps;
}
