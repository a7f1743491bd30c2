//! An `async fn` whose future holds an `Rc` across an `.await` is not `Send`, and stays so when timed.

use std::rc::Rc;

use timing_runtime::timed;

async fn pause() {}

#[timed]
async fn holds_rc() -> usize {
    let shared = Rc::new(1);
    pause().await;
    *shared
}

fn require_send<T: Send>(_: T) {}

fn main() {
    require_send(holds_rc());
}
