// The same for `async fn`: an `async fn` that never awaits (`unused_async`), one that returns a future
// (`async_yields_async` is not for it), one whose body has an `async` block that yields a future (it is).

#[timed]
pub async fn never_awaits() -> u32 {
    1
}

#[timed]
pub async fn returns_a_future() -> std::pin::Pin<Box<dyn std::future::Future<Output = u8> + Send>> {
    Box::pin(async { 1 })
}

#[timed]
pub async fn yields_a_future() -> u8 {
    let future = async { async { 1_u8 } };
    future.await.await
}

#[timed]
pub async fn early(flag: bool) -> u8 {
    if flag {
        return 1;
    }
    std::future::ready(2).await
}
