//! A bounded queue that never blocks the producer: when full, the oldest entry is dropped.
//!
//! One consumer takes entries one at a time and says when it has finished with each, so
//! [`Outbox::wait_idle`] can tell "nothing queued and nothing in flight" (a flush on shutdown).

use parking_lot::Mutex;
use std::collections::VecDeque;
use tokio::sync::Notify;

struct State<T> {
    queue: VecDeque<T>,
    in_flight: bool,
}

pub(crate) struct Outbox<T> {
    state: Mutex<State<T>>,
    capacity: usize,
    /// An entry was pushed (one consumer: a stored permit covers the race with `next`).
    ready: Notify,
    /// The queue became empty with nothing in flight.
    idle: Notify,
}

impl<T> Outbox<T> {
    pub(crate) fn new(capacity: usize) -> Self {
        Outbox {
            state: Mutex::new(State {
                queue: VecDeque::with_capacity(capacity.min(64)),
                in_flight: false,
            }),
            capacity: capacity.max(1),
            ready: Notify::new(),
            idle: Notify::new(),
        }
    }

    /// Queue `item`; returns the entry dropped to make room, if any.
    pub(crate) fn push(&self, item: T) -> Option<T> {
        let dropped = {
            let mut s = self.state.lock();
            let dropped = if s.queue.len() >= self.capacity {
                s.queue.pop_front()
            } else {
                None
            };
            s.queue.push_back(item);
            dropped
        };
        self.ready.notify_one();
        dropped
    }

    /// The next entry, waiting for one; it counts as in flight until [`Outbox::finished`].
    pub(crate) async fn next(&self) -> T {
        loop {
            {
                let mut s = self.state.lock();
                if let Some(item) = s.queue.pop_front() {
                    s.in_flight = true;
                    return item;
                }
            }
            self.ready.notified().await;
        }
    }

    /// The consumer is done with the entry [`Outbox::next`] gave it.
    pub(crate) fn finished(&self) {
        let idle = {
            let mut s = self.state.lock();
            s.in_flight = false;
            s.queue.is_empty()
        };
        if idle {
            self.idle.notify_waiters();
        }
    }

    fn is_idle(&self) -> bool {
        let s = self.state.lock();
        s.queue.is_empty() && !s.in_flight
    }

    /// Wait until nothing is queued or in flight.
    pub(crate) async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            // Registered before the check, so a `finished` in between is not missed.
            notified.as_mut().enable();
            if self.is_idle() {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn full_queue_drops_the_oldest() {
        let q = Outbox::new(2);
        assert_eq!(q.push(1), None);
        assert_eq!(q.push(2), None);
        assert_eq!(q.push(3), Some(1));
        assert_eq!(q.next().await, 2);
        q.finished();
        assert_eq!(q.next().await, 3);
        q.finished();
    }

    #[tokio::test]
    async fn idle_only_when_empty_and_nothing_in_flight() {
        let q = std::sync::Arc::new(Outbox::new(4));
        q.wait_idle().await;
        q.push("a");
        let item = q.next().await;
        assert_eq!(item, "a");
        let waiter = {
            let q = q.clone();
            tokio::spawn(async move { q.wait_idle().await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "the entry is still in flight");
        q.finished();
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .expect("idle after finished")
            .expect("waiter task");
    }

    #[tokio::test]
    async fn next_waits_for_a_push() {
        let q = std::sync::Arc::new(Outbox::new(4));
        let consumer = {
            let q = q.clone();
            tokio::spawn(async move { q.next().await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        q.push(7);
        let got = tokio::time::timeout(Duration::from_secs(1), consumer)
            .await
            .expect("woken by the push")
            .expect("consumer task");
        assert_eq!(got, 7);
    }
}
