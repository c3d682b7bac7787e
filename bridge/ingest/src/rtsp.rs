//! RTSP pull: a camera's H.264 video and AAC audio, pulled with [`retina`] and published as a
//! stream for as long as the camera delivers.
//!
//! [`RtspPull::start`] spawns one task per configured camera. The task loops: connect
//! (DESCRIBE, SETUP of the first H.264 video track and the first AAC audio track, PLAY, with RTP
//! interleaved on the RTSP connection by default, which survives NAT and firewalls and loses
//! nothing), ask the [`Gate`] for a [`Sink`](crate::Sink), and hand it every frame. When the camera goes away
//! (an error, the end of the stream, or nothing received for the idle timeout) the sink is
//! dropped, which ends the publication and starts the server's reconnect grace, and the task
//! waits out an exponential backoff with jitter before connecting again. A refusal by the gate
//! that may pass ([`Refusal::Unavailable`]) backs off the same way; the server ending the
//! publication ([`SinkClosed`]) stops the pull, since the server has decided the stream is over.
//! [`RtspPull::status`] reports where the loop is, for the stream's health.
//!
//! Frames: retina reassembles each access unit from RTP and hands it over with 4-byte length
//! prefixes and the parameter sets taken out; they are sent as a [`Frame::VideoConfig`] before
//! the first frame and whenever the camera changes them. RTP carries presentation times only,
//! so `dts` equals `pts`, which holds for the cameras this is for (no B-frames). Times are the
//! elapsed time since PLAY on each track's clock, converted to 90 kHz: the `RTP-Info` of the
//! PLAY response aligns the tracks' starts, which keeps audio and video in sync.
//!
//! Credentials in the URL (`rtsp://user:pass@host/...`) are taken out of it and given to retina
//! for Basic or Digest authentication; logs and errors show the URL without them or its query.
//! retina 0.4 has no Opus depacketizer, so a camera's Opus audio is left out.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use retina::client::{
    Credentials, Demuxed, InitialTimestampPolicy, PlayOptions, Session, SessionOptions, SetupOptions,
    TcpTransportOptions, Transport, UdpTransportOptions,
};
use retina::codec::{CodecItem, FrameFormat, ParametersRef, VideoParametersCodec};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use url::Url;

use crate::frame::{AudioCodec, AudioFrame, Frame, Ticks, VideoConfig, VideoFrame};
use crate::gate::{Gate, PublishRequest, Refusal, SinkClosed};
use crate::h264;

/// How an [`RtspPull`] connects and retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullConfig {
    /// The wait after the first failure; it doubles with each failure in a row.
    pub backoff_min: Duration,
    /// The longest wait between attempts.
    pub backoff_max: Duration,
    /// The longest a connection may take from TCP connect to the PLAY response.
    pub connect_timeout: Duration,
    /// A camera that sends nothing for this long is taken for gone.
    pub idle_timeout: Duration,
    /// How RTP reaches us.
    pub transport: PullTransport,
}

impl Default for PullConfig {
    fn default() -> Self {
        PullConfig {
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(10),
            transport: PullTransport::Tcp,
        }
    }
}

/// How RTP packets travel from the camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullTransport {
    /// Interleaved on the RTSP TCP connection: no packet loss, passes NAT and firewalls.
    #[default]
    Tcp,
    /// UDP, one port pair per track. retina has no reorder buffer for it, so only for a LAN.
    Udp,
}

/// Where a pull is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullState {
    /// Connecting to the camera, or waiting for the gate.
    Connecting,
    /// Publishing the camera's frames.
    Playing {
        /// When the publication started.
        since: Instant,
    },
    /// Waiting to retry after a failure.
    Backoff {
        /// Failures in a row, this one included.
        attempt: u32,
        /// When the next attempt starts.
        until: Instant,
    },
    /// Not pulling, and not going to: stopped, a URL that cannot work, or the server ended
    /// the publication.
    Stopped,
}

/// A pull's state and what last went wrong, for the stream's health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullStatus {
    /// Where the pull is.
    pub state: PullState,
    /// The last failure (connecting, playing, or the gate's refusal), kept while a later
    /// attempt plays. Never holds the URL's credentials.
    pub last_error: Option<String>,
}

/// A camera pulled over RTSP into a stream. Stops when [`RtspPull::stop`] is called or it is
/// dropped.
pub struct RtspPull {
    stop: watch::Sender<bool>,
    status: watch::Receiver<PullStatus>,
    task: JoinHandle<()>,
}

impl RtspPull {
    /// Start pulling `url` into the stream `stream`, on the current tokio runtime.
    pub fn start(url: String, stream: String, gate: Arc<dyn Gate>, config: PullConfig) -> RtspPull {
        let (stop, stop_rx) = watch::channel(false);
        let (status_tx, status) = watch::channel(PullStatus {
            state: PullState::Connecting,
            last_error: None,
        });
        let task = tokio::spawn(run(url, stream, gate, config, stop_rx, status_tx));
        RtspPull { stop, status, task }
    }

    /// The pull's current state.
    pub fn status(&self) -> PullStatus {
        self.status.borrow().clone()
    }

    /// A receiver that sees every change of the pull's state.
    pub fn subscribe(&self) -> watch::Receiver<PullStatus> {
        self.status.clone()
    }

    /// Stop pulling and wait until the camera's session and the sink are gone.
    pub async fn stop(self) {
        // The task ends when told or when this sender is dropped, whichever comes first.
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Why a session ended.
#[derive(Debug, thiserror::Error)]
enum PullError {
    #[error("bad RTSP URL: {0}")]
    BadUrl(String),
    #[error("connecting (DESCRIBE, SETUP, PLAY) took longer than {0:?}")]
    ConnectTimeout(Duration),
    #[error("nothing received for {0:?}")]
    Idle(Duration),
    #[error("the camera ended the stream")]
    EndOfStream,
    #[error("the camera offers no H.264 video (it offers {0})")]
    NoH264(String),
    #[error(transparent)]
    Rtsp(#[from] retina::Error),
    #[error("the gate refused the publication: {0}")]
    Refused(Refusal),
    #[error(transparent)]
    SinkClosed(#[from] SinkClosed),
}

/// What the pull loop does after a session.
enum Outcome {
    /// Wait, then connect again. `played` is how long frames flowed, if they did.
    Retry {
        error: PullError,
        played: Option<Duration>,
    },
    /// Give up: retrying cannot help.
    End(PullError),
}

/// The camera's URL, split into what retina connects to and the credentials it answers an
/// authentication challenge with.
struct Target {
    /// Without userinfo.
    url: Url,
    creds: Option<Credentials>,
    /// For logs: without userinfo or query (some cameras take their password in the query).
    redacted: String,
}

fn parse_target(raw: &str) -> Result<Target, PullError> {
    // The url crate's errors describe the problem without repeating the input.
    let mut url = Url::parse(raw).map_err(|e| PullError::BadUrl(e.to_string()))?;
    if url.scheme() != "rtsp" {
        return Err(PullError::BadUrl(format!(
            "scheme {}, expected rtsp",
            url.scheme()
        )));
    }
    let creds = (!url.username().is_empty() || url.password().is_some()).then(|| Credentials {
        username: percent_decode(url.username()),
        password: percent_decode(url.password().unwrap_or("")),
    });
    // Both succeed for any URL with a host, which rtsp URLs have.
    if url.set_username("").is_err() || url.set_password(None).is_err() {
        return Err(PullError::BadUrl("no host".into()));
    }
    let mut redacted = url.clone();
    if redacted.query().is_some() {
        redacted.set_query(Some("…"));
    }
    Ok(Target {
        url,
        creds,
        redacted: redacted.to_string(),
    })
}

/// Decode the %XX escapes of a URL's userinfo (a password may hold `@`, `:` or `/`).
fn percent_decode(escaped: &str) -> String {
    let bytes = escaped.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).and_then(|&b| hex(b)),
                bytes.get(i + 2).and_then(|&b| hex(b)),
            )
        {
            // Two hex digits make at most 255.
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The wait before attempt `attempt + 1`: `min` doubled for each failure after the first, at
/// most `max`, shortened by up to a quarter by `jitter` (0 to 1) so that pulls that failed
/// together (a switch rebooting under many cameras) do not retry together.
fn backoff_delay(attempt: u32, min: Duration, max: Duration, jitter: f64) -> Duration {
    let doublings = attempt.saturating_sub(1).min(31);
    let base = min.saturating_mul(1 << doublings).min(max);
    base.mul_f64(1.0 - 0.25 * jitter.clamp(0.0, 1.0))
}

async fn run(
    url: String,
    stream: String,
    gate: Arc<dyn Gate>,
    config: PullConfig,
    mut stop: watch::Receiver<bool>,
    status: watch::Sender<PullStatus>,
) {
    let target = match parse_target(&url) {
        Ok(target) => target,
        Err(error) => {
            tracing::warn!(%stream, %error, "RTSP pull not started");
            status.send_replace(PullStatus {
                state: PullState::Stopped,
                last_error: Some(error.to_string()),
            });
            return;
        }
    };
    let mut failures = 0u32;
    loop {
        status.send_modify(|s| s.state = PullState::Connecting);
        let outcome = tokio::select! {
            outcome = session(&target, &stream, gate.as_ref(), &config, &status) => outcome,
            _ = stop.wait_for(|&stopped| stopped) => break,
        };
        match outcome {
            Outcome::End(error) => {
                tracing::warn!(%stream, url = %target.redacted, %error, "RTSP pull ended");
                status.send_modify(|s| s.last_error = Some(error.to_string()));
                break;
            }
            Outcome::Retry { error, played } => {
                // Only a session that played a while proves the camera healthy; one that
                // fails right after PLAY again and again keeps backing off.
                if played.is_some_and(|played| played >= config.backoff_max) {
                    failures = 0;
                }
                failures = failures.saturating_add(1);
                let delay = backoff_delay(failures, config.backoff_min, config.backoff_max, rand::random());
                tracing::warn!(
                    %stream, url = %target.redacted, %error, attempt = failures, retry_in = ?delay,
                    "RTSP pull interrupted"
                );
                status.send_replace(PullStatus {
                    state: PullState::Backoff {
                        attempt: failures,
                        until: Instant::now() + delay,
                    },
                    last_error: Some(error.to_string()),
                });
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    _ = stop.wait_for(|&stopped| stopped) => break,
                }
            }
        }
    }
    status.send_modify(|s| s.state = PullState::Stopped);
}

/// One connection to the camera and, if it plays and the gate agrees, one publication.
async fn session(
    target: &Target,
    stream: &str,
    gate: &dyn Gate,
    config: &PullConfig,
    status: &watch::Sender<PullStatus>,
) -> Outcome {
    let retry = |error| Outcome::Retry { error, played: None };
    let (mut demuxed, mut tracks) =
        match tokio::time::timeout(config.connect_timeout, connect(target, config)).await {
            Err(_) => return retry(PullError::ConnectTimeout(config.connect_timeout)),
            Ok(Err(error)) => return retry(error),
            Ok(Ok(playing)) => playing,
        };
    let mut sink = match gate
        .open(PublishRequest::Pull {
            stream: stream.to_owned(),
        })
        .await
    {
        Ok(sink) => sink,
        Err(refusal @ Refusal::Unavailable(_)) => return retry(PullError::Refused(refusal)),
        // A pull names its stream by id, so a bad key means the stream is misconfigured.
        Err(refusal @ Refusal::BadKey) => return Outcome::End(PullError::Refused(refusal)),
    };
    let since = Instant::now();
    status.send_modify(|s| s.state = PullState::Playing { since });
    tracing::info!(%stream, url = %target.redacted, audio = tracks.audio.is_some(), "RTSP pull playing");

    let played = || Some(since.elapsed());
    loop {
        let item = match tokio::time::timeout(config.idle_timeout, demuxed.next()).await {
            Err(_) => {
                return Outcome::Retry {
                    error: PullError::Idle(config.idle_timeout),
                    played: played(),
                };
            }
            Ok(None) => {
                return Outcome::Retry {
                    error: PullError::EndOfStream,
                    played: played(),
                };
            }
            Ok(Some(Err(error))) => {
                return Outcome::Retry {
                    error: error.into(),
                    played: played(),
                };
            }
            Ok(Some(Ok(item))) => item,
        };
        for frame in tracks.convert(item, demuxed.streams()) {
            if let Err(closed) = sink.push(frame) {
                return Outcome::End(closed.into());
            }
        }
    }
}

async fn connect(target: &Target, config: &PullConfig) -> Result<(Demuxed, Tracks), PullError> {
    let options = SessionOptions::default()
        .creds(target.creds.clone())
        .user_agent("Fanout".to_owned());
    let mut session = Session::describe(target.url.clone(), options).await?;
    let tracks = Tracks::choose(session.streams())?;
    let transport = match config.transport {
        PullTransport::Tcp => Transport::Tcp(TcpTransportOptions::default()),
        PullTransport::Udp => Transport::Udp(UdpTransportOptions::default()),
    };
    // MP4 framing: length-prefixed NAL units with the parameter sets kept out of band (they
    // become VideoConfig frames), raw AAC with its AudioSpecificConfig out of band.
    let setup = || {
        SetupOptions::default()
            .transport(transport.clone())
            .frame_format(FrameFormat::MP4)
    };
    session.setup(tracks.video, setup()).await?;
    if let Some(audio) = tracks.audio {
        session.setup(audio, setup()).await?;
    }
    // Cameras are known to leave `rtptime` out of RTP-Info for some tracks; then each track
    // starts at its first packet rather than failing the PLAY.
    let playing = session
        .play(PlayOptions::default().initial_timestamp(InitialTimestampPolicy::Permissive))
        .await?;
    Ok((playing.demuxed()?, tracks))
}

/// The tracks pulled, and what of their configuration has been sent.
struct Tracks {
    video: usize,
    audio: Option<usize>,
    video_config: Option<VideoConfig>,
    audio_config_sent: bool,
}

impl Tracks {
    fn choose(streams: &[retina::client::Stream]) -> Result<Tracks, PullError> {
        let is = |s: &retina::client::Stream, media: &str, encoding: &str| {
            s.media() == media && s.encoding_name().eq_ignore_ascii_case(encoding)
        };
        let Some(video) = streams.iter().position(|s| is(s, "video", "h264")) else {
            let offered: Vec<String> = streams
                .iter()
                .map(|s| format!("{}/{}", s.media(), s.encoding_name()))
                .collect();
            return Err(PullError::NoH264(offered.join(", ")));
        };
        let audio = streams.iter().position(|s| is(s, "audio", "mpeg4-generic"));
        if audio.is_none()
            && let Some(other) = streams.iter().find(|s| s.media() == "audio")
        {
            tracing::info!(
                codec = other.encoding_name(),
                "RTSP pull leaves out audio it cannot depacketize"
            );
        }
        Ok(Tracks {
            video,
            audio,
            video_config: None,
            audio_config_sent: false,
        })
    }

    /// The frames of one item from retina: a configuration before the first frame of a track
    /// and on each change, then the frame.
    fn convert(&mut self, item: CodecItem, streams: &[retina::client::Stream]) -> Vec<Frame> {
        let mut frames = Vec::new();
        match item {
            CodecItem::VideoFrame(frame) if frame.stream_id() == self.video => {
                if (frame.has_new_parameters() || self.video_config.is_none())
                    && let Some(config) = streams.get(self.video).and_then(video_config)
                    && self.video_config.as_ref() != Some(&config)
                {
                    self.video_config = Some(config.clone());
                    frames.push(Frame::VideoConfig(config));
                }
                let pts = to_ticks(frame.timestamp());
                let keyframe = frame.is_random_access_point();
                let data = Bytes::from(frame.into_data());
                match h264::split_avcc(&data, 4) {
                    Ok(nalus) if !nalus.is_empty() => frames.push(Frame::Video(VideoFrame {
                        dts: pts,
                        pts,
                        keyframe,
                        nalus,
                    })),
                    Ok(_) => {}
                    // retina wrote the prefixes itself, so this would be its bug; skip the frame.
                    Err(error) => tracing::warn!(%error, "RTSP pull dropped a malformed access unit"),
                }
            }
            CodecItem::AudioFrame(frame) if Some(frame.stream_id()) == self.audio => {
                if !self.audio_config_sent
                    && let Some(ParametersRef::Audio(params)) =
                        streams.get(frame.stream_id()).and_then(|s| s.parameters())
                    && params.extra_data().len() >= 2
                {
                    self.audio_config_sent = true;
                    let config = Bytes::copy_from_slice(params.extra_data());
                    frames.push(Frame::AudioConfig(AudioCodec::Aac { config }));
                }
                let pts = to_ticks(frame.timestamp());
                frames.push(Frame::Audio(AudioFrame {
                    pts,
                    data: Bytes::copy_from_slice(frame.data()),
                }));
            }
            // RTCP, ONVIF metadata, tracks not set up.
            _ => {}
        }
        frames
    }
}

fn video_config(stream: &retina::client::Stream) -> Option<VideoConfig> {
    match stream.parameters()? {
        ParametersRef::Video(params) => match params.codec_params() {
            VideoParametersCodec::H264 { sps, pps } => Some(VideoConfig {
                sps: vec![sps.clone()],
                pps: vec![pps.clone()],
            }),
            _ => None,
        },
        _ => None,
    }
}

/// Time since PLAY on the track's clock, in 90 kHz ticks.
fn to_ticks(timestamp: retina::Timestamp) -> Ticks {
    let ticks = i128::from(timestamp.elapsed()) * i128::from(crate::frame::TICKS_PER_SECOND)
        / i128::from(timestamp.clock_rate().get());
    // Saturating: only a track that ran for millions of years would reach it.
    ticks.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use super::*;

    #[test]
    fn credentials_leave_the_url_and_the_logs() {
        let target = parse_target("rtsp://admin:p%40ss%3Aw0rd@10.0.0.7:554/Streaming/101?auth=xyz")
            .expect("valid URL");
        assert_eq!(
            target.creds,
            Some(Credentials {
                username: "admin".into(),
                password: "p@ss:w0rd".into()
            })
        );
        assert_eq!(target.url.as_str(), "rtsp://10.0.0.7:554/Streaming/101?auth=xyz");
        assert_eq!(target.redacted, "rtsp://10.0.0.7:554/Streaming/101?%E2%80%A6");
        assert!(!target.redacted.contains("p%40ss") && !target.redacted.contains("xyz"));

        let plain = parse_target("rtsp://cam.local/live").expect("valid URL");
        assert_eq!(plain.creds, None);
        assert_eq!(plain.redacted, "rtsp://cam.local/live");
    }

    #[test]
    fn urls_that_cannot_work_are_refused() {
        assert!(matches!(
            parse_target("http://cam/live"),
            Err(PullError::BadUrl(_))
        ));
        let error = parse_target("rtsp://user:secret@[::1/x")
            .err()
            .expect("invalid URL")
            .to_string();
        assert!(!error.contains("secret"), "{error}");
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%2Fb%zz%4"), "a/b%zz%4");
        assert_eq!(percent_decode("%C3%A9t%C3%A9"), "été");
    }

    #[test]
    fn backoff_doubles_to_the_cap_and_jitter_only_shortens() {
        let (min, max) = (Duration::from_secs(1), Duration::from_secs(30));
        let delays: Vec<u64> = (1..=7)
            .map(|n| backoff_delay(n, min, max, 0.0).as_secs())
            .collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(backoff_delay(u32::MAX, min, max, 0.0), max);
        assert_eq!(backoff_delay(1, min, max, 1.0), Duration::from_millis(750));
        assert_eq!(backoff_delay(6, min, max, 0.5), Duration::from_millis(26_250));
    }

    #[test]
    fn timestamps_become_90_khz_ticks_since_play() {
        let at = |timestamp: i64, rate: u32, start: u32| {
            to_ticks(
                retina::Timestamp::new(timestamp, NonZeroU32::new(rate).expect("non-zero"), start)
                    .expect("valid"),
            )
        };
        assert_eq!(at(1_000_000 + 3000, 90_000, 1_000_000), 3000);
        // One AAC frame at 44.1 kHz is 1024 samples: 2089.8 ticks.
        assert_eq!(at(5 + 1024, 44_100, 5), 2089);
        assert_eq!(at(48_000 * 2, 48_000, 0), 180_000);
    }
}
