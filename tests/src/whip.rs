//! A WHIP publisher on webrtc-rs: real VP8 or H.264 video and Opus audio from the ffmpeg
//! fixtures, sent in real time, looping.
//!
//! It behaves like OBS's WHIP output: a non-trickle offer (ICE gathering completes before the
//! POST), `Authorization: Bearer <stream key>`, sendonly transceivers, no RTX, and DELETE of the
//! session resource on [`Publisher::stop`]. [`PublishOptions::obs`] is the OBS shape (H.264 +
//! Opus).
//!
//! ```no_run
//! # async fn run() -> Result<(), fanout_tests::peer::SessionError> {
//! use fanout_tests::whip::{Publisher, PublishOptions};
//! let publisher = Publisher::publish(
//!     "http://127.0.0.1:8080/whip/abc", "stream-key", PublishOptions::default()).await?;
//! // ... watch it ...
//! publisher.stop().await?;
//! # Ok(()) }
//! ```

use std::fs::File;
use std::io::BufReader;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rtc::media::Sample;
use rtc::media::io::h26x_reader::H26xSampleReader;
use rtc::media::io::ivf_reader::IVFReader;
use rtc::media::io::ogg_reader::OggReader;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_H264, MIME_TYPE_OPUS, MIME_TYPE_VP8};
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{PayloadType, RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, RTCPeerConnectionState, Registry, register_default_interceptors,
};
use webrtc::rtp_transceiver::RtpSender;

use crate::codec::VideoCodec;
use crate::fixtures;
use crate::peer::{
    PeerEvents, SessionError, apply_answer, build_peer, complete_offer, rtc_err, wait_connected,
};
use crate::signal::{Answer, IcePolicy, StatusCode, Url, http_client, parse_url, post_offer};

pub mod plain_rtp;

const VIDEO_PAYLOAD_TYPE: u8 = 96;
const H264_PAYLOAD_TYPE: u8 = 102;
const OPUS_PAYLOAD_TYPE: u8 = 111;
const H264_FMTP: &str = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f";
const OPUS_FRAME: Duration = Duration::from_millis(20);

/// What to publish and how.
#[derive(Debug, Clone)]
pub struct PublishOptions {
    /// The video codec (and so the fixture) to send.
    pub video: VideoCodec,
    /// Whether to send an Opus track too.
    pub audio: bool,
    /// Loop the 10 s fixtures until stopped; otherwise send them once.
    pub loop_forever: bool,
    /// The local address the media socket binds to (its only ICE candidate).
    pub bind_ip: IpAddr,
    /// Which of the answer's candidates to keep.
    pub ice_policy: IcePolicy,
    /// How long [`Publisher::publish`] waits for the connection to come up.
    pub connect_timeout: Duration,
    /// Picture size of the VP8 fixture (H.264 is 640x360 only).
    pub video_size: (u32, u32),
}

impl Default for PublishOptions {
    fn default() -> Self {
        Self {
            video: VideoCodec::Vp8,
            audio: true,
            loop_forever: true,
            bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            ice_policy: IcePolicy::LoopbackOnly,
            connect_timeout: Duration::from_secs(10),
            video_size: (640, 360),
        }
    }
}

impl PublishOptions {
    /// The OBS shape: H.264 constrained baseline + Opus.
    pub fn obs() -> Self {
        Self {
            video: VideoCodec::H264,
            ..Self::default()
        }
    }
}

/// What the publisher has handed to its tracks so far (counted by the pacing tasks).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PublisherStats {
    /// Video frames written (SPS/PPS not counted separately).
    pub video_frames: u64,
    /// Video bytes written (encoded bitstream).
    pub video_bytes: u64,
    /// Opus packets written.
    pub audio_frames: u64,
    /// Opus bytes written.
    pub audio_bytes: u64,
    /// Full passes over the video file completed.
    pub video_loops: u64,
}

/// RTP-level counters of the webrtc-rs senders (`outbound-rtp` stats).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RtpSendStats {
    /// RTP packets sent on the video track.
    pub video_packets: u64,
    /// RTP payload bytes sent on the video track.
    pub video_bytes: u64,
    /// RTP packets sent on the audio track.
    pub audio_packets: u64,
    /// RTP payload bytes sent on the audio track.
    pub audio_bytes: u64,
    /// NACKs received from the server.
    pub nacks: u64,
    /// PLIs received from the server.
    pub plis: u64,
    /// FIRs received from the server.
    pub firs: u64,
}

#[derive(Default)]
pub(crate) struct Counters {
    /// VP8 frames still to send scrambled (a broken encoder, for fault tests).
    scramble: AtomicU64,
    video_frames: AtomicU64,
    video_bytes: AtomicU64,
    audio_frames: AtomicU64,
    audio_bytes: AtomicU64,
    video_loops: AtomicU64,
}

impl Counters {
    fn stats(&self) -> PublisherStats {
        PublisherStats {
            video_frames: self.video_frames.load(Ordering::Relaxed),
            video_bytes: self.video_bytes.load(Ordering::Relaxed),
            audio_frames: self.audio_frames.load(Ordering::Relaxed),
            audio_bytes: self.audio_bytes.load(Ordering::Relaxed),
            video_loops: self.video_loops.load(Ordering::Relaxed),
        }
    }
}

/// Where the pumps hand the fixture's encoded frames, paced in real time: a WebRTC track here,
/// or a plain RTP packetizer ([`plain_rtp`]).
pub(crate) trait FrameSink: Send + Sync + 'static {
    /// Sends one encoded frame that lasts `duration`.
    fn write(
        &self,
        data: bytes::Bytes,
        duration: Duration,
    ) -> impl Future<Output = Result<(), SessionError>> + Send;
}

/// A live WHIP session.
pub struct Publisher {
    pc: Arc<dyn PeerConnection>,
    http: reqwest::Client,
    key: String,
    offer_sdp: String,
    answer: Answer,
    senders: Vec<(RtpCodecKind, Arc<dyn RtpSender>)>,
    counters: Arc<Counters>,
    state: watch::Receiver<RTCPeerConnectionState>,
    stop: watch::Sender<bool>,
    pumps: Vec<JoinHandle<Result<(), SessionError>>>,
}

impl Publisher {
    /// Publishes to `whip_url` with stream key `key`, waits until the connection is up and
    /// starts sending media in real time.
    pub async fn publish(whip_url: &str, key: &str, opts: PublishOptions) -> Result<Self, SessionError> {
        let endpoint = parse_url(whip_url)?;
        let video_path = match opts.video {
            VideoCodec::Vp8 => fixtures::vp8_ivf_sized(opts.video_size.0, opts.video_size.1)?,
            VideoCodec::H264 => fixtures::h264_annexb()?,
        };
        let audio_path = if opts.audio {
            Some(fixtures::opus_ogg()?)
        } else {
            None
        };

        let video_codec = video_codec_parameters(opts.video);
        let audio_codec = opus_codec_parameters();
        let mut media_engine = MediaEngine::default();
        media_engine
            .register_codec(video_codec.clone(), RtpCodecKind::Video)
            .map_err(rtc_err("register video codec"))?;
        if opts.audio {
            media_engine
                .register_codec(audio_codec.clone(), RtpCodecKind::Audio)
                .map_err(rtc_err("register audio codec"))?;
        }
        let registry = register_default_interceptors(Registry::new(), &mut media_engine)
            .map_err(rtc_err("register interceptors"))?;

        let (events, mut watch) = PeerEvents::new(None);
        let pc = build_peer(media_engine, registry, opts.bind_ip, events).await?;

        let video_track = sample_track(RtpCodecKind::Video, &video_codec)?;
        let video_sender = add_sendonly(&pc, &video_track).await?;
        let mut senders = vec![(RtpCodecKind::Video, video_sender.clone())];
        let audio = match audio_path {
            Some(path) => {
                let track = sample_track(RtpCodecKind::Audio, &audio_codec)?;
                let sender = add_sendonly(&pc, &track).await?;
                senders.push((RtpCodecKind::Audio, sender.clone()));
                Some((path, track, sender))
            }
            None => None,
        };

        let offer_sdp = complete_offer(&pc, &mut watch).await?;
        let http = http_client();
        let answer = post_offer(&http, &endpoint, Some(key), &offer_sdp).await?;
        let remote = crate::signal::filter_candidates(&answer.sdp, opts.ice_policy);
        apply_answer(&pc, remote).await?;
        wait_connected(&watch.state, opts.connect_timeout).await?;

        let counters = Arc::new(Counters::default());
        let (stop, stop_rx) = watch::channel(false);
        let mut pumps = Vec::new();
        let video_pt = negotiated_payload_type(&video_sender).await?;
        pumps.push(tokio::spawn(pump_video(
            opts.video,
            video_path,
            TrackSink::new(video_track, video_pt).await,
            counters.clone(),
            stop_rx.clone(),
            opts.loop_forever,
        )));
        if let Some((path, track, sender)) = audio {
            let pt = negotiated_payload_type(&sender).await?;
            pumps.push(tokio::spawn(pump_audio(
                path,
                TrackSink::new(track, pt).await,
                counters.clone(),
                stop_rx.clone(),
                opts.loop_forever,
            )));
        }

        Ok(Self {
            pc,
            http,
            key: key.to_owned(),
            offer_sdp,
            answer,
            senders,
            counters,
            state: watch.state,
            stop,
            pumps,
        })
    }

    /// The session resource (`Location`, resolved to an absolute URL).
    pub fn location(&self) -> &Url {
        &self.answer.location
    }

    /// The whole WHIP answer: status, SDP, `Location` as sent, `ETag`, `Link`s.
    pub fn answer(&self) -> &Answer {
        &self.answer
    }

    /// The offer that was POSTed (complete, with candidates).
    pub fn offer_sdp(&self) -> &str {
        &self.offer_sdp
    }

    /// The current peer connection state.
    pub fn connection_state(&self) -> RTCPeerConnectionState {
        *self.state.borrow()
    }

    /// Send the next `frames` VP8 frames broken: their headers intact, their data cut short
    /// (what a broken encoder or a bad relay sends). Every VP8 decoder fails on them.
    pub fn scramble_video(&self, frames: u64) {
        self.counters.scramble.store(frames, Ordering::Relaxed);
    }

    /// Frames and bytes handed to the tracks so far.
    pub fn stats(&self) -> PublisherStats {
        self.counters.stats()
    }

    /// RTP packets and bytes sent, and the feedback received, from webrtc-rs' own stats.
    pub async fn rtp_stats(&self) -> RtpSendStats {
        let mut out = RtpSendStats::default();
        for (kind, sender) in &self.senders {
            let Ok(report) = sender.get_stats(Instant::now()).await else {
                continue;
            };
            for stream in report.outbound_rtp_streams() {
                let sent = &stream.sent_rtp_stream_stats;
                match kind {
                    RtpCodecKind::Video => {
                        out.video_packets += sent.packets_sent;
                        out.video_bytes += sent.bytes_sent;
                    }
                    _ => {
                        out.audio_packets += sent.packets_sent;
                        out.audio_bytes += sent.bytes_sent;
                    }
                }
                out.nacks += u64::from(stream.nack_count);
                out.plis += u64::from(stream.pli_count);
                out.firs += u64::from(stream.fir_count);
            }
        }
        out
    }

    /// Waits until every media task has ended (only happens without `loop_forever`, or after
    /// an error), returning the first error.
    pub async fn wait_media_done(&mut self) -> Result<(), SessionError> {
        let mut first_error = None;
        for pump in self.pumps.drain(..) {
            if let Ok(Err(e)) = pump.await {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Stops sending, DELETEs the session resource (with the stream key) and closes the peer
    /// connection. Returns the DELETE status.
    pub async fn stop(mut self) -> Result<StatusCode, SessionError> {
        self.stop.send_replace(true);
        for pump in self.pumps.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(2), pump).await;
        }
        let status = crate::signal::delete_resource(&self.http, &self.answer.location, Some(&self.key)).await;
        let _ = self.pc.close().await;
        Ok(status?)
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.stop.send_replace(true);
        for pump in &self.pumps {
            pump.abort();
        }
    }
}

fn video_codec_parameters(codec: VideoCodec) -> RTCRtpCodecParameters {
    let (mime, fmtp, pt) = match codec {
        VideoCodec::Vp8 => (MIME_TYPE_VP8, "", VIDEO_PAYLOAD_TYPE),
        VideoCodec::H264 => (MIME_TYPE_H264, H264_FMTP, H264_PAYLOAD_TYPE),
    };
    RTCRtpCodecParameters {
        rtp_codec: RTCRtpCodec {
            mime_type: mime.to_owned(),
            clock_rate: 90_000,
            channels: 0,
            sdp_fmtp_line: fmtp.to_owned(),
            rtcp_feedback: vec![],
        },
        payload_type: pt,
    }
}

fn opus_codec_parameters() -> RTCRtpCodecParameters {
    RTCRtpCodecParameters {
        rtp_codec: RTCRtpCodec {
            mime_type: MIME_TYPE_OPUS.to_owned(),
            clock_rate: 48_000,
            channels: 2,
            sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
            rtcp_feedback: vec![],
        },
        payload_type: OPUS_PAYLOAD_TYPE,
    }
}

fn sample_track(
    kind: RtpCodecKind,
    codec: &RTCRtpCodecParameters,
) -> Result<Arc<TrackLocalStaticSample>, SessionError> {
    let ssrc = random_u32();
    let track = MediaStreamTrack::new(
        "fanout-tests".to_owned(),
        format!("fanout-tests-{kind}"),
        format!("fanout-tests-{kind}"),
        kind,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            codec: codec.rtp_codec.clone(),
            ..Default::default()
        }],
    );
    Ok(Arc::new(
        TrackLocalStaticSample::new(Instant::now(), track).map_err(rtc_err("create track"))?,
    ))
}

async fn add_sendonly(
    pc: &Arc<dyn PeerConnection>,
    track: &Arc<TrackLocalStaticSample>,
) -> Result<Arc<dyn RtpSender>, SessionError> {
    let transceiver = pc
        .add_transceiver_from_track(
            Arc::clone(track) as Arc<dyn TrackLocal>,
            Some(RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Sendonly,
                ..Default::default()
            }),
        )
        .await
        .map_err(rtc_err("add sendonly transceiver"))?;
    transceiver
        .sender()
        .await
        .map_err(rtc_err("transceiver sender"))?
        .ok_or_else(|| SessionError::WebRtc {
            context: "transceiver sender",
            source: webrtc::error::Error::Other("sendonly transceiver without sender".into()),
        })
}

/// The payload type the answer settled on; write_sample must stamp exactly that one.
async fn negotiated_payload_type(sender: &Arc<dyn RtpSender>) -> Result<PayloadType, SessionError> {
    sender
        .get_parameters()
        .await
        .map_err(rtc_err("sender parameters"))?
        .rtp_parameters
        .codecs
        .first()
        .map(|c| c.payload_type)
        .ok_or_else(|| SessionError::WebRtc {
            context: "sender parameters",
            source: webrtc::error::Error::Other("no negotiated codec".into()),
        })
}

fn random_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.finish() as u32
}

/// Sleeps until `deadline` unless stop is signalled first; true means "stop".
async fn wait_or_stop(deadline: tokio::time::Instant, stop: &mut watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep_until(deadline) => false,
        changed = stop.changed() => changed.is_err() || *stop.borrow(),
    }
}

fn open(path: &PathBuf) -> Result<BufReader<File>, SessionError> {
    File::open(path)
        .map(BufReader::new)
        .map_err(|source| SessionError::Io {
            context: format!("open {}", path.display()),
            source,
        })
}

/// A track of the peer connection, with the SSRC and payload type its samples are stamped with.
struct TrackSink {
    track: Arc<TrackLocalStaticSample>,
    ssrc: u32,
    pt: PayloadType,
}

impl TrackSink {
    async fn new(track: Arc<TrackLocalStaticSample>, pt: PayloadType) -> Self {
        use webrtc::media_stream::Track;
        let ssrc = track.ssrcs().await.first().copied().unwrap_or_default();
        Self { track, ssrc, pt }
    }
}

impl FrameSink for TrackSink {
    async fn write(&self, data: bytes::Bytes, duration: Duration) -> Result<(), SessionError> {
        self.track
            .sample_writer(self.ssrc, self.pt)
            .write_sample(&Sample {
                data,
                duration,
                ..Sample::new(Instant::now())
            })
            .await
            .map_err(rtc_err("write sample"))
    }
}

/// Sends the video fixture to `sink` in real time, looping when asked, until `stop`.
pub(crate) async fn pump_video(
    codec: VideoCodec,
    path: PathBuf,
    sink: impl FrameSink,
    counters: Arc<Counters>,
    mut stop: watch::Receiver<bool>,
    loop_forever: bool,
) -> Result<(), SessionError> {
    let start = tokio::time::Instant::now();
    let mut media_time = Duration::ZERO;
    loop {
        match codec {
            VideoCodec::Vp8 => {
                let (mut ivf, header) = IVFReader::new(open(&path)?).map_err(rtc_err("read IVF header"))?;
                let frame_duration = if header.timebase_denominator == 0 {
                    Duration::from_secs(1) / fixtures::VIDEO_FPS
                } else {
                    Duration::from_secs_f64(
                        f64::from(header.timebase_numerator) / f64::from(header.timebase_denominator),
                    )
                };
                while let Ok((mut frame, _)) = ivf.parse_next_frame() {
                    if wait_or_stop(start + media_time, &mut stop).await {
                        return Ok(());
                    }
                    let len = frame.len() as u64;
                    if counters
                        .scramble
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                        .is_ok()
                    {
                        // Headers intact (flag, size, sync code), the data cut short: the first
                        // partition is truncated, which every VP8 decoder refuses.
                        frame.truncate(frame.len().min(24));
                    }
                    sink.write(frame.freeze(), frame_duration).await?;
                    counters.video_frames.fetch_add(1, Ordering::Relaxed);
                    counters.video_bytes.fetch_add(len, Ordering::Relaxed);
                    media_time += frame_duration;
                }
            }
            VideoCodec::H264 => {
                let frame_duration = Duration::from_secs(1) / fixtures::VIDEO_FPS;
                let mut reader = H26xSampleReader::new(open(&path)?, 1 << 20, false);
                while let Ok(sample) = reader.next_sample() {
                    if wait_or_stop(start + media_time, &mut stop).await {
                        return Ok(());
                    }
                    let len = sample.data.len() as u64;
                    // SPS/PPS take no time: they ride with the slice that follows.
                    let duration = if sample.timed {
                        frame_duration
                    } else {
                        Duration::ZERO
                    };
                    sink.write(sample.data, duration).await?;
                    counters.video_bytes.fetch_add(len, Ordering::Relaxed);
                    if sample.timed {
                        counters.video_frames.fetch_add(1, Ordering::Relaxed);
                        media_time += frame_duration;
                    }
                }
            }
        }
        counters.video_loops.fetch_add(1, Ordering::Relaxed);
        if !loop_forever {
            return Ok(());
        }
    }
}

/// Sends the Opus fixture to `sink` in real time, looping when asked, until `stop`.
pub(crate) async fn pump_audio(
    path: PathBuf,
    sink: impl FrameSink,
    counters: Arc<Counters>,
    mut stop: watch::Receiver<bool>,
    loop_forever: bool,
) -> Result<(), SessionError> {
    let start = tokio::time::Instant::now();
    let mut media_time = Duration::ZERO;
    loop {
        let (mut ogg, _) = OggReader::new(open(&path)?, true).map_err(rtc_err("read Ogg header"))?;
        let mut last_granule = 0u64;
        while let Ok((page, header)) = ogg.parse_next_page() {
            if page.starts_with(b"OpusTags") || page.starts_with(b"OpusHead") {
                continue;
            }
            let samples = header.granule_position.saturating_sub(last_granule);
            last_granule = header.granule_position;
            // 48 kHz clock; anything implausible (first page, pre-skip) counts as one frame.
            let duration = match Duration::from_micros(samples * 1_000_000 / 48_000) {
                d if d.is_zero() || d > Duration::from_millis(120) => OPUS_FRAME,
                d => d,
            };
            if wait_or_stop(start + media_time, &mut stop).await {
                return Ok(());
            }
            let len = page.len() as u64;
            sink.write(page.freeze(), duration).await?;
            counters.audio_frames.fetch_add(1, Ordering::Relaxed);
            counters.audio_bytes.fetch_add(len, Ordering::Relaxed);
            media_time += duration;
        }
        if !loop_forever {
            return Ok(());
        }
    }
}
