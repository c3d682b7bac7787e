//! Chat sockets as viewers: whoever runs the service may ask to hear of every socket of a
//! stream when it joins and again every `every` while it stays (viewer counts). The id is
//! `chat:user:<sub>` for a signed-in socket, `chat:<node>:<connection>` for an anonymous one.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::{Interval, MissedTickBehavior};

use crate::auth::Identity;

/// What a mark calls: (stream id, viewer id).
type MarkFn = dyn Fn(&str, &str) + Send + Sync;

/// The hook: called with (stream id, viewer id).
#[derive(Clone)]
pub struct ViewerMarks {
    mark: Arc<MarkFn>,
    every: Duration,
}

impl std::fmt::Debug for ViewerMarks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ViewerMarks")
            .field("every", &self.every)
            .finish_non_exhaustive()
    }
}

impl ViewerMarks {
    /// Call `mark(stream, viewer)` on join and every `every` while the socket is open.
    pub fn new(every: Duration, mark: impl Fn(&str, &str) + Send + Sync + 'static) -> Self {
        ViewerMarks {
            mark: Arc::new(mark),
            every: every.max(Duration::from_millis(100)),
        }
    }
}

/// One socket's marks.
pub(crate) struct SocketMark {
    marks: ViewerMarks,
    stream: String,
    viewer: String,
    tick: Interval,
}

impl SocketMark {
    /// Mark the socket now; None when nobody asked for marks.
    pub(crate) fn start(
        marks: Option<&ViewerMarks>,
        stream: &str,
        node_id: &str,
        conn: u64,
        identity: Option<&Identity>,
    ) -> Option<SocketMark> {
        let marks = marks?.clone();
        let viewer = match identity {
            Some(i) => format!("chat:user:{}", i.id),
            None => format!("chat:{node_id}:{conn}"),
        };
        (marks.mark)(stream, &viewer);
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + marks.every, marks.every);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Some(SocketMark {
            marks,
            stream: stream.to_string(),
            viewer,
            tick,
        })
    }

    /// Wait for the next mark and make it; never resolves without marks.
    pub(crate) async fn next(mark: &mut Option<SocketMark>) {
        match mark {
            Some(m) => {
                m.tick.tick().await;
                (m.marks.mark)(&m.stream, &m.viewer);
            }
            None => std::future::pending().await,
        }
    }
}
