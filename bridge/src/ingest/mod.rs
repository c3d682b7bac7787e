//! Ingest into rooms: RTMP, SRT and RTSP publications become a room's publisher.
//!
//! The protocols themselves are the `ingest` crate's (listeners, the pull client, the parsers);
//! they hand [`ingest::Frame`]s to a [`RoomSink`] that [`RoomIngest::start`] opens for a
//! stream. The sink converts what browsers cannot take (B-frames, AAC) and sends RTP into the
//! room through the SFU's in-process source ([`sfu::RoomSource`]), so WHEP viewers, the LL-HLS
//! bridge, viewer counts and the stream's lifecycle see a publisher like any other.
//! `docs/ingest.md` has the picture.

mod filter;
mod opus;
mod reencode;
mod room_sink;
mod rtp_out;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError, Weak};

pub use room_sink::{RoomSink, SourceAac};
use sfu::{SessionId, SfuHandle};
use std::sync::mpsc::{Receiver, sync_channel};

use crate::Error;
use crate::live::SourceVideo;

/// Opens room sinks and keeps what the stream health shows about each.
#[derive(Clone)]
pub struct RoomIngest {
    sfu: SfuHandle,
    live: Arc<Mutex<HashMap<String, Weak<room_sink::Shared>>>>,
}

impl std::fmt::Debug for RoomIngest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoomIngest").finish_non_exhaustive()
    }
}

/// What the stream's health shows about its ingest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestHealth {
    /// Whether video is re-encoded (B-frames, a profile browsers do not decode).
    pub reencoding: bool,
    /// Frames dropped because the conversion fell behind.
    pub dropped_frames: u64,
    /// What is wrong with the source (an unsupported codec, a failed conversion).
    pub problems: Vec<String>,
}

impl RoomIngest {
    /// Ingest into `sfu`'s rooms.
    pub fn new(sfu: SfuHandle) -> Result<RoomIngest, Error> {
        gstreamer::init().map_err(|e| Error::Init(e.to_string()))?;
        Ok(RoomIngest {
            sfu,
            live: Arc::default(),
        })
    }

    /// Make a publication the publisher of `stream`'s room. Returns the SFU session id it
    /// publishes as (the stream's lifecycle follows it like a WHIP session) and its sink.
    pub fn start(&self, stream: &str) -> Result<(SessionId, RoomSink), Error> {
        let source = self
            .sfu
            .publish_source(stream)
            .map_err(|e| Error::Build(format!("the room would not take a source: {e}")))?;
        let id = source.id();
        let shared = Arc::new(room_sink::Shared::default());
        let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        live.retain(|_, w| w.strong_count() > 0);
        live.insert(stream.to_string(), Arc::downgrade(&shared));
        drop(live);
        let sink = RoomSink::start(stream, source, shared)
            .map_err(|e| Error::Build(format!("ingest thread: {e}")))?;
        Ok((id, sink))
    }

    /// The H.264 `stream`'s ingest sends into its room, while one runs and once its size is
    /// known: what the LL-HLS bridge may copy as its top rung.
    pub fn source_video(&self, stream: &str) -> Option<SourceVideo> {
        let shared = self.shared(stream)?;
        let (width, height) = (*lock(&shared.sent_size))?;
        Some(SourceVideo { width, height })
    }

    /// `stream`'s AAC as its ingest receives it, while one runs and converts AAC: the
    /// AudioSpecificConfig, and a queue of the frames from now on (about 5 s of them; the
    /// source drops what a slow reader leaves). What the LL-HLS bridge copies.
    pub fn source_audio(&self, stream: &str) -> Option<(bytes::Bytes, Receiver<SourceAac>)> {
        let shared = self.shared(stream)?;
        let config = lock(&shared.aac_config).clone()?;
        let (tx, rx) = sync_channel(256);
        lock(&shared.aac_taps).push(tx);
        Some((config, rx))
    }

    /// What the sink of `stream`'s running ingest shares, if one runs.
    fn shared(&self, stream: &str) -> Option<Arc<room_sink::Shared>> {
        let live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        live.get(stream)?.upgrade()
    }

    /// The health of `stream`'s ingest while one runs.
    pub fn health(&self, stream: &str) -> Option<IngestHealth> {
        let shared = self.shared(stream)?;
        let problems = lock(&shared.problems).clone();
        Some(IngestHealth {
            reencoding: shared.reencoding.load(Ordering::Relaxed),
            dropped_frames: shared.dropped.load(Ordering::Relaxed),
            problems,
        })
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
