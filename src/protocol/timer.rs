//! Timers kept by a connection from one wait to the next.
//!
//! A timer made per wait costs an insertion into tokio's timer wheel and a removal from it, and
//! moving a registered one still converts the new deadline to a tick each time. A connection's
//! deadlines only move later, so its timer is left at an earlier wait's deadline and moved only
//! when that goes off: a busy connection touches the wheel about once per timeout period.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::time::{Instant, Sleep};

/// Polls `timer` as a timer for `at`: `Ready` once `at` has passed.
pub(crate) fn poll_until(mut timer: Pin<&mut Sleep>, at: Instant, cx: &mut Context<'_>) -> Poll<()> {
    if timer.deadline() > at {
        timer.as_mut().reset(at);
    }
    while timer.as_mut().poll(cx).is_ready() {
        if Instant::now() >= at {
            return Poll::Ready(());
        }
        timer.as_mut().reset(at);
    }
    Poll::Pending
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;
    use std::pin::pin;
    use std::time::Duration;

    use tokio::time::{advance, sleep_until, Instant};

    use super::poll_until;

    /// Polls once: whether the wait for `at` is over.
    async fn over(timer: std::pin::Pin<&mut tokio::time::Sleep>, at: Instant) -> bool {
        let mut timer = timer;
        poll_fn(|cx| std::task::Poll::Ready(poll_until(timer.as_mut(), at, cx).is_ready())).await
    }

    #[tokio::test(start_paused = true)]
    async fn a_timer_left_at_an_earlier_deadline_waits_for_the_later_one() {
        let t0 = Instant::now();
        let mut timer = pin!(sleep_until(t0 + Duration::from_secs(1)));
        let at = t0 + Duration::from_secs(3);
        assert!(!over(timer.as_mut(), at).await);
        advance(Duration::from_millis(1500)).await; // the old deadline went off: pushed to `at`
        assert!(!over(timer.as_mut(), at).await);
        assert_eq!(timer.deadline(), at);
        advance(Duration::from_millis(1500)).await;
        assert!(over(timer.as_mut(), at).await);
    }

    #[tokio::test(start_paused = true)]
    async fn a_timer_set_later_than_the_deadline_is_brought_forward() {
        let t0 = Instant::now();
        let mut timer = pin!(sleep_until(t0 + Duration::from_secs(5)));
        let at = t0 + Duration::from_secs(2);
        assert!(!over(timer.as_mut(), at).await);
        advance(Duration::from_secs(2)).await;
        assert!(over(timer.as_mut(), at).await);
    }
}
