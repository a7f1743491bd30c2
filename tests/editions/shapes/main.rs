// The binary of an edition crate from 2018 on (2015 has no `async fn`): the crate imports `timed` under
// its own name for the runtime, then includes this.

fn log(line: &str) {
    println!("{line}");
}

include!("sync.rs");
include!("asynchronous.rs");

#[cfg(timing_lint_shapes)]
mod lints {
    use super::timed;
    include!("lints.rs");
    include!("lints_async.rs");
}

fn main() {
    run_sync();
    run_async();
}
