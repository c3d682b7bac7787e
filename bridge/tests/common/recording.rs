//! A `MediaSink` that records what the packager would have received.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use hls::{AccessUnit, MediaSink, TrackConfig};

/// Everything a sink was told.
#[derive(Debug, Default)]
pub struct Recording {
    /// Each `start`: the tracks and the anchor.
    pub starts: Vec<(Vec<TrackConfig>, SystemTime)>,
    /// Per track of the latest start: the access units and when each reached the sink.
    pub units: Vec<Vec<(AccessUnit, SystemTime)>>,
    /// How many times `finish` was called.
    pub finished: usize,
}

/// The sink, sharing its recording.
#[derive(Clone, Default)]
pub struct RecordingSink(pub Arc<Mutex<Recording>>);

impl RecordingSink {
    /// Take what was recorded so far.
    pub fn take(&self) -> Recording {
        std::mem::take(&mut *self.0.lock().expect("recording lock"))
    }
}

impl MediaSink for RecordingSink {
    fn start(&mut self, tracks: Vec<TrackConfig>, anchor: SystemTime) {
        let mut r = self.0.lock().expect("recording lock");
        r.units = vec![Vec::new(); tracks.len()];
        r.starts.push((tracks, anchor));
    }
    fn push(&mut self, track: usize, au: AccessUnit) {
        let mut r = self.0.lock().expect("recording lock");
        if let Some(units) = r.units.get_mut(track) {
            units.push((au, SystemTime::now()));
        }
    }
    fn finish(&mut self) {
        self.0.lock().expect("recording lock").finished += 1;
    }
}
