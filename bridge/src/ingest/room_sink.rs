//! An ingest publication as a room's publisher: frames in, RTP into the room.
//!
//! The protocol adapter pushes [`Frame`]s into a bounded queue; one thread per publication
//! takes them and:
//!
//! * **video**: H.264 without B-frames, in a profile browsers decode, is packetised as it is
//!   (RFC 6184 mode 1; SPS and PPS ahead of every keyframe). A source with B-frames (a frame
//!   whose presentation time differs from its decode time) or another profile goes through
//!   one [`Reencoder`] from then on: WebRTC decoders do not reorder frames.
//! * **audio**: AAC becomes Opus ([`AacToOpus`]); Opus passes through.
//!
//! Both tracks share one anchor (the first frame's source time and arrival), so they stay in
//! step, and each packet carries its capture time for LL-HLS. The room's keyframe requests
//! reach a re-encode; a passthrough source cannot be asked (viewers start from the room's
//! GOP cache instead). When the SFU ends the source (a newer publisher, a key rotation, the
//! stream stopped), the next push answers [`SinkClosed`] and the adapter closes its
//! connection.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use ingest::h264::{Sps, browser_decodable, parse_sps, split_annex_b};
use ingest::rtp_h264::H264Payloader;
use ingest::{AudioCodec, Frame, Sink, SinkClosed, VideoConfig, VideoFrame};
use sfu::RoomSource;
use tracing::{info, warn};

use super::filter::Output;
use super::opus::AacToOpus;
use super::reencode::Reencoder;
use super::rtp_out::{Anchor, TrackOut, send, send_at};

/// Frames queued between the adapter and the conversion thread.
const QUEUE: usize = 512;
/// Largest RTP payload.
const MTU: usize = 1200;
/// The profile-level-id of the re-encoder's output (Main, level 3.1).
const REENCODED_PROFILE: u32 = 0x4d_00_1f;
/// Re-encode bit rate.
const REENCODE_KBPS: u32 = 2_500;
/// A re-encode's keyframes are forced this far apart in source time (90 kHz), the LL-HLS
/// segment target, so the bridge can copy it as its top rung (viewers' requests add more).
const REENCODE_GOP: i64 = 2 * 90_000;

/// What the thread and the sink share.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// The SFU ended the source.
    pub ended: AtomicBool,
    /// Frames dropped because the thread fell behind.
    pub dropped: AtomicU64,
    /// Problems to show in the stream's health.
    pub problems: Mutex<Vec<String>>,
    /// Whether video is re-encoded.
    pub reencoding: AtomicBool,
    /// The picture size of the H.264 the room gets (passed through or re-encoded), from its
    /// current SPS: the LL-HLS bridge copies it as its top rung when it is the top rendition's.
    pub sent_size: Mutex<Option<(u32, u32)>>,
    /// The source's AudioSpecificConfig while its AAC is converted (the bridge copies it).
    pub aac_config: Mutex<Option<Bytes>>,
    /// The LL-HLS bridges taking the source's AAC frames as they came.
    pub aac_taps: Mutex<Vec<SyncSender<SourceAac>>>,
}

/// One AAC frame of an ingest source as it came, for the LL-HLS bridge to copy instead of
/// decoding the room's Opus and encoding AAC again.
#[derive(Debug, Clone)]
pub struct SourceAac {
    /// The AudioSpecificConfig it goes with.
    pub config: Bytes,
    /// When it was captured, on the clock of the room's packets' capture times.
    pub capture: SystemTime,
    /// The raw AAC frame (no ADTS header).
    pub data: Bytes,
}

impl Shared {
    /// Note a problem once.
    fn problem(&self, message: String) {
        let mut p = self.problems.lock().unwrap_or_else(PoisonError::into_inner);
        if !p.contains(&message) {
            p.push(message);
        }
    }

    fn sent_size(&self, size: Option<(u32, u32)>) {
        *lock(&self.sent_size) = size;
    }

    /// Hands an AAC frame to every bridge that takes them (with none, nothing is built); a
    /// bridge that fell behind loses it (its packager fills the hole), one that is gone is
    /// forgotten.
    fn tap_aac(&self, frame: impl FnOnce() -> SourceAac) {
        let mut taps = lock(&self.aac_taps);
        if taps.is_empty() {
            return;
        }
        let frame = frame();
        taps.retain(|tap| !matches!(tap.try_send(frame.clone()), Err(TrySendError::Disconnected(_))));
    }
}

/// The adapter's end.
pub struct RoomSink {
    stream: String,
    /// Each frame with when it reached the sink.
    frames: SyncSender<(Instant, Frame)>,
    shared: Arc<Shared>,
    /// Video was dropped; more is dropped until a keyframe.
    video_gap: bool,
}

impl RoomSink {
    pub(crate) fn start(stream: &str, source: RoomSource, shared: Arc<Shared>) -> std::io::Result<RoomSink> {
        let (tx, rx) = sync_channel(QUEUE);
        let thread_shared = shared.clone();
        std::thread::Builder::new()
            .name(format!("ingest-{}", &stream[..stream.len().min(8)]))
            .spawn(move || Converter::new(source, thread_shared).run(&rx))?;
        Ok(RoomSink {
            stream: stream.to_string(),
            frames: tx,
            shared,
            video_gap: false,
        })
    }
}

impl Sink for RoomSink {
    fn push(&mut self, frame: Frame) -> Result<(), SinkClosed> {
        if self.shared.ended.load(Ordering::Relaxed) {
            return Err(SinkClosed);
        }
        if let Frame::Video(v) = &frame {
            if self.video_gap && !v.keyframe {
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            self.video_gap = false;
        }
        match self.frames.try_send((Instant::now(), frame)) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full((_, f))) => {
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                if matches!(f, Frame::Video(_)) {
                    self.video_gap = true;
                }
                Ok(())
            }
            Err(TrySendError::Disconnected(_)) => Err(SinkClosed),
        }
    }

    fn stream(&self) -> &str {
        &self.stream
    }

    fn problem(&mut self, message: String) {
        self.shared.problem(message);
    }
}

/// Video as it leaves for the room (shared with the re-encoder's output thread).
struct VideoOut {
    track: TrackOut,
    payloader: H264Payloader,
    config: Option<VideoConfig>,
}

struct AudioOut {
    track: TrackOut,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VideoMode {
    /// Waiting for the first frame to decide.
    Undecided,
    Passthrough,
    Reencode,
}

/// The conversion thread's state.
struct Converter {
    source: Arc<RoomSource>,
    shared: Arc<Shared>,
    anchor: Option<Anchor>,
    config: Option<VideoConfig>,
    /// The profile-level-id of `config`.
    profile: u32,
    /// The picture size of `config`.
    size: Option<(u32, u32)>,
    mode: VideoMode,
    video: Arc<Mutex<VideoOut>>,
    audio: Arc<Mutex<AudioOut>>,
    reencoder: Option<Reencoder>,
    /// The re-encoder's time zero as a source time, with the anchor (set at its first input).
    reencoder_zero: Zero,
    /// Re-encoding waits for a keyframe to start from.
    reencode_waits: bool,
    /// The source decode time at which the re-encode's next keyframe is forced.
    reencode_next_key: Option<i64>,
    aac: Option<AacToOpus>,
    /// The AudioSpecificConfig `aac` converts.
    aac_config: Option<Bytes>,
    aac_zero: Zero,
    opus_passthrough: bool,
}

/// A filter's time zero as a source time, with the anchor; set at its first input, read by its
/// output callback.
type Zero = Arc<Mutex<Option<(i64, Anchor)>>>;

/// Why a source's video is re-encoded rather than passed through; `None` to pass it through.
fn reencode_reason(config: &VideoConfig, first: &VideoFrame) -> Option<String> {
    let Some(sps) = first_sps(config) else {
        return Some("its SPS cannot be read".into());
    };
    if !browser_decodable(sps.profile_idc) || sps.chroma_format_idc != 1 || !sps.frame_mbs_only {
        return Some(format!(
            "H.264 profile {} (chroma format {}, {}) is not decoded by browsers",
            sps.profile_idc,
            sps.chroma_format_idc,
            if sps.frame_mbs_only {
                "progressive"
            } else {
                "interlaced"
            }
        ));
    }
    if first.pts != first.dts || sps.max_num_reorder_frames.is_some_and(|n| n > 0) {
        return Some("it has B-frames, which WebRTC decoders show out of order".into());
    }
    None
}

/// The RFC 6184 profile-level-id a viewer's codec is matched on, from the source's SPS: the
/// profile class exactly (browsers offer these four), the level as 3.1 (only a preference).
fn profile_level_id(sps: Option<&Sps>) -> u32 {
    let Some(sps) = sps else {
        return REENCODED_PROFILE;
    };
    match sps.profile_idc {
        66 if sps.constraint_flags & 0x40 != 0 => 0x42_e0_1f,
        66 => 0x42_00_1f,
        77 => 0x4d_00_1f,
        _ => 0x64_00_1f,
    }
}

/// An access unit in Annex B, with the parameter sets ahead of a keyframe.
fn annex_b(config: Option<&VideoConfig>, v: &VideoFrame) -> Vec<u8> {
    let mut out = Vec::new();
    let mut nal = |n: &[u8]| {
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(n);
    };
    if v.keyframe
        && let Some(c) = config
    {
        c.sps.iter().chain(&c.pps).for_each(|n| nal(n));
    }
    v.nalus.iter().for_each(|n| nal(n));
    out
}

impl Converter {
    fn new(source: RoomSource, shared: Arc<Shared>) -> Converter {
        Converter {
            source: Arc::new(source),
            shared,
            anchor: None,
            config: None,
            profile: REENCODED_PROFILE,
            size: None,
            mode: VideoMode::Undecided,
            video: Arc::new(Mutex::new(VideoOut {
                track: TrackOut::h264(REENCODED_PROFILE),
                payloader: H264Payloader::new(MTU),
                config: None,
            })),
            audio: Arc::new(Mutex::new(AudioOut {
                track: TrackOut::opus(),
            })),
            reencoder: None,
            reencoder_zero: Zero::default(),
            reencode_waits: true,
            reencode_next_key: None,
            aac: None,
            aac_config: None,
            aac_zero: Zero::default(),
            opus_passthrough: false,
        }
    }

    fn run(mut self, frames: &Receiver<(Instant, Frame)>) {
        loop {
            match frames.recv_timeout(Duration::from_millis(250)) {
                Ok((at, frame)) => self.frame(at, frame),
                Err(RecvTimeoutError::Timeout) => {}
                // The adapter dropped its sink: the publication is over.
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if !self.source.is_live() {
                self.shared.ended.store(true, Ordering::Relaxed);
                break;
            }
            if self.source.keyframe_wanted()
                && let Some(r) = &self.reencoder
            {
                r.force_keyframe();
            }
        }
        info!(stream = self.source.room(), "ingest conversion ended");
    }

    fn anchor(&mut self, ticks: i64) -> Anchor {
        *self.anchor.get_or_insert(Anchor {
            ticks,
            wall: SystemTime::now(),
        })
    }

    fn problem(&self, message: String) {
        warn!(stream = self.source.room(), "{message}");
        self.shared.problem(message);
    }

    /// One frame from the adapter, which got it at `at`.
    fn frame(&mut self, at: Instant, frame: Frame) {
        match frame {
            Frame::VideoConfig(c) => self.set_config(c),
            Frame::Video(v) => self.video(at, v),
            Frame::AudioConfig(AudioCodec::Aac { config }) => self.start_aac(&config),
            Frame::AudioConfig(AudioCodec::Opus { .. }) => {
                self.aac = None;
                self.set_aac_config(None);
                self.opus_passthrough = true;
            }
            Frame::Audio(a) => {
                let anchor = self.anchor(a.pts);
                if let Some(aac) = &mut self.aac {
                    if let Some(config) = &self.aac_config {
                        self.shared.tap_aac(|| SourceAac {
                            config: config.clone(),
                            capture: anchor.capture(a.pts),
                            data: a.data.clone(),
                        });
                    }
                    let pushed = aac.push(a.pts, &a.data);
                    let mut zero = lock(&self.aac_zero);
                    if zero.is_none()
                        && let Some(base) = aac.base()
                    {
                        *zero = Some((base, anchor));
                    }
                    drop(zero);
                    if let Err(e) = pushed {
                        self.problem(format!("audio conversion failed: {e}"));
                        self.aac = None;
                        self.set_aac_config(None);
                    }
                } else if self.opus_passthrough {
                    let rtp = ((a.pts - anchor.ticks).max(0) as u64) * 48 / 90;
                    let capture = Some(anchor.capture(a.pts));
                    let mut out = lock(&self.audio);
                    let packets = out.track.packets(rtp, capture, vec![(a.data, true)]);
                    send_at(&self.source, at, packets);
                }
            }
        }
    }

    /// New parameter sets: the profile viewers are answered with is read from them once.
    fn set_config(&mut self, c: VideoConfig) {
        let sps = first_sps(&c);
        self.profile = profile_level_id(sps.as_ref());
        self.size = sps.map(|s| (s.width, s.height));
        self.config = Some(c);
    }

    fn video(&mut self, at: Instant, v: VideoFrame) {
        let anchor = self.anchor(v.dts);
        if let Some(c) = config_in_band(&v)
            && self.config.as_ref() != Some(&c)
        {
            self.set_config(c);
        }
        if self.mode == VideoMode::Undecided {
            let Some(config) = &self.config else {
                return;
            };
            if !v.keyframe {
                return;
            }
            match reencode_reason(config, &v) {
                Some(why) => {
                    info!(stream = self.source.room(), "video is re-encoded: {why}");
                    self.mode = VideoMode::Reencode;
                }
                None => {
                    info!(stream = self.source.room(), "video passes through");
                    self.mode = VideoMode::Passthrough;
                }
            }
        } else if self.mode == VideoMode::Passthrough && v.pts != v.dts {
            info!(
                stream = self.source.room(),
                "B-frames appeared: video is re-encoded from the next keyframe"
            );
            self.mode = VideoMode::Reencode;
        }
        match self.mode {
            VideoMode::Undecided => {}
            VideoMode::Passthrough => {
                let mut out = lock(&self.video);
                out.track.set_h264_profile(self.profile);
                let payloads = out.payloader.payload(self.config.as_ref(), &v);
                let rtp = (v.pts - anchor.ticks).max(0) as u64;
                let packets = out.track.packets(rtp, Some(anchor.capture(v.pts)), payloads);
                drop(out);
                // A new size only comes with a keyframe's parameter sets.
                if v.keyframe {
                    self.shared.sent_size(self.size);
                }
                send_at(&self.source, at, packets);
            }
            VideoMode::Reencode => self.reencode(&v, anchor),
        }
    }

    fn reencode(&mut self, v: &VideoFrame, anchor: Anchor) {
        if self.reencoder.is_none() {
            self.shared.reencoding.store(true, Ordering::Relaxed);
            let video = self.video.clone();
            let source = self.source.clone();
            let at = self.reencoder_zero.clone();
            let shared = self.shared.clone();
            let started = Reencoder::start(REENCODE_KBPS, move |o: Output| {
                let Some((base, anchor)) = *lock(&at) else {
                    return;
                };
                let ticks = base + (o.pts_ns as i64) * 9 / 100_000;
                let frame = VideoFrame {
                    dts: ticks,
                    pts: ticks,
                    keyframe: o.keyframe,
                    nalus: split_annex_b(&Bytes::from(o.data)),
                };
                let mut out = lock(&video);
                out.track.set_h264_profile(REENCODED_PROFILE);
                if let Some(c) = config_in_band(&frame)
                    && out.config.as_ref() != Some(&c)
                {
                    shared.sent_size(first_sps(&c).map(|s| (s.width, s.height)));
                    out.config = Some(c);
                }
                let config = out.config.clone();
                let payloads = out.payloader.payload(config.as_ref(), &frame);
                let rtp = (ticks - anchor.ticks).max(0) as u64;
                let packets = out.track.packets(rtp, Some(anchor.capture(ticks)), payloads);
                drop(out);
                send(&source, packets);
            });
            match started {
                Ok(r) => self.reencoder = Some(r),
                Err(e) => {
                    self.problem(format!("video cannot be re-encoded: {e}"));
                    return;
                }
            }
        }
        if self.reencode_waits && !v.keyframe {
            return;
        }
        self.reencode_waits = false;
        let Some(r) = &mut self.reencoder else { return };
        let next_key = *self.reencode_next_key.get_or_insert(v.dts + REENCODE_GOP);
        if v.dts >= next_key {
            r.force_keyframe();
            let missed = (v.dts - next_key) / REENCODE_GOP;
            self.reencode_next_key = Some(next_key + (missed + 1) * REENCODE_GOP);
        }
        let pushed = r.push(v.dts, v.pts, annex_b(self.config.as_ref(), v));
        let mut zero = lock(&self.reencoder_zero);
        if zero.is_none()
            && let Some(base) = r.base()
        {
            *zero = Some((base, anchor));
        }
        drop(zero);
        if let Err(e) = pushed {
            self.problem(format!(
                "video re-encode failed: {e}; restarting at the next keyframe"
            ));
            self.reencoder = None;
            *lock(&self.reencoder_zero) = None;
            self.reencode_waits = true;
            self.reencode_next_key = None;
        }
    }

    /// The AAC the source sends (`None`: not AAC, or not converted).
    fn set_aac_config(&mut self, config: Option<Bytes>) {
        self.aac_config.clone_from(&config);
        *lock(&self.shared.aac_config) = config;
    }

    fn start_aac(&mut self, config: &Bytes) {
        let audio = self.audio.clone();
        let source = self.source.clone();
        // The conversion's time zero is its first input; the anchor maps it back.
        let zero = Zero::default();
        let at = zero.clone();
        let started = AacToOpus::start(config, move |o: Output| {
            let Some((base, anchor)) = *at.lock().unwrap_or_else(PoisonError::into_inner) else {
                return;
            };
            let ticks = base + (o.pts_ns as i64) * 9 / 100_000;
            let rtp = ((ticks - anchor.ticks).max(0) as u64) * 48 / 90;
            let mut out = lock(&audio);
            let packets = out.track.packets(
                rtp,
                Some(anchor.capture(ticks)),
                vec![(Bytes::from(o.data), true)],
            );
            send(&source, packets);
        });
        match started {
            Ok(aac) => {
                self.aac = Some(aac);
                self.opus_passthrough = false;
                self.aac_zero = zero;
                self.set_aac_config(Some(config.clone()));
            }
            Err(e) => self.problem(format!("AAC audio cannot be converted to Opus: {e}")),
        }
    }
}

/// The first SPS of `config`, read.
fn first_sps(config: &VideoConfig) -> Option<Sps> {
    config.sps.first().and_then(|s| parse_sps(s).ok())
}

/// The parameter sets an access unit carries in band, if it has both.
fn config_in_band(v: &VideoFrame) -> Option<VideoConfig> {
    let of = |t: u8| -> Vec<Bytes> {
        v.nalus
            .iter()
            .filter(|n| n.first().is_some_and(|b| b & 0x1f == t))
            .cloned()
            .collect()
    };
    let c = VideoConfig {
        sps: of(7),
        pps: of(8),
    };
    (!c.sps.is_empty() && !c.pps.is_empty()).then_some(c)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
