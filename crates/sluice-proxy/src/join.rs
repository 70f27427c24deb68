//! A parallel merge's calls, joined in place: one allocation for all of them, polled under the
//! request's own waker, each dropped where it stands when it ends, their outputs in the order
//! they ended (KrakenD's merge is last-arrival-wins).
//!
//! `futures_util::future::join_all` holds the calls the same way but hands back each output by
//! moving the finished slot out (`MaybeDone::take_output`): a copy of the whole call's state, a
//! few KiB, for every call. Here an output goes on the list the moment its call ends.

#![allow(unsafe_code)]

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// What [`join_in_arrival_order`] makes.
#[derive(Debug)]
pub(crate) struct JoinInPlace<F: Future> {
    /// A call still running, or `None` once it ended (dropped in place).
    calls: Pin<Box<[Option<F>]>>,
    /// The outputs of the calls that ended, in the order they ended.
    ended: Vec<F::Output>,
}

/// Runs every future of `calls` to its end, concurrently; their outputs in the order the
/// futures ended (the first to end first).
pub(crate) fn join_in_arrival_order<I>(calls: I) -> JoinInPlace<I::Item>
where
    I: IntoIterator,
    I::Item: Future,
{
    let calls: Box<[Option<I::Item>]> = calls.into_iter().map(Some).collect();
    JoinInPlace {
        ended: Vec::with_capacity(calls.len()),
        calls: Box::into_pin(calls),
    }
}

// The calls are pinned behind their box and the outputs never are: moving a `JoinInPlace`
// moves neither.
impl<F: Future> Unpin for JoinInPlace<F> {}

impl<F: Future> Future for JoinInPlace<F> {
    type Output = Vec<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        // SAFETY: the slice is never moved or reallocated while pinned (the box is only
        // dropped with `self`), and no slot is moved out of it: each is pinned again at once
        // below, and a call that ended is dropped in place by `Pin::set`.
        let slots = unsafe { this.calls.as_mut().get_unchecked_mut() };
        let mut running = false;
        for slot in slots.iter_mut() {
            // SAFETY: `slot` is an element of the pinned slice, and stays where it is (above).
            let mut slot = unsafe { Pin::new_unchecked(slot) };
            let Some(call) = slot.as_mut().as_pin_mut() else {
                continue;
            };
            match call.poll(cx) {
                Poll::Ready(output) => {
                    this.ended.push(output);
                    slot.set(None);
                }
                Poll::Pending => running = true,
            }
        }
        if running {
            Poll::Pending
        } else {
            Poll::Ready(std::mem::take(&mut this.ended))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures_util::FutureExt;

    use super::*;

    /// Counts its drops, so a test sees that a call is dropped when it ends, not at the end of
    /// the join.
    struct Dropped(Arc<AtomicUsize>);

    impl Drop for Dropped {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[tokio::test]
    async fn outputs_come_in_the_order_the_calls_ended_and_each_is_dropped_when_it_ends() {
        let drops = Arc::new(AtomicUsize::new(0));
        let (senders, receivers): (Vec<_>, Vec<_>) = (0..3)
            .map(|_| tokio::sync::oneshot::channel::<u8>())
            .unzip();
        let calls = receivers.into_iter().map(|answer| {
            let guard = Dropped(Arc::clone(&drops));
            async move {
                let _guard = guard;
                answer.await.unwrap_or_default()
            }
        });
        let mut join = std::pin::pin!(join_in_arrival_order(calls));
        assert!(join.as_mut().now_or_never().is_none());
        // The calls end in the order 1, 2, 0: not the order they were listed in.
        let mut senders = senders.into_iter().map(Some).collect::<Vec<_>>();
        for (i, value) in [(1, 11), (2, 22)] {
            if let Some(sender) = senders[i].take() {
                let _ = sender.send(value);
            }
            assert!(join.as_mut().now_or_never().is_none());
        }
        assert_eq!(
            drops.load(Ordering::Relaxed),
            2,
            "each call dropped as it ended"
        );
        if let Some(sender) = senders[0].take() {
            let _ = sender.send(0);
        }
        assert_eq!(join.await, [11, 22, 0]);
        assert_eq!(drops.load(Ordering::Relaxed), 3);
    }

    #[tokio::test]
    async fn no_call_is_an_empty_list() {
        let calls: Vec<std::future::Ready<u8>> = Vec::new();
        assert!(join_in_arrival_order(calls).await.is_empty());
    }

    #[tokio::test]
    async fn a_join_dropped_early_drops_the_calls_still_running() {
        let drops = Arc::new(AtomicUsize::new(0));
        let calls = (0..3).map(|_| {
            let guard = Dropped(Arc::clone(&drops));
            async move {
                let _guard = guard;
                std::future::pending::<()>().await;
            }
        });
        let mut join = Box::pin(join_in_arrival_order(calls));
        assert!(join.as_mut().now_or_never().is_none());
        drop(join);
        assert_eq!(drops.load(Ordering::Relaxed), 3);
    }
}
