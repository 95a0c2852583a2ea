//! The future a phase crossing hands the pipeline. The host callback runs when the future is built
//! (the pipeline awaits it at once); a callback that answered synchronously, which is nearly all of
//! them, leaves a finished value, so the pipeline's state machine embeds a few words instead of an
//! `async fn` frame with the pending deadline's timer in it, and polling it is one branch. Only a
//! PENDING answer boxes the wait.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

pub(crate) enum Crossing<T> {
    /// The callback answered; taken by the first poll.
    Ready(Option<T>),
    /// The callback answered PENDING: the wait for its resume (or deadline). It owns what it
    /// uses (the cell, the deadline), so the type borrows nothing and the pipeline's borrows of
    /// the session stay alive through the trait's signature, as they do for an `async fn`.
    Waiting(Pin<Box<dyn Future<Output = T> + Send>>),
}

impl<T> Crossing<T> {
    pub(crate) fn ready(v: T) -> Self {
        Crossing::Ready(Some(v))
    }

    pub(crate) fn wait(f: impl Future<Output = T> + Send + 'static) -> Self {
        Crossing::Waiting(Box::pin(f))
    }
}

impl<T: Unpin> Future for Crossing<T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        match self.get_mut() {
            Crossing::Ready(v) => Poll::Ready(v.take().expect("a phase crossing polled after it finished")),
            Crossing::Waiting(f) => f.as_mut().poll(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poll_once<T: Unpin>(c: &mut Crossing<T>) -> Poll<T> {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        Pin::new(c).poll(&mut cx)
    }

    #[test]
    fn a_ready_crossing_yields_its_value_on_the_first_poll() {
        let mut c = Crossing::ready(7u16);
        assert_eq!(poll_once(&mut c), Poll::Ready(7));
    }

    #[test]
    fn a_waiting_crossing_stays_pending_until_its_wait_ends() {
        let (tx, rx) = tokio::sync::oneshot::channel::<u16>();
        let mut c = Crossing::wait(async move { rx.await.unwrap_or(0) });
        assert_eq!(poll_once(&mut c), Poll::Pending);
        tx.send(3).unwrap();
        assert_eq!(poll_once(&mut c), Poll::Ready(3));
    }
}
