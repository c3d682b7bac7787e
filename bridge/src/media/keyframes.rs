//! Keyframes at the same instants on every rung of a ladder: a decision taken once per frame
//! before the tee, delivered to every encoder as a force-key-unit event right before the frame.

use std::sync::atomic::{AtomicU64, Ordering};

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
        let running = pad
            .sticky_event::<gst::event::Segment>(0)
            .and_then(|s| s.segment().downcast_ref::<gst::ClockTime>()?.to_running_time(pts));
        if let Some(gop) = running.and_then(|r| schedule.gop_start(r.nseconds())) {
            force_key_unit(pad, pts, gop);
        }
        gst::PadProbeReturn::Ok
    });
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
}
