//! How well a publisher's media arrives, per track and layer: bitrate, frame rate, keyframe
//! interval, loss and jitter, over the last whole second (time passed in). The home worker
//! records every publisher packet; the stream resource and `/metrics` read a [`HealthReport`].
//!
//! - **Loss**: packets missing from the extended sequence numbers seen in the window, as a
//!   fraction of those expected (a retransmission that fills a hole counts as received).
//! - **Jitter**: RFC 3550's interarrival jitter, in milliseconds.
//! - **Frame rate**: distinct RTP timestamps per second (video).
//! - **Keyframe interval**: between the last two keyframes (video).

use std::time::{Duration, Instant};

use str0m::media::{MediaKind, Rid};

use crate::packet::MediaPacket;

/// One rate window.
const WINDOW: Duration = Duration::from_secs(1);

/// Below or above these a track is reported with a warning.
pub const MIN_FPS: f64 = 15.0;
/// Longest keyframe interval before a warning (viewers join and switch layers on keyframes).
pub const MAX_KEYFRAME_INTERVAL: Duration = Duration::from_secs(5);
/// Most loss before a warning.
pub const MAX_LOSS: f64 = 0.02;
/// Most jitter before a warning, ms.
pub const MAX_JITTER_MS: f64 = 30.0;
/// Silence after which a track counts as stalled.
pub const STALLED_AFTER: Duration = Duration::from_secs(2);

#[derive(Debug)]
struct Track {
    kind: MediaKind,
    rid: Option<Rid>,
    clock_rate: f64,
    window_start: Instant,
    bytes: u64,
    frames: u32,
    last_rtp_time: Option<u32>,
    lowest_seq: Option<u64>,
    highest_seq: Option<u64>,
    received: u64,
    /// The last finished window's figures.
    last: Window,
    jitter: f64,
    transit: Option<f64>,
    first_arrival: Instant,
    last_arrival: Instant,
    keyframes: [Option<Instant>; 2],
}

#[derive(Debug, Clone, Copy, Default)]
struct Window {
    bitrate_bps: u64,
    fps: f64,
    loss: f64,
}

/// One track (and simulcast layer) as the report shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackHealth {
    /// Audio or video.
    pub kind: MediaKind,
    /// The simulcast layer, `None` for a single-layer track.
    pub rid: Option<Rid>,
    /// Payload bits per second over the last whole second.
    pub bitrate_bps: u64,
    /// Frames per second (video; 0 for audio).
    pub fps: f64,
    /// Time between the last two keyframes (video, once two were seen).
    pub keyframe_interval: Option<Duration>,
    /// Fraction of packets lost in the last second (0..=1).
    pub loss: f64,
    /// Interarrival jitter, ms.
    pub jitter_ms: f64,
    /// Since the last packet.
    pub idle: Duration,
    /// What is wrong, in words (empty when nothing is).
    pub warnings: Vec<String>,
}

/// Every track of a room's publisher, and how its media reaches the viewers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HealthReport {
    /// Video layers first (highest first), then audio.
    pub tracks: Vec<TrackHealth>,
    /// What is wrong with delivery to this room's viewers (a media worker that cannot keep
    /// up), in words.
    pub delivery: Vec<String>,
}

impl HealthReport {
    /// Every track's warnings, prefixed with the track, then the delivery warnings.
    pub fn warnings(&self) -> Vec<String> {
        let delivery = self.delivery.iter().map(|w| format!("delivery: {w}"));
        self.tracks
            .iter()
            .flat_map(|t| {
                let name = match (&t.kind, &t.rid) {
                    (MediaKind::Audio, _) => "audio".to_string(),
                    (MediaKind::Video, Some(rid)) => format!("video {rid}"),
                    (MediaKind::Video, None) => "video".to_string(),
                };
                t.warnings.iter().map(move |w| format!("{name}: {w}"))
            })
            .chain(delivery)
            .collect()
    }
}

/// Ingest health of one room (home worker).
#[derive(Debug, Default)]
pub struct IngestHealth {
    tracks: Vec<Track>,
}

impl IngestHealth {
    /// Count a publisher packet.
    pub fn record(&mut self, p: &MediaPacket, now: Instant) {
        let i = match self
            .tracks
            .iter()
            .position(|t| t.kind == p.kind && t.rid == p.rid)
        {
            Some(i) => i,
            None => {
                self.tracks.push(Track::new(p, now));
                self.tracks.len() - 1
            }
        };
        self.tracks[i].record(p, now);
    }

    /// A new publisher session: what the old one did says nothing about it.
    pub fn reset(&mut self) {
        self.tracks.clear();
    }

    /// The figures now.
    pub fn report(&mut self, now: Instant) -> HealthReport {
        let mut tracks: Vec<TrackHealth> = self
            .tracks
            .iter_mut()
            .map(|t| {
                t.roll(now);
                t.health(now)
            })
            .collect();
        tracks.sort_by(|a, b| {
            let rank = |t: &TrackHealth| (t.kind == MediaKind::Audio, std::cmp::Reverse(t.bitrate_bps));
            rank(a).cmp(&rank(b))
        });
        HealthReport {
            tracks,
            delivery: Vec::new(),
        }
    }
}

impl Track {
    fn new(p: &MediaPacket, now: Instant) -> Track {
        Track {
            kind: p.kind,
            rid: p.rid,
            clock_rate: if p.kind == MediaKind::Audio {
                48_000.0
            } else {
                90_000.0
            },
            window_start: now,
            bytes: 0,
            frames: 0,
            last_rtp_time: None,
            lowest_seq: None,
            highest_seq: None,
            received: 0,
            last: Window::default(),
            jitter: 0.0,
            transit: None,
            first_arrival: p.received,
            last_arrival: p.received,
            keyframes: [None, None],
        }
    }

    fn record(&mut self, p: &MediaPacket, now: Instant) {
        self.roll(now);
        self.bytes += p.payload.len() as u64;
        self.received += 1;
        self.lowest_seq = Some(self.lowest_seq.map_or(p.seq, |s| s.min(p.seq)));
        self.highest_seq = Some(self.highest_seq.map_or(p.seq, |s| s.max(p.seq)));
        if self.last_rtp_time != Some(p.rtp_time) {
            self.frames += 1;
            self.last_rtp_time = Some(p.rtp_time);
            // RFC 3550 A.8: J += (|D| - J) / 16, D the change in transit time.
            let arrival = p
                .received
                .saturating_duration_since(self.first_arrival)
                .as_secs_f64();
            let transit = arrival - f64::from(p.rtp_time) / self.clock_rate;
            if let Some(prev) = self.transit {
                let mut d = (transit - prev).abs();
                // A wrap of the 32-bit timestamp, or a new timeline: not jitter.
                if d > 10.0 {
                    d = 0.0;
                }
                self.jitter += (d - self.jitter) / 16.0;
            }
            self.transit = Some(transit);
        }
        if p.keyframe && p.kind == MediaKind::Video {
            let first_packet_of_frame =
                self.keyframes[1].is_none_or(|k| p.received.duration_since(k) > Duration::from_millis(5));
            if first_packet_of_frame {
                self.keyframes = [self.keyframes[1], Some(p.received)];
            }
        }
        self.last_arrival = p.received;
    }

    /// Close the window if a second has passed.
    fn roll(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.window_start);
        if elapsed < WINDOW {
            return;
        }
        let secs = elapsed.as_secs_f64();
        let expected = match (self.lowest_seq, self.highest_seq) {
            (Some(lo), Some(hi)) => hi - lo + 1,
            _ => 0,
        };
        self.last = Window {
            bitrate_bps: (self.bytes as f64 * 8.0 / secs) as u64,
            fps: if self.kind == MediaKind::Video {
                f64::from(self.frames) / secs
            } else {
                0.0
            },
            loss: if expected == 0 {
                0.0
            } else {
                expected.saturating_sub(self.received) as f64 / expected as f64
            },
        };
        self.window_start = now;
        self.bytes = 0;
        self.frames = 0;
        self.received = 0;
        self.lowest_seq = None;
        self.highest_seq = None;
    }

    fn health(&self, now: Instant) -> TrackHealth {
        let keyframe_interval = match self.keyframes {
            [Some(a), Some(b)] => Some(b.duration_since(a)),
            _ => None,
        };
        let idle = now.saturating_duration_since(self.last_arrival);
        let jitter_ms = self.jitter * 1000.0;
        let mut warnings = Vec::new();
        if idle >= STALLED_AFTER {
            warnings.push(format!("no media for {:.1} s", idle.as_secs_f64()));
        } else {
            if self.kind == MediaKind::Video && self.last.fps > 0.0 && self.last.fps < MIN_FPS {
                warnings.push(format!("frame rate {:.1} fps (below {MIN_FPS})", self.last.fps));
            }
            if self.last.loss > MAX_LOSS {
                warnings.push(format!("{:.1}% packet loss", self.last.loss * 100.0));
            }
            if jitter_ms > MAX_JITTER_MS {
                warnings.push(format!("jitter {jitter_ms:.0} ms"));
            }
        }
        // Since the last keyframe counts too: a publisher that stopped sending them has no
        // second one to measure an interval with.
        let since_keyframe = self.keyframes[1].map(|k| now.saturating_duration_since(k));
        let longest = keyframe_interval.max(since_keyframe.filter(|_| idle < STALLED_AFTER));
        if self.kind == MediaKind::Video
            && let Some(k) = longest
            && k > MAX_KEYFRAME_INTERVAL
        {
            warnings.push(format!(
                "keyframes {:.1} s apart (over {} s)",
                k.as_secs_f64(),
                MAX_KEYFRAME_INTERVAL.as_secs()
            ));
        }
        TrackHealth {
            kind: self.kind,
            rid: self.rid,
            bitrate_bps: self.last.bitrate_bps,
            fps: self.last.fps,
            keyframe_interval,
            loss: self.last.loss,
            jitter_ms,
            idle,
            warnings,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::gop_cache::tests::packet;

    /// `seconds` of `fps` video, `per_frame` packets a frame of `bytes` each, keyframes every
    /// `gop` frames; `lose(seq)` drops packets, `late(frame)` delays arrivals.
    #[allow(clippy::too_many_arguments)]
    fn feed(
        h: &mut IngestHealth,
        t0: Instant,
        seconds: u32,
        fps: u32,
        per_frame: u64,
        gop: u32,
        lose: impl Fn(u64) -> bool,
        late: impl Fn(u32) -> Duration,
    ) -> Instant {
        let mut seq = 0;
        let mut last = t0;
        for frame in 0..seconds * fps {
            let at = t0 + Duration::from_secs_f64(f64::from(frame) / f64::from(fps)) + late(frame);
            for i in 0..per_frame {
                seq += 1;
                if lose(seq) {
                    continue;
                }
                let mut p = Arc::into_inner(packet(
                    "f",
                    seq,
                    frame * (90_000 / fps),
                    frame % gop == 0 && i == 0,
                    1,
                    at,
                ))
                .expect("a fresh packet has one owner");
                p.payload = Arc::from(vec![0u8; 1000]);
                h.record(&p, at);
            }
            last = at;
        }
        last
    }

    #[test]
    fn a_steady_publisher_is_healthy() {
        let t0 = Instant::now();
        let mut h = IngestHealth::default();
        let end = feed(&mut h, t0, 5, 30, 3, 60, |_| false, |_| Duration::ZERO);
        let r = h.report(end + Duration::from_millis(10));
        let t = &r.tracks[0];
        assert!((t.fps - 30.0).abs() < 1.5, "{t:?}");
        // 90 packets of 1000 bytes a second.
        assert!((700_000..=760_000).contains(&t.bitrate_bps), "{t:?}");
        assert_eq!(t.loss, 0.0);
        assert!(t.jitter_ms < 1.0, "{t:?}");
        assert_eq!(t.keyframe_interval, Some(Duration::from_secs(2)));
        assert!(r.warnings().is_empty(), "{:?}", r.warnings());
    }

    #[test]
    fn loss_jitter_low_frame_rate_and_rare_keyframes_are_warned_about() {
        let t0 = Instant::now();
        let mut h = IngestHealth::default();
        let end = feed(
            &mut h,
            t0,
            14,
            10,
            10,
            70,
            |seq| seq % 10 == 3,
            |frame| Duration::from_millis(if frame % 2 == 0 { 0 } else { 80 }),
        );
        let r = h.report(end + Duration::from_millis(10));
        let t = &r.tracks[0];
        assert!((t.loss - 0.1).abs() < 0.02, "{t:?}");
        assert!(t.jitter_ms > MAX_JITTER_MS, "{t:?}");
        assert_eq!(t.keyframe_interval, Some(Duration::from_secs(7)));
        let w = r.warnings().join("; ");
        for expected in ["frame rate", "packet loss", "jitter", "keyframes 7.0 s apart"] {
            assert!(w.contains(expected), "{expected} missing in: {w}");
        }
    }

    #[test]
    fn silence_is_reported_and_a_new_publisher_starts_afresh() {
        let t0 = Instant::now();
        let mut h = IngestHealth::default();
        let end = feed(&mut h, t0, 2, 30, 1, 30, |_| false, |_| Duration::ZERO);
        let r = h.report(end + Duration::from_secs(3));
        assert!(
            r.warnings()[0].starts_with("video f: no media for 3.0 s"),
            "{:?}",
            r.warnings()
        );
        h.reset();
        assert!(h.report(end + Duration::from_secs(3)).tracks.is_empty());
    }
}
