// `#[timed]` on an `impl` block times each method as `Type::method`.
use timing_runtime::timed;

struct State;

#[timed(phase = "update")]
impl State {
    fn step(&self) -> u8 {
        1
    }

    const fn constant() -> u8 {
        2
    }
}

fn main() {
    assert_eq!(State.step() + State::constant(), 3);
}
