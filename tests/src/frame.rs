//! Frame accounting from RTP headers: a frame is an RTP timestamp, complete once a packet with
//! the marker bit (end of frame, for video) arrived for it.
//!
//! An SFU that drops packets inside a frame but renumbers the sequence so no gap shows would
//! still leave frames without their marker packet; [`FrameTracker::incomplete`] counts those.

use std::collections::VecDeque;

/// How many recent frames are kept open for late (retransmitted) packets.
const OPEN_FRAMES: usize = 64;

/// Counts frames and frames that never got their last packet.
#[derive(Debug, Clone, Default)]
pub struct FrameTracker {
    newest: Option<u32>,
    frames: u64,
    recent: VecDeque<(u32, bool)>,
    closed_incomplete: u64,
}

impl FrameTracker {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a packet of the frame at `timestamp`; `marker` is its RTP marker bit.
    /// Returns true when the packet starts a new (newer) frame.
    pub fn push(&mut self, timestamp: u32, marker: bool) -> bool {
        // Timestamps wrap; the signed distance says which is newer.
        let newer = self
            .newest
            .is_none_or(|newest| (timestamp.wrapping_sub(newest) as i32) > 0);
        if newer {
            self.newest = Some(timestamp);
            self.frames += 1;
            self.recent.push_back((timestamp, marker));
            if self.recent.len() > OPEN_FRAMES
                && let Some((_, complete)) = self.recent.pop_front()
                && !complete
            {
                self.closed_incomplete += 1;
            }
            return true;
        }
        if let Some(entry) = self.recent.iter_mut().rev().find(|(ts, _)| *ts == timestamp) {
            entry.1 |= marker;
        }
        false
    }

    /// Distinct frames seen.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Frames without a marker packet, not counting the two newest (still arriving).
    pub fn incomplete(&self) -> u64 {
        let open = self
            .recent
            .iter()
            .rev()
            .skip(2)
            .filter(|(_, complete)| !complete)
            .count() as u64;
        self.closed_incomplete + open
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_frames() {
        let mut f = FrameTracker::new();
        for ts in [0u32, 3000, 6000, 9000] {
            assert!(f.push(ts, false));
            assert!(!f.push(ts, true));
        }
        assert_eq!(f.frames(), 4);
        assert_eq!(f.incomplete(), 0);
    }

    #[test]
    fn missing_marker_is_incomplete_once_two_newer_frames_exist() {
        let mut f = FrameTracker::new();
        f.push(0, false); // never completed
        f.push(3000, true);
        assert_eq!(f.incomplete(), 0, "the newest two are still open");
        f.push(6000, true);
        assert_eq!(f.incomplete(), 1);
    }

    #[test]
    fn late_marker_completes_an_old_frame_and_is_not_a_new_frame() {
        let mut f = FrameTracker::new();
        f.push(0, false);
        f.push(3000, true);
        f.push(6000, true);
        assert!(!f.push(0, true)); // retransmitted end of frame 0
        assert_eq!(f.frames(), 3);
        assert_eq!(f.incomplete(), 0);
    }

    #[test]
    fn timestamps_wrap() {
        let mut f = FrameTracker::new();
        assert!(f.push(u32::MAX - 100, true));
        assert!(f.push(2900, true));
        assert!(!f.push(u32::MAX - 100, true));
        assert_eq!(f.frames(), 2);
    }

    #[test]
    fn frames_falling_out_of_the_window_are_settled() {
        let mut f = FrameTracker::new();
        f.push(0, false);
        for i in 1..=(OPEN_FRAMES as u32 + 5) {
            f.push(i * 3000, true);
        }
        assert_eq!(f.incomplete(), 1);
    }
}
