//! A room's transcoder: the tap's RTP in, the LL-HLS ladder out.
//!
//! [`Transcoder::start`] builds a GStreamer pipeline in code for a [`TranscodeConfig`] (the
//! room's video codec and audio, the renditions, the encoder the probe chose), plays it, and
//! pushes every encoded access unit into an [`hls::MediaSink`] from a thread of its own.
//! [`Transcoder::push`] feeds it one [`TapPacket`]: each packet's time is its track's
//! [`clock`] (the publisher's capture time when its sender reports are known), so the anchor
//! plus an access unit's pts is when its frame was captured, and PROGRAM-DATE-TIME tells the
//! true glass-to-glass latency.
//!
//! VP8, VP9 and H.264 go to GStreamer's depayloaders as RTP. AV1 is depacketized here
//! (`av1`: GStreamer 1.22 has none) and reaches `av1parse` as whole temporal units, each at
//! its first packet's time; a gap it sees asks the publisher for a keyframe the same way as a
//! depayloader's request ([`Transcoder::take_keyframe_request`]).
//!
//! What the bridge does around it (choosing when to start, restarting on faults and after a
//! publisher's absence) lives in [`crate::live`].

mod av1;
mod bits;
pub mod clock;
pub mod frame_size;
mod pipeline;
pub mod preroll;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use sfu::{MediaKind, TapPacket};

use crate::Error;
use crate::encoder::EncoderChoice;
use crate::ladder::{Rendition, SpeedPreset};
use crate::media::keyframes::SourceKeyframes;
use crate::media::pusher::Pusher;
use crate::media::running::Running;
use clock::{Basis, TrackClock, WallClock};
pub use frame_size::VideoCodec;
pub use preroll::{AudioInput, Plan, Preroll, VideoInput};

/// The anchor sits this far before the first packet, so audio that began a little earlier
/// than the keyframe keeps a positive pts.
const ANCHOR_LEAD: Duration = Duration::from_millis(200);

/// What a room's transcoder makes.
#[derive(Debug, Clone)]
pub struct TranscodeConfig {
    /// The room's video, `None` for audio only.
    pub video: Option<VideoInput>,
    /// The room's audio, `None` for video only.
    pub audio: Option<AudioInput>,
    /// The ladder, top first (see [`crate::ladder::for_source`]).
    pub renditions: Vec<Rendition>,
    /// Output frames per second of every rung.
    pub frame_rate: u32,
    /// Distance between keyframes, the same instants on every rung.
    pub keyframe_interval: Duration,
    /// The encoder and where frames are decoded and scaled.
    pub encoder: EncoderChoice,
    /// x264's speed preset.
    pub speed_preset: SpeedPreset,
    /// AAC bit rate, bit/s.
    pub audio_bitrate: u32,
    /// `Some(window)`: the source's H.264 is the top rung as it is (an ingest source whose
    /// size is the top rendition's), not decoded for it and not encoded again, and its
    /// keyframes are checked against the packager's segment window
    /// ([`hls::StreamConfig::keyframe_window`]; see [`Transcoder::copy_misfit`]).
    pub copy_top: Option<std::ops::RangeInclusive<Duration>>,
    /// `Some(AudioSpecificConfig)`: the audio is an ingest source's AAC, pushed with
    /// [`Transcoder::push_aac`] and copied to the audio rendition as it is; the room's Opus
    /// is not used.
    pub audio_copy: Option<bytes::Bytes>,
}

impl TranscodeConfig {
    pub(crate) fn keyframe_interval_frames(&self) -> u32 {
        (self.keyframe_interval.as_secs_f64() * f64::from(self.frame_rate)).round() as u32
    }

    /// Video tracks: one per rendition, none without video. Audio comes after them.
    pub(crate) fn video_tracks(&self) -> usize {
        if self.video.is_some() {
            self.renditions.len()
        } else {
            0
        }
    }

    fn tracks(&self) -> usize {
        self.video_tracks() + usize::from(self.audio.is_some())
    }

    fn validate(&self) -> Result<(), Error> {
        let invalid = |why: &str| Err(Error::InvalidConfig(why.into()));
        if self.video.is_none() && self.audio.is_none() {
            return invalid("neither video nor audio");
        }
        if self.video.is_some() && self.renditions.is_empty() {
            return invalid("video with no renditions");
        }
        if !(1..=60).contains(&self.frame_rate) {
            return invalid("frame rate outside 1-60");
        }
        if self.keyframe_interval_frames() == 0 {
            return invalid("keyframe interval under one frame");
        }
        if self.copy_top.is_some() && self.video.is_none_or(|v| v.codec != VideoCodec::H264) {
            return invalid("only H.264 is copied as the top rung");
        }
        Ok(())
    }
}

/// How the video reaches the pipeline.
enum VideoFeed {
    /// RTP, for GStreamer's depayloader.
    Rtp(gst_app::AppSrc),
    /// Temporal units from our depacketizer, each with its first packet's wall-clock time.
    Av1 {
        src: gst_app::AppSrc,
        depacketizer: av1::Depacketizer<SystemTime>,
    },
}

impl VideoFeed {
    fn src(&self) -> &gst_app::AppSrc {
        match self {
            VideoFeed::Rtp(src) | VideoFeed::Av1 { src, .. } => src,
        }
    }
}

/// A running transcoder. Stops on [`stop`](Self::stop) or drop.
pub struct Transcoder {
    running: Running,
    video: Option<VideoFeed>,
    audio: Option<gst_app::AppSrc>,
    keyframe_wanted: Arc<AtomicBool>,
    source_keyframes: Option<Arc<SourceKeyframes>>,
    video_clock: TrackClock,
    audio_clock: TrackClock,
    wall: WallClock,
    anchor: SystemTime,
    /// What this run encodes and decodes with (an AV1 room decodes on the CPU whatever the
    /// probe found).
    encoding: EncoderChoice,
    /// The audio is the source's AAC ([`Transcoder::push_aac`]), not the room's Opus.
    audio_copy: bool,
}

impl Transcoder {
    /// Starts a transcoder for `config` that pushes into `sink`, and feeds it `first` (the
    /// preroll's packets). The anchor is set from those packets' times.
    pub fn start(
        name: &str,
        config: &TranscodeConfig,
        first: Vec<TapPacket>,
        sink: Box<dyn hls::MediaSink>,
    ) -> Result<Transcoder, Error> {
        config.validate()?;
        gst::init().map_err(|e| Error::Init(e.to_string()))?;
        pipeline::check(config)?;
        let aac_encoder = match (config.audio, &config.audio_copy) {
            (Some(_), None) => Some(crate::media::aac::encoder()?),
            _ => None,
        };
        let wall = WallClock::new(Instant::now(), SystemTime::now());
        let mut video_clock = TrackClock::new(90_000);
        let mut audio_clock = TrackClock::new(48_000);
        // A track whose sender reports have not come yet is based on the other's delay
        // (arrival minus capture), so audio and video stay in step.
        let delay = first.iter().find_map(|p| {
            Some(
                wall.wall(p.received)
                    .duration_since(p.capture?)
                    .unwrap_or_default(),
            )
        });
        let mut walls = Vec::with_capacity(first.len());
        for p in &first {
            let clock = match p.kind {
                MediaKind::Video => &mut video_clock,
                MediaKind::Audio => &mut audio_clock,
            };
            let arrival = wall.wall(p.received);
            let capture = p.capture.or_else(|| delay.map(|d| arrival - d));
            walls.push(clock.wall(p.rtp_time, capture, arrival));
        }
        let anchor = walls.iter().min().copied().unwrap_or_else(SystemTime::now) - ANCHOR_LEAD;

        let pusher = Pusher::spawn(name, sink, config.tracks()).map_err(|e| Error::Build(e.to_string()))?;
        let built = pipeline::build(name, config, aac_encoder, &pusher.feed())?;
        let base_ns = anchor
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_err(|_| Error::InvalidConfig("anchor before 1970".into()))?
            .as_nanos() as u64;
        // Running time is the wall clock minus the anchor: the caps' anchor is this base time.
        built.pipeline.set_start_time(gst::ClockTime::NONE);
        built
            .pipeline
            .set_base_time(gst::ClockTime::from_nseconds(base_ns));
        let av1 = config.video.is_some_and(|v| v.codec == VideoCodec::Av1);
        let video = built.video.map(|src| {
            if av1 {
                VideoFeed::Av1 {
                    src,
                    depacketizer: av1::Depacketizer::default(),
                }
            } else {
                VideoFeed::Rtp(src)
            }
        });
        let mut transcoder = Transcoder {
            running: Running::new(built.pipeline, pusher)?,
            video,
            audio: built.audio,
            keyframe_wanted: built.keyframe_wanted,
            source_keyframes: built.source_keyframes,
            video_clock,
            audio_clock,
            wall,
            anchor,
            encoding: pipeline::run_encoding(config),
            audio_copy: config.audio_copy.is_some(),
        };
        tracing::info!(
            transcoder = name,
            video = ?config.video,
            audio = config.audio.is_some(),
            rungs = ?config.renditions.iter().map(|r| format!("{}x{}@{}", r.width, r.height, r.bitrate)).collect::<Vec<_>>(),
            encoder = %transcoder.encoding,
            video_clock = ?transcoder.video_clock.basis(),
            audio_clock = ?transcoder.audio_clock.basis(),
            "transcoder starting"
        );
        transcoder.running.play()?;
        for (p, wall) in first.iter().zip(walls) {
            transcoder.push_at(p, wall);
        }
        Ok(transcoder)
    }

    /// The encoder and decode path this run uses (for the stream's health).
    pub fn encoding(&self) -> EncoderChoice {
        self.encoding
    }

    /// Feed one packet from the tap.
    pub fn push(&mut self, p: &TapPacket) {
        let clock = match p.kind {
            MediaKind::Video => &mut self.video_clock,
            MediaKind::Audio => &mut self.audio_clock,
        };
        let wall = clock.wall(p.rtp_time, p.capture, self.wall.wall(p.received));
        self.push_at(p, wall);
    }

    fn push_at(&mut self, p: &TapPacket, wall: SystemTime) {
        let anchor = self.anchor;
        match (p.kind, &mut self.video, &self.audio) {
            (MediaKind::Video, Some(VideoFeed::Rtp(src)), _) => {
                push_buffer(src, rtp_bytes(p), wall, anchor, true);
            }
            (MediaKind::Audio, _, Some(src)) if !self.audio_copy => {
                push_buffer(src, rtp_bytes(p), wall, anchor, true);
            }
            (MediaKind::Video, Some(VideoFeed::Av1 { src, depacketizer }), _) => {
                let packet = av1::Packet {
                    seq: p.seq,
                    rtp_time: p.rtp_time,
                    marker: p.marker,
                    payload: &p.payload,
                };
                depacketizer.push(packet, wall);
                while let Some(unit) = depacketizer.poll() {
                    push_buffer(src, unit.data, unit.tag, anchor, unit.keyframe);
                }
                if depacketizer.take_keyframe_request() {
                    self.keyframe_wanted.store(true, Ordering::Relaxed);
                }
            }
            _ => {}
        }
    }

    /// Feed one AAC frame of the source (`audio_copy`), captured at `capture`.
    pub fn push_aac(&mut self, capture: SystemTime, data: &[u8]) {
        if let (true, Some(src)) = (self.audio_copy, &self.audio) {
            push_buffer(src, data.to_vec(), capture, self.anchor, true);
        }
    }

    /// Whether an element asked for a keyframe since the last call (a gap, a decoding error):
    /// the publisher should be asked.
    pub fn take_keyframe_request(&self) -> bool {
        self.keyframe_wanted.swap(false, Ordering::Relaxed)
    }

    /// The copied source's keyframes came too far apart for a segment to end on one: its
    /// segments would start without a keyframe, and the top rung should be encoded.
    pub fn copy_misfit(&self) -> bool {
        self.source_keyframes.as_ref().is_some_and(|k| k.misfit())
    }

    /// The wall-clock time of pts 0.
    pub fn anchor(&self) -> SystemTime {
        self.anchor
    }

    /// What the track clocks are based on: (video, audio).
    pub fn clock_basis(&self) -> (Basis, Basis) {
        (self.video_clock.basis(), self.audio_clock.basis())
    }

    /// `Err` with the first error an element reported: the transcoder is broken then.
    pub fn health(&self) -> Result<(), Error> {
        self.running.health()
    }

    /// Ends the run: the inputs send end-of-stream, the encoders drain, everything reaches
    /// the sink, then its `finish` is called. Returns the first pipeline error, if any.
    pub fn stop(mut self) -> Result<(), Error> {
        let inputs: Vec<gst_app::AppSrc> = self
            .video
            .iter()
            .map(VideoFeed::src)
            .chain(&self.audio)
            .cloned()
            .collect();
        self.running.stop(Some(&move |_: &gst::Pipeline| {
            for src in &inputs {
                // Refused only when the source is already at its end.
                let _ = src.end_of_stream();
            }
        }));
        self.health()
    }

    /// Stops at once, without draining (a broken pipeline): the sink's `finish` is still called.
    pub fn abort(mut self) {
        self.running.stop(None);
    }
}

/// Pushes `data` at `wall`'s place on the pipeline's clock. `keyframe` is false for an AV1
/// unit that needs earlier ones (RTP's depayloaders find out themselves).
fn push_buffer(src: &gst_app::AppSrc, data: Vec<u8>, wall: SystemTime, anchor: SystemTime, keyframe: bool) {
    let pts = wall.duration_since(anchor).unwrap_or_default();
    let mut buffer = gst::Buffer::from_mut_slice(data);
    let b = buffer.get_mut().expect("a new buffer is writable");
    b.set_pts(gst::ClockTime::from_nseconds(pts.as_nanos() as u64));
    if !keyframe {
        b.set_flags(gst::BufferFlags::DELTA_UNIT);
    }
    // Refused only while flushing or after end-of-stream: the transcoder is stopping.
    let _ = src.push_buffer(buffer);
}

/// The packet as RTP on the wire (no extensions): what the depayloaders read.
fn rtp_bytes(p: &TapPacket) -> Vec<u8> {
    let ssrc: u32 = match p.kind {
        MediaKind::Video => 0x5649_4445,
        MediaKind::Audio => 0x4155_4449,
    };
    let mut b = Vec::with_capacity(12 + p.payload.len());
    b.push(0x80);
    b.push((u8::from(p.marker) << 7) | (*p.params.pt() & 0x7f));
    b.extend_from_slice(&(p.seq as u16).to_be_bytes());
    b.extend_from_slice(&p.rtp_time.to_be_bytes());
    b.extend_from_slice(&ssrc.to_be_bytes());
    b.extend_from_slice(&p.payload);
    b
}
