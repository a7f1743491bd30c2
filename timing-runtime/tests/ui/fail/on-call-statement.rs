use timing_runtime::timed;

fn compute() {}

fn main() {
    #[timed]
    compute();
}
