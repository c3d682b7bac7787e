//! Segments and their parts as the playlists and the origin see them.

use std::time::{Duration, SystemTime};

use bytes::Bytes;

/// One part (partial segment): a CMAF fragment of ~200 ms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// Media sequence number of the segment it belongs to.
    pub msn: u64,
    /// Index within the segment, from 0.
    pub index: u32,
    /// Duration.
    pub duration: Duration,
    /// Starts with a sync sample (INDEPENDENT=YES).
    pub independent: bool,
    /// The fragment (moof + mdat); a slice of the segment's bytes once the segment is complete.
    pub data: Bytes,
}

/// One segment (complete, or the open one still receiving parts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Media sequence number.
    pub msn: u64,
    /// Duration (the sum of its parts').
    pub duration: Duration,
    /// Wall-clock time of its first sample.
    pub program_date_time: SystemTime,
    /// A discontinuity (source change) comes before this segment.
    pub discontinuity: bool,
    /// How many discontinuities came before it in this rendition, its own included.
    pub discontinuity_sequence: u64,
    /// Source generation, which names its init segment (`init{generation}.mp4`).
    pub generation: u32,
    /// Its parts, while they are still listed in the live playlist; empty in the DVR index.
    pub parts: Vec<Part>,
    /// The whole segment (its parts' fragments, concatenated); empty when held only on disk.
    pub data: Bytes,
    /// Size in bytes (kept when `data` is dropped), for bit-rate measurements.
    pub size: u64,
    /// Listed with EXT-X-GAP: the segment could not be stored.
    pub gap: bool,
}

impl Segment {
    /// The same segment without its media (parts and bytes), as the DVR index keeps it.
    pub fn without_media(&self) -> Self {
        Self {
            parts: Vec::new(),
            data: Bytes::new(),
            ..self.clone()
        }
    }
}
