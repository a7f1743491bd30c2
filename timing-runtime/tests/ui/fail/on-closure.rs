use timing_runtime::timed;

fn main() {
    let c = #[timed] || 1;
    let _ = c();
}
