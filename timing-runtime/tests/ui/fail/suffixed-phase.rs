use timing_runtime::timed;

#[timed(phase = "io"_x)]
fn read() {}

fn main() {
    read();
}
