//! Cuts one track's access units into parts and segments.
//!
//! A sample's duration is the next sample's decode time minus its own, so a part is cut when
//! the sample after it arrives: the new sample shows both that the part is long enough and how
//! long its last sample lasts.
//!
//! A *leader* decides its own cuts: parts of about the part target, segments on the first
//! keyframe once the segment is within one part of the segment target (or, lacking keyframes,
//! forced before the segment outgrows the playlist's target duration). A *follower* (the audio
//! of a stream with video) cuts where the leader did: its part starts with the frame that holds
//! the leader's cut, so audio and video parts and segments cover the same spans and audio never
//! starts after the video it goes with (hls.js waits for the main track before loading an audio
//! part that starts later than the video it has; a few milliseconds of rounding the other way
//! left audio parts unloaded and stalled playback). It falls back to cutting on its own when
//! the leader falls too far behind.
//!
//! A source's audio is lined up with its picture at both ends, for players that line the two
//! up by their first segments after a DISCONTINUITY: it starts 1 ms after the leader's first
//! sample (moved by at most half a frame, silent frames before it if it starts later; see
//! `Segmenter::shift`), and before another source its last part ends exactly at the leader's
//! last cut ([`Boundary::Last`], `Segmenter::end_at`), filled with silent frames where the
//! audio stopped short.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;

use crate::fragment::{Sample, write_fragment};
use crate::media::AccessUnit;
use crate::track::{to_duration, to_ticks};

/// A follower's audio starts this long after the leader's first sample (see `Segmenter::shift`).
const START_MARGIN: Duration = Duration::from_millis(1);

/// Most silent frames a follower adds at either end of a source (5.5 s of AAC at 48 kHz),
/// whatever the timescale.
const MAX_SILENT_FRAMES: u64 = 256;

/// How many leader cuts a follower keeps while it waits for its own samples.
const MAX_BOUNDARIES: usize = 256;

/// Cutting rules of one track, in its timescale's ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rules {
    /// Ticks per second.
    pub timescale: u32,
    /// Video: only a keyframe starts a segment, nothing is kept before the first keyframe.
    pub video: bool,
    /// Duration of one sample when timestamps cannot tell (the last one, after a gap).
    pub nominal_sample: u64,
    /// A part ends once it is this long, rounded to the nearest sample.
    pub part_target: u64,
    /// No part is longer than this (the playlist's PART-TARGET).
    pub part_max: u64,
    /// A segment ends on a keyframe once it is about this long.
    pub segment_target: u64,
    /// No segment is longer than this, keyframe or not (TARGETDURATION plus rounding).
    pub segment_max: u64,
    /// A follower cuts on its own once it holds this much media with no leader cut to follow.
    pub lag_limit: u64,
}

/// Where a leader cut, told to its followers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Boundary {
    /// The leader's first sample: earlier follower samples are dropped.
    Start(Duration),
    /// A part ended; the next one starts at this time.
    Part(Duration),
    /// A part and its segment ended; the next segment starts at this time.
    Segment(Duration),
    /// The leader's last part before another source ended at this time. A follower's last
    /// part takes every sample that starts before it and ends exactly there (see
    /// `Segmenter::end_at`), so the audio runs to the end of the picture, neither leaving a
    /// hole that the next source's audio would not cover nor running past it.
    Last(Duration),
}

impl Boundary {
    /// Where the leader's next media starts.
    fn time(self) -> Duration {
        let (Boundary::Start(t) | Boundary::Part(t) | Boundary::Segment(t) | Boundary::Last(t)) = self;
        t
    }
}

/// A part written by the segmenter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CutPart {
    /// The CMAF fragment (moof + mdat).
    pub data: Bytes,
    /// Sum of its sample durations.
    pub duration: Duration,
    /// Starts with a sync sample.
    pub independent: bool,
    /// Decode time of its first sample.
    pub start: Duration,
    /// Where the next part starts.
    pub end: Duration,
    /// This part is the last of its segment.
    pub ends_segment: bool,
}

/// What a segmenter produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cut {
    /// The first sample was accepted at this time (leaders tell their followers).
    Started(Duration),
    /// A part is complete.
    Part(CutPart),
    /// The open segment ends without a new part (a follower had nothing before the leader's
    /// segment boundary).
    SegmentEnd,
}

#[derive(Debug, Clone)]
struct Pending {
    dts: u64,
    time: Duration,
    composition_offset: i32,
    keyframe: bool,
    data: Bytes,
    duration: Option<u64>,
    after_gap: bool,
}

impl Pending {
    /// A silent frame (`data`) at `dts` ticks.
    fn silent(dts: u64, timescale: u32, data: Bytes, duration: Option<u64>) -> Self {
        Self {
            dts,
            time: to_duration(dts, timescale),
            composition_offset: 0,
            keyframe: true,
            data,
            duration,
            after_gap: false,
        }
    }

    /// Whether this follower sample (`frame` long) goes after the leader's cut at `cut`: the
    /// sample holding the cut starts the next part, except after the leader's last part
    /// (`last`), which the sample ends instead.
    fn after_cut(&self, cut: Duration, frame: Duration, last: bool) -> bool {
        if last {
            self.time >= cut
        } else {
            self.time.saturating_add(frame) > cut
        }
    }
}

fn shift_ticks(ticks: u64, shift: Option<i64>) -> u64 {
    ticks.saturating_add_signed(shift.unwrap_or(0))
}

/// The cutting state of one track.
#[derive(Debug)]
pub(crate) struct Segmenter {
    rules: Rules,
    follower: bool,
    pending: VecDeque<Pending>,
    /// Duration of the parts already cut in the open segment.
    segment_ticks: u64,
    segment_has_parts: bool,
    started: bool,
    last_dts: Option<u64>,
    last_duration: Option<u64>,
    sequence: u32,
    boundaries: VecDeque<Boundary>,
    /// Follower: the leader's first sample; the audio starts just after it (see `shift`).
    floor: Option<Duration>,
    /// Follower: ticks added to every sample's times so that the first sample kept, the one
    /// starting nearest to `floor`, starts [`START_MARGIN`] after it (from the first tick at
    /// or after it); set when that sample is known. Samples starting more than half a frame
    /// before `floor` are dropped; audio that starts later is preceded by silent frames
    /// (`silence`) up to it. The audio moves by at most half a frame and the margin (11.7 ms
    /// for AAC at 48 kHz), far below what anyone hears as lip sync.
    ///
    /// Why: at a DISCONTINUITY players line audio and video up by their first segments of
    /// the new source (hls.js sets their starts equal). Audio that really starts earlier is
    /// placed late, so hls.js takes a part it holds whole for unfinished, waits for it and
    /// stalls at the next segment boundary (even 21 µs late did, in a test run); audio that
    /// starts much later leaves a hole in the buffer, which stalls playback until the player
    /// jumps it. The margin keeps it placed early however hls.js rounds.
    shift: Option<i64>,
    /// Follower: one silent frame in the track's codec (`None`: the codec has none here),
    /// used to fill the audio up to the picture at the start and end of a source.
    silence: Option<Bytes>,
    /// End of the last part cut.
    cut_until: Option<Duration>,
    /// Step of the video timestamp grid in ticks (see `video_grid`); 1 for audio: no grid.
    grid: u64,
}

impl Segmenter {
    /// A segmenter whose first fragment gets sequence number `sequence + 1`.
    pub(crate) fn new(rules: Rules, follower: bool, sequence: u32) -> Self {
        let grid = if rules.video {
            whole_micros_step(rules.timescale)
        } else {
            1
        };
        Self {
            grid,
            rules,
            follower,
            pending: VecDeque::new(),
            segment_ticks: 0,
            segment_has_parts: false,
            started: false,
            last_dts: None,
            last_duration: None,
            sequence,
            boundaries: VecDeque::new(),
            floor: None,
            shift: None,
            silence: None,
            cut_until: None,
        }
    }

    /// With `frame` as the silent frame that fills a follower's audio up to the picture.
    pub(crate) fn with_silence(mut self, frame: Option<Bytes>) -> Self {
        self.silence = frame;
        self
    }

    /// The sequence number of the last fragment written.
    pub(crate) fn sequence(&self) -> u32 {
        self.sequence
    }

    /// Video timestamps moved to the nearest whole step of microseconds that the timescale
    /// can express (9 ticks, 100 µs, at 90 kHz); audio's are left alone.
    ///
    /// Browsers keep media times in whole microseconds and round each frame's time and
    /// duration separately, so a segment of 30 fps video on the plain 90 kHz grid ends a
    /// microsecond before the time a player computes from its timestamps. hls.js then
    /// believes the segment incomplete and can stop loading at the boundary. On this grid
    /// every timestamp and duration is a whole number of microseconds and the two agree; a
    /// frame moves by at most 50 µs.
    fn video_grid(&self, ticks: u64) -> u64 {
        ticks.saturating_add(self.grid / 2) / self.grid * self.grid
    }

    /// Follower, once its first sample at or after the leader's start (`floor`) is pending:
    /// silent frames before it while it starts more than half a frame late, then every
    /// pending time moved so the first starts at `floor` (see `shift`).
    fn align_start(&mut self, floor: Duration) {
        let Some(first) = self.pending.front().map(|p| p.dts) else {
            return;
        };
        let ts = self.rules.timescale;
        let frame = self.rules.nominal_sample.max(1);
        let mut target = to_ticks(floor, ts);
        if to_duration(target, ts) < floor {
            target = target.saturating_add(1);
        }
        target = target.saturating_add(to_ticks(START_MARGIN, ts));
        let late_frames = first.saturating_sub(target).saturating_add(frame / 2) / frame;
        if let Some(data) = self.silence.clone()
            && late_frames <= (self.rules.lag_limit / frame).min(MAX_SILENT_FRAMES)
        {
            for i in 1..=late_frames {
                let dts = first.saturating_sub(i.saturating_mul(frame));
                self.pending
                    .push_front(Pending::silent(dts, ts, data.clone(), Some(frame)));
            }
        }
        let start = self.pending.front().map_or(first, |p| p.dts);
        self.shift = Some(i64::try_from(i128::from(target) - i128::from(start)).unwrap_or(0));
        for p in &mut self.pending {
            p.dts = shift_ticks(p.dts, self.shift);
            p.time = to_duration(p.dts, ts);
        }
        self.last_dts = self.pending.back().map(|p| p.dts);
    }

    /// Follower, at the end of a source: silent frames after the last sample until the audio
    /// reaches `end`, where the leader's last part ends (at most `lag_limit` or
    /// [`MAX_SILENT_FRAMES`] of them). Each lasts one nominal frame, as a silent frame does,
    /// whatever the timestamps said before.
    fn fill_to(&mut self, end: Duration) {
        let (Some(data), Some(last)) = (self.silence.clone(), self.last_dts) else {
            return;
        };
        let ts = self.rules.timescale;
        let frame = self.rules.nominal_sample.max(1);
        let frames = (self.rules.lag_limit / frame).min(MAX_SILENT_FRAMES);
        for n in 1..=frames {
            let Some(dts) = n.checked_mul(frame).and_then(|d| last.checked_add(d)) else {
                break;
            };
            if to_duration(dts, ts) >= end {
                break;
            }
            if let Some(back) = self.pending.back_mut() {
                back.duration = Some(dts - back.dts);
            }
            self.pending
                .push_back(Pending::silent(dts, ts, data.clone(), None));
            self.last_dts = Some(dts);
        }
    }

    /// Follower, for its last part before another source (the first `n` pending samples):
    /// durations changed so that the part ends at the leader's last cut `end`, moved back to
    /// the last instant that is a whole number of microseconds (125 µs steps at 48 kHz), not
    /// up to a frame past it. A last sample that would keep less than half a frame is dropped
    /// and the one before it lasts up to `end` instead. Returns how many samples the part
    /// keeps; the samples dropped leave `pending`.
    ///
    /// Why: players lay the next source's first audio segment right after this one by the
    /// playlist's durations, and its media right after the picture's. An audio source that
    /// ran a frame past the picture was listed up to 21 ms later than its media landed, so
    /// hls.js took a part it held whole for unfinished and stalled at the DISCONTINUITY. An
    /// end that is not a whole microsecond (browsers keep buffered times in microseconds)
    /// leaves the buffer a fraction of a microsecond short of where hls.js computes the
    /// segment to end: it then stays on that segment, whose parts are all loaded, and stalls
    /// the same way. A few milliseconds of the last frame go unheard.
    fn end_at(&mut self, n: usize, end: Duration) -> usize {
        let ts = self.rules.timescale;
        let step = whole_micros_step(ts);
        let floor = u64::try_from(end.as_nanos() * u128::from(ts) / 1_000_000_000).unwrap_or(u64::MAX);
        let end = floor / step * step;
        let half = self.rules.nominal_sample.max(1) / 2;
        let had = n.min(self.pending.len());
        let mut n = had;
        while n > 1 && self.pending[n - 1].dts.saturating_add(half) > end {
            n -= 1;
        }
        self.pending.drain(n..had);
        if let Some(last) = n.checked_sub(1).and_then(|i| self.pending.get_mut(i))
            && end > last.dts
        {
            last.duration = Some(end - last.dts);
        }
        n
    }

    fn shifted(&self, ticks: u64) -> u64 {
        shift_ticks(ticks, self.shift)
    }

    fn estimate(&self) -> u64 {
        self.last_duration.unwrap_or(self.rules.nominal_sample).max(1)
    }

    /// One sample's duration, estimated.
    fn frame_estimate(&self) -> Duration {
        to_duration(self.estimate(), self.rules.timescale)
    }

    /// Takes one access unit (decode order). Access units that cannot be packaged (empty,
    /// decode time not increasing, video before the first keyframe) are dropped.
    pub(crate) fn push(&mut self, au: AccessUnit) -> Vec<Cut> {
        let mut out = Vec::new();
        if au.data.is_empty() {
            return out;
        }
        if self.shift.is_none()
            && self
                .floor
                .is_some_and(|floor| au.dts.saturating_add(self.frame_estimate() / 2) <= floor)
        {
            return out;
        }
        let dts = self.shifted(self.video_grid(to_ticks(au.dts, self.rules.timescale)));
        let time = match self.shift {
            Some(_) => to_duration(dts, self.rules.timescale),
            None => au.dts,
        };
        if self.last_dts.is_some_and(|last| dts <= last) {
            return out;
        }
        if !self.started {
            if self.rules.video && !au.keyframe {
                return out;
            }
            self.started = true;
            out.push(Cut::Started(au.dts));
        }
        let pts = self.shifted(self.video_grid(to_ticks(au.pts, self.rules.timescale)));
        let offset = i128::from(pts) - i128::from(dts);
        let composition_offset = i32::try_from(offset.max(0)).unwrap_or(i32::MAX);
        let mut gap = false;
        if let Some(last) = self.pending.back() {
            let diff = dts - last.dts;
            gap = diff > self.estimate().max(self.rules.part_target).saturating_mul(4);
            let duration = if gap { self.estimate() } else { diff };
            if !gap {
                self.last_duration = Some(diff);
            }
            if let Some(last) = self.pending.back_mut() {
                last.duration = Some(duration);
            }
        }
        self.last_dts = Some(dts);
        let sample = Pending {
            dts,
            time,
            composition_offset,
            keyframe: au.keyframe || !self.rules.video,
            data: au.data,
            duration: None,
            after_gap: gap,
        };
        if self.follower {
            self.pending.push_back(sample);
            if let (Some(floor), None) = (self.floor, self.shift) {
                self.align_start(floor);
            }
            self.drain_follower(&mut out);
            return out;
        }
        if !self.pending.is_empty() {
            let est = self.estimate();
            let part_ticks = self.known_ticks(self.pending.len());
            let segment_ticks = self.segment_ticks.saturating_add(part_ticks);
            let slack = if self.rules.video {
                self.rules.part_target
            } else {
                est / 2
            };
            let ends_segment = (sample.keyframe
                && segment_ticks.saturating_add(slack) >= self.rules.segment_target)
                || segment_ticks.saturating_add(est) > self.rules.segment_max;
            let ends_part = ends_segment
                || gap
                || part_ticks.saturating_add(est / 2) >= self.rules.part_target
                // Gridded video spans and the estimate are each off by up to one step.
                || part_ticks.saturating_add(est) > self.rules.part_max + 2 * (self.grid - 1);
            if ends_part {
                let n = self.pending.len();
                out.extend(self.cut(n, Some(sample.time), ends_segment));
            }
        }
        self.pending.push_back(sample);
        out
    }

    /// Follower: the leader cut here.
    pub(crate) fn boundary(&mut self, boundary: Boundary) -> Vec<Cut> {
        let mut out = Vec::new();
        if !self.follower {
            return out;
        }
        if let Boundary::Start(time) = boundary {
            if self.floor.is_none() && self.cut_until.is_none() {
                self.floor = Some(time);
                let half = self.frame_estimate() / 2;
                while self
                    .pending
                    .front()
                    .is_some_and(|p| p.time.saturating_add(half) <= time)
                {
                    self.pending.pop_front();
                }
                self.align_start(time);
            }
        } else {
            if self.boundaries.len() >= MAX_BOUNDARIES {
                self.boundaries.pop_front();
            }
            self.boundaries.push_back(boundary);
        }
        self.drain_follower(&mut out);
        out
    }

    /// The source ends or changes (`source_change`): everything pending becomes parts, the
    /// open segment ends. Before a source change a follower drops what lies past the leader's
    /// last cut.
    pub(crate) fn flush(&mut self, source_change: bool) -> Vec<Cut> {
        let mut out = Vec::new();
        if self.follower {
            self.drain_follower(&mut out);
            // Before another source, the leader has ended where its last cut is: audio past
            // that has no picture, and cut here it would open a segment only this rendition
            // has, putting its media sequence numbers one ahead of the leader's from then on.
            // At the end of the stream it is kept (a short last segment). When the leader's
            // last part is still waiting here (no sample past it came), the samples that
            // start before its end go into this last part, filled with silence up to it.
            let leader_end = self
                .boundaries
                .back()
                .map(|&b| (b.time(), matches!(b, Boundary::Last(_))))
                .or(self.cut_until.map(|t| (t, false)))
                .filter(|_| source_change);
            if let Some((end, last)) = leader_end {
                let frame = self.frame_estimate();
                let keep = self
                    .pending
                    .iter()
                    .position(|p| p.after_cut(end, frame, last))
                    .unwrap_or(self.pending.len());
                self.pending.truncate(keep);
                if last {
                    self.fill_to(end);
                    self.end_at(self.pending.len(), end);
                }
            }
            while !self.pending.is_empty() {
                let n = self.own_part_len().min(self.pending.len());
                let end = self.pending.get(n).map(|p| p.time);
                let ends_segment = n == self.pending.len();
                out.extend(self.cut(n, end, ends_segment));
            }
        } else if !self.pending.is_empty() {
            let n = self.pending.len();
            out.extend(self.cut(n, None, true));
        }
        if self.segment_has_parts {
            self.segment_has_parts = false;
            self.segment_ticks = 0;
            out.push(Cut::SegmentEnd);
        }
        out
    }

    /// Sum of the known durations of the first `n` pending samples.
    fn known_ticks(&self, n: usize) -> u64 {
        self.pending
            .iter()
            .take(n)
            .fold(0u64, |sum, p| sum.saturating_add(p.duration.unwrap_or(0)))
    }

    /// How many pending samples a part cut by this track's own rules takes (at least one).
    fn own_part_len(&self) -> usize {
        let est = self.estimate();
        let mut ticks = 0u64;
        for (i, p) in self.pending.iter().enumerate() {
            ticks = ticks.saturating_add(p.duration.unwrap_or(est));
            if ticks.saturating_add(est / 2) >= self.rules.part_target
                || ticks.saturating_add(est) > self.rules.part_max
            {
                return i + 1;
            }
        }
        self.pending.len()
    }

    fn drain_follower(&mut self, out: &mut Vec<Cut>) {
        loop {
            while let Some(b) = self.boundaries.front() {
                if self.cut_until.is_some_and(|until| b.time() <= until) {
                    self.boundaries.pop_front();
                } else {
                    break;
                }
            }
            let frame = self.frame_estimate();
            let gap_at = self
                .pending
                .iter()
                .skip(1)
                .position(|p| p.after_gap)
                .map(|i| i + 1);
            let Some(&boundary) = self.boundaries.front() else {
                break;
            };
            let (time, segment, last) = match boundary {
                Boundary::Part(t) => (t, false, false),
                Boundary::Segment(t) => (t, true, false),
                Boundary::Last(t) => (t, true, true),
                Boundary::Start(_) => {
                    self.boundaries.pop_front();
                    continue;
                }
            };
            let split = self.pending.iter().position(|p| p.after_cut(time, frame, last));
            match (split, gap_at) {
                (split, Some(gap)) if split.is_none_or(|s| gap < s) => {
                    let end = self.pending.get(gap).map(|p| p.time);
                    if let Some(p) = self.pending.get_mut(gap) {
                        p.after_gap = false;
                    }
                    out.extend(self.cut(gap, end, false));
                }
                (None, _) => break,
                (Some(0), _) => {
                    self.boundaries.pop_front();
                    self.cut_until = Some(time);
                    if segment && self.segment_has_parts {
                        self.segment_has_parts = false;
                        self.segment_ticks = 0;
                        out.push(Cut::SegmentEnd);
                    }
                }
                (Some(n), _) => {
                    self.boundaries.pop_front();
                    // The last part ends where its samples do (`end_at`).
                    let (n, end) = if last {
                        (self.end_at(n, time), None)
                    } else {
                        (n, Some(time))
                    };
                    out.extend(self.cut(n, end, segment));
                    self.cut_until = Some(time);
                }
            }
        }
        // The leader is silent or far behind: cut on our own rather than hold media forever.
        while self.boundaries.is_empty() && self.pending.len() > 1 {
            let (Some(first), Some(last)) = (self.pending.front(), self.pending.back()) else {
                break;
            };
            let span = to_ticks(last.time.saturating_sub(first.time), self.rules.timescale);
            if span <= self.rules.lag_limit {
                break;
            }
            let n = self.own_part_len().min(self.pending.len() - 1);
            let part_ticks = self.known_ticks(n);
            let ends_segment = self
                .segment_ticks
                .saturating_add(part_ticks)
                .saturating_add(self.estimate() / 2)
                >= self.rules.segment_target;
            let end = self.pending.get(n).map(|p| p.time);
            out.extend(self.cut(n, end, ends_segment));
        }
    }

    /// Cuts the first `n` pending samples into a part. `end` is where the next part starts
    /// (derived from the last duration when unknown).
    fn cut(&mut self, n: usize, end: Option<Duration>, ends_segment: bool) -> Option<Cut> {
        let est = self.estimate();
        let taken: Vec<Pending> = self.pending.drain(..n.min(self.pending.len())).collect();
        let first = taken.first()?;
        let (start, base) = (first.time, first.dts);
        let independent = first.keyframe;
        let samples: Vec<Sample> = taken
            .iter()
            .map(|p| Sample {
                duration: u32::try_from(p.duration.unwrap_or(est)).unwrap_or(u32::MAX),
                composition_offset: p.composition_offset,
                keyframe: p.keyframe,
                data: p.data.clone(),
            })
            .collect();
        let ticks = samples
            .iter()
            .fold(0u64, |sum, s| sum.saturating_add(u64::from(s.duration)));
        let duration = to_duration(ticks, self.rules.timescale);
        let end = end.unwrap_or_else(|| start.saturating_add(duration));
        self.cut_until = Some(self.cut_until.map_or(end, |until| until.max(end)));
        let sequence = self.sequence.saturating_add(1);
        match write_fragment(sequence, base, &samples) {
            Ok(data) => {
                self.sequence = sequence;
                if ends_segment {
                    self.segment_ticks = 0;
                    self.segment_has_parts = false;
                } else {
                    self.segment_ticks = self.segment_ticks.saturating_add(ticks);
                    self.segment_has_parts = true;
                }
                Some(Cut::Part(CutPart {
                    data,
                    duration,
                    independent,
                    start,
                    end,
                    ends_segment,
                }))
            }
            Err(error) => {
                tracing::warn!(%error, "dropping a part that cannot be written");
                None
            }
        }
    }
}

/// The smallest number of ticks of `timescale` that is a whole number of microseconds (9 at
/// 90 kHz: 100 µs; 6 at 48 kHz: 125 µs).
fn whole_micros_step(timescale: u32) -> u64 {
    u64::from(timescale / gcd(timescale, 1_000_000)).max(1)
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a.max(1) } else { gcd(b, a % b) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shiguredo_mp4::{Decode, boxes::MoofBox};

    fn video_rules() -> Rules {
        Rules {
            timescale: 90_000,
            video: true,
            nominal_sample: 3000,
            part_target: 18_000,
            part_max: 18_000,
            segment_target: 180_000,
            segment_max: 216_000,
            lag_limit: 360_000,
        }
    }

    fn audio_rules() -> Rules {
        Rules {
            timescale: 48_000,
            video: false,
            nominal_sample: 1024,
            part_target: 9600,
            part_max: 10_624,
            segment_target: 96_000,
            segment_max: 115_200,
            lag_limit: 192_000,
        }
    }

    fn au(ms_times_3: u64, keyframe: bool) -> AccessUnit {
        // Frame n of a 30 fps stream.
        let t = Duration::from_nanos(ms_times_3 * 1_000_000_000 / 30);
        AccessUnit {
            pts: t,
            dts: t,
            keyframe,
            data: Bytes::from_static(&[0, 0, 0, 1, 0x65]),
        }
    }

    fn parts(cuts: &[Cut]) -> Vec<&CutPart> {
        cuts.iter()
            .filter_map(|c| match c {
                Cut::Part(p) => Some(p),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn video_parts_of_six_frames_and_segments_on_two_second_keyframes() {
        let mut s = Segmenter::new(video_rules(), false, 0);
        let mut cuts = Vec::new();
        for n in 0..181 {
            cuts.extend(s.push(au(n, n.is_multiple_of(60))));
        }
        let parts = parts(&cuts);
        // 180 frames -> 30 parts of 6 frames; segments end after parts 10, 20, 30.
        assert_eq!(parts.len(), 30);
        assert!(parts.iter().all(|p| p.duration == Duration::from_millis(200)));
        let ends: Vec<usize> = parts
            .iter()
            .enumerate()
            .filter(|(_, p)| p.ends_segment)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(ends, vec![9, 19, 29]);
        let independent: Vec<usize> = parts
            .iter()
            .enumerate()
            .filter(|(_, p)| p.independent)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(independent, vec![0, 10, 20]);
        assert_eq!(s.sequence(), 30);
        assert_eq!(cuts[0], Cut::Started(Duration::ZERO));
    }

    #[test]
    fn video_waits_for_a_keyframe_and_forces_cuts_without_keyframes() {
        let mut s = Segmenter::new(video_rules(), false, 0);
        assert!(s.push(au(0, false)).is_empty());
        let mut cuts = Vec::new();
        for n in 1..200 {
            cuts.extend(s.push(au(n, n == 1)));
        }
        let parts = parts(&cuts);
        // No keyframe after the first: segments are forced before 2.4 s.
        let mut seg = Duration::ZERO;
        for p in &parts {
            seg += p.duration;
            assert!(seg <= Duration::from_millis(2400), "segment too long: {seg:?}");
            if p.ends_segment {
                seg = Duration::ZERO;
            }
        }
        assert!(parts.iter().any(|p| p.ends_segment));
    }

    #[test]
    fn non_increasing_and_empty_access_units_are_dropped() {
        let mut s = Segmenter::new(video_rules(), false, 0);
        s.push(au(0, true));
        assert!(s.push(au(0, true)).is_empty());
        let empty = AccessUnit {
            data: Bytes::new(),
            ..au(5, true)
        };
        assert!(s.push(empty).is_empty());
        let flushed = s.flush(false);
        let parts = parts(&flushed);
        assert_eq!(parts.len(), 1);
        // The last sample's duration is the nominal one.
        assert_eq!(parts[0].duration, Duration::from_nanos(33_333_333));
        assert_eq!(flushed.last(), Some(&Cut::Part(parts[0].clone())));
        assert!(parts[0].ends_segment);
    }

    #[test]
    fn a_timestamp_gap_closes_the_part() {
        let mut s = Segmenter::new(video_rules(), false, 0);
        let mut cuts = s.push(au(0, true));
        cuts.extend(s.push(au(1, false)));
        cuts.extend(s.push(au(300, false)));
        let parts = parts(&cuts);
        assert_eq!(parts.len(), 1);
        // Two frames of 33.3 ms: frame 1 sits at 33.3 ms on the 100 µs video grid.
        assert_eq!(parts[0].duration, Duration::from_micros(66_600));
    }

    #[test]
    fn video_times_are_whole_microseconds_and_parts_keep_six_frames() {
        // 30 fps frames starting 14.7222 ms after the anchor (1,325 ticks), as a live
        // source does: off the 100 µs grid until the segmenter moves them.
        let mut s = Segmenter::new(video_rules(), false, 0);
        let mut cuts = Vec::new();
        for n in 0..61 {
            let t = Duration::from_nanos(14_722_222 + n * 1_000_000_000 / 30);
            cuts.extend(s.push(AccessUnit {
                pts: t,
                dts: t,
                keyframe: n % 60 == 0,
                data: Bytes::from_static(&[0, 0, 0, 1, 0x65]),
            }));
        }
        let parts = parts(&cuts);
        assert_eq!(parts.len(), 10, "six frames a part, as on the plain grid");
        for part in &parts {
            assert_eq!(part.duration, Duration::from_millis(200));
            let (moof, _) = MoofBox::decode(&part.data).expect("moof parses");
            let traf = &moof.traf_boxes[0];
            let tfdt = traf.tfdt_box.as_ref().expect("tfdt").base_media_decode_time;
            assert_eq!(tfdt % 9, 0, "decode time {tfdt} is whole 100 µs");
            let durations: Vec<u32> = traf.trun_boxes[0]
                .samples
                .iter()
                .filter_map(|x| x.duration)
                .collect();
            assert_eq!(durations.len(), 6);
            assert!(durations.iter().all(|d| d % 9 == 0), "{durations:?}");
            assert_eq!(durations.iter().sum::<u32>(), 18_000);
        }
    }

    fn audio_au(frame: u64) -> AccessUnit {
        let t = Duration::from_nanos(frame * 1024 * 1_000_000_000 / 48_000);
        AccessUnit {
            pts: t,
            dts: t,
            keyframe: true,
            data: Bytes::from_static(&[1, 2, 3]),
        }
    }

    #[test]
    fn audio_follows_the_leaders_cuts() {
        let mut s = Segmenter::new(audio_rules(), true, 0);
        let mut cuts = s.boundary(Boundary::Start(Duration::from_millis(100)));
        for f in 0..40 {
            cuts.extend(s.push(audio_au(f)));
        }
        cuts.extend(s.boundary(Boundary::Part(Duration::from_millis(300))));
        cuts.extend(s.boundary(Boundary::Segment(Duration::from_millis(500))));
        let parts = parts(&cuts);
        assert_eq!(parts.len(), 2);
        // Frame 5 (106.7 ms) starts nearest to the leader's 100 ms: it is the first, moved to
        // 101 ms (the margin), and every later frame with it. Shifted, frame 14 (293-314.3 ms)
        // holds 300 ms and starts the second part.
        assert_eq!(parts[0].start, Duration::from_millis(101));
        assert_eq!(parts[0].end, Duration::from_millis(300));
        assert_eq!(parts[0].duration, to_duration(9 * 1024, 48_000));
        assert!(!parts[0].ends_segment);
        assert!(parts[1].ends_segment);
        assert!(parts.iter().all(|p| p.independent));
    }

    #[test]
    fn a_sources_audio_starts_exactly_with_its_picture() {
        // Audio that arrives before the leader has started is held, then trimmed and moved.
        for leader_start in [
            audio_au(7).dts + Duration::from_micros(1), // frame 7 moves 1 ms later
            audio_au(7).dts + Duration::from_millis(11), // frame 8 moves 9.3 ms earlier
        ] {
            let mut s = Segmenter::new(audio_rules(), true, 0);
            let mut cuts = Vec::new();
            for f in 0..10 {
                cuts.extend(s.push(audio_au(f)));
            }
            cuts.extend(s.boundary(Boundary::Start(leader_start)));
            for f in 10..40 {
                cuts.extend(s.push(audio_au(f)));
            }
            cuts.extend(s.boundary(Boundary::Segment(Duration::from_millis(500))));
            let parts = parts(&cuts);
            // The margin after the leader's start (from the first tick at or after it).
            let start = parts[0].start;
            let from = leader_start + START_MARGIN;
            assert!(
                start >= from && start - from < to_duration(1, 48_000),
                "{start:?} vs {leader_start:?}"
            );
            let (moof, _) = MoofBox::decode(&parts[0].data).expect("moof parses");
            let tfdt = moof.traf_boxes[0]
                .tfdt_box
                .as_ref()
                .expect("tfdt")
                .base_media_decode_time;
            assert_eq!(to_duration(tfdt, 48_000), start, "the media moved with the times");
        }
    }

    #[test]
    fn before_another_source_the_audio_ends_exactly_with_the_picture() {
        // Every frame starts 1 ms late (the start margin): frame 23 covers 491.7-513 ms.
        let us = Duration::from_micros;
        for (cut, end, last_frame) in [
            // Inside frame 23: it is the last, cut short at the leader's end.
            (us(505_000), us(505_000), 23),
            // Not a whole 125 µs (six ticks at 48 kHz): the audio ends at the one before.
            (us(505_100), us(505_000), 23),
            (us(505_124), us(505_000), 23),
            // Frame 23 would keep less than half a frame (8.3 ms, 0.8 ms): dropped, frame 22
            // lasts to the end instead.
            (us(500_000), us(500_000), 22),
            (us(492_500), us(492_500), 22),
        ] {
            // Followed while later frames are there (30 pushed), and still waiting at the
            // flush (24).
            for pushed in [30, 24] {
                let mut s = Segmenter::new(audio_rules(), true, 0);
                let mut cuts = s.boundary(Boundary::Start(Duration::ZERO));
                for f in 0..pushed {
                    cuts.extend(s.push(audio_au(f)));
                }
                cuts.extend(s.boundary(Boundary::Last(cut)));
                cuts.extend(s.flush(true));
                let followed = parts(&cuts);
                let last = followed.last().expect("a part");
                assert!(last.ends_segment);
                assert_eq!(last.start + last.duration, end, "cut at {cut:?}, {pushed} pushed");
                assert_eq!(last.end, end, "cut at {cut:?}, {pushed} pushed");
                let (moof, _) = MoofBox::decode(&last.data).expect("moof parses");
                let traf = &moof.traf_boxes[0];
                let tfdt = traf.tfdt_box.as_ref().expect("tfdt").base_media_decode_time;
                let samples = &traf.trun_boxes[0].samples;
                let before_last: u64 = samples[..samples.len() - 1]
                    .iter()
                    .map(|x| u64::from(x.duration.unwrap_or(0)))
                    .sum();
                assert_eq!(
                    to_duration(tfdt + before_last, 48_000),
                    audio_au(last_frame).dts + START_MARGIN,
                    "frame {last_frame} is the last (cut at {cut:?}, {pushed} pushed)"
                );
                assert_eq!(
                    cuts.iter().filter(|c| matches!(c, Cut::SegmentEnd)).count(),
                    0,
                    "no segment of its own after the leader's last ({pushed} pushed)"
                );
            }
        }
    }

    #[test]
    fn audio_cuts_on_its_own_when_the_leader_is_silent() {
        let mut s = Segmenter::new(audio_rules(), true, 0);
        let mut cuts = Vec::new();
        for f in 0..400 {
            cuts.extend(s.push(audio_au(f)));
        }
        let parts = parts(&cuts);
        assert!(!parts.is_empty());
        assert!(
            parts
                .iter()
                .all(|p| p.duration <= Duration::from_nanos(10_624 * 1_000_000_000 / 48_000))
        );
        // Held back no more than the lag limit (4 s) plus a part.
        let last_end = parts.last().map(|p| p.end).unwrap_or_default();
        assert!(audio_au(399).dts - last_end <= Duration::from_millis(4300));
    }
}
