//! Keyframes at the same instants on every rung of a ladder: a decision taken once per frame
//! before the tee, delivered to every encoder as a force-key-unit event right before the frame.
//! The instants are a fixed interval ([`attach`]), or the source's own keyframes when its
//! H.264 is copied as the top rung ([`follow`]).

use std::collections::VecDeque;
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_video as gst_video;

/// Decides which frames start a GOP: the first frame, then the first frame at or after each
/// multiple of the interval after it, in running time. The same decision reaches every rung
/// because it is taken once, before the tee.
pub(crate) struct KeyframeSchedule {
    interval_ns: u64,
    /// Running time of the first frame; `u64::MAX` before it.
    origin: AtomicU64,
    /// Index of the interval the last keyframe fell in.
    last_slot: AtomicU64,
}

impl KeyframeSchedule {
    pub(crate) fn new(interval: std::time::Duration) -> Self {
        KeyframeSchedule {
            interval_ns: interval.as_nanos().max(1) as u64,
            origin: AtomicU64::new(u64::MAX),
            last_slot: AtomicU64::new(0),
        }
    }

    /// `Some(n)` when the frame at `running_time_ns` must be the keyframe starting GOP `n`.
    pub(crate) fn gop_start(&self, running_time_ns: u64) -> Option<u64> {
        // One streaming thread calls this; the atomics only make the probe closure Sync.
        let origin = self.origin.load(Ordering::Relaxed);
        if origin == u64::MAX {
            self.origin.store(running_time_ns, Ordering::Relaxed);
            return Some(0);
        }
        let slot = running_time_ns.saturating_sub(origin) / self.interval_ns;
        if slot <= self.last_slot.load(Ordering::Relaxed) {
            return None;
        }
        self.last_slot.store(slot, Ordering::Relaxed);
        Some(slot)
    }
}

/// Ask every encoder downstream of `pad` to make the frame about to be pushed (at `pts`) the
/// keyframe starting GOP `gop`.
pub(crate) fn force_key_unit(pad: &gst::Pad, pts: gst::ClockTime, gop: u64) {
    // "As soon as possible" (no running time) and sent right before the frame, so every
    // encoder makes exactly this frame a keyframe. Not the frame's running time: the 1.22
    // GstVideoEncoder compares it with frame times that x264enc has offset by 1000 hours (its
    // min-pts for negative DTS) and ignores every request after the first.
    let event = gst_video::DownstreamForceKeyUnitEvent::builder()
        .timestamp(pts)
        .all_headers(true)
        .count(gop as u32)
        .build();
    if !pad.push_event(event) {
        tracing::warn!(gop, "force-key-unit event not delivered");
    }
}

/// A probe on `pad` (raw frames, before the ladder's tee) that makes the first frame and the
/// first frame of every `interval` of running time after it a keyframe on every rung.
pub(crate) fn attach(pad: &gst::Pad, interval: std::time::Duration) {
    let schedule = KeyframeSchedule::new(interval);
    pad.add_probe(gst::PadProbeType::BUFFER, move |pad, probe| {
        let Some(buffer) = probe.buffer() else {
            return gst::PadProbeReturn::Ok;
        };
        let Some(pts) = buffer.pts() else {
            return gst::PadProbeReturn::Ok;
        };
        if let Some(gop) = running_time(pad, pts).and_then(|r| schedule.gop_start(r)) {
            force_key_unit(pad, pts, gop);
        }
        gst::PadProbeReturn::Ok
    });
}

/// The source's keyframes, noted (in running time) as they pass on their way to the copy and
/// the decoder, and handed out to the decoded frames they became. They are also checked
/// against the packager's segment window: a segment that could not end on one of them (the
/// next keyframe came after the longest segment) makes the copy a misfit. An interval with
/// packets lost in it is not judged: a keyframe the tap dropped (a busy machine) is not the
/// source's cadence.
#[derive(Debug)]
pub(crate) struct SourceKeyframes {
    state: Mutex<Noted>,
    gops: AtomicU64,
    /// Where a keyframe ends a segment, from its start (ns).
    window: (u64, u64),
    misfit: AtomicBool,
}

#[derive(Debug, Default)]
struct Noted {
    /// Keyframes not yet given to a decoded frame.
    pending: VecDeque<u64>,
    /// Where the segment being cut (as the packager cuts the copy) started.
    segment_start: Option<u64>,
    /// When packets were last lost (running time of the first one after the gap).
    lost_at: Option<u64>,
}

/// Keyframes noted and not yet decoded, at most (a decoder that dropped frames leaves some).
const MAX_PENDING: usize = 64;

impl SourceKeyframes {
    /// Keyframes for segments that end on a keyframe `window` after their start.
    pub(crate) fn new(window: &RangeInclusive<Duration>) -> Self {
        SourceKeyframes {
            state: Mutex::default(),
            gops: AtomicU64::new(0),
            window: (window.start().as_nanos() as u64, window.end().as_nanos() as u64),
            misfit: AtomicBool::new(false),
        }
    }

    fn noted(&self) -> std::sync::MutexGuard<'_, Noted> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A source keyframe at `running_time_ns`.
    pub(crate) fn note(&self, running_time_ns: u64) {
        let mut noted = self.noted();
        if noted.pending.len() == MAX_PENDING {
            noted.pending.pop_front();
        }
        noted.pending.push_back(running_time_ns);
        let (earliest, latest) = self.window;
        match noted.segment_start {
            None => noted.segment_start = Some(running_time_ns),
            Some(start) => {
                let since = running_time_ns.saturating_sub(start);
                let lossy = noted.lost_at.is_some_and(|l| l > start && l <= running_time_ns);
                if since >= earliest || lossy {
                    if since > latest && !lossy {
                        self.misfit.store(true, Ordering::Relaxed);
                    }
                    noted.segment_start = Some(running_time_ns);
                }
            }
        }
    }

    /// Packets were lost before the one at `running_time_ns`: the interval around it says
    /// nothing about where the source puts its keyframes.
    pub(crate) fn lost(&self, running_time_ns: u64) {
        self.noted().lost_at = Some(running_time_ns);
    }

    /// A segment could not end on a keyframe: the copy's segments would start without one.
    pub(crate) fn misfit(&self) -> bool {
        self.misfit.load(Ordering::Relaxed)
    }

    /// `Some(n)` when the decoded frame at `running_time_ns` is the first at or after a noted
    /// keyframe (within `slack_ns`: a frame rate change moves frames by less than a frame):
    /// it starts GOP `n` on every rung.
    pub(crate) fn due(&self, running_time_ns: u64, slack_ns: u64) -> Option<u64> {
        let mut noted = self.noted();
        let mut due = false;
        while noted
            .pending
            .front()
            .is_some_and(|&k| k <= running_time_ns.saturating_add(slack_ns))
        {
            noted.pending.pop_front();
            due = true;
        }
        due.then(|| self.gops.fetch_add(1, Ordering::Relaxed))
    }
}

/// The running time of a buffer at `pts` on `pad`.
fn running_time(pad: &gst::Pad, pts: gst::ClockTime) -> Option<u64> {
    pad.sticky_event::<gst::event::Segment>(0)
        .and_then(|s| s.segment().downcast_ref::<gst::ClockTime>()?.to_running_time(pts))
        .map(gst::ClockTime::nseconds)
}

/// A probe on `rtp` (the RTP going into the depayloader, in the same streaming thread as
/// `source`) that notes lost packets, one on `source` (parsed H.264, before it splits into the
/// copy and the decoder) that notes its keyframes, and one on `frames` (raw, before the ladder's tee, at `frame_rate`;
/// none when nothing is decoded) that makes the decoded frames keyframes there. `window` is
/// the packager's (see `hls::StreamConfig::keyframe_window`).
pub(crate) fn follow(
    rtp: &gst::Pad,
    source: &gst::Pad,
    frames: Option<&gst::Pad>,
    frame_rate: u32,
    window: &RangeInclusive<Duration>,
) -> Arc<SourceKeyframes> {
    let keyframes = Arc::new(SourceKeyframes::new(window));
    let gaps = keyframes.clone();
    // The sequence number the next packet should have; `u32::MAX` before the first.
    let next_seq = AtomicU32::new(u32::MAX);
    rtp.add_probe(gst::PadProbeType::BUFFER, move |pad, probe| {
        let Some(buffer) = probe.buffer() else {
            return gst::PadProbeReturn::Ok;
        };
        let seq = buffer
            .map_readable()
            .ok()
            .and_then(|m| m.get(2..4).map(|b| u16::from_be_bytes([b[0], b[1]])));
        if let Some(seq) = seq {
            let expected = next_seq.swap(u32::from(seq.wrapping_add(1)), Ordering::Relaxed);
            if expected != u32::MAX
                && expected != u32::from(seq)
                && let Some(running) = buffer.pts().and_then(|pts| running_time(pad, pts))
            {
                gaps.lost(running);
            }
        }
        gst::PadProbeReturn::Ok
    });
    let noted = keyframes.clone();
    source.add_probe(gst::PadProbeType::BUFFER, move |pad, probe| {
        if let Some(buffer) = probe.buffer()
            && !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT)
            && let Some(running) = buffer.pts().and_then(|pts| running_time(pad, pts))
        {
            noted.note(running);
        }
        gst::PadProbeReturn::Ok
    });
    if let Some(frames) = frames {
        let due = keyframes.clone();
        let slack = 500_000_000 / u64::from(frame_rate.max(1));
        frames.add_probe(gst::PadProbeType::BUFFER, move |pad, probe| {
            let Some(pts) = probe.buffer().and_then(|b| b.pts()) else {
                return gst::PadProbeReturn::Ok;
            };
            if let Some(gop) = running_time(pad, pts).and_then(|r| due.due(r, slack)) {
                force_key_unit(pad, pts, gop);
            }
            gst::PadProbeReturn::Ok
        });
    }
    keyframes
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn keyframes_every_interval_from_the_first_frame() {
        for first in [0, 10_000_000, 40_000_000] {
            let s = KeyframeSchedule::new(Duration::from_secs(2));
            let frame = |n: u64| first + n * 1_000_000_000 / 30;
            let gops: Vec<(u64, u64)> = (0..200)
                .filter_map(|n| s.gop_start(frame(n)).map(|g| (n, g)))
                .collect();
            assert_eq!(
                gops,
                vec![(0, 0), (60, 1), (120, 2), (180, 3)],
                "first frame at {first} ns"
            );
        }
    }

    #[test]
    fn a_late_frame_starts_the_gop_it_falls_in() {
        let s = KeyframeSchedule::new(Duration::from_secs(2));
        assert_eq!(s.gop_start(5_000_000), Some(0));
        assert_eq!(s.gop_start(1_000_000_000), None);
        assert_eq!(
            s.gop_start(4_100_000_000),
            Some(2),
            "a stall over a whole interval skips it"
        );
        assert_eq!(s.gop_start(4_200_000_000), None);
    }

    #[test]
    fn source_keyframes_land_on_the_first_frame_at_or_after_them() {
        let k = SourceKeyframes::new(&WINDOW);
        let frame = 33_333_333;
        let slack = frame / 2;
        k.note(0);
        assert_eq!(k.due(0, slack), Some(0));
        assert_eq!(k.due(frame, slack), None);
        // A 25 fps source's keyframe at 2 s, decoded frames on a 30 fps grid.
        k.note(2_000_000_000);
        assert_eq!(k.due(59 * frame, slack), None, "a frame and a half early");
        assert_eq!(k.due(60 * frame - 10, slack), Some(1), "within half a frame");
        assert_eq!(k.due(61 * frame, slack), None);
        // Two noted while their frames were dropped: one keyframe, at the next frame.
        k.note(3_000_000_000);
        k.note(3_500_000_000);
        assert_eq!(k.due(4_000_000_000, slack), Some(2));
        assert_eq!(k.due(4_100_000_000, slack), None);
    }

    #[test]
    fn source_keyframes_pending_are_bounded() {
        let k = SourceKeyframes::new(&WINDOW);
        for n in 0..1000 {
            k.note(n);
        }
        assert_eq!(k.noted().pending.len(), MAX_PENDING);
    }

    /// The packager's default: a segment ends on a keyframe 1.8 s to 2.4 s after its start.
    const WINDOW: RangeInclusive<Duration> = Duration::from_millis(1800)..=Duration::from_millis(2400);

    fn fits(keyframes_ms: &[u64]) -> bool {
        let k = SourceKeyframes::new(&WINDOW);
        for ms in keyframes_ms {
            k.note(ms * 1_000_000);
        }
        !k.misfit()
    }

    #[test]
    fn an_interval_with_packets_lost_in_it_is_not_judged() {
        let s = 1_000_000_000;
        let k = SourceKeyframes::new(&WINDOW);
        k.note(0);
        k.note(2 * s);
        // The keyframe at 4 s was dropped by the tap: the next one comes at 6 s.
        k.lost(4 * s + 100);
        k.note(6 * s);
        assert!(!k.misfit(), "a lost keyframe is not the source's cadence");
        // Judged again from there.
        k.note(8 * s);
        k.note(11 * s);
        assert!(k.misfit(), "3 s apart with nothing lost");
        // A loss before the interval's start does not excuse it.
        let k = SourceKeyframes::new(&WINDOW);
        k.note(0);
        k.lost(s);
        k.note(2 * s);
        k.note(5 * s);
        assert!(k.misfit());
    }

    #[test]
    fn a_copy_fits_while_every_segment_can_end_on_a_source_keyframe() {
        let regular = |gop: u64| (0..20).map(|n| n * gop).collect::<Vec<_>>();
        for gop in [2000, 1000, 2400, 1200, 900, 700, 500, 100] {
            assert!(fits(&regular(gop)), "every {gop} ms");
        }
        // 1.5 s: a keyframe at 1.5 s is too early, the next at 3 s too late.
        for gop in [1500, 1700, 850, 2500, 4000, 8333] {
            assert!(!fits(&regular(gop)), "every {gop} ms");
        }
        // Extra keyframes (viewers' requests to a re-encode) between 2 s ones still fit.
        assert!(fits(&[0, 700, 1850, 2000, 3700, 4000, 6000, 7900, 8000, 10_000]));
        assert!(fits(&[0]), "one keyframe tells nothing yet");
    }
}
