//! One rendition's record of parts and segments: the live window in memory, the DVR index, its
//! init segments. A pure state machine fed with the packager's events; it says what to store
//! on and delete from disk, and publishes immutable [`RenditionView`]s for the origin to read.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};

use crate::multivariant::VariantInfo;
use crate::packager::{PartReady, RenditionStart};
use crate::playlist::{MediaPlaylist, RenditionReport};
use crate::reload::Head;
use crate::resource::{PlaylistKind, Resource};
use crate::segment::{Part, Segment};
use crate::track::TrackInfo;

/// What a rendition asks the disk writer to do, with rendition-relative names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Storage {
    /// Write a file.
    Store(Resource, Bytes),
    /// Delete a file.
    Delete(Resource),
}

/// The mutable record of one rendition, owned by the stream's sink.
#[derive(Debug)]
pub(crate) struct Rendition {
    name: String,
    track: Arc<TrackInfo>,
    target_duration: u32,
    part_target: Duration,
    active: bool,
    ended: bool,
    live_window: Duration,
    dvr_window: Duration,
    segments: VecDeque<Arc<Segment>>,
    open: Option<Segment>,
    generation: u32,
    inits: BTreeMap<u32, Bytes>,
    dvr: VecDeque<Arc<Segment>>,
    dvr_duration: Duration,
    /// The DVR index as published, rebuilt only when the index changes.
    dvr_view: Option<Arc<Vec<Arc<Segment>>>>,
    discontinuity_sequence: u64,
    pending_discontinuity: bool,
    view: Option<Arc<RenditionView>>,
}

impl Rendition {
    /// A rendition announced by the packager.
    pub(crate) fn new(
        start: &RenditionStart,
        live_window: Duration,
        dvr_window: Duration,
    ) -> (Self, Vec<Storage>) {
        let mut rendition = Self {
            name: start.name.clone(),
            track: start.track.clone(),
            target_duration: start.target_duration,
            part_target: start.part_target,
            active: true,
            ended: false,
            live_window,
            dvr_window: dvr_window.max(live_window),
            segments: VecDeque::new(),
            open: None,
            generation: start.generation,
            inits: BTreeMap::new(),
            dvr: VecDeque::new(),
            dvr_duration: Duration::ZERO,
            dvr_view: None,
            discontinuity_sequence: 0,
            pending_discontinuity: false,
            view: None,
        };
        let storage = rendition.restart(start);
        (rendition, storage)
    }

    /// The rendition's name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// A new source: new init segment, a discontinuity before the next segment.
    pub(crate) fn restart(&mut self, start: &RenditionStart) -> Vec<Storage> {
        self.view = None;
        self.track = start.track.clone();
        self.part_target = start.part_target;
        self.target_duration = start.target_duration;
        self.generation = start.generation;
        self.active = true;
        self.pending_discontinuity = !self.dvr.is_empty() || self.open.is_some();
        self.inits.insert(start.generation, start.init.clone());
        vec![Storage::Store(
            Resource::Init(start.generation),
            start.init.clone(),
        )]
    }

    /// The current source has no track for this rendition.
    pub(crate) fn deactivate(&mut self) {
        self.view = None;
        self.active = false;
    }

    /// The stream ended.
    pub(crate) fn end(&mut self) {
        self.view = None;
        self.ended = true;
    }

    /// A part is complete.
    pub(crate) fn part(&mut self, ready: PartReady) {
        self.view = None;
        let open = self.open.get_or_insert_with(|| {
            let discontinuity = std::mem::take(&mut self.pending_discontinuity);
            if discontinuity {
                self.discontinuity_sequence += 1;
            }
            Segment {
                msn: ready.msn,
                duration: Duration::ZERO,
                program_date_time: ready.program_date_time,
                discontinuity,
                discontinuity_sequence: self.discontinuity_sequence,
                generation: ready.generation,
                parts: Vec::new(),
                data: Bytes::new(),
                size: 0,
                gap: false,
            }
        });
        open.duration += ready.duration;
        open.size += ready.data.len() as u64;
        open.parts.push(Part {
            msn: ready.msn,
            index: ready.part,
            duration: ready.duration,
            independent: ready.independent,
            data: ready.data,
        });
    }

    /// Segment `msn` is complete: it joins the live window and the DVR index; what falls out of
    /// the DVR window is deleted.
    pub(crate) fn segment_end(&mut self, msn: u64) -> Vec<Storage> {
        let Some(mut segment) = self.open.take_if(|open| open.msn == msn) else {
            return Vec::new();
        };
        self.view = None;
        // One buffer for the segment; its parts become slices of it.
        let mut data = BytesMut::with_capacity(usize::try_from(segment.size).unwrap_or(0));
        for part in &segment.parts {
            data.extend_from_slice(&part.data);
        }
        let data = data.freeze();
        let mut offset = 0;
        for part in &mut segment.parts {
            let len = part.data.len();
            part.data = data.slice(offset..offset + len);
            offset += len;
        }
        segment.data = data.clone();
        let segment = Arc::new(segment);
        let mut storage = vec![Storage::Store(Resource::Segment(msn), data)];

        self.segments.push_back(segment.clone());
        let mut live: Duration = self.segments.iter().map(|s| s.duration).sum();
        while live > self.live_window && self.segments.len() > 1 {
            if let Some(old) = self.segments.pop_front() {
                live = live.saturating_sub(old.duration);
            }
        }
        self.dvr_view = None;
        self.dvr_duration += segment.duration;
        self.dvr.push_back(Arc::new(segment.without_media()));
        while self.dvr_duration > self.dvr_window && self.dvr.len() > 1 {
            if let Some(old) = self.dvr.pop_front() {
                self.dvr_duration = self.dvr_duration.saturating_sub(old.duration);
                storage.push(Storage::Delete(Resource::Segment(old.msn)));
            }
        }
        // Init segments that no kept segment refers to go too.
        let oldest = self.dvr.front().map_or(self.generation, |s| s.generation);
        let stale: Vec<u32> = self
            .inits
            .range(..oldest.min(self.generation))
            .map(|(g, _)| *g)
            .collect();
        for generation in stale {
            self.inits.remove(&generation);
            storage.push(Storage::Delete(Resource::Init(generation)));
        }
        storage
    }

    /// Marks a DVR segment that could not be stored (listed with EXT-X-GAP).
    pub(crate) fn mark_gap(&mut self, msn: u64) {
        if let Some(entry) = self.dvr.iter_mut().rev().find(|s| s.msn == msn) {
            self.view = None;
            self.dvr_view = None;
            *entry = Arc::new(Segment {
                gap: true,
                ..entry.as_ref().clone()
            });
        }
    }

    /// The VOD playlist: the DVR index, ended.
    pub(crate) fn vod_playlist(&self) -> String {
        let segments: Vec<Arc<Segment>> = self.dvr.iter().cloned().collect();
        MediaPlaylist {
            kind: PlaylistKind::Vod,
            target_duration: self.target_duration,
            part_target: self.part_target,
            segments: &segments,
            open: None,
            preload_hint: None,
            reports: &[],
            skip: false,
            ended: true,
            parts: false,
        }
        .to_text()
    }

    /// The published view (rebuilt only after a change).
    pub(crate) fn view(&mut self) -> Arc<RenditionView> {
        if let Some(view) = &self.view {
            return view.clone();
        }
        let segments: Vec<Arc<Segment>> = self.segments.iter().cloned().collect();
        let (peak, average) = measured_bitrates(&segments);
        let configured = u64::from(self.track.bitrate);
        let view = Arc::new(RenditionView {
            name: self.name.clone(),
            track: self.track.clone(),
            target_duration: self.target_duration,
            part_target: self.part_target,
            active: self.active,
            ended: self.ended,
            segments,
            open: self.open.clone().map(Arc::new),
            inits: self.inits.iter().map(|(g, b)| (*g, b.clone())).collect(),
            dvr: self
                .dvr_view
                .get_or_insert_with(|| Arc::new(self.dvr.iter().cloned().collect()))
                .clone(),
            peak_bitrate: peak.map_or(configured, |p| p.max(configured)),
            average_bitrate: average.unwrap_or(configured),
        });
        self.view = Some(view.clone());
        view
    }
}

/// (peak, average) bit rate of segments, in bit/s; `None` without media.
fn measured_bitrates(segments: &[Arc<Segment>]) -> (Option<u64>, Option<u64>) {
    let rate = |bytes: u64, d: Duration| {
        let nanos = d.as_nanos();
        (nanos > 0).then(|| u64::try_from(u128::from(bytes) * 8_000_000_000 / nanos).unwrap_or(u64::MAX))
    };
    let peak = segments.iter().filter_map(|s| rate(s.size, s.duration)).max();
    let total: u64 = segments.iter().map(|s| s.size).sum();
    let duration: Duration = segments.iter().map(|s| s.duration).sum();
    (peak, rate(total, duration))
}

/// An immutable snapshot of one rendition, as the origin serves it.
#[derive(Debug, Clone)]
pub struct RenditionView {
    /// Rendition name.
    pub name: String,
    /// Its track.
    pub track: Arc<TrackInfo>,
    /// EXT-X-TARGETDURATION.
    pub target_duration: u32,
    /// PART-TARGET.
    pub part_target: Duration,
    /// The current source has a track for it.
    pub active: bool,
    /// The stream ended.
    pub ended: bool,
    /// Complete segments of the live window, with their parts and bytes.
    pub segments: Vec<Arc<Segment>>,
    /// The segment receiving parts.
    pub open: Option<Arc<Segment>>,
    /// Init segments by source generation.
    pub inits: Vec<(u32, Bytes)>,
    /// The DVR index: segments of the DVR window, without media.
    pub dvr: Arc<Vec<Arc<Segment>>>,
    /// BANDWIDTH: the largest segment bit rate of the window (at least the configured one).
    pub peak_bitrate: u64,
    /// AVERAGE-BANDWIDTH: measured over the window (the configured one before any segment).
    pub average_bitrate: u64,
}

impl RenditionView {
    /// How far the rendition has got.
    pub fn head(&self) -> Head {
        let last_segment = self.segments.last().map(|s| s.msn);
        let last_part = self
            .open
            .as_ref()
            .and_then(|o| o.parts.last())
            .or_else(|| self.segments.last().and_then(|s| s.parts.last()))
            .map(|p| (p.msn, p.index));
        Head {
            last_segment,
            last_part,
            ended: self.ended,
        }
    }

    /// This rendition's EXT-X-RENDITION-REPORT, once it has a part.
    pub fn report(&self) -> Option<RenditionReport> {
        let (last_msn, last_part) = self.head().last_part?;
        Some(RenditionReport {
            name: self.name.clone(),
            last_msn,
            last_part,
        })
    }

    /// What the multivariant playlist says about it.
    pub fn variant(&self) -> VariantInfo {
        VariantInfo {
            name: self.name.clone(),
            kind: self.track.kind.clone(),
            codec: self.track.codec.clone(),
            peak_bitrate: self.peak_bitrate,
            average_bitrate: self.average_bitrate,
        }
    }

    /// A published part.
    pub fn part(&self, msn: u64, index: u32) -> Option<Bytes> {
        let in_open = self.open.as_ref().filter(|o| o.msn == msn);
        let segment = in_open.or_else(|| self.live_segment(msn))?;
        segment
            .parts
            .iter()
            .find(|p| p.index == index)
            .map(|p| p.data.clone())
    }

    fn live_segment(&self, msn: u64) -> Option<&Arc<Segment>> {
        let first = self.segments.first()?.msn;
        let index = usize::try_from(msn.checked_sub(first)?).ok()?;
        self.segments.get(index).filter(|s| s.msn == msn)
    }

    /// A complete segment of the live window.
    pub fn segment(&self, msn: u64) -> Option<Bytes> {
        self.live_segment(msn).map(|s| s.data.clone())
    }

    /// Whether segment `msn` is in the DVR window (and so on disk).
    pub fn in_dvr(&self, msn: u64) -> bool {
        self.dvr.iter().rev().any(|s| s.msn == msn && !s.gap)
    }

    /// The init segment of a source generation.
    pub fn init(&self, generation: u32) -> Option<Bytes> {
        self.inits
            .iter()
            .find(|(g, _)| *g == generation)
            .map(|(_, b)| b.clone())
    }

    /// Whether a generation's init segment is still referenced (and so on disk).
    pub fn has_generation(&self, generation: u32) -> bool {
        self.inits.iter().any(|(g, _)| *g == generation)
    }

    /// The live playlist (a delta update if `skip`), with reports of `siblings`.
    pub fn live_playlist(&self, skip: bool, reports: &[RenditionReport], parts: bool) -> String {
        let head = self.head();
        MediaPlaylist {
            kind: PlaylistKind::Live,
            target_duration: self.target_duration,
            part_target: self.part_target,
            segments: &self.segments,
            open: self.open.as_deref(),
            preload_hint: (!self.ended).then(|| head.next_part()),
            reports,
            skip,
            ended: self.ended,
            parts,
        }
        .to_text()
    }

    /// The DVR playlist.
    pub fn dvr_playlist(&self) -> String {
        MediaPlaylist {
            kind: PlaylistKind::Dvr,
            target_duration: self.target_duration,
            part_target: self.part_target,
            segments: &self.dvr,
            open: None,
            preload_hint: None,
            reports: &[],
            skip: false,
            ended: self.ended,
            parts: false,
        }
        .to_text()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packager::{Event, Packager, PackagerConfig};
    use crate::track::tests::video_config;
    use crate::{AccessUnit, TrackConfig};
    use std::time::SystemTime;

    fn au(frame: u64) -> AccessUnit {
        let t = Duration::from_nanos(frame * 1_000_000_000 / 30);
        AccessUnit {
            pts: t,
            dts: t,
            keyframe: frame.is_multiple_of(60),
            data: Bytes::from(vec![7u8; 100]),
        }
    }

    /// Runs `frames` frames through a packager into a rendition; returns the storage requests.
    fn feed(
        packager: &mut Packager,
        rendition: &mut Option<Rendition>,
        frames: std::ops::Range<u64>,
        dvr: Duration,
    ) -> Vec<Storage> {
        for f in frames {
            packager.push(0, au(f));
        }
        let mut storage = Vec::new();
        while let Some(event) = packager.poll() {
            match event {
                Event::Rendition(start) => match rendition {
                    Some(r) => storage.extend(r.restart(&start)),
                    None => {
                        let (r, s) = Rendition::new(&start, Duration::from_secs(8), dvr);
                        *rendition = Some(r);
                        storage.extend(s);
                    }
                },
                Event::Part(part) => rendition.as_mut().expect("started").part(part),
                Event::SegmentEnd { msn, .. } => {
                    storage.extend(rendition.as_mut().expect("started").segment_end(msn))
                }
                Event::Finished => rendition.as_mut().expect("started").end(),
                Event::Inactive { .. } => {}
            }
        }
        storage
    }

    fn start(packager: &mut Packager, config: &TrackConfig) {
        packager.start(std::slice::from_ref(config), SystemTime::UNIX_EPOCH);
    }

    #[test]
    fn the_live_window_keeps_recent_segments_with_their_parts() {
        let mut packager = Packager::new(PackagerConfig::default());
        start(&mut packager, &video_config(360));
        let mut rendition = None;
        let storage = feed(
            &mut packager,
            &mut rendition,
            0..(30 * 20 + 7),
            Duration::from_secs(3600),
        );
        let mut r = rendition.expect("a rendition");
        let view = r.view();
        // 8 s window = 4 segments of 2 s; 10 segments done, the 11th open with one part.
        assert_eq!(
            view.segments.iter().map(|s| s.msn).collect::<Vec<_>>(),
            [6, 7, 8, 9]
        );
        assert_eq!(view.dvr.len(), 10);
        assert_eq!(
            view.head(),
            Head {
                last_segment: Some(9),
                last_part: Some((10, 0)),
                ended: false
            }
        );
        assert_eq!(
            view.segment(9).map(|b| b.len()),
            view.segments[3].data.len().into()
        );
        // A part of a complete segment is a slice of the segment's bytes.
        let part = view.part(9, 9).expect("last part of segment 9");
        assert!(view.segment(9).expect("segment 9").ends_with(&part));
        assert!(view.part(5, 0).is_none());
        assert!(view.part(10, 0).is_some());
        assert_eq!(view.init(0).map(|b| b[4..8].to_vec()), Some(b"ftyp".to_vec()));
        let stored = storage
            .iter()
            .filter(|s| matches!(s, Storage::Store(Resource::Segment(_), _)))
            .count();
        assert_eq!(stored, 10);
        // Each 2 s segment of 60 frames of ~100 bytes: 24 kbit/s of samples plus the boxes.
        assert!(
            view.average_bitrate > 24_000 && view.average_bitrate < 40_000,
            "{}",
            view.average_bitrate
        );
    }

    #[test]
    fn the_dvr_window_deletes_old_segments_and_unused_inits() {
        let mut packager = Packager::new(PackagerConfig::default());
        start(&mut packager, &video_config(360));
        let mut rendition = None;
        let dvr = Duration::from_secs(10);
        feed(&mut packager, &mut rendition, 0..300, dvr);
        start(&mut packager, &video_config(360));
        let storage = feed(&mut packager, &mut rendition, 0..(30 * 12 + 1), dvr);
        let mut r = rendition.expect("a rendition");
        let view = r.view();
        // The DVR window holds 10 s = 5 segments, all of the new source.
        assert_eq!(view.dvr.len(), 5);
        assert!(storage.contains(&Storage::Delete(Resource::Segment(0))));
        assert!(storage.contains(&Storage::Delete(Resource::Init(0))));
        assert!(!view.has_generation(0) && view.has_generation(1));
        let discontinuities: Vec<_> = view.dvr.iter().filter(|s| s.discontinuity).collect();
        assert!(
            discontinuities.is_empty(),
            "the discontinuity slid out of the window"
        );
        assert!(view.dvr.iter().all(|s| s.discontinuity_sequence == 1));
        r.end();
        assert!(r.vod_playlist().ends_with("#EXT-X-ENDLIST\n"));
    }
}
