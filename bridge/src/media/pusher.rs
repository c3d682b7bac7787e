//! The one thread that owns the sink: the appsinks' streaming threads send it what they
//! produced over a bounded channel, so the sink never sees two callers at once.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::SystemTime;

use hls::{AccessUnit, MediaSink, TrackConfig};

use super::gate::Gate;

/// Messages from the streaming threads (and from `stop`) to the pusher.
pub(crate) enum Feed {
    /// A track's caps are known (or changed).
    Caps {
        track: usize,
        config: TrackConfig,
        anchor: SystemTime,
    },
    /// One encoded access unit.
    Unit { track: usize, au: AccessUnit },
    /// The pipeline stopped: finish the stream and end the thread.
    Finish,
}

/// Room for about a second of every track: enough to ride over a slow `push`, small enough
/// that a stuck sink stalls the pipeline (live sources then report lateness) rather than memory.
const CAPACITY: usize = 256;

pub(crate) struct Pusher {
    feed: SyncSender<Feed>,
    thread: Option<JoinHandle<()>>,
}

impl Pusher {
    /// The pusher of a pipeline named `name`, for `tracks` tracks.
    pub(crate) fn spawn(name: &str, sink: Box<dyn MediaSink>, tracks: usize) -> std::io::Result<Pusher> {
        let (feed, rx) = sync_channel(CAPACITY);
        let thread = std::thread::Builder::new()
            .name(format!("{name}-push"))
            .spawn(move || run(rx, sink, tracks))?;
        Ok(Pusher {
            feed,
            thread: Some(thread),
        })
    }

    /// A sender for a streaming thread.
    pub(crate) fn feed(&self) -> SyncSender<Feed> {
        self.feed.clone()
    }

    /// Everything sent so far is pushed, then `finish` is called on the sink; waits for that.
    pub(crate) fn finish(&mut self) {
        let Some(thread) = self.thread.take() else { return };
        // Fails only when the thread is gone already, which joining reports.
        let _ = self.feed.send(Feed::Finish);
        if thread.join().is_err() {
            tracing::error!("a pipeline's sink panicked");
        }
    }
}

impl Drop for Pusher {
    fn drop(&mut self) {
        self.finish();
    }
}

fn run(rx: Receiver<Feed>, mut sink: Box<dyn MediaSink>, tracks: usize) {
    let mut gate = Gate::new(tracks);
    // Ends on Finish, or when every sender is gone.
    while let Ok(feed) = rx.recv() {
        match feed {
            Feed::Caps {
                track,
                config,
                anchor,
            } => gate.caps(sink.as_mut(), track, config, anchor),
            Feed::Unit { track, au } => gate.access_unit(sink.as_mut(), track, au),
            Feed::Finish => break,
        }
    }
    gate.finish(sink.as_mut());
}
