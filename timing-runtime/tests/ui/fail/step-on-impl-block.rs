use timing_runtime::timed;

struct State;

#[timed(step)]
impl State {
    fn step(&self) {}
}

fn main() {
    State.step();
}
