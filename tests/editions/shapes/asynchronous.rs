// Timed `async fn`s (edition 2018 on): temporaries against locals in the body's tail, early returns that
// coerce to the declared type, a body that never awaits, one that diverges, and one that keeps a value
// across an `.await` (its future is `Send` exactly when the plain one is).

#[timed]
async fn async_tail() -> usize {
    let _local = Noisy("async local");
    Noisy("async temporary").value()
}

#[timed]
async fn async_awaits() -> usize {
    let local = Noisy("awaiting local");
    let ready = std::future::ready(2).await;
    ready + local.value()
}

#[timed]
async fn async_coerces(fail: bool) -> Result<usize, Box<dyn std::error::Error + Send + Sync>> {
    if fail {
        return Err(Box::new(std::fmt::Error));
    }
    Ok(std::future::ready(3).await)
}

#[timed]
async fn async_diverges() -> usize {
    todo!()
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    let mut future = Box::pin(future);
    let waker = std::task::Waker::noop();
    let mut context = std::task::Context::from_waker(waker);
    loop {
        if let std::task::Poll::Ready(value) = future.as_mut().poll(&mut context) {
            return value;
        }
    }
}

fn require_send<T: Send>(value: T) -> T {
    value
}

fn run_async() {
    log(&format!("async_tail = {}", block_on(async_tail())));
    log(&format!("async_awaits = {}", block_on(require_send(async_awaits()))));
    log(&format!("async_coerces = {:?}", block_on(async_coerces(true)).is_err()));
    log(&format!("async_coerces = {:?}", block_on(async_coerces(false)).ok()));
    // Built, not run: its body would panic.
    drop(async_diverges());
}
