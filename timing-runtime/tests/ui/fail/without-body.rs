use timing_runtime::timed;

trait Optimizer {
    #[timed]
    fn step(&mut self);
}

fn main() {}
