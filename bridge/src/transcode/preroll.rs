//! What a room's transcoder starts from: held packets until the source is known.
//!
//! A browser publishing simulcast turns its layers on one by one as its bandwidth estimate
//! grows, and the tap follows it up, switching at each new layer's keyframe. So the preroll
//! holds packets for a short settling time after the first video, keeps only what follows
//! the latest keyframe (its size decides the ladder), and starts with whatever tracks the
//! room has: audio waits with it, and a room with no video starts audio-only.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use sfu::{Codec, MediaKind, TapPacket};

use super::frame_size::{VideoCodec, frame_size};

/// How long a first start waits after the first video packet (both tracks seen, the sender
/// reports that time the media on their way).
pub const SETTLE: Duration = Duration::from_millis(500);
/// The same for a restarted run: the layers are on, the audio is flowing; long enough for
/// both tracks to be seen.
pub const RESUME_SETTLE: Duration = Duration::from_millis(300);
/// A browser publishing simulcast turns its higher layers on as its bandwidth estimate grows,
/// and the tap follows it up: a first start waits for a keyframe of the top declared layer
/// (its size decides the ladder), at most this long after the first video.
pub const MAX_SETTLE: Duration = Duration::from_millis(4000);
/// How long audio without any video waits before the stream starts audio-only.
pub const AUDIO_ONLY_AFTER: Duration = Duration::from_millis(1500);
/// How long audio waits instead when the publisher is known to send video that has not come
/// through yet: a source that cannot make a keyframe on request (RTMP or SRT passed through)
/// is joined at its next keyframe, and encoders space them 2 s (OBS) to 250 frames (x264's
/// default) apart. Started without video, the stream would stay audio-only.
pub const VIDEO_EXPECTED_WITHIN: Duration = Duration::from_secs(12);
/// Packets held at most (a few seconds of a high layer); the oldest go first.
const MAX_HELD: usize = 4096;
/// Audio kept from before the starting keyframe.
const AUDIO_LEAD: Duration = Duration::from_millis(100);

/// The video a transcoder decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoInput {
    /// Its codec.
    pub codec: VideoCodec,
    /// The RTP payload type its packets carry.
    pub payload_type: u8,
    /// Picture size of the starting keyframe, when it said.
    pub size: Option<(u32, u32)>,
}

/// The audio a transcoder decodes (Opus).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioInput {
    /// The RTP payload type its packets carry.
    pub payload_type: u8,
}

/// How a transcoder starts: its inputs and the packets to feed it first.
#[derive(Debug)]
pub struct Plan {
    /// The video, `None` for an audio-only room (or video that cannot be bridged).
    pub video: Option<VideoInput>,
    /// The audio, `None` for a video-only room.
    pub audio: Option<AudioInput>,
    /// Held packets, in arrival order, from the starting keyframe on.
    pub packets: Vec<TapPacket>,
}

/// The video codec of a packet, `None` for codecs the bridge does not take.
pub fn video_codec(p: &TapPacket) -> Option<VideoCodec> {
    match p.params.spec().codec {
        Codec::Vp8 => Some(VideoCodec::Vp8),
        Codec::Vp9 => Some(VideoCodec::Vp9),
        Codec::H264 => Some(VideoCodec::H264),
        Codec::Av1 => Some(VideoCodec::Av1),
        _ => None,
    }
}

/// Packets held before a transcoder starts.
#[derive(Debug)]
pub struct Preroll {
    settle: Duration,
    held: VecDeque<TapPacket>,
    first_video: Option<Instant>,
    first_audio: Option<Instant>,
    /// The room's audio, once seen (its packets before the keyframe may all be dropped).
    audio: Option<AudioInput>,
    /// The latest keyframe's input, and its RTP time (its other packets may say its size).
    keyframe: Option<(VideoInput, u32)>,
    /// Video whose codec cannot be bridged was seen.
    refused: Option<Codec>,
    /// A first start, whose ladder is still to be chosen (a restart keeps its renditions).
    first_start: bool,
    /// The held keyframe is from the publisher's top declared layer.
    on_top: bool,
    /// The publisher sends video, though none has come yet.
    video_expected: bool,
}

impl Default for Preroll {
    /// A stream's first start: the source may still be settling.
    fn default() -> Self {
        Preroll {
            settle: SETTLE,
            held: VecDeque::new(),
            first_video: None,
            first_audio: None,
            audio: None,
            keyframe: None,
            refused: None,
            first_start: true,
            on_top: false,
            video_expected: false,
        }
    }
}

impl Preroll {
    /// A restarted run's preroll: the source is known, only a keyframe is awaited.
    pub fn resuming() -> Self {
        Preroll {
            settle: RESUME_SETTLE,
            // Its renditions are fixed already: a bigger layer would change nothing.
            first_start: false,
            ..Preroll::default()
        }
    }

    /// Hold one packet.
    pub fn push(&mut self, p: TapPacket) {
        match p.kind {
            MediaKind::Audio => {
                if p.params.spec().codec != Codec::Opus {
                    return;
                }
                self.first_audio.get_or_insert(p.received);
                self.audio.get_or_insert(AudioInput {
                    payload_type: *p.params.pt(),
                });
            }
            MediaKind::Video => {
                let Some(codec) = video_codec(&p) else {
                    self.refused = Some(p.params.spec().codec);
                    return;
                };
                self.first_video.get_or_insert(p.received);

                // One keyframe spans several packets, more than one of them flagged (H.264's
                // parameter sets and the IDR slice): a new one has a new timestamp.
                let new_keyframe =
                    p.keyframe && self.keyframe.as_ref().is_none_or(|(_, rtp)| *rtp != p.rtp_time);
                if new_keyframe {
                    self.start_at_keyframe(codec, &p);
                } else if self.keyframe.is_none() {
                    return;
                }
                if let Some((input, rtp)) = &mut self.keyframe
                    && input.size.is_none()
                    && p.rtp_time == *rtp
                {
                    input.size = frame_size(codec, &p.payload);
                }
            }
        }
        if self.held.len() == MAX_HELD {
            self.held.pop_front();
        }
        self.held.push_back(p);
    }

    /// A newer keyframe: everything before it goes (audio from a little before it stays).
    fn start_at_keyframe(&mut self, codec: VideoCodec, p: &TapPacket) {
        let keep_audio_from = p.received.checked_sub(AUDIO_LEAD);
        self.held
            .retain(|h| h.kind == MediaKind::Audio && keep_audio_from.is_none_or(|from| h.received >= from));
        let size = frame_size(codec, &p.payload);
        tracing::debug!(rid = ?p.rid, ?size, "preroll: keyframe");
        self.on_top = p.top_layer;
        self.keyframe = Some((
            VideoInput {
                codec,
                payload_type: *p.params.pt(),
                size,
            },
            p.rtp_time,
        ));
    }

    /// Video of this codec was seen and cannot be bridged.
    pub fn refused(&self) -> Option<Codec> {
        self.refused
    }

    /// Whether the publisher is known to send video (audio then waits longer for it).
    pub fn expect_video(&mut self, expected: bool) {
        self.video_expected = expected;
    }

    /// Whether to start now.
    pub fn ready(&self, now: Instant) -> bool {
        match (self.first_video, self.first_audio) {
            (Some(v), _) => {
                let since = now.saturating_duration_since(v);
                let settled = self.on_top || !self.first_start;
                self.keyframe.is_some() && (since >= self.settle && settled || since >= MAX_SETTLE)
            }
            (None, Some(a)) => {
                let wait = if self.video_expected {
                    VIDEO_EXPECTED_WITHIN
                } else {
                    AUDIO_ONLY_AFTER
                };
                now.saturating_duration_since(a) >= wait
            }
            (None, None) => false,
        }
    }

    /// The plan, and an empty preroll.
    pub fn take(&mut self) -> Plan {
        let held = std::mem::take(&mut self.held);
        let audio = self.audio;
        let video = self.keyframe.take().map(|(input, _)| input);
        *self = Preroll {
            settle: self.settle,
            first_start: self.first_start,
            ..Preroll::default()
        };
        Plan {
            video,
            audio,
            packets: held.into_iter().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use str0m::format::{CodecSpec, FormatParams, PayloadParams};
    use str0m::media::{Frequency, Pt};

    use super::*;

    fn packet(codec: Codec, at: Instant, rtp_time: u32, keyframe: bool, payload: &[u8]) -> TapPacket {
        let (kind, pt, rate) = match codec {
            Codec::Opus => (MediaKind::Audio, 111, Frequency::FORTY_EIGHT_KHZ),
            _ => (MediaKind::Video, 96, Frequency::NINETY_KHZ),
        };
        TapPacket {
            kind,
            params: PayloadParams::new(
                Pt::new_with_value(pt),
                None,
                CodecSpec {
                    codec,
                    clock_rate: rate,
                    channels: None,
                    format: FormatParams::default(),
                },
            ),
            seq: 0,
            rtp_time,
            marker: true,
            keyframe,
            rid: None,
            epoch: 1,
            received: at,
            capture: None,
            top_layer: true,
            payload: Arc::from(payload),
        }
    }

    /// A VP8 keyframe start of `w` x `h` (descriptor S bit, frame tag, start code, size).
    fn vp8_key(w: u16, h: u16) -> Vec<u8> {
        let mut p = vec![0x10, 0x50, 0x42, 0x00, 0x9d, 0x01, 0x2a];
        p.extend_from_slice(&w.to_le_bytes());
        p.extend_from_slice(&h.to_le_bytes());
        p
    }

    #[test]
    fn starts_from_the_latest_keyframe_after_the_source_settled() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let mut p = Preroll::default();
        p.push(packet(Codec::Opus, ms(0), 0, true, &[1]));
        p.push(packet(Codec::Vp8, ms(10), 1_000, true, &vp8_key(320, 180)));
        p.push(packet(Codec::Vp8, ms(40), 4_000, false, &[0x00, 0x01]));
        assert!(!p.ready(ms(500)), "the source has not settled");
        // The tap moved up a layer: a bigger keyframe.
        p.push(packet(Codec::Opus, ms(650), 31_200, true, &[2]));
        p.push(packet(Codec::Vp8, ms(700), 63_000, true, &vp8_key(1280, 720)));
        p.push(packet(Codec::Vp8, ms(700), 63_000, false, &[0x00, 0x01]));
        assert!(p.ready(ms(1010)));
        let plan = p.take();
        let video = plan.video.expect("video");
        assert_eq!((video.codec, video.size), (VideoCodec::Vp8, Some((1280, 720))));
        assert!(plan.audio.is_some());
        // The audio from 100 ms before the keyframe on, then the keyframe's packets.
        let times: Vec<u32> = plan.packets.iter().map(|p| p.rtp_time).collect();
        assert_eq!(times, [31_200, 63_000, 63_000]);
    }

    #[test]
    fn a_simulcast_source_starts_on_its_top_layer() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let layer = |rid: &str, at: u64, rtp: u32, w: u16, h: u16, top: bool| {
            let mut p = packet(Codec::Vp8, ms(at), rtp, true, &vp8_key(w, h));
            p.rid = Some(rid.into());
            p.top_layer = top;
            p
        };
        let mut p = Preroll::default();
        p.push(layer("q", 0, 0, 320, 180, false));
        p.push(layer("h", 1_200, 90_000, 640, 360, false));
        assert!(!p.ready(ms(1_900)), "not on the top layer yet");
        p.push(layer("f", 2_000, 180_000, 1280, 720, true));
        assert!(p.ready(ms(2_000)));
        assert_eq!(p.take().video.and_then(|v| v.size), Some((1280, 720)));

        // A top layer that never comes: start anyway.
        let mut p = Preroll::default();
        p.push(layer("q", 0, 0, 320, 180, false));
        assert!(!p.ready(ms(3_900)));
        assert!(p.ready(ms(MAX_SETTLE.as_millis() as u64)));
    }

    #[test]
    fn av1_starts_at_a_new_coded_video_sequence_with_its_size() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        // W=1, N=1: libaom's sequence header for 640x360, as sent (no size field).
        let key = [
            0x18, 0x08, 0x20, 0x00, 0x00, 0x0c, 0xc4, 0xff, 0x67, 0xe0, 0x6d, 0x7c, 0x81,
        ];
        let mut p = Preroll::default();
        // A frame of the sequence before: not a start.
        p.push(packet(Codec::Av1, ms(0), 0, false, &[0x10, 0x30, 0x00]));
        p.push(packet(Codec::Av1, ms(10), 3_000, true, &key));
        p.push(packet(Codec::Av1, ms(20), 6_000, false, &[0x10, 0x30, 0x00]));
        assert_eq!(p.refused(), None);
        assert!(p.ready(ms(10) + SETTLE));
        let plan = p.take();
        let video = plan.video.expect("video");
        assert_eq!((video.codec, video.size), (VideoCodec::Av1, Some((640, 360))));
        let times: Vec<u32> = plan.packets.iter().map(|p| p.rtp_time).collect();
        assert_eq!(times, [3_000, 6_000]);
    }

    #[test]
    fn audio_alone_starts_after_a_wait_and_h265_is_refused() {
        let t0 = Instant::now();
        let mut p = Preroll::default();
        p.push(packet(Codec::Opus, t0, 0, true, &[1]));
        // A codec the bridge has no decoder path for (WebRTC may negotiate it one day).
        p.push(packet(Codec::H265, t0, 0, true, &[0x40, 0x01]));
        assert_eq!(p.refused(), Some(Codec::H265));
        assert!(!p.ready(t0 + Duration::from_millis(1000)));
        assert!(p.ready(t0 + AUDIO_ONLY_AFTER));
        let plan = p.take();
        assert!(plan.video.is_none() && plan.audio.is_some());
        assert_eq!(plan.packets.len(), 1);
    }

    #[test]
    fn audio_waits_for_video_the_publisher_is_known_to_send() {
        let t0 = Instant::now();
        let mut p = Preroll::default();
        p.expect_video(true);
        p.push(packet(Codec::Opus, t0, 0, true, &[1]));
        assert!(
            !p.ready(t0 + Duration::from_millis(8_000)),
            "a long keyframe interval"
        );
        let key = t0 + Duration::from_millis(8_300);
        p.push(packet(Codec::Vp8, key, 9_000, true, &vp8_key(640, 360)));
        assert!(p.ready(key + SETTLE));
        let plan = p.take();
        assert!(plan.video.is_some() && plan.audio.is_some());

        let mut p = Preroll::default();
        p.expect_video(true);
        p.push(packet(Codec::Opus, t0, 0, true, &[1]));
        assert!(p.ready(t0 + VIDEO_EXPECTED_WITHIN), "not for ever");
    }
}
