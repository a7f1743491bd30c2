//! `async fn` under `#[timed]`: a future that opens its span for every poll and closes it when the poll
//! returns, so nothing stays on a thread's stack while the future is suspended.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::record::callsite::Callsite;
use crate::record::clock;
use crate::record::recorder::PollSums;

/// The future of a timed `async fn`. `Send` exactly when the function's own future is.
#[doc(hidden)]
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct Instrumented<F> {
    callsite: &'static Callsite,
    /// The sums of the polls so far; `None` before the first.
    polls: Option<PollSums>,
    done: bool,
    future: F,
}

impl<F> Instrumented<F> {
    /// Wraps the body's future.
    pub fn new(callsite: &'static Callsite, future: F) -> Self {
        Instrumented { callsite, polls: None, done: false, future }
    }
}

impl<F: Future> Future for Instrumented<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        #[allow(unsafe_code)]
        // SAFETY: `future` is pinned structurally: it is never moved out of `self`, the `Drop` impl does not
        // touch it, and no other field is pinned. The other fields are `Unpin` and are only assigned.
        let (callsite, polls, done, future) = unsafe {
            let this = self.get_unchecked_mut();
            (this.callsite, &mut this.polls, &mut this.done, Pin::new_unchecked(&mut this.future))
        };
        let guard = callsite.enter_poll();
        // The call's wall time runs from the tick its first poll's span opened at: the clock read again here
        // began it later than that poll's own time, and a call of one poll had less wall time than busy time.
        let sums = *polls.get_or_insert_with(|| PollSums {
            first_poll: guard.start().unwrap_or_else(clock::now),
            ..PollSums::default()
        });
        let poll = future.poll(cx);
        let closed = guard.close_poll(poll.is_ready().then_some(sums));
        *polls = Some(sums.with(closed));
        *done = poll.is_ready();
        poll
    }
}

impl<F> Drop for Instrumented<F> {
    fn drop(&mut self) {
        if let (Some(polls), false) = (self.polls, self.done) {
            self.callsite.cancel_async(polls.busy);
        }
    }
}
