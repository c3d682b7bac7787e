//! A WHEP viewer on webrtc-rs that measures what it receives, per media kind: RTP packets,
//! payload bytes, frames, keyframes, sequence gaps (after webrtc-rs' own NACK handling and
//! RTX unwrapping), and the time from the POST to the first packet and first keyframe.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use fanout_tests::whep::{Viewer, ViewOptions};
//! let viewer = Viewer::subscribe("http://127.0.0.1:8080/whep/abc", ViewOptions::default()).await?;
//! let stats = viewer
//!     .wait_for(Duration::from_secs(10), |s| s.video.keyframes >= 2 && s.audio.packets > 50)
//!     .await
//!     .map_err(|last| format!("no media: {last:?}"))?;
//! assert_eq!(stats.video.lost, 0);
//! viewer.stop().await?;
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, RTCPeerConnectionState, Registry, register_default_interceptors,
};

use crate::codec::VideoCodec;
use crate::frame::FrameTracker;
use crate::keyframe::is_keyframe;
use crate::lag::MediaLag;
use crate::peer::{
    PeerEvents, SessionError, apply_answer, build_peer, complete_offer, rtc_err, wait_connected,
};
use crate::sequence::SeqTracker;
use crate::signal::{
    Answer, IcePolicy, SignalError, StatusCode, Url, filter_candidates, http_client, parse_url, post_offer,
};

/// How long a hole may stay open before [`MediaStats::lost`] counts it: enough for a NACK and
/// its retransmission on loopback many times over.
pub const LOSS_WINDOW: Duration = Duration::from_secs(1);

/// How to watch.
#[derive(Debug, Clone)]
pub struct ViewOptions {
    /// `Authorization: Bearer ...` for private streams.
    pub bearer: Option<String>,
    /// Offer a recvonly audio transceiver.
    pub audio: bool,
    /// Offer a recvonly video transceiver.
    pub video: bool,
    /// The local address the media socket binds to (its only ICE candidate).
    pub bind_ip: IpAddr,
    /// Which of the answer's candidates to keep.
    pub ice_policy: IcePolicy,
}

impl Default for ViewOptions {
    fn default() -> Self {
        Self {
            bearer: None,
            audio: true,
            video: true,
            bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            ice_policy: IcePolicy::LoopbackOnly,
        }
    }
}

/// What one media kind has received so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MediaStats {
    /// The mime type the answer gives the payload type of the latest packet (`video/H264`).
    pub codec: Option<String>,
    /// Primary SSRCs seen (an SFU that keeps its promise shows exactly one).
    pub ssrcs: Vec<u32>,
    /// RTP payload types seen, RTX included.
    pub payload_types: Vec<u8>,
    /// Media RTP packets received: retransmissions that filled a hole included, duplicates and
    /// padding-only packets excluded.
    pub packets: u64,
    /// RTP payload bytes of those packets.
    pub bytes: u64,
    /// Frames: distinct RTP timestamps (late packets of older frames do not count).
    pub frames: u64,
    /// Frames that never got their marker (last) packet, the two newest excepted. Non-zero
    /// without sequence gaps means packets went missing behind a rewritten sequence.
    pub incomplete_frames: u64,
    /// Packets with the marker bit set (end of a video frame).
    pub marker_packets: u64,
    /// Keyframes (video): frames with a packet that starts an IDR/SPS (H.264) or a VP8 key frame.
    pub keyframes: u64,
    /// Every sequence number that was missing at some point.
    pub gaps_opened: u64,
    /// Holes open right now, however recent.
    pub missing: u64,
    /// Holes open for longer than [`LOSS_WINDOW`]: lost for good.
    pub lost: u64,
    /// Holes a later packet filled (NACK retransmission or reordering).
    pub recovered: u64,
    /// Packets seen twice.
    pub duplicates: u64,
    /// Sequence jumps larger than [`crate::sequence::MAX_JUMP`].
    pub discontinuities: u64,
    /// RTX packets (RFC 4588) that reached the track and were unwrapped here.
    pub rtx_packets: u64,
    /// Padding-only packets.
    pub padding_packets: u64,
    /// From the POST to the first media packet.
    #[serde(serialize_with = "millis", rename = "first_packet_ms")]
    pub first_packet: Option<Duration>,
    /// From the POST to the first keyframe.
    #[serde(serialize_with = "millis", rename = "first_keyframe_ms")]
    pub first_keyframe: Option<Duration>,
    /// Delivery lag of the newest frame: how much later than the best-delivered frame it
    /// arrived, relative to media time, ms (see [`crate::lag`]). Grows when the stream arrives
    /// slower than real time.
    pub lag_ms: Option<f64>,
    /// The largest delivery lag seen, ms.
    pub max_lag_ms: f64,
    /// From the POST to the latest packet.
    #[serde(serialize_with = "millis", rename = "last_packet_ms")]
    pub last_packet: Option<Duration>,
}

fn millis<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&(d.as_secs_f64() * 1e3)),
        None => s.serialize_none(),
    }
}

/// A snapshot of a viewer.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ViewerStats {
    /// The peer connection state, as webrtc-rs names it.
    pub state: String,
    /// Audio track.
    pub audio: MediaStats,
    /// Video track.
    pub video: MediaStats,
}

/// `GET <Location>/layer` / body of `POST <Location>/layer`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layer {
    /// The simulcast layer (`q`, `h`, `f`...), `null` for automatic.
    pub rid: Option<String>,
}

/// The parts of an RTP packet the accounting looks at.
struct Rtp<'a> {
    ssrc: u32,
    seq: u16,
    timestamp: u32,
    marker: bool,
    payload: &'a [u8],
}

/// Per-kind accounting done by the track reader tasks.
#[derive(Default)]
struct KindState {
    stats: MediaStats,
    codec: Option<VideoCodec>,
    /// RTP clock of the current payload type (from the answer's rtpmap).
    clock_rate: u32,
    trackers: HashMap<u32, SeqTracker>,
    primary_ssrc: Option<u32>,
    frames: FrameTracker,
    lag: Option<MediaLag>,
    last_keyframe_timestamp: Option<u32>,
}

impl KindState {
    fn on_packet(&mut self, rtp: Rtp<'_>, since_post: Duration, now: Instant) {
        let Rtp {
            ssrc,
            seq,
            timestamp,
            marker,
            payload,
        } = rtp;
        if !self.stats.ssrcs.contains(&ssrc) {
            self.stats.ssrcs.push(ssrc);
        }
        self.primary_ssrc = Some(ssrc);
        if !self.trackers.entry(ssrc).or_default().push(seq, now) {
            return;
        }
        if payload.is_empty() {
            self.stats.padding_packets += 1;
            return;
        }
        self.stats.packets += 1;
        self.stats.bytes += payload.len() as u64;
        self.stats.first_packet.get_or_insert(since_post);
        self.stats.last_packet = Some(since_post);
        if marker {
            self.stats.marker_packets += 1;
        }
        self.frames.push(timestamp, marker);
        let clock_rate = if self.clock_rate == 0 {
            90_000
        } else {
            self.clock_rate
        };
        self.lag
            .get_or_insert_with(|| MediaLag::new(clock_rate))
            .push(timestamp, now);
        if let Some(codec) = self.codec
            && self.last_keyframe_timestamp != Some(timestamp)
            && is_keyframe(codec, payload)
        {
            self.stats.keyframes += 1;
            self.last_keyframe_timestamp = Some(timestamp);
            self.stats.first_keyframe.get_or_insert(since_post);
        }
    }

    /// RFC 4588: the payload starts with the original sequence number.
    fn on_rtx(&mut self, payload: &[u8], timestamp: u32, since_post: Duration, now: Instant) {
        self.stats.rtx_packets += 1;
        let (Some(primary), Some(osn)) = (self.primary_ssrc, payload.get(..2)) else {
            self.stats.padding_packets += 1;
            return;
        };
        let osn = u16::from_be_bytes([osn[0], osn[1]]);
        let rtp = Rtp {
            ssrc: primary,
            seq: osn,
            timestamp,
            marker: false,
            payload: &payload[2..],
        };
        self.on_packet(rtp, since_post, now);
    }

    fn snapshot(&self, now: Instant) -> MediaStats {
        let mut stats = self.stats.clone();
        stats.frames = self.frames.frames();
        stats.incomplete_frames = self.frames.incomplete();
        stats.lag_ms = self.lag.as_ref().and_then(MediaLag::lag_ms);
        stats.max_lag_ms = self.lag.as_ref().map_or(0.0, MediaLag::max_lag_ms);
        for tracker in self.trackers.values() {
            stats.gaps_opened += tracker.gaps_opened();
            stats.missing += tracker.missing();
            stats.lost += tracker.lost(now, LOSS_WINDOW);
            stats.recovered += tracker.recovered();
            stats.duplicates += tracker.duplicates();
            stats.discontinuities += tracker.discontinuities();
        }
        stats
    }
}

#[derive(Default)]
struct Shared {
    audio: KindState,
    video: KindState,
}

impl Shared {
    fn kind(&mut self, kind: RtpCodecKind) -> &mut KindState {
        match kind {
            RtpCodecKind::Audio => &mut self.audio,
            _ => &mut self.video,
        }
    }
}

/// A live WHEP session.
pub struct Viewer {
    pc: Arc<dyn PeerConnection>,
    http: reqwest::Client,
    bearer: Option<String>,
    offer_sdp: String,
    answer: Answer,
    posted_at: Instant,
    shared: Arc<Mutex<Shared>>,
    state: watch::Receiver<RTCPeerConnectionState>,
    readers: JoinHandle<()>,
}

impl Viewer {
    /// Offers recvonly audio and video to `whep_url` and applies the answer. Returns as soon as
    /// the answer is applied; media is measured in the background (see [`Viewer::stats`]).
    pub async fn subscribe(whep_url: &str, opts: ViewOptions) -> Result<Self, SessionError> {
        let endpoint = parse_url(whep_url)?;
        let mut media_engine = MediaEngine::default();
        media_engine
            .register_default_codecs()
            .map_err(rtc_err("register default codecs"))?;
        let registry = register_default_interceptors(Registry::new(), &mut media_engine)
            .map_err(rtc_err("register interceptors"))?;

        let (tracks_tx, tracks_rx) = mpsc::unbounded_channel();
        let (events, mut watch) = PeerEvents::new(Some(tracks_tx));
        let pc = build_peer(media_engine, registry, opts.bind_ip, events).await?;
        for (wanted, kind) in [
            (opts.audio, RtpCodecKind::Audio),
            (opts.video, RtpCodecKind::Video),
        ] {
            if wanted {
                pc.add_transceiver_from_kind(
                    kind,
                    Some(RTCRtpTransceiverInit {
                        direction: RTCRtpTransceiverDirection::Recvonly,
                        ..Default::default()
                    }),
                )
                .await
                .map_err(rtc_err("add recvonly transceiver"))?;
            }
        }

        let offer_sdp = complete_offer(&pc, &mut watch).await?;
        let http = http_client();
        let shared = Arc::new(Mutex::new(Shared::default()));
        let posted_at = Instant::now();
        let answer = post_offer(&http, &endpoint, opts.bearer.as_deref(), &offer_sdp).await?;
        let readers = tokio::spawn(read_tracks(
            tracks_rx,
            shared.clone(),
            posted_at,
            payload_map(&answer.sdp),
        ));
        apply_answer(&pc, filter_candidates(&answer.sdp, opts.ice_policy)).await?;

        Ok(Self {
            pc,
            http,
            bearer: opts.bearer,
            offer_sdp,
            answer,
            posted_at,
            shared,
            state: watch.state,
            readers,
        })
    }

    /// The session resource (`Location`, resolved to an absolute URL).
    pub fn location(&self) -> &Url {
        &self.answer.location
    }

    /// The whole WHEP answer: status, SDP, `Location` as sent, `ETag`, `Link`s.
    pub fn answer(&self) -> &Answer {
        &self.answer
    }

    /// The offer that was POSTed.
    pub fn offer_sdp(&self) -> &str {
        &self.offer_sdp
    }

    /// When the offer was POSTed; the `first_*` durations count from here.
    pub fn posted_at(&self) -> Instant {
        self.posted_at
    }

    /// The current peer connection state.
    pub fn connection_state(&self) -> RTCPeerConnectionState {
        *self.state.borrow()
    }

    /// Waits for the `connected` state.
    pub async fn wait_connected(&self, timeout: Duration) -> Result<(), SessionError> {
        wait_connected(&self.state, timeout).await
    }

    /// A snapshot of what has been received.
    pub fn stats(&self) -> ViewerStats {
        let now = Instant::now();
        let shared = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        ViewerStats {
            state: self.state.borrow().to_string(),
            audio: shared.audio.snapshot(now),
            video: shared.video.snapshot(now),
        }
    }

    /// Polls [`stats`](Self::stats) every 20 ms until `done` holds (Ok) or `timeout` passes
    /// (Err with the last snapshot, for the failure message).
    pub async fn wait_for(
        &self,
        timeout: Duration,
        done: impl Fn(&ViewerStats) -> bool,
    ) -> Result<ViewerStats, ViewerStats> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let stats = self.stats();
            if done(&stats) {
                return Ok(stats);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(stats);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn layer_url(&self) -> Url {
        let mut url = self.answer.location.clone();
        let path = format!("{}/layer", url.path().trim_end_matches('/'));
        url.set_path(&path);
        url
    }

    /// `POST <Location>/layer {"rid": rid}` (`None` = automatic). Returns the status, whatever
    /// it is, so a test can assert on refusals too.
    pub async fn layer(&self, rid: Option<&str>) -> Result<StatusCode, SignalError> {
        let url = self.layer_url();
        let mut request = self.http.post(url.clone()).json(&Layer {
            rid: rid.map(str::to_owned),
        });
        if let Some(token) = &self.bearer {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(|source| SignalError::Http {
            method: "POST",
            url: url.to_string(),
            source,
        })?;
        Ok(response.status())
    }

    /// `GET <Location>/layer`: the server's JSON as is (at least `{"rid": ...}`).
    pub async fn get_layer(&self) -> Result<serde_json::Value, SignalError> {
        let url = self.layer_url();
        let mut request = self.http.get(url.clone());
        if let Some(token) = &self.bearer {
            request = request.bearer_auth(token);
        }
        let http_err = |source| SignalError::Http {
            method: "GET",
            url: url.to_string(),
            source,
        };
        let response = request.send().await.map_err(http_err)?;
        let status = response.status();
        let body = response.text().await.map_err(http_err)?;
        if !status.is_success() {
            return Err(SignalError::Status {
                method: "GET",
                url: url.to_string(),
                status,
                body,
            });
        }
        serde_json::from_str(&body).map_err(|e| SignalError::Status {
            method: "GET",
            url: url.to_string(),
            status,
            body: format!("not JSON ({e}): {body}"),
        })
    }

    /// DELETEs the session resource and closes the peer connection. Returns the DELETE status.
    pub async fn stop(self) -> Result<StatusCode, SessionError> {
        let status =
            crate::signal::delete_resource(&self.http, &self.answer.location, self.bearer.as_deref()).await;
        let _ = self.pc.close().await;
        self.readers.abort();
        Ok(status?)
    }
}

impl Drop for Viewer {
    fn drop(&mut self) {
        self.readers.abort();
    }
}

/// `(kind, payload type) -> (mime, clock rate)` from the `a=rtpmap` lines of an SDP, e.g.
/// `(Video, 96) -> ("video/VP8", 90000)`, `(Video, 97) -> ("video/rtx", 90000)`.
type PayloadMap = HashMap<(RtpCodecKind, u8), (String, u32)>;

fn payload_map(sdp: &str) -> PayloadMap {
    let mut map = PayloadMap::new();
    let mut kind = None;
    for line in sdp.lines() {
        if let Some(media) = line.strip_prefix("m=") {
            kind = match media.split_whitespace().next() {
                Some("audio") => Some(RtpCodecKind::Audio),
                Some("video") => Some(RtpCodecKind::Video),
                _ => None,
            };
        } else if let (Some(kind), Some(rest)) = (kind, line.strip_prefix("a=rtpmap:"))
            && let Some((pt, encoding)) = rest.split_once(' ')
            && let Ok(pt) = pt.parse::<u8>()
        {
            let mut parts = encoding.split('/');
            let name = parts.next().unwrap_or(encoding);
            let clock = parts.next().and_then(|c| c.trim().parse().ok()).unwrap_or(90_000);
            let prefix = if kind == RtpCodecKind::Audio {
                "audio"
            } else {
                "video"
            };
            map.insert((kind, pt), (format!("{prefix}/{name}"), clock));
        }
    }
    map
}

fn is_rtx(mime: &str) -> bool {
    mime.rsplit('/')
        .next()
        .is_some_and(|n| n.eq_ignore_ascii_case("rtx"))
}

async fn read_tracks(
    mut tracks: mpsc::UnboundedReceiver<Arc<dyn TrackRemote>>,
    shared: Arc<Mutex<Shared>>,
    posted_at: Instant,
    payloads: PayloadMap,
) {
    let payloads = Arc::new(payloads);
    let mut readers = tokio::task::JoinSet::new();
    while let Some(track) = tracks.recv().await {
        readers.spawn(read_track(track, shared.clone(), posted_at, payloads.clone()));
    }
    while readers.join_next().await.is_some() {}
}

/// Counts one track's packets. The codec of each packet is looked up by its payload type in
/// the answer, so a server that sends one codec under another's payload type shows up as the
/// codec it claimed (and keyframes are then looked for in that codec's format).
async fn read_track(
    track: Arc<dyn TrackRemote>,
    shared: Arc<Mutex<Shared>>,
    posted_at: Instant,
    payloads: Arc<PayloadMap>,
) {
    let kind = track.kind().await;
    let mut last_pt = None;
    while let Some(event) = track.poll().await {
        let TrackRemoteEvent::OnRtpPacket(packet) = event else {
            continue;
        };
        let header = &packet.header;
        let pt = header.payload_type;
        let (mime, clock_rate) = match payloads.get(&(kind, pt)) {
            Some((mime, clock)) => (Some(mime.clone()), *clock),
            None => match track.codec(header.ssrc).await {
                Some(c) => (Some(c.mime_type), c.clock_rate),
                None => (None, 90_000),
            },
        };
        let now = Instant::now();
        let since_post = now.saturating_duration_since(posted_at);
        let mut shared = shared.lock().unwrap_or_else(PoisonError::into_inner);
        let state = shared.kind(kind);
        if !state.stats.payload_types.contains(&pt) {
            state.stats.payload_types.push(pt);
        }
        if mime.as_deref().is_some_and(is_rtx) {
            state.on_rtx(&packet.payload, header.timestamp, since_post, now);
            continue;
        }
        if last_pt != Some(pt) {
            last_pt = Some(pt);
            state.codec = mime.as_deref().and_then(VideoCodec::from_mime);
            state.clock_rate = clock_rate;
            state.stats.codec = mime;
        }
        tracing::trace!(
            ?kind,
            pt,
            seq = header.sequence_number,
            ts = header.timestamp,
            marker = header.marker,
            len = packet.payload.len(),
            key = state.codec.is_some_and(|c| is_keyframe(c, &packet.payload)),
            "rtp"
        );
        let rtp = Rtp {
            ssrc: header.ssrc,
            seq: header.sequence_number,
            timestamp: header.timestamp,
            marker: header.marker,
            payload: &packet.payload,
        };
        state.on_packet(rtp, since_post, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_payload_types_per_kind() {
        let sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n\
                   m=video 9 UDP/TLS/RTP/SAVPF 96 97 102 99\r\na=rtpmap:96 VP8/90000\r\n\
                   a=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\na=rtpmap:102 H264/90000\r\n\
                   a=rtpmap:99 RTX/90000\r\n";
        let map = payload_map(sdp);
        let get = |kind, pt| map.get(&(kind, pt)).map(|(mime, _)| mime.as_str());
        assert_eq!(get(RtpCodecKind::Audio, 111), Some("audio/opus"));
        assert_eq!(get(RtpCodecKind::Video, 96), Some("video/VP8"));
        assert_eq!(get(RtpCodecKind::Video, 102), Some("video/H264"));
        assert_eq!(get(RtpCodecKind::Video, 111), None);
        assert!(get(RtpCodecKind::Video, 97).is_some_and(is_rtx));
        assert!(get(RtpCodecKind::Video, 99).is_some_and(is_rtx));
        assert!(!is_rtx("video/VP8"));
        assert_eq!(map.get(&(RtpCodecKind::Audio, 111)).map(|m| m.1), Some(48_000));
        assert_eq!(map.get(&(RtpCodecKind::Video, 96)).map(|m| m.1), Some(90_000));
    }

    fn rtp(ssrc: u32, seq: u16, timestamp: u32, marker: bool, payload: &[u8]) -> Rtp<'_> {
        Rtp {
            ssrc,
            seq,
            timestamp,
            marker,
            payload,
        }
    }

    #[test]
    fn kind_state_counts_frames_keyframes_and_gaps() {
        let t0 = Instant::now();
        let mut state = KindState {
            codec: Some(VideoCodec::Vp8),
            ..Default::default()
        };
        let key = [0x10u8, 0x10, 0x00];
        let cont = [0x00u8, 0xaa];
        let delta = [0x10u8, 0x11, 0x00];
        let ms = Duration::from_millis;
        state.on_packet(rtp(1, 100, 0, false, &key), ms(5), t0);
        state.on_packet(rtp(1, 101, 0, true, &cont), ms(6), t0);
        state.on_packet(rtp(1, 102, 3000, true, &delta), ms(40), t0);
        // 103 lost, 104 arrives; then 103 comes back as RTX.
        state.on_packet(rtp(1, 104, 6000, true, &delta), ms(70), t0);
        let snap = state.snapshot(t0);
        assert_eq!(snap.packets, 4);
        assert_eq!(snap.frames, 3);
        assert_eq!(snap.marker_packets, 3);
        assert_eq!(snap.keyframes, 1);
        assert_eq!(snap.missing, 1);
        assert_eq!(snap.lost, 0);
        assert_eq!(state.snapshot(t0 + LOSS_WINDOW).lost, 1);
        state.on_rtx(&[0, 103, 0x00, 0xbb], 3000, ms(80), t0);
        let snap = state.snapshot(t0 + LOSS_WINDOW);
        assert_eq!(snap.missing, 0);
        assert_eq!(snap.lost, 0);
        assert_eq!(snap.recovered, 1);
        assert_eq!(snap.rtx_packets, 1);
        assert_eq!(snap.first_packet, Some(ms(5)));
        assert_eq!(snap.first_keyframe, Some(ms(5)));
        assert_eq!(snap.ssrcs, vec![1]);
    }

    #[test]
    fn padding_is_not_media() {
        let t0 = Instant::now();
        let mut state = KindState::default();
        state.on_packet(rtp(5, 1, 0, false, &[]), Duration::ZERO, t0);
        state.on_packet(rtp(5, 2, 0, false, &[1]), Duration::ZERO, t0);
        let snap = state.snapshot(t0);
        assert_eq!(snap.padding_packets, 1);
        assert_eq!(snap.packets, 1);
        assert_eq!(snap.gaps_opened, 0);
    }
}
