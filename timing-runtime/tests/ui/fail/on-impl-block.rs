use timing_runtime::timed;

struct State;

#[timed]
impl State {
    fn step(&self) {}
}

fn main() {}
