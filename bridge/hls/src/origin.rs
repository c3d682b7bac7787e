//! The registry of streams the origin serves.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::config::{OriginConfig, StreamConfig};
use crate::disk::{DiskJob, DiskWriter};
use crate::resource::valid_name;
use crate::stats::{OriginStats, Stats};
use crate::stream::{StreamDisk, StreamHandle, StreamShared, StreamSink, StreamView};

/// Why the origin refused.
#[derive(Debug, thiserror::Error)]
pub enum OriginError {
    /// Stream ids are 1 to 128 characters of `A-Z a-z 0-9 _ -`.
    #[error("invalid stream id")]
    InvalidId,
    /// A stream with this id is live (not finished) already.
    #[error("stream {0} is already live")]
    AlreadyLive(String),
    /// The disk writer could not start.
    #[error("cannot start the disk writer: {0}")]
    Disk(#[from] std::io::Error),
}

#[derive(Debug)]
struct OriginInner {
    config: OriginConfig,
    streams: Mutex<HashMap<String, StreamHandle>>,
    disk: Option<DiskWriter>,
    stats: Stats,
}

/// The LL-HLS origin: a registry of streams, cheap to clone. Serve it with
/// [`crate::router()`].
#[derive(Debug, Clone)]
pub struct Origin {
    inner: Arc<OriginInner>,
}

impl Origin {
    /// An origin with no streams. Starts the disk writer thread when `config.data_dir` is set.
    pub fn new(config: OriginConfig) -> Result<Self, OriginError> {
        let disk = match config.data_dir {
            Some(_) => Some(DiskWriter::spawn(config.disk_queue)?),
            None => None,
        };
        Ok(Self {
            inner: Arc::new(OriginInner {
                config,
                streams: Mutex::new(HashMap::new()),
                disk,
                stats: Stats::default(),
            }),
        })
    }

    /// Requests, bytes and refusals so far, and the blocking requests held now.
    pub fn stats(&self) -> OriginStats {
        self.inner.stats.snapshot()
    }

    pub(crate) fn counters(&self) -> &Stats {
        &self.inner.stats
    }

    /// The origin's settings.
    pub fn config(&self) -> &OriginConfig {
        &self.inner.config
    }

    /// Registers stream `id` and returns the sink its producer pushes into (use
    /// [`StreamSink::handle`] or [`Origin::stream`] to watch it). A finished stream with the
    /// same id is replaced, and its files on disk (its VOD) are deleted.
    pub fn create_stream(&self, id: &str, config: StreamConfig) -> Result<StreamSink, OriginError> {
        if !valid_name(id) {
            return Err(OriginError::InvalidId);
        }
        let mut streams = self
            .inner
            .streams
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if streams.get(id).is_some_and(|s| !s.is_ended()) {
            return Err(OriginError::AlreadyLive(id.to_owned()));
        }
        let disk = match (&self.inner.disk, self.stream_dir(id)) {
            (Some(writer), Some(dir)) => {
                writer.send(DiskJob::RemoveDir(dir.clone()));
                Some(StreamDisk {
                    writer: writer.clone(),
                    dir,
                })
            }
            _ => None,
        };
        // Without a disk, what is not in memory cannot be served: the DVR is the live window.
        let config = match disk {
            Some(_) => config,
            None => StreamConfig {
                dvr_window: config.live_window,
                ..config
            },
        };
        let (tx, _) = watch::channel(Arc::new(StreamView::default()));
        let shared = Arc::new(StreamShared {
            id: id.to_owned(),
            config,
            tx,
        });
        let sink = StreamSink::new(shared, disk);
        streams.insert(id.to_owned(), sink.handle());
        Ok(sink)
    }

    /// A registered stream.
    pub fn stream(&self, id: &str) -> Option<StreamHandle> {
        self.inner
            .streams
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(id)
            .cloned()
    }

    /// Unregisters a stream: its live, DVR and in-memory media are no longer served. Its VOD
    /// (if it finished with a data directory) stays on disk and is still served. True if it
    /// was registered.
    pub fn remove_stream(&self, id: &str) -> bool {
        self.inner
            .streams
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(id)
            .is_some()
    }

    /// Ids of the registered streams.
    pub fn stream_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .inner
            .streams
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .keys()
            .cloned()
            .collect();
        ids.sort();
        ids
    }

    /// `<data_dir>/hls/<id>`, for a valid id when there is a data directory.
    pub(crate) fn stream_dir(&self, id: &str) -> Option<PathBuf> {
        let data_dir = self.inner.config.data_dir.as_ref()?;
        valid_name(id).then(|| data_dir.join("hls").join(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sinks_and_handles_cross_threads() {
        fn send<T: Send>() {}
        fn shared<T: Send + Sync>() {}
        send::<StreamSink>();
        send::<Box<dyn crate::MediaSink>>();
        shared::<Origin>();
        shared::<StreamHandle>();
    }

    #[test]
    fn without_a_disk_the_dvr_window_is_the_live_window() {
        let origin = Origin::new(OriginConfig::default()).expect("origin");
        let sink = origin
            .create_stream("s", StreamConfig::default())
            .expect("stream");
        let config = sink.handle().config().to_owned();
        assert_eq!(config.dvr_window, config.live_window);
    }
}
