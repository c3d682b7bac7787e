//! The stream-level packager: a pure state machine from access units to numbered parts and
//! segments of every rendition.
//!
//! Each track of a source is one rendition (video rungs named by height, e.g. `720p`; audio
//! `audio`). The first video track leads: the audio follows its cuts so audio and video parts
//! cover the same spans; other video rungs cut by the same rules on their own keyframes, which
//! the encoder aligns. Feed it with [`Packager::start`], [`Packager::push`],
//! [`Packager::finish`] and drain [`Packager::poll`] after each call.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use crate::init_segment::init_segment;
use crate::media::{AccessUnit, TrackConfig};
use crate::segmenter::{Boundary, Cut, CutPart, Rules, Segmenter};
use crate::track::{TrackInfo, TrackKind, to_ticks};

/// A segment without a keyframe in time is cut this long after TARGETDURATION.
const SEGMENT_SLACK: Duration = Duration::from_millis(400);

/// How the packager cuts media.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackagerConfig {
    /// Aimed-for part duration (default 200 ms). Video parts are a whole number of frames.
    pub part_target: Duration,
    /// Aimed-for segment duration (default 2 s); segments are cut on keyframes.
    pub segment_target: Duration,
}

impl Default for PackagerConfig {
    fn default() -> Self {
        Self {
            part_target: Duration::from_millis(200),
            segment_target: Duration::from_secs(2),
        }
    }
}

impl PackagerConfig {
    /// EXT-X-TARGETDURATION: the segment target rounded up to whole seconds (at least 1).
    pub fn target_duration(&self) -> u32 {
        let secs = self.segment_target.as_secs() + u64::from(self.segment_target.subsec_nanos() > 0);
        u32::try_from(secs.max(1)).unwrap_or(u32::MAX)
    }

    /// Where a keyframe ends a segment, counted from the segment's start: from one part short
    /// of the segment target to the longest segment, which is cut without a keyframe.
    pub fn keyframe_window(&self) -> std::ops::RangeInclusive<Duration> {
        self.segment_target.saturating_sub(self.part_target())..=self.segment_max()
    }

    /// No segment is longer than this: TARGETDURATION plus rounding.
    fn segment_max(&self) -> Duration {
        Duration::from_secs(u64::from(self.target_duration())) + SEGMENT_SLACK
    }

    fn part_target(&self) -> Duration {
        self.part_target.clamp(
            Duration::from_millis(1),
            self.segment_target.max(Duration::from_millis(1)),
        )
    }
}

/// What the packager produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A rendition starts, or starts again after a source change, with a new init segment.
    Rendition(RenditionStart),
    /// A part is complete.
    Part(PartReady),
    /// Segment `msn` of `rendition` is complete (its parts were all announced before).
    SegmentEnd {
        /// Rendition index.
        rendition: usize,
        /// Media sequence number of the segment.
        msn: u64,
    },
    /// The current source has no track for this rendition: it gets no more media.
    Inactive {
        /// Rendition index.
        rendition: usize,
    },
    /// The stream ended (after the last parts and segment ends).
    Finished,
}

/// A rendition (re)starting: name, track, init segment and the timing it announces.
#[derive(Debug, Clone, PartialEq)]
pub struct RenditionStart {
    /// Rendition index, stable for the stream's life.
    pub rendition: usize,
    /// URL-safe name, e.g. `720p` or `audio`.
    pub name: String,
    /// The checked track.
    pub track: Arc<TrackInfo>,
    /// The CMAF init segment.
    pub init: Bytes,
    /// Source generation (0 for the first `start`, +1 for each later one).
    pub generation: u32,
    /// PART-TARGET of this rendition's playlist: no part is longer.
    pub part_target: Duration,
    /// EXT-X-TARGETDURATION in seconds.
    pub target_duration: u32,
}

/// A complete part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartReady {
    /// Rendition index.
    pub rendition: usize,
    /// Media sequence number of its segment.
    pub msn: u64,
    /// Index of the part within its segment.
    pub part: u32,
    /// Duration.
    pub duration: Duration,
    /// Starts with a sync sample (INDEPENDENT=YES).
    pub independent: bool,
    /// The CMAF fragment.
    pub data: Bytes,
    /// Wall-clock time of its first sample (the source's anchor plus its decode time).
    pub program_date_time: SystemTime,
    /// Source generation of the media.
    pub generation: u32,
}

#[derive(Debug)]
struct Rendition {
    name: String,
    segmenter: Option<Segmenter>,
    msn: u64,
    part: u32,
    active: bool,
    generation: u32,
}

/// The packager of one stream.
#[derive(Debug)]
pub struct Packager {
    config: PackagerConfig,
    renditions: Vec<Rendition>,
    /// Track index of the current source -> rendition index.
    tracks: Vec<Option<usize>>,
    leader: Option<usize>,
    followers: Vec<usize>,
    generation: Option<u32>,
    anchor: SystemTime,
    events: VecDeque<Event>,
    finished: bool,
}

impl Packager {
    /// A packager that has seen no source yet.
    pub fn new(config: PackagerConfig) -> Self {
        Self {
            config,
            renditions: Vec::new(),
            tracks: Vec::new(),
            leader: None,
            followers: Vec::new(),
            generation: None,
            anchor: SystemTime::UNIX_EPOCH,
            events: VecDeque::new(),
            finished: false,
        }
    }

    /// The next event, if any.
    pub fn poll(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// A (new) source with these tracks; `anchor` is the wall-clock time of pts 0.
    pub fn start(&mut self, tracks: &[TrackConfig], anchor: SystemTime) {
        if self.finished {
            tracing::warn!("start after finish ignored");
            return;
        }
        self.flush_all(true);
        let generation = self.generation.map_or(0, |g| g.saturating_add(1));
        self.generation = Some(generation);
        self.anchor = anchor;
        self.tracks.clear();
        self.leader = None;
        self.followers.clear();

        let infos: Vec<Option<Arc<TrackInfo>>> = tracks
            .iter()
            .enumerate()
            .map(|(i, config)| match TrackInfo::from_config(config) {
                Ok(info) => Some(Arc::new(info)),
                Err(error) => {
                    tracing::warn!(track = i, %error, "track ignored");
                    None
                }
            })
            .collect();
        let names = rendition_names(&infos);
        let leader_track = infos
            .iter()
            .position(|i| i.as_ref().is_some_and(|i| i.is_video()));
        let video_part = leader_track
            .and_then(|t| infos[t].as_ref())
            .map(|info| video_part_ticks(info, self.config.part_target()))
            .map(|(ticks, _)| crate::track::to_duration(ticks, crate::track::VIDEO_TIMESCALE));

        let mut used = vec![false; self.renditions.len()];
        for (track, (info, name)) in infos.iter().zip(names).enumerate() {
            let (Some(info), Some(name)) = (info, name) else {
                self.tracks.push(None);
                continue;
            };
            let index = match self.renditions.iter().position(|r| r.name == name) {
                Some(index) => index,
                None => {
                    self.renditions.push(Rendition {
                        name: name.clone(),
                        segmenter: None,
                        msn: 0,
                        part: 0,
                        active: false,
                        generation,
                    });
                    used.push(false);
                    self.renditions.len() - 1
                }
            };
            used[index] = true;
            let follower = leader_track.is_some_and(|l| l != track) && !info.is_video();
            let (rules, part_target) = self.rules(info, video_part);
            let init = match init_segment(info) {
                Ok(init) => init,
                Err(error) => {
                    tracing::warn!(track, %error, "track ignored");
                    self.tracks.push(None);
                    used[index] = false;
                    continue;
                }
            };
            let rendition = &mut self.renditions[index];
            let sequence = rendition.segmenter.as_ref().map_or(0, Segmenter::sequence);
            rendition.segmenter =
                Some(Segmenter::new(rules, follower, sequence).with_silence(info.silent_frame()));
            rendition.active = true;
            rendition.generation = generation;
            self.tracks.push(Some(index));
            if leader_track == Some(track) {
                self.leader = Some(index);
            } else if follower {
                self.followers.push(index);
            }
            self.events.push_back(Event::Rendition(RenditionStart {
                rendition: index,
                name,
                track: info.clone(),
                init,
                generation,
                part_target,
                target_duration: self.config.target_duration(),
            }));
        }
        for (index, rendition) in self.renditions.iter_mut().enumerate() {
            if !used[index] && rendition.active {
                rendition.active = false;
                rendition.segmenter = None;
                self.events.push_back(Event::Inactive { rendition: index });
            }
        }
    }

    /// One access unit of track `track` of the current source. Out-of-range tracks, pushes
    /// before `start` or after `finish` are ignored.
    pub fn push(&mut self, track: usize, au: AccessUnit) {
        if self.finished {
            return;
        }
        let Some(&Some(index)) = self.tracks.get(track) else {
            return;
        };
        let Some(segmenter) = self.renditions[index].segmenter.as_mut() else {
            return;
        };
        let cuts = segmenter.push(au);
        self.apply(index, cuts, false);
    }

    /// The stream ended: the last parts and segments are cut, then [`Event::Finished`].
    pub fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.flush_all(false);
        self.finished = true;
        self.events.push_back(Event::Finished);
    }

    /// Close every open part and segment; `source_change`: another source follows (see
    /// [`Segmenter::flush`]).
    fn flush_all(&mut self, source_change: bool) {
        let order: Vec<usize> = self
            .leader
            .into_iter()
            .chain((0..self.renditions.len()).filter(|&i| Some(i) != self.leader))
            .collect();
        for index in order {
            if let Some(segmenter) = self.renditions[index].segmenter.as_mut() {
                let cuts = segmenter.flush(source_change);
                self.apply(index, cuts, source_change);
            }
        }
    }

    /// Turns a segmenter's cuts into events; a leader's cuts go on to its followers. `closing`:
    /// these are the last before another source, so the leader's segment end reaches the
    /// followers as [`Boundary::Last`].
    fn apply(&mut self, index: usize, cuts: Vec<Cut>, closing: bool) {
        let is_leader = self.leader == Some(index);
        for cut in cuts {
            let boundary = match cut {
                Cut::Started(time) => Some(Boundary::Start(time)),
                Cut::Part(part) => {
                    let boundary = if part.ends_segment && closing {
                        Boundary::Last(part.end)
                    } else if part.ends_segment {
                        Boundary::Segment(part.end)
                    } else {
                        Boundary::Part(part.end)
                    };
                    self.part(index, part);
                    Some(boundary)
                }
                Cut::SegmentEnd => {
                    self.segment_end(index);
                    None
                }
            };
            if let (true, Some(boundary)) = (is_leader, boundary) {
                for follower in self.followers.clone() {
                    if let Some(segmenter) = self.renditions[follower].segmenter.as_mut() {
                        let cuts = segmenter.boundary(boundary);
                        self.apply(follower, cuts, closing);
                    }
                }
            }
        }
    }

    fn part(&mut self, index: usize, part: CutPart) {
        let exact = self.anchor.checked_add(part.start).unwrap_or(self.anchor);
        let program_date_time = written_date_time(exact, !self.followers.contains(&index));
        let rendition = &mut self.renditions[index];
        self.events.push_back(Event::Part(PartReady {
            rendition: index,
            msn: rendition.msn,
            part: rendition.part,
            duration: part.duration,
            independent: part.independent,
            data: part.data,
            program_date_time,
            generation: rendition.generation,
        }));
        rendition.part = rendition.part.saturating_add(1);
        if part.ends_segment {
            self.segment_end(index);
        }
    }

    fn segment_end(&mut self, index: usize) {
        let rendition = &mut self.renditions[index];
        if rendition.part == 0 {
            return;
        }
        self.events.push_back(Event::SegmentEnd {
            rendition: index,
            msn: rendition.msn,
        });
        rendition.msn = rendition.msn.saturating_add(1);
        rendition.part = 0;
    }

    /// Cutting rules and PART-TARGET for a track; `video_part` is the leader's part target.
    fn rules(&self, info: &TrackInfo, video_part: Option<Duration>) -> (Rules, Duration) {
        let ts = info.timescale;
        let nominal = info.nominal_sample_ticks();
        let segment_max = to_ticks(self.config.segment_max(), ts);
        let segment_target = to_ticks(self.config.segment_target, ts);
        let (part_target, part_max) = match info.kind {
            TrackKind::Video { .. } => {
                let (ticks, _) = video_part_ticks(info, self.config.part_target());
                (ticks, ticks)
            }
            TrackKind::Audio { .. } => {
                let target = to_ticks(video_part.unwrap_or(self.config.part_target()), ts);
                (target, target + nominal)
            }
        };
        let rules = Rules {
            timescale: ts,
            video: info.is_video(),
            nominal_sample: nominal,
            part_target,
            part_max,
            segment_target,
            segment_max,
            lag_limit: segment_target.saturating_mul(2),
        };
        (rules, crate::track::to_duration(part_max, ts))
    }
}

/// The date-time a playlist states for media that starts at `exact`, to the millisecond that
/// PROGRAM-DATE-TIME carries. Video's (`leads`: every rung, or audio when there is no video)
/// is its instant to the nearest millisecond plus one, so 0.5-1.5 ms late; audio's that
/// follows video is the whole millisecond at or before its instant, so 0-1 ms early.
///
/// Players line the audio playlist up with the video one by these dates (hls.js takes the
/// difference of two of them as the offset between the timelines). Written this way the
/// audio is placed at least half a millisecond before where its media really is, never
/// after: a playlist that puts an audio part's end even microseconds past the buffered audio
/// makes hls.js think the part is still incomplete, so it never asks for the next one and
/// stalls at the segment boundary until the playlist slides.
fn written_date_time(exact: SystemTime, leads: bool) -> SystemTime {
    let since = exact.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let millis = |d: Duration| Duration::from_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let written = if leads {
        millis(since + Duration::from_micros(500)) + Duration::from_millis(1)
    } else {
        millis(since)
    };
    SystemTime::UNIX_EPOCH + written
}

/// A video part target that is a whole number of frames: (ticks, frames).
fn video_part_ticks(info: &TrackInfo, part_target: Duration) -> (u64, u64) {
    let frame = info.nominal_sample_ticks();
    let target = to_ticks(part_target, info.timescale);
    let frames = ((target + frame / 2) / frame).max(1);
    (frames * frame, frames)
}

/// URL-safe, unique rendition names: `{height}p` for video, `audio` for audio, with `-2`, `-3`
/// for repeats.
fn rendition_names(infos: &[Option<Arc<TrackInfo>>]) -> Vec<Option<String>> {
    let mut names: Vec<Option<String>> = Vec::new();
    for info in infos {
        let Some(info) = info else {
            names.push(None);
            continue;
        };
        let base = match info.kind {
            TrackKind::Video { height, .. } => format!("{height}p"),
            TrackKind::Audio { .. } => "audio".to_owned(),
        };
        let mut name = base.clone();
        let mut n = 2;
        while names
            .iter()
            .any(|existing| existing.as_deref() == Some(name.as_str()))
        {
            name = format!("{base}-{n}");
            n += 1;
        }
        names.push(Some(name));
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::track::tests::{audio_config, video_config};

    fn video_au(frame: u64) -> AccessUnit {
        let t = Duration::from_nanos(frame * 1_000_000_000 / 30);
        AccessUnit {
            pts: t,
            dts: t,
            keyframe: frame.is_multiple_of(60),
            data: Bytes::from_static(&[0, 0, 0, 1, 0x65]),
        }
    }

    fn audio_au(frame: u64) -> AccessUnit {
        let t = Duration::from_nanos(frame * 1024 * 1_000_000_000 / 48_000);
        AccessUnit {
            pts: t,
            dts: t,
            keyframe: true,
            data: Bytes::from_static(&[0x21, 0x10]),
        }
    }

    fn drain(p: &mut Packager) -> Vec<Event> {
        std::iter::from_fn(|| p.poll()).collect()
    }

    /// Pushes `secs` seconds of two video rungs and audio, interleaved by time.
    fn run(p: &mut Packager, secs: u64) {
        let (mut v, mut a) = (0, 0);
        while v < secs * 30 {
            if audio_au(a).dts <= video_au(v).dts {
                p.push(2, audio_au(a));
                a += 1;
            } else {
                p.push(0, video_au(v));
                p.push(1, video_au(v));
                v += 1;
            }
        }
    }

    #[test]
    fn renditions_are_announced_with_names_inits_and_part_targets() {
        let mut p = Packager::new(PackagerConfig::default());
        p.start(
            &[video_config(720), video_config(360), audio_config()],
            SystemTime::UNIX_EPOCH,
        );
        let events = drain(&mut p);
        let starts: Vec<&RenditionStart> = events
            .iter()
            .filter_map(|e| match e {
                Event::Rendition(r) => Some(r),
                _ => None,
            })
            .collect();
        let names: Vec<&str> = starts.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["720p", "360p", "audio"]);
        assert_eq!(starts[0].part_target, Duration::from_millis(200));
        // Audio parts may run one AAC frame past the video's.
        assert_eq!(
            starts[2].part_target,
            Duration::from_nanos(200_000_000 + 21_333_333)
        );
        assert!(
            starts
                .iter()
                .all(|r| r.target_duration == 2 && &r.init[4..8] == b"ftyp")
        );
    }

    #[test]
    fn audio_and_video_segments_line_up() {
        let mut p = Packager::new(PackagerConfig::default());
        p.start(
            &[video_config(720), video_config(360), audio_config()],
            SystemTime::UNIX_EPOCH,
        );
        run(&mut p, 7);
        p.finish();
        let events = drain(&mut p);
        let mut starts: Vec<Vec<(u64, SystemTime)>> = vec![Vec::new(); 3];
        for e in &events {
            if let Event::Part(part) = e
                && part.part == 0
            {
                starts[part.rendition].push((part.msn, part.program_date_time));
            }
        }
        assert_eq!(starts[0], starts[1], "video rungs cut identically");
        assert_eq!(starts[0].len(), 4);
        for ((vm, vt), (am, at)) in starts[0].iter().zip(&starts[2]) {
            assert_eq!(vm, am);
            // Audio starts with the frame holding the video's first instant: at most one AAC
            // frame (21.3 ms) before it, never after; the written dates add 0.5-2.5 ms to
            // that lead (see `written_date_time`). The source's first audio segment starts
            // 1 ms after the video (`segmenter::START_MARGIN`); its written date is not later
            // than the video's, so it too is placed early.
            let lead = vt
                .duration_since(*at)
                .unwrap_or_else(|e| panic!("audio segment {am} starts {:?} after the video", e.duration()));
            let (least, most) = if *am == 0 {
                (Duration::ZERO, Duration::from_millis(1))
            } else {
                (
                    Duration::from_nanos(1),
                    Duration::from_nanos(1024 * 1_000_000_000 / 48_000 + 2_000_000),
                )
            };
            assert!(
                lead >= least && lead <= most,
                "audio segment {am} starts {lead:?} early"
            );
        }
        assert_eq!(events.last(), Some(&Event::Finished));
        let segment_ends = events
            .iter()
            .filter(|e| matches!(e, Event::SegmentEnd { rendition: 2, .. }))
            .count();
        assert_eq!(segment_ends, 4);
    }

    #[test]
    fn part_numbers_rise_and_restart_per_segment() {
        let mut p = Packager::new(PackagerConfig::default());
        p.start(&[video_config(720)], SystemTime::UNIX_EPOCH);
        for f in 0..121 {
            p.push(0, video_au(f));
        }
        let parts: Vec<(u64, u32, bool)> = drain(&mut p)
            .into_iter()
            .filter_map(|e| match e {
                Event::Part(p) => Some((p.msn, p.part, p.independent)),
                _ => None,
            })
            .collect();
        assert_eq!(parts.len(), 20);
        assert_eq!(parts[0], (0, 0, true));
        assert_eq!(parts[9], (0, 9, false));
        assert_eq!(parts[10], (1, 0, true));
    }

    #[test]
    fn a_second_start_closes_segments_and_starts_a_new_generation() {
        let mut p = Packager::new(PackagerConfig::default());
        p.start(&[video_config(720), audio_config()], SystemTime::UNIX_EPOCH);
        for f in 0..45 {
            p.push(0, video_au(f));
        }
        drain(&mut p);
        p.start(
            &[video_config(720)],
            SystemTime::UNIX_EPOCH + Duration::from_secs(100),
        );
        let events = drain(&mut p);
        assert!(events.contains(&Event::SegmentEnd { rendition: 0, msn: 0 }));
        assert!(events.contains(&Event::Inactive { rendition: 1 }));
        assert!(
            events
                .iter()
                .any(|e| matches!(e, Event::Rendition(r) if r.generation == 1 && r.rendition == 0))
        );
        p.push(0, video_au(0));
        p.push(0, video_au(1));
        p.finish();
        let part = drain(&mut p).into_iter().find_map(|e| match e {
            Event::Part(p) => Some(p),
            _ => None,
        });
        let part = part.expect("a part after the restart");
        assert_eq!((part.msn, part.part, part.generation), (1, 0, 1));
        // The new anchor, as video's date-times are written (the next whole millisecond).
        assert_eq!(
            part.program_date_time,
            SystemTime::UNIX_EPOCH + Duration::from_millis(100_001)
        );
    }

    /// Audio running past the video when the source changes is dropped, not cut into a segment
    /// of its own: every rendition keeps the same media sequence numbers across the change.
    #[test]
    fn a_source_change_keeps_audio_and_video_sequence_numbers_together() {
        // `frames` of video (track 0) and audio (track 1) interleaved by time; then, with
        // `audio_past`, audio alone for that long after the video's end.
        let push = |p: &mut Packager, frames: u64, audio_past: Option<Duration>| {
            let (mut v, mut a) = (0, 0);
            while v < frames {
                if audio_au(a).dts <= video_au(v).dts {
                    p.push(1, audio_au(a));
                    a += 1;
                } else {
                    p.push(0, video_au(v));
                    v += 1;
                }
            }
            while audio_past.is_some_and(|past| audio_au(a).dts < video_au(frames).dts + past) {
                p.push(1, audio_au(a));
                a += 1;
            }
        };
        let tracks = [video_config(720), audio_config()];
        let mut p = Packager::new(PackagerConfig::default());
        p.start(&tracks, SystemTime::UNIX_EPOCH);
        // 2.5 s of video (a segment at 2 s, then half of one) and audio 0.3 s past its end.
        push(&mut p, 75, Some(Duration::from_millis(300)));
        p.start(&tracks, SystemTime::UNIX_EPOCH + Duration::from_secs(10));
        push(&mut p, 30, None);
        p.finish();
        let events = drain(&mut p);
        let ends = |rendition: usize| -> Vec<u64> {
            events
                .iter()
                .filter_map(|e| match e {
                    Event::SegmentEnd { rendition: r, msn } if *r == rendition => Some(*msn),
                    _ => None,
                })
                .collect()
        };
        assert_eq!(
            ends(0),
            [0, 1, 2],
            "video: a segment, the cut one, one after the change"
        );
        assert_eq!(ends(1), ends(0), "audio ends the same segments");
    }

    #[test]
    fn written_date_times_place_audio_early_against_video() {
        let at = |nanos: u64| SystemTime::UNIX_EPOCH + Duration::from_nanos(nanos);
        // Video: strictly after its instant; audio: at or before it.
        assert_eq!(written_date_time(at(2_000_000_000), true), at(2_001_000_000));
        assert_eq!(written_date_time(at(2_000_000_000), false), at(2_000_000_000));
        assert_eq!(written_date_time(at(1_984_400_000), true), at(1_985_000_000));
        assert_eq!(written_date_time(at(1_984_400_000), false), at(1_984_000_000));
        assert_eq!(written_date_time(at(1_984_600_000), true), at(1_986_000_000));
        // So the audio-minus-video offset a player reads from two written dates is always
        // smaller than the real one (by 0.5 to 2.5 ms; at most 2 ms for these instants).
        for (video, audio) in [
            (2_000_000_000, 1_984_000_000),
            (2_000_333_333, 1_995_999_999),
            (7, 3),
        ] {
            let real = i128::from(audio) - i128::from(video);
            let written = |t, v| {
                let d = written_date_time(at(t), v)
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .expect("after the epoch");
                i128::try_from(d.as_nanos()).expect("fits")
            };
            let read = written(audio, false) - written(video, true);
            assert!(
                read < real && real - read <= 2_000_000,
                "{video} {audio}: {read} vs {real}"
            );
        }
    }

    #[test]
    fn audio_only_streams_cut_on_their_own() {
        let mut p = Packager::new(PackagerConfig::default());
        p.start(&[audio_config()], SystemTime::UNIX_EPOCH);
        for f in 0..200 {
            p.push(0, audio_au(f));
        }
        let events = drain(&mut p);
        assert!(events.iter().filter(|e| matches!(e, Event::Part(_))).count() >= 20);
        assert!(events.iter().any(|e| matches!(e, Event::SegmentEnd { .. })));
    }
}
