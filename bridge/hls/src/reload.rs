//! Blocking playlist reload: when a request for `_HLS_msn=M[&_HLS_part=P]`, or for the part a
//! preload hint announced, can be answered.
//!
//! The decision is a pure function of the request and the rendition's [`Head`];
//! [`wait_until`] is the thin async layer that re-evaluates it each time the stream publishes
//! and gives up after a bounded wait.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

/// A blocking playlist request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockingRequest {
    /// `_HLS_msn`: the segment the client waits for.
    pub msn: u64,
    /// `_HLS_part`: the part of that segment the client waits for.
    pub part: Option<u32>,
}

/// How far a rendition has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Head {
    /// Media sequence number of the last complete segment.
    pub last_segment: Option<u64>,
    /// (msn, index) of the last part published.
    pub last_part: Option<(u64, u32)>,
    /// The stream ended: nothing more will come.
    pub ended: bool,
}

impl Head {
    /// The part a preload hint announces: the one after the last part.
    pub fn next_part(&self) -> (u64, u32) {
        let next_segment = self.last_segment.map_or(0, |s| s.saturating_add(1));
        match self.last_part {
            Some((msn, index)) if msn >= next_segment => (msn, index.saturating_add(1)),
            _ => (next_segment, 0),
        }
    }

    /// True once part (msn, index) or a later one is published.
    pub fn has_part(&self, msn: u64, index: u32) -> bool {
        self.last_part.is_some_and(|last| last >= (msn, index))
    }
}

/// What to do with a blocking request now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// The playlist already holds what was asked for (or never will: the stream ended).
    Ready,
    /// Hold the request until the head moves.
    Wait,
    /// Further ahead than the server will wait for: answer 400.
    TooFar,
}

/// How many parts ahead of the last one a request may ask for: three seconds' worth, at least
/// three (the spec's Advance Part Limit).
pub fn advance_part_limit(part_target: Duration) -> u32 {
    let millis = part_target.as_millis().max(1);
    u32::try_from(3000u128.div_ceil(millis))
        .unwrap_or(u32::MAX)
        .max(3)
}

/// Decides a blocking playlist request against the rendition's head.
pub fn readiness(request: BlockingRequest, head: &Head, part_target: Duration) -> Readiness {
    if head.ended {
        return Readiness::Ready;
    }
    let ready = match request.part {
        None => head.last_segment.is_some_and(|s| s >= request.msn),
        Some(part) => head.has_part(request.msn, part),
    };
    if ready {
        return Readiness::Ready;
    }
    let (next_msn, next_part) = head.next_part();
    if request.msn > next_msn.saturating_add(2) {
        return Readiness::TooFar;
    }
    if let Some(part) = request.part
        && request.msn == next_msn
        && part > next_part.saturating_add(advance_part_limit(part_target))
    {
        return Readiness::TooFar;
    }
    Readiness::Wait
}

/// What to do with a request for a part that is not published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartWait {
    /// It is the hinted next part: hold the request until it is published.
    Wait,
    /// It is not coming next (or never will): 404.
    Missing,
}

/// Decides a request for part (msn, index) that is not (yet) published.
pub fn part_wait(msn: u64, index: u32, head: &Head) -> PartWait {
    if !head.ended && head.next_part() == (msn, index) {
        PartWait::Wait
    } else {
        PartWait::Missing
    }
}

/// Waits until `ready` holds for the published value, at most `limit`. Returns the value it
/// holds for, or `None` on time-out. If the publisher is gone, returns the last value.
pub async fn wait_until<T>(
    rx: &mut watch::Receiver<Arc<T>>,
    limit: Duration,
    mut ready: impl FnMut(&T) -> bool,
) -> Option<Arc<T>> {
    let outcome = match tokio::time::timeout(limit, rx.wait_for(|value| ready(value))).await {
        Ok(Ok(value)) => Ok(value.clone()),
        Ok(Err(_closed)) => Err(true),
        Err(_elapsed) => Err(false),
    };
    match outcome {
        Ok(value) => Some(value),
        Err(closed) => closed.then(|| rx.borrow().clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PART: Duration = Duration::from_millis(200);

    fn head(last_segment: Option<u64>, last_part: Option<(u64, u32)>) -> Head {
        Head {
            last_segment,
            last_part,
            ended: false,
        }
    }

    fn req(msn: u64, part: Option<u32>) -> BlockingRequest {
        BlockingRequest { msn, part }
    }

    #[test]
    fn a_published_part_or_segment_is_ready() {
        let h = head(Some(9), Some((10, 3)));
        assert_eq!(readiness(req(10, Some(3)), &h, PART), Readiness::Ready);
        assert_eq!(readiness(req(10, Some(0)), &h, PART), Readiness::Ready);
        assert_eq!(readiness(req(9, None), &h, PART), Readiness::Ready);
        assert_eq!(readiness(req(3, Some(40)), &h, PART), Readiness::Ready);
    }

    #[test]
    fn the_next_part_and_segment_wait() {
        let h = head(Some(9), Some((10, 3)));
        assert_eq!(readiness(req(10, Some(4)), &h, PART), Readiness::Wait);
        assert_eq!(readiness(req(10, None), &h, PART), Readiness::Wait);
        assert_eq!(readiness(req(11, Some(0)), &h, PART), Readiness::Wait);
        assert_eq!(readiness(req(12, None), &h, PART), Readiness::Wait);
    }

    #[test]
    fn more_than_two_segments_ahead_is_too_far() {
        let h = head(Some(9), Some((10, 3)));
        assert_eq!(readiness(req(13, None), &h, PART), Readiness::TooFar);
        assert_eq!(readiness(req(u64::MAX, Some(0)), &h, PART), Readiness::TooFar);
        // Fifteen 200 ms parts (three seconds) ahead is the limit within the open segment.
        assert_eq!(readiness(req(10, Some(3 + 1 + 15)), &h, PART), Readiness::Wait);
        assert_eq!(readiness(req(10, Some(3 + 1 + 16)), &h, PART), Readiness::TooFar);
        assert_eq!(readiness(req(10, Some(u32::MAX)), &h, PART), Readiness::TooFar);
    }

    #[test]
    fn before_any_media_the_first_segments_wait() {
        let h = Head::default();
        assert_eq!(h.next_part(), (0, 0));
        assert_eq!(readiness(req(0, Some(0)), &h, PART), Readiness::Wait);
        assert_eq!(readiness(req(2, None), &h, PART), Readiness::Wait);
        assert_eq!(readiness(req(3, None), &h, PART), Readiness::TooFar);
    }

    #[test]
    fn a_part_past_the_end_of_a_complete_segment_waits_for_the_next_segment() {
        // Segment 10 ended with parts 0..=9: (10, 10) never comes, (11, 0) satisfies it.
        let h = head(Some(10), Some((10, 9)));
        assert_eq!(h.next_part(), (11, 0));
        assert_eq!(readiness(req(10, Some(10)), &h, PART), Readiness::Wait);
        let later = head(Some(10), Some((11, 0)));
        assert_eq!(readiness(req(10, Some(10)), &later, PART), Readiness::Ready);
    }

    #[test]
    fn everything_is_ready_once_the_stream_ended() {
        let h = Head {
            ended: true,
            ..head(Some(1), Some((1, 9)))
        };
        assert_eq!(readiness(req(2, Some(0)), &h, PART), Readiness::Ready);
        assert_eq!(readiness(req(100, None), &h, PART), Readiness::Ready);
        assert_eq!(part_wait(2, 0, &h), PartWait::Missing);
    }

    #[test]
    fn only_the_hinted_part_waits() {
        let h = head(Some(9), Some((10, 3)));
        assert_eq!(part_wait(10, 4, &h), PartWait::Wait);
        assert_eq!(part_wait(10, 5, &h), PartWait::Missing);
        assert_eq!(part_wait(11, 0, &h), PartWait::Missing);
        let after_segment = head(Some(10), Some((10, 9)));
        assert_eq!(part_wait(11, 0, &after_segment), PartWait::Wait);
    }

    /// The async layer in simulated time: a waiter wakes when the part it needs is published,
    /// not before, and gives up at its limit.
    #[tokio::test(start_paused = true)]
    async fn waiters_wake_exactly_when_their_part_is_published() {
        let (tx, rx) = watch::channel(Arc::new(head(Some(9), Some((10, 3)))));
        let started = tokio::time::Instant::now();
        let mut waiter_rx = rx.clone();
        let waiter = tokio::spawn(async move {
            let request = req(10, Some(5));
            let value = wait_until(&mut waiter_rx, Duration::from_secs(6), |h| {
                readiness(request, h, PART) == Readiness::Ready
            })
            .await;
            (value, tokio::time::Instant::now())
        });
        // Parts 4 and 5 are published 200 ms apart.
        for index in [4, 5, 6] {
            tokio::time::sleep(PART).await;
            tx.send_replace(Arc::new(head(Some(9), Some((10, index)))));
        }
        let (value, woke) = waiter.await.expect("waiter task");
        assert_eq!(value.map(|h| h.last_part), Some(Some((10, 5))));
        assert_eq!(woke - started, PART * 2);

        let mut late_rx = rx.clone();
        let before = tokio::time::Instant::now();
        let timed_out = wait_until(&mut late_rx, Duration::from_secs(6), |h| h.has_part(12, 0)).await;
        assert!(timed_out.is_none());
        assert_eq!(tokio::time::Instant::now() - before, Duration::from_secs(6));
    }
}
