//! A live producer's connection for the slate tests: media passes only while it is open, so
//! closing it is a publisher dropping (its media stops, nothing is finished). [`rig`] sets up
//! a slated stream fed through one. Shared by `bridge/tests/slate.rs` and
//! `tests/tests/llhls_slate.rs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use bridge::slate::{SlateConfig, Slated};
use bridge::test_source::{TestSource, TestSourceConfig};
use hls::{AccessUnit, MediaSink, Origin, StreamConfig, TrackConfig};

pub struct Gate<S> {
    pub inner: S,
    pub open: Arc<AtomicBool>,
}

impl<S: MediaSink> MediaSink for Gate<S> {
    fn start(&mut self, tracks: Vec<TrackConfig>, anchor: SystemTime) {
        self.inner.start(tracks, anchor);
    }
    fn push(&mut self, track: usize, au: AccessUnit) {
        if self.open.load(Ordering::Relaxed) {
            self.inner.push(track, au);
        }
    }
    fn finish(&mut self) {
        self.inner.finish();
    }
}

/// Stream `s` on an origin with the slate in front of it, fed by a live test source through an
/// open gate; the slate shows the same ladder.
pub struct Rig {
    pub slated: Slated,
    pub live: TestSource,
    pub open: Arc<AtomicBool>,
}

pub fn rig(origin: &Origin, after: Duration, ladder: TestSourceConfig) -> Rig {
    let sink = origin
        .create_stream("s", StreamConfig::default())
        .expect("stream");
    let slated = Slated::new(
        Box::new(sink),
        SlateConfig {
            after,
            source: ladder.clone(),
        },
    );
    let open = Arc::new(AtomicBool::new(true));
    let live = TestSource::start(
        ladder,
        Box::new(Gate {
            inner: slated.live_input(),
            open: open.clone(),
        }),
    )
    .expect("the live test source starts");
    Rig { slated, live, open }
}
