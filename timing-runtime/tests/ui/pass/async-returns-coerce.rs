// An early `return` in a timed `async fn` coerces to the declared type, as in the plain `async fn`.
use std::error::Error;

use timing_runtime::timed;

#[timed]
async fn parse(text: &str) -> Result<u32, Box<dyn Error>> {
    if text.is_empty() {
        return Err(Box::new(std::fmt::Error));
    }
    let value = std::future::ready(text.parse::<u32>()).await?;
    Ok(value)
}

fn main() {
    let waker = std::task::Waker::noop();
    let mut context = std::task::Context::from_waker(waker);
    let mut future = std::pin::pin!(parse(""));
    assert!(matches!(future.as_mut().poll(&mut context), std::task::Poll::Ready(Err(_))));
}
