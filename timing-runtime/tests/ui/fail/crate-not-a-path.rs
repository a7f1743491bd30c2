use timing_runtime::timed;

#[timed(crate = "timing_runtime")]
fn solve() {}

fn main() {
    solve();
}
