//! FLV video and audio tag bodies, as RTMP delivers them, turned into [`Frame`]s.
//!
//! An RTMP video or audio message is an FLV tag body without the tag header (FLV 10.1
//! E.4.2, E.4.3). For video, the first byte's low nibble names the codec; only AVC (7) is
//! taken: its sequence header (an AVCDecoderConfigurationRecord) becomes a
//! [`Frame::VideoConfig`] and tells the length-prefix size of the NAL units that follow, and
//! each later message is one access unit with a composition time offset (`pts - dts`, in
//! milliseconds, negative for some B-frame streams). Enhanced RTMP (Veovera E-RTMP v1/v2) sets
//! the first byte's top bit and names the codec by a FourCC instead: `avc1` is read like
//! legacy AVC; `hvc1`, `av01` and `vp09` are refused with [`FlvError::UnsupportedCodec`], as
//! is every legacy codec other than AVC, so the publisher's log and health can say why the
//! stream stays dark. For audio, AAC (sound format 10) becomes its AudioSpecificConfig and raw
//! frames; E-RTMP audio (sound format 9) is read for `mp4a` (AAC) and `Opus`.
//!
//! [`FlvDemuxer`] is the little state between messages (the NAL length size, the timestamp
//! extension) and is pure: a message in, at most one frame out. RTMP timestamps are 32-bit
//! milliseconds that wrap after 49.7 days; they are extended to `i64` and converted to 90 kHz
//! [`Ticks`]. The keyframe flag of a video frame is whether the access unit holds
//! an IDR slice: encoders mark recovery points and open-GOP I-frames as FLV keyframes too, and
//! a viewer cannot start decoding at those.

use bytes::Bytes;

use crate::frame::{AudioCodec, AudioFrame, Frame, Ticks, VideoFrame};
use crate::h264::{self, H264Error};

/// Why an FLV message body was not turned into a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlvError {
    /// The body ends before a field its header announces.
    #[error("{0} is truncated")]
    Truncated(&'static str),
    /// A codec this server does not take (lower-case codec name or the E-RTMP FourCC).
    #[error("unsupported codec {0}")]
    UnsupportedCodec(String),
    /// An E-RTMP feature this server does not take.
    #[error("unsupported {0}")]
    Unsupported(&'static str),
    /// A packet type the specification does not define.
    #[error("unknown {kind} packet type {value}")]
    UnknownPacketType {
        /// Which packet type field: "AVC", "E-RTMP video", "AAC", "E-RTMP audio".
        kind: &'static str,
        /// Its value.
        value: u8,
    },
    /// Coded AVC frames came before any sequence header, so their NAL length size is unknown.
    #[error("AVC frames before the AVC sequence header")]
    NoSequenceHeader,
    /// The AVC sequence header or an access unit does not parse.
    #[error("AVC: {0}")]
    Avc(#[from] H264Error),
    /// An AudioSpecificConfig shorter than its two mandatory bytes.
    #[error("AAC AudioSpecificConfig of {0} bytes, at least 2 expected")]
    ShortAacConfig(usize),
    /// An E-RTMP Opus sequence start that is not an `OpusHead` identification header.
    #[error("bad OpusHead")]
    BadOpusHead,
}

/// The state of one RTMP publication's FLV demultiplexing: the NAL length size from the last
/// AVC sequence header and the 32-bit timestamp extension.
#[derive(Debug, Default)]
pub struct FlvDemuxer {
    nal_length_size: Option<u8>,
    /// The last raw timestamp and its extended value.
    clock: Option<(u32, i64)>,
}

/// Legacy FLV AVC packet types (and E-RTMP's, which keep 0 to 2).
const SEQUENCE_START: u8 = 0;
const CODED_FRAMES: u8 = 1;
const SEQUENCE_END: u8 = 2;
/// E-RTMP packet types.
const CODED_FRAMES_X: u8 = 3;
const VIDEO_METADATA: u8 = 4;
const MPEG2TS_SEQUENCE_START: u8 = 5;
const VIDEO_MULTITRACK: u8 = 6;
const AUDIO_MULTICHANNEL_CONFIG: u8 = 4;
const AUDIO_MULTITRACK: u8 = 5;
const MOD_EX: u8 = 7;
/// FLV video frame type 5: a video info or command frame, which holds no picture.
const COMMAND_FRAME: u8 = 5;
const CODEC_AVC: u8 = 7;
const SOUND_FORMAT_EX: u8 = 9;
const SOUND_FORMAT_AAC: u8 = 10;

impl FlvDemuxer {
    /// A demuxer for a new publication.
    pub fn new() -> Self {
        Self::default()
    }

    /// Read one RTMP video message. `Ok(None)` for messages that carry no frame (end of
    /// sequence, command frames, metadata, an empty access unit).
    pub fn video(&mut self, timestamp_ms: u32, body: &Bytes) -> Result<Option<Frame>, FlvError> {
        let ms = self.extend(timestamp_ms);
        let first = *body.first().ok_or(FlvError::Truncated("video tag header"))?;
        if first & 0x80 != 0 {
            return self.ex_video(ms, first, body);
        }
        let frame_type = first >> 4;
        let codec = first & 0x0f;
        if codec != CODEC_AVC {
            return Err(FlvError::UnsupportedCodec(legacy_video_codec(codec)));
        }
        if frame_type == COMMAND_FRAME {
            return Ok(None);
        }
        let header = body
            .get(1..5)
            .ok_or(FlvError::Truncated("AVC video packet header"))?;
        let cts = si24([header[1], header[2], header[3]]);
        let data = body.slice(5..);
        match header[0] {
            SEQUENCE_START => self.sequence_start(&data),
            CODED_FRAMES => self.coded_frames(ms, cts, &data),
            SEQUENCE_END => Ok(None),
            value => Err(FlvError::UnknownPacketType { kind: "AVC", value }),
        }
    }

    /// Read one RTMP audio message. `Ok(None)` for messages that carry no frame.
    pub fn audio(&mut self, timestamp_ms: u32, body: &Bytes) -> Result<Option<Frame>, FlvError> {
        let ms = self.extend(timestamp_ms);
        let first = *body.first().ok_or(FlvError::Truncated("audio tag header"))?;
        match first >> 4 {
            SOUND_FORMAT_AAC => {
                let packet_type = *body
                    .get(1)
                    .ok_or(FlvError::Truncated("AAC audio packet header"))?;
                aac(ms, packet_type, body.slice(2..), "AAC")
            }
            SOUND_FORMAT_EX => ex_audio(ms, first & 0x0f, body),
            format => Err(FlvError::UnsupportedCodec(legacy_sound_format(format))),
        }
    }

    /// E-RTMP video (ExVideoTagHeader): frame type in bits 4-6, packet type in bits 0-3, then
    /// optional ModEx records, then the FourCC.
    fn ex_video(&mut self, ms: i64, first: u8, body: &Bytes) -> Result<Option<Frame>, FlvError> {
        let frame_type = (first >> 4) & 0x07;
        let (packet_type, mut pos) = skip_mod_ex(body, first & 0x0f, 1)?;
        if frame_type == COMMAND_FRAME && packet_type != VIDEO_METADATA {
            // A command byte follows instead of a FourCC.
            return Ok(None);
        }
        if packet_type == VIDEO_MULTITRACK {
            return Err(FlvError::Unsupported("E-RTMP multitrack video"));
        }
        let fourcc = body
            .get(pos..pos + 4)
            .ok_or(FlvError::Truncated("E-RTMP video FourCC"))?;
        if fourcc != b"avc1" {
            return Err(FlvError::UnsupportedCodec(fourcc.escape_ascii().to_string()));
        }
        pos += 4;
        match packet_type {
            SEQUENCE_START => self.sequence_start(&body.slice(pos..)),
            CODED_FRAMES => {
                let cts = body
                    .get(pos..pos + 3)
                    .ok_or(FlvError::Truncated("E-RTMP composition time"))?;
                let cts = si24([cts[0], cts[1], cts[2]]);
                self.coded_frames(ms, cts, &body.slice(pos + 3..))
            }
            // CodedFramesX: the composition time offset is zero and left out.
            CODED_FRAMES_X => self.coded_frames(ms, 0, &body.slice(pos..)),
            // Colour metadata (AMF) and the AV1-only MPEG-2 TS start say nothing about AVC.
            SEQUENCE_END | VIDEO_METADATA | MPEG2TS_SEQUENCE_START => Ok(None),
            value => Err(FlvError::UnknownPacketType {
                kind: "E-RTMP video",
                value,
            }),
        }
    }

    fn sequence_start(&mut self, record: &Bytes) -> Result<Option<Frame>, FlvError> {
        let parsed = h264::parse_avcc(record)?;
        self.nal_length_size = Some(parsed.nal_length_size);
        Ok(Some(Frame::VideoConfig(parsed.config)))
    }

    fn coded_frames(&self, ms: i64, cts: i32, data: &Bytes) -> Result<Option<Frame>, FlvError> {
        let length_size = self.nal_length_size.ok_or(FlvError::NoSequenceHeader)?;
        let nalus = h264::split_avcc(data, length_size)?;
        if nalus.is_empty() {
            return Ok(None);
        }
        Ok(Some(Frame::Video(VideoFrame {
            dts: ms_to_ticks(ms),
            pts: ms_to_ticks(ms + i64::from(cts)),
            keyframe: h264::contains_idr(&nalus),
            nalus,
        })))
    }

    /// Extend a 32-bit millisecond timestamp: the difference from the previous one, read as
    /// signed, is how far time moved (forward across a wrap, or slightly back, as audio and
    /// video messages interleave).
    fn extend(&mut self, timestamp_ms: u32) -> i64 {
        let extended = match self.clock {
            None => i64::from(timestamp_ms),
            Some((last, last_extended)) => last_extended + i64::from(timestamp_ms.wrapping_sub(last) as i32),
        };
        self.clock = Some((timestamp_ms, extended));
        extended
    }
}

/// E-RTMP audio (ExAudioTagHeader): packet type in bits 0-3, ModEx records, FourCC.
fn ex_audio(ms: i64, packet_type: u8, body: &Bytes) -> Result<Option<Frame>, FlvError> {
    let (packet_type, pos) = skip_mod_ex(body, packet_type, 1)?;
    if packet_type == AUDIO_MULTITRACK {
        return Err(FlvError::Unsupported("E-RTMP multitrack audio"));
    }
    let fourcc = body
        .get(pos..pos + 4)
        .ok_or(FlvError::Truncated("E-RTMP audio FourCC"))?;
    let data = body.slice(pos + 4..);
    match fourcc {
        b"mp4a" => match packet_type {
            SEQUENCE_END | AUDIO_MULTICHANNEL_CONFIG => Ok(None),
            _ => aac(ms, packet_type, data, "E-RTMP audio"),
        },
        b"Opus" => match packet_type {
            SEQUENCE_START => {
                opus_head(&data).map(|channels| Some(Frame::AudioConfig(AudioCodec::Opus { channels })))
            }
            CODED_FRAMES if data.is_empty() => Ok(None),
            CODED_FRAMES => Ok(Some(Frame::Audio(AudioFrame {
                pts: ms_to_ticks(ms),
                data,
            }))),
            SEQUENCE_END | AUDIO_MULTICHANNEL_CONFIG => Ok(None),
            value => Err(FlvError::UnknownPacketType {
                kind: "E-RTMP audio",
                value,
            }),
        },
        other => Err(FlvError::UnsupportedCodec(other.escape_ascii().to_string())),
    }
}

/// AAC packets, legacy or E-RTMP: 0 is the AudioSpecificConfig, 1 a raw access unit (E-RTMP's
/// SequenceStart and CodedFrames keep these values).
fn aac(ms: i64, packet_type: u8, data: Bytes, kind: &'static str) -> Result<Option<Frame>, FlvError> {
    match packet_type {
        SEQUENCE_START if data.len() < 2 => Err(FlvError::ShortAacConfig(data.len())),
        SEQUENCE_START => Ok(Some(Frame::AudioConfig(AudioCodec::Aac { config: data }))),
        CODED_FRAMES if data.is_empty() => Ok(None),
        CODED_FRAMES => Ok(Some(Frame::Audio(AudioFrame {
            pts: ms_to_ticks(ms),
            data,
        }))),
        value => Err(FlvError::UnknownPacketType { kind, value }),
    }
}

/// The channel count of an Opus identification header (RFC 7845 5.1: "OpusHead", version,
/// channel count, ...). Only mono and stereo go on to WebRTC without a mapping family.
fn opus_head(data: &[u8]) -> Result<u8, FlvError> {
    if data.len() < 19 || &data[..8] != b"OpusHead" {
        return Err(FlvError::BadOpusHead);
    }
    match data[9] {
        channels @ (1 | 2) => Ok(channels),
        channels => Err(FlvError::UnsupportedCodec(format!(
            "opus with {channels} channels"
        ))),
    }
}

/// Skip E-RTMP v2 ModEx records (each: a size byte, or 255 then a 16-bit size, both minus
/// one; the data; then a byte whose low nibble is the real packet type). The only ModEx type
/// defined so far is a nanosecond timestamp offset, below the 90 kHz clock's resolution.
fn skip_mod_ex(body: &[u8], mut packet_type: u8, mut pos: usize) -> Result<(u8, usize), FlvError> {
    const TRUNCATED: FlvError = FlvError::Truncated("E-RTMP ModEx");
    while packet_type == MOD_EX {
        let mut size = usize::from(*body.get(pos).ok_or(TRUNCATED)?) + 1;
        pos += 1;
        if size == 256 {
            let wide = body.get(pos..pos + 2).ok_or(TRUNCATED)?;
            size = usize::from(u16::from_be_bytes([wide[0], wide[1]])) + 1;
            pos += 2;
        }
        pos += size;
        packet_type = *body.get(pos).ok_or(TRUNCATED)? & 0x0f;
        pos += 1;
    }
    Ok((packet_type, pos))
}

/// A signed 24-bit big-endian integer (FLV SI24).
fn si24(bytes: [u8; 3]) -> i32 {
    // Place it in the top three bytes and shift back down to sign-extend.
    i32::from_be_bytes([bytes[0], bytes[1], bytes[2], 0]) >> 8
}

fn ms_to_ticks(ms: i64) -> Ticks {
    ms * 90
}

fn legacy_video_codec(codec: u8) -> String {
    match codec {
        1 => "jpeg".into(),
        2 => "h263".into(),
        3 => "screen video".into(),
        4 => "vp6".into(),
        5 => "vp6 alpha".into(),
        6 => "screen video 2".into(),
        // Not in any FLV specification, but CDNs in China use 12 for HEVC.
        12 => "hevc".into(),
        other => format!("video codec id {other}"),
    }
}

fn legacy_sound_format(format: u8) -> String {
    match format {
        0 => "pcm".into(),
        1 => "adpcm".into(),
        2 => "mp3".into(),
        3 => "pcm-le".into(),
        4..=6 => "nellymoser".into(),
        7 => "g711a".into(),
        8 => "g711u".into(),
        11 => "speex".into(),
        14 => "mp3".into(),
        other => format!("sound format {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::VideoConfig;

    const SPS: &[u8] = &[0x67, 0x64, 0x00, 0x1f, 0xac];
    const PPS: &[u8] = &[0x68, 0xee, 0x3c, 0x80];

    fn avcc() -> Vec<u8> {
        let mut r = vec![1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, SPS.len() as u8];
        r.extend_from_slice(SPS);
        r.extend_from_slice(&[1, 0, PPS.len() as u8]);
        r.extend_from_slice(PPS);
        r
    }

    fn config() -> Frame {
        Frame::VideoConfig(VideoConfig {
            sps: vec![Bytes::from_static(SPS)],
            pps: vec![Bytes::from_static(PPS)],
        })
    }

    fn length_prefixed(nalus: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for nal in nalus {
            out.extend_from_slice(&(nal.len() as u32).to_be_bytes());
            out.extend_from_slice(nal);
        }
        out
    }

    fn legacy(frame_type: u8, packet_type: u8, cts: i32, payload: &[u8]) -> Bytes {
        let cts = cts.to_be_bytes();
        let mut body = vec![(frame_type << 4) | 7, packet_type, cts[1], cts[2], cts[3]];
        body.extend_from_slice(payload);
        Bytes::from(body)
    }

    fn video(frame: Result<Option<Frame>, FlvError>) -> VideoFrame {
        match frame {
            Ok(Some(Frame::Video(v))) => v,
            other => panic!("expected a video frame, got {other:?}"),
        }
    }

    #[test]
    fn legacy_avc_sequence_header_then_frames_with_composition_time() {
        let mut d = FlvDemuxer::new();
        assert_eq!(d.video(0, &legacy(1, 0, 0, &avcc())), Ok(Some(config())));
        let idr = video(d.video(
            1000,
            &legacy(1, 1, 66, &length_prefixed(&[&[0x06, 5], &[0x65, 0x88]])),
        ));
        assert_eq!((idr.dts, idr.pts, idr.keyframe), (90_000, 95_940, true));
        assert_eq!(
            idr.nalus,
            vec![Bytes::from_static(&[0x06, 5]), Bytes::from_static(&[0x65, 0x88])]
        );
        // A B-frame stream with negative offsets (ffmpeg's `-bf` with an edit list).
        let b = video(d.video(1033, &legacy(2, 1, -33, &length_prefixed(&[&[0x01, 0x9e]]))));
        assert_eq!((b.dts, b.pts, b.keyframe), (92_970, 90_000, false));
        assert_eq!(d.video(1066, &legacy(1, 2, 0, &[])), Ok(None));
    }

    #[test]
    fn keyframe_means_an_idr_slice_not_the_flv_frame_type() {
        let mut d = FlvDemuxer::new();
        d.video(0, &legacy(1, 0, 0, &avcc()))
            .expect("valid sequence header");
        // Marked key but only a recovery-point I-slice (type 1).
        assert!(!video(d.video(0, &legacy(1, 1, 0, &length_prefixed(&[&[0x41, 0x9a]])))).keyframe);
        // Marked inter but holds an IDR slice.
        assert!(video(d.video(0, &legacy(2, 1, 0, &length_prefixed(&[&[0x65, 0x88]])))).keyframe);
    }

    #[test]
    fn frames_before_the_sequence_header_are_refused() {
        let mut d = FlvDemuxer::new();
        assert_eq!(
            d.video(0, &legacy(1, 1, 0, &length_prefixed(&[&[0x65]]))),
            Err(FlvError::NoSequenceHeader)
        );
    }

    #[test]
    fn the_nal_length_size_comes_from_the_last_sequence_header() {
        let mut d = FlvDemuxer::new();
        let mut record = avcc();
        record[4] = 0xfd; // 2-byte lengths
        d.video(0, &legacy(1, 0, 0, &record))
            .expect("valid sequence header");
        let frame = video(d.video(0, &legacy(1, 1, 0, &[0, 2, 0x65, 0x88, 0, 1, 0x06])));
        assert_eq!(frame.nalus.len(), 2);
        // A length past the end is refused rather than cut.
        assert!(matches!(
            d.video(0, &legacy(1, 1, 0, &[0, 9, 0x65])),
            Err(FlvError::Avc(_))
        ));
    }

    fn ex(frame_type: u8, packet_type: u8, fourcc: &[u8; 4], rest: &[u8]) -> Bytes {
        let mut body = vec![0x80 | (frame_type << 4) | packet_type];
        body.extend_from_slice(fourcc);
        body.extend_from_slice(rest);
        Bytes::from(body)
    }

    #[test]
    fn enhanced_rtmp_avc1_is_read_like_legacy_avc() {
        let mut d = FlvDemuxer::new();
        assert_eq!(d.video(0, &ex(1, 0, b"avc1", &avcc())), Ok(Some(config())));
        let mut with_cts = vec![0, 0, 40];
        with_cts.extend(length_prefixed(&[&[0x65, 1]]));
        let f = video(d.video(10, &ex(1, 1, b"avc1", &with_cts)));
        assert_eq!((f.dts, f.pts, f.keyframe), (900, 4500, true));
        let x = video(d.video(20, &ex(2, 3, b"avc1", &length_prefixed(&[&[0x41, 1]]))));
        assert_eq!((x.dts, x.pts, x.keyframe), (1800, 1800, false));
        assert_eq!(d.video(30, &ex(1, 2, b"avc1", &[])), Ok(None));
        // Metadata and command frames carry no picture.
        assert_eq!(d.video(30, &ex(1, 4, b"avc1", &[2, 0, 9])), Ok(None));
        assert_eq!(d.video(30, &Bytes::from_static(&[0x80 | 0x50 | 1, 0])), Ok(None));
    }

    #[test]
    fn enhanced_rtmp_mod_ex_records_are_skipped() {
        let mut d = FlvDemuxer::new();
        d.video(0, &ex(1, 0, b"avc1", &avcc()))
            .expect("valid sequence header");
        // ModEx: 3 bytes of nanosecond offset, then type TimestampOffsetNano (0) | CodedFramesX.
        let mut body = vec![0x80 | 0x10 | MOD_EX, 2, 0, 0x01, 0x00, 0x03];
        body.extend_from_slice(b"avc1");
        body.extend(length_prefixed(&[&[0x65, 1]]));
        assert!(video(d.video(0, &Bytes::from(body))).keyframe);
        assert_eq!(
            d.video(0, &Bytes::from_static(&[0x80 | MOD_EX, 200, 0])),
            Err(FlvError::Truncated("E-RTMP ModEx"))
        );
    }

    #[test]
    fn other_video_codecs_are_named_in_the_error() {
        let mut d = FlvDemuxer::new();
        for fourcc in [b"hvc1", b"av01", b"vp09"] {
            let name = String::from_utf8_lossy(fourcc).into_owned();
            assert_eq!(
                d.video(0, &ex(1, 0, fourcc, &[1, 2, 3])),
                Err(FlvError::UnsupportedCodec(name))
            );
        }
        assert_eq!(
            d.video(0, &Bytes::from_static(&[0x1c, 0, 0, 0, 0])),
            Err(FlvError::UnsupportedCodec("hevc".into()))
        );
        assert_eq!(
            d.video(0, &Bytes::from_static(&[0x12, 0])),
            Err(FlvError::UnsupportedCodec("h263".into()))
        );
        assert_eq!(
            d.video(0, &ex(1, 6, b"avc1", &[])),
            Err(FlvError::Unsupported("E-RTMP multitrack video"))
        );
    }

    #[test]
    fn aac_config_and_frames() {
        let mut d = FlvDemuxer::new();
        let config = d.audio(0, &Bytes::from_static(&[0xaf, 0, 0x12, 0x10]));
        assert_eq!(
            config,
            Ok(Some(Frame::AudioConfig(AudioCodec::Aac {
                config: Bytes::from_static(&[0x12, 0x10])
            })))
        );
        let frame = d.audio(21, &Bytes::from_static(&[0xaf, 1, 0x21, 0x10, 0x04]));
        assert_eq!(
            frame,
            Ok(Some(Frame::Audio(AudioFrame {
                pts: 1890,
                data: Bytes::from_static(&[0x21, 0x10, 0x04])
            })))
        );
        assert_eq!(
            d.audio(0, &Bytes::from_static(&[0xaf, 0, 0x12])),
            Err(FlvError::ShortAacConfig(1))
        );
        assert_eq!(
            d.audio(0, &Bytes::from_static(&[0xaf, 7])),
            Err(FlvError::UnknownPacketType {
                kind: "AAC",
                value: 7
            })
        );
        assert_eq!(
            d.audio(0, &Bytes::from_static(&[0x2f, 0xff])),
            Err(FlvError::UnsupportedCodec("mp3".into()))
        );
    }

    #[test]
    fn enhanced_rtmp_audio() {
        let mut d = FlvDemuxer::new();
        let mut head = b"OpusHead".to_vec();
        head.extend_from_slice(&[1, 2, 0x38, 1, 0x80, 0xbb, 0, 0, 0, 0, 0]);
        let mut body = vec![0x90 | SEQUENCE_START];
        body.extend_from_slice(b"Opus");
        body.extend_from_slice(&head);
        assert_eq!(
            d.audio(0, &Bytes::from(body)),
            Ok(Some(Frame::AudioConfig(AudioCodec::Opus { channels: 2 })))
        );
        let packet = d.audio(20, &Bytes::from_static(b"\x91Opus\xfc\xff\xfe"));
        assert_eq!(
            packet,
            Ok(Some(Frame::Audio(AudioFrame {
                pts: 1800,
                data: Bytes::from_static(&[0xfc, 0xff, 0xfe])
            })))
        );
        let aac = d.audio(0, &Bytes::from_static(b"\x90mp4a\x12\x10"));
        assert_eq!(
            aac,
            Ok(Some(Frame::AudioConfig(AudioCodec::Aac {
                config: Bytes::from_static(&[0x12, 0x10])
            })))
        );
        assert_eq!(
            d.audio(0, &Bytes::from_static(b"\x90fLaC")),
            Err(FlvError::UnsupportedCodec("fLaC".into()))
        );
    }

    #[test]
    fn timestamps_extend_across_the_32_bit_wrap() {
        let mut d = FlvDemuxer::new();
        d.video(u32::MAX - 40, &legacy(1, 0, 0, &avcc()))
            .expect("valid sequence header");
        let nal = length_prefixed(&[&[0x41, 1]]);
        let before = video(d.video(u32::MAX - 9, &legacy(2, 1, 0, &nal)));
        // Audio slightly behind video does not count as a wrap.
        d.audio(u32::MAX - 20, &Bytes::from_static(&[0xaf, 1, 1]))
            .expect("raw AAC");
        let after = video(d.video(23, &legacy(2, 1, 0, &nal)));
        assert_eq!(after.dts - before.dts, 33 * 90);
        assert_eq!(after.dts, (i64::from(u32::MAX) + 24) * 90);
    }

    #[test]
    fn si24_sign_extends() {
        assert_eq!(si24([0, 0, 1]), 1);
        assert_eq!(si24([0xff, 0xff, 0xff]), -1);
        assert_eq!(si24([0x80, 0, 0]), -(1 << 23));
        assert_eq!(si24([0x7f, 0xff, 0xff]), (1 << 23) - 1);
    }

    proptest::proptest! {
        /// Arbitrary bodies never panic the demuxer, and a frame never holds more than the
        /// body: at most one NAL unit per byte, no byte twice.
        #[test]
        fn arbitrary_bodies_never_panic(
            messages in proptest::collection::vec(
                (proptest::bool::ANY, proptest::num::u32::ANY, proptest::collection::vec(proptest::num::u8::ANY, 0..200)),
                0..20,
            ),
        ) {
            let mut d = FlvDemuxer::new();
            // Start with a valid sequence header so that coded frames get split too.
            d.video(0, &legacy(1, 0, 0, &avcc())).expect("valid sequence header");
            for (is_video, timestamp, body) in messages {
                let body = Bytes::from(body);
                let frame = if is_video { d.video(timestamp, &body) } else { d.audio(timestamp, &body) };
                if let Ok(Some(Frame::Video(v))) = frame {
                    proptest::prop_assert!(v.nalus.len() <= body.len());
                    proptest::prop_assert!(v.nalus.iter().map(Bytes::len).sum::<usize>() <= body.len());
                }
            }
        }
    }
}
