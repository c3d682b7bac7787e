//! One room's bridge: its tap, the transcoder runs, the slate, and the stream's renditions.
//!
//! ```text
//!   tap ──packets──▶ bridge thread ──▶ Preroll ──plan──▶ Transcoder ──▶ LiveInput ─┐
//!                         │  (restarts: a fault, the publisher back after a gap,     ├─▶ origin stream
//!                         │   a new codec or track set)           slate (TestSource) ┘   (packager)
//! ```
//!
//! The thread owns everything; the handle only asks it to stop and reads its health. The
//! stream's renditions (in the origin) and the slate in front of them are made at the first
//! start, with the ladder chosen from the source; every later run of the transcoder is a new
//! source for the packager (a DISCONTINUITY) on the same renditions. A run is restarted:
//! - after a pipeline error (within a couple of seconds: the next keyframe is asked for);
//! - when media comes back after a gap (the slate showed meanwhile);
//! - when the video codec or the set of tracks changes (a new publisher).

use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hls::{AccessUnit, MediaSink, TrackConfig};
use sfu::{MediaKind, RoomTap, TapPacket};

use super::health::{BridgeHealth, BridgeState, BridgeStats};
use super::settings::{BridgeConfig, StreamSettings};
use crate::ingest::SourceAac;
use crate::ladder::{self, Rendition};
use crate::slate::{LiveInput, SlateConfig, Slated};
use crate::test_source::TestSourceConfig;
use crate::transcode::preroll::video_codec;
use crate::transcode::{Plan, Preroll, TranscodeConfig, Transcoder, VideoCodec};

/// How long the bridge waits for a packet before looking at its transcoder and stop flag.
const POLL: Duration = Duration::from_millis(50);
/// Media back after this long without packets restarts the transcoder (the slate is on by
/// then): a fresh source instead of a burst of stale timestamps.
const GAP: Duration = Duration::from_millis(1000);
/// A restarted run waits this long for a keyframe before it asks again.
const KEYFRAME_RETRY: Duration = Duration::from_millis(500);

/// Where a room's packets come from: its SFU tap, or a test fixture.
pub trait PacketSource: Send + 'static {
    /// The next packet, waiting at most `timeout`.
    fn recv_timeout(&self, timeout: Duration) -> Result<TapPacket, RecvTimeoutError>;
    /// Ask the publisher for a keyframe.
    fn request_keyframe(&self);
    /// Whether the publisher sends video, though none may have come yet (the source waits
    /// for a keyframe to start from).
    fn publishes_video(&self) -> bool {
        false
    }
    /// The publisher's H.264 when it is an ingest source (RTMP, SRT, RTSP) whose video the
    /// top rung may copy.
    fn source_video(&self) -> Option<SourceVideo> {
        None
    }
    /// The publisher's AAC as it came, when it is an ingest source that sends AAC: its
    /// AudioSpecificConfig and the frames from now on, which the audio rendition copies.
    fn source_audio(&self) -> Option<(bytes::Bytes, Receiver<SourceAac>)> {
        None
    }
}

/// An ingest source's H.264 as it enters the room: the top rung copies it, with no decode and
/// no second encode, while its size is the top rendition's and its keyframes fall where
/// segments are cut (the transcoder watches them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceVideo {
    /// Picture width.
    pub width: u32,
    /// Picture height.
    pub height: u32,
}

impl PacketSource for (RoomTap, crate::ingest::RoomIngest) {
    fn recv_timeout(&self, timeout: Duration) -> Result<TapPacket, RecvTimeoutError> {
        self.0.recv_timeout(timeout)
    }

    fn request_keyframe(&self) {
        self.0.request_keyframe();
    }

    fn publishes_video(&self) -> bool {
        self.0.room_has_video()
    }

    fn source_video(&self) -> Option<SourceVideo> {
        self.1.source_video(self.0.room())
    }

    fn source_audio(&self) -> Option<(bytes::Bytes, Receiver<SourceAac>)> {
        self.1.source_audio(self.0.room())
    }
}

impl PacketSource for RoomTap {
    fn recv_timeout(&self, timeout: Duration) -> Result<TapPacket, RecvTimeoutError> {
        RoomTap::recv_timeout(self, timeout)
    }

    fn request_keyframe(&self) {
        RoomTap::request_keyframe(self);
    }

    fn publishes_video(&self) -> bool {
        self.room_has_video()
    }
}

/// Opens the stream's renditions in the origin, once the ladder is known.
pub type OpenStream = Box<dyn FnOnce() -> Result<Box<dyn MediaSink>, String> + Send>;

/// A running room bridge. [`stop`](Self::stop) ends the stream (the VOD is finalised).
pub struct RoomBridge {
    stream: String,
    control: Arc<Mutex<Control>>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Debug)]
struct Control {
    stop: bool,
    health: BridgeHealth,
}

impl RoomBridge {
    /// Starts bridging stream `stream` from `source`; `open` makes its renditions.
    pub fn start(
        stream: &str,
        source: impl PacketSource,
        open: OpenStream,
        config: BridgeConfig,
        settings: StreamSettings,
        stats: Arc<BridgeStats>,
    ) -> std::io::Result<RoomBridge> {
        let control = Arc::new(Mutex::new(Control {
            stop: false,
            health: BridgeHealth {
                state: BridgeState::Starting,
                encoder: config.encoder.to_string(),
                renditions: Vec::new(),
                video_codec: None,
                top_rung_copied: false,
                audio_copied: false,
                audio: false,
                clock: None,
                restarts: 0,
                last_error: None,
            },
        }));
        let worker = Worker {
            stream: stream.to_string(),
            source,
            open: Some(open),
            config,
            settings,
            stats,
            control: control.clone(),
            output: None,
            run: Run::Prerolling {
                preroll: Preroll::default(),
                asked: None,
            },
            sequence: 0,
            epoch: 0,
            no_copy_epoch: None,
        };
        let thread = std::thread::Builder::new()
            .name(format!("bridge-{stream}"))
            .spawn(move || worker.run())?;
        Ok(RoomBridge {
            stream: stream.to_string(),
            control,
            thread: Some(thread),
        })
    }

    /// The stream it bridges.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// How it is doing.
    pub fn health(&self) -> BridgeHealth {
        lock(&self.control).health.clone()
    }

    /// Ends the stream: the transcoder drains, the packager closes the last segment and
    /// finalises the VOD. Waits for that.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        lock(&self.control).stop = true;
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!(stream = %self.stream, "the bridge thread panicked");
        }
    }
}

impl Drop for RoomBridge {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn lock(control: &Mutex<Control>) -> std::sync::MutexGuard<'_, Control> {
    control.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the transcoder runs push into: the slate's live input, shared across runs, so a
/// run that ends never ends the stream.
#[derive(Clone)]
struct RunSink(Arc<Mutex<LiveInput>>);

impl MediaSink for RunSink {
    fn start(&mut self, tracks: Vec<TrackConfig>, anchor: std::time::SystemTime) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .start(tracks, anchor);
    }
    fn push(&mut self, track: usize, au: AccessUnit) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(track, au);
    }
    /// The stream ends when the bridge stops, not when a run does.
    fn finish(&mut self) {}
}

/// The stream's output, made at the first start.
struct Output {
    slated: Slated,
    input: Arc<Mutex<LiveInput>>,
    renditions: Vec<Rendition>,
    /// The track set the renditions were made for: (video, audio).
    tracks: (bool, bool),
    /// Slates counted in the stats so far.
    slates_counted: u64,
}

/// The transcoder, or what it waits for.
enum Run {
    /// Holding packets until the source is known; `asked` is when a keyframe was last
    /// requested (restarts ask).
    Prerolling {
        preroll: Preroll,
        asked: Option<Instant>,
    },
    /// Transcoding (boxed: it is much bigger than a preroll).
    Running {
        transcoder: Box<Transcoder>,
        video: Option<VideoCodec>,
        last_packet: Instant,
        /// The top rung copies the source's H.264, which had this size.
        copying: Option<(u32, u32)>,
        /// The audio rendition copies the source's AAC: its frames, and the config the run
        /// was built for.
        aac: Option<(bytes::Bytes, Receiver<SourceAac>)>,
    },
}

/// Why a run ends.
#[derive(Debug)]
enum Restart {
    Fault(String),
    Gap(Duration),
    Changed(&'static str),
}

struct Worker<S: PacketSource> {
    stream: String,
    source: S,
    open: Option<OpenStream>,
    config: BridgeConfig,
    settings: StreamSettings,
    stats: Arc<BridgeStats>,
    control: Arc<Mutex<Control>>,
    output: Option<Output>,
    run: Run,
    /// Transcoder runs so far (names their pipelines).
    sequence: u64,
    /// The publisher epoch of the last packet.
    epoch: u32,
    /// A publisher (its epoch) whose keyframes did not fit the segments: its top rung is
    /// encoded.
    no_copy_epoch: Option<u32>,
}

impl<S: PacketSource> Worker<S> {
    fn run(mut self) {
        loop {
            if lock(&self.control).stop {
                break;
            }
            match self.source.recv_timeout(POLL) {
                Ok(packet) => self.packet(packet),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    tracing::warn!(stream = %self.stream, "the room's tap closed");
                    break;
                }
            }
            self.source_aac();
            self.tick();
        }
        self.finish();
    }

    fn packet(&mut self, p: TapPacket) {
        let now = Instant::now();
        self.epoch = p.epoch;
        let restart = match &mut self.run {
            Run::Prerolling { preroll, .. } => {
                preroll.push(p);
                return;
            }
            Run::Running {
                video,
                last_packet,
                copying,
                ..
            } => {
                let gap = now.saturating_duration_since(*last_packet);
                *last_packet = now;
                // The renditions are fixed at the first start: a track the stream did not have
                // then is left out (the transcoder ignores it); a new video codec needs a new
                // run on the same renditions.
                let new_codec = p.kind == MediaKind::Video
                    && video.is_some()
                    && video_codec(&p).is_some_and(|c| Some(c) != *video);
                // A copied source can only change its picture size on a keyframe (new
                // parameter sets): look then, not on every packet.
                let resized = p.kind == MediaKind::Video
                    && p.keyframe
                    && copying.is_some_and(|size| {
                        self.source
                            .source_video()
                            .is_none_or(|v| (v.width, v.height) != size)
                    });
                if gap >= GAP {
                    Some(Restart::Gap(gap))
                } else if new_codec {
                    Some(Restart::Changed("the video codec changed"))
                } else if resized {
                    Some(Restart::Changed("the source's picture size changed"))
                } else {
                    None
                }
            }
        };
        match restart {
            Some(why) => {
                self.restart(why);
                if let Run::Prerolling { preroll, .. } = &mut self.run {
                    preroll.push(p);
                }
            }
            None => {
                if let Run::Running { transcoder, .. } = &mut self.run {
                    transcoder.push(&p);
                }
            }
        }
    }

    /// Hands the source's AAC frames that came meanwhile to a run that copies them.
    fn source_aac(&mut self) {
        let Run::Running {
            transcoder,
            aac: Some((config, frames)),
            ..
        } = &mut self.run
        else {
            return;
        };
        loop {
            match frames.try_recv() {
                Ok(frame) if frame.config == *config => transcoder.push_aac(frame.capture, &frame.data),
                Ok(_) => {
                    self.restart(Restart::Changed("the source's audio format changed"));
                    return;
                }
                // The publication ended; the bridge goes on with what the tap brings.
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => return,
            }
        }
    }

    fn tick(&mut self) {
        let now = Instant::now();
        self.update_slate_state();
        match &mut self.run {
            Run::Prerolling { preroll, asked } => {
                // A restarted run waits for a keyframe: keep asking until one comes.
                if let Some(at) = asked
                    && now.saturating_duration_since(*at) >= KEYFRAME_RETRY
                {
                    self.source.request_keyframe();
                    *asked = Some(now);
                }
                if let Some(codec) = preroll.refused() {
                    let mut c = lock(&self.control);
                    if c.health.last_error.is_none() {
                        let why = format!(
                            "{codec:?} video cannot be bridged to LL-HLS (the bridge takes VP8, VP9, H.264 and AV1): audio only"
                        );
                        tracing::error!(stream = %self.stream, "{why}");
                        c.health.last_error = Some(why);
                    }
                }
                preroll.expect_video(self.source.publishes_video());
                if preroll.ready(now) {
                    let plan = preroll.take();
                    self.start(plan);
                }
            }
            Run::Running { transcoder, .. } => {
                if let Err(e) = transcoder.health() {
                    self.restart(Restart::Fault(e.to_string()));
                } else if transcoder.copy_misfit() {
                    // Not again for this publisher: its encoder keeps its keyframe interval.
                    self.no_copy_epoch = Some(self.epoch);
                    self.restart(Restart::Changed(
                        "the source's keyframes are too far apart for the segments: the top rung is encoded",
                    ));
                } else if transcoder.take_keyframe_request() {
                    // Through the room's throttle: a burst of requests is one PLI.
                    self.source.request_keyframe();
                }
            }
        }
    }

    fn update_slate_state(&mut self) {
        let Some(output) = &mut self.output else { return };
        let shown = output.slated.slates_shown();
        if shown > output.slates_counted {
            self.stats.slates.fetch_add(
                shown - output.slates_counted,
                std::sync::atomic::Ordering::Relaxed,
            );
            output.slates_counted = shown;
        }
        let slate = output.slated.showing_slate();
        let mut c = lock(&self.control);
        match (c.health.state, slate) {
            (BridgeState::Live, true) => c.health.state = BridgeState::Slate,
            (BridgeState::Slate, false) => c.health.state = BridgeState::Live,
            _ => {}
        }
    }

    /// Start a transcoder run from `plan` (making the stream's output first, the first time).
    fn start(&mut self, plan: Plan) {
        let Plan {
            video,
            audio,
            packets,
        } = plan;
        let tracks = (video.is_some(), audio.is_some());
        if self.output.as_ref().is_some_and(|o| o.tracks != tracks) {
            // A new track set cannot go on the renditions the players know: keep the ones
            // there are and leave out what does not fit.
            tracing::warn!(stream = %self.stream, ?tracks, "the source's tracks changed; the renditions stay as they were");
        }
        // An ingest source's H.264 is the top rung as it is, where it can be.
        let source_video = video
            .filter(|v| v.codec == VideoCodec::H264)
            .and_then(|_| self.source.source_video());
        let renditions = match &self.output {
            Some(output) => output.renditions.clone(),
            None => {
                let heights = self.settings.ladder.as_deref().unwrap_or(&self.config.ladder);
                match source_video {
                    Some(s) => ladder::source_on_top(s.width, s.height, heights),
                    None => {
                        let (w, h) = video.and_then(|v| v.size).unwrap_or((1280, 720));
                        ladder::for_source(w, h, heights)
                    }
                }
            }
        };
        // An ingest source's AAC is the audio rendition as it is.
        let aac = audio.and_then(|_| self.source.source_audio());
        let epoch = packets.first().map(|p| p.epoch);
        let copying = source_video
            .filter(|s| {
                renditions
                    .first()
                    .is_some_and(|top| (s.width, s.height) == (top.width, top.height))
                    && (epoch.is_none() || epoch != self.no_copy_epoch)
            })
            .map(|s| (s.width, s.height));
        let (video, audio) = match &self.output {
            Some(o) => (video.filter(|_| o.tracks.0), audio.filter(|_| o.tracks.1)),
            None => (video, audio),
        };
        if video.is_none() && audio.is_none() {
            tracing::warn!(stream = %self.stream, "nothing to transcode yet");
            self.run = Run::Prerolling {
                preroll: Preroll::default(),
                asked: None,
            };
            return;
        }
        if self.output.is_none() {
            match self.open_output(&renditions, (video.is_some(), audio.is_some())) {
                Ok(output) => self.output = Some(output),
                Err(why) => {
                    tracing::error!(stream = %self.stream, "cannot open the stream's renditions: {why}");
                    lock(&self.control).health.last_error = Some(why);
                    return;
                }
            }
        }
        let output = self.output.as_ref().expect("opened above");
        let config = TranscodeConfig {
            video,
            audio,
            renditions: renditions.clone(),
            frame_rate: self.config.frame_rate,
            keyframe_interval: self.config.keyframe_interval,
            encoder: self.config.encoder,
            speed_preset: self.config.speed_preset,
            audio_bitrate: self.config.audio_bitrate,
            copy_top: copying.map(|_| self.settings.hls().keyframe_window()),
            audio_copy: aac.as_ref().map(|(config, _)| config.clone()),
        };
        self.sequence += 1;
        let name = format!("transcode-{}-{}", self.stream, self.sequence);
        let sink = RunSink(output.input.clone());
        BridgeStats::count(&self.stats.starts);
        match Transcoder::start(&name, &config, packets, Box::new(sink)) {
            Ok(transcoder) => {
                let (video_clock, audio_clock) = transcoder.clock_basis();
                let basis = if video.is_some() { video_clock } else { audio_clock };
                let slate = self.output.as_ref().is_some_and(|o| o.slated.showing_slate());
                let mut c = lock(&self.control);
                // Behind the slate until the run's first keyframe reaches it.
                c.health.state = if slate {
                    BridgeState::Slate
                } else {
                    BridgeState::Live
                };
                c.health.renditions = renditions
                    .iter()
                    .map(|r| format!("{}x{}", r.width, r.height))
                    .collect();
                c.health.video_codec = video.map(|v| format!("{:?}", v.codec));
                c.health.encoder = transcoder.encoding().to_string();
                c.health.top_rung_copied = copying.is_some();
                c.health.audio_copied = aac.is_some();
                c.health.audio = audio.is_some();
                c.health.clock = Some(match basis {
                    crate::transcode::clock::Basis::Capture => "capture",
                    crate::transcode::clock::Basis::Arrival => "arrival",
                });
                drop(c);
                if copying.is_some() {
                    tracing::info!(stream = %self.stream, "the top rung is the source's own H.264");
                }
                self.run = Run::Running {
                    transcoder: Box::new(transcoder),
                    video: video.map(|v| v.codec),
                    last_packet: Instant::now(),
                    copying,
                    aac,
                };
            }
            Err(e) => {
                // Try again from the next keyframe; the slate covers the stream meanwhile.
                tracing::error!(stream = %self.stream, error = %e, "the transcoder did not start");
                let mut c = lock(&self.control);
                c.health.state = BridgeState::Restarting;
                c.health.last_error = Some(e.to_string());
                drop(c);
                self.source.request_keyframe();
                self.run = Run::Prerolling {
                    preroll: Preroll::resuming(),
                    asked: Some(Instant::now()),
                };
            }
        }
    }

    fn open_output(&mut self, renditions: &[Rendition], tracks: (bool, bool)) -> Result<Output, String> {
        let open = self.open.take().ok_or("the stream was opened already")?;
        let sink = open()?;
        let slate = SlateConfig {
            after: self.config.slate_after,
            source: TestSourceConfig {
                renditions: if tracks.0 { renditions.to_vec() } else { Vec::new() },
                frame_rate: self.config.frame_rate,
                keyframe_interval: self.config.keyframe_interval,
                speed_preset: self.config.speed_preset,
                audio_bitrate: tracks.1.then_some(self.config.audio_bitrate),
            },
        };
        let slated = Slated::new(sink, slate);
        let input = Arc::new(Mutex::new(slated.live_input()));
        Ok(Output {
            slated,
            input,
            renditions: renditions.to_vec(),
            tracks,
            slates_counted: 0,
        })
    }

    fn restart(&mut self, why: Restart) {
        let previous = std::mem::replace(
            &mut self.run,
            Run::Prerolling {
                preroll: Preroll::resuming(),
                asked: Some(Instant::now()),
            },
        );
        if let Run::Running { transcoder, .. } = previous {
            // No drain: its last frames would arrive behind the slate with stale times.
            transcoder.abort();
        }
        self.source.request_keyframe();
        let mut c = lock(&self.control);
        match &why {
            Restart::Fault(error) => {
                tracing::error!(stream = %self.stream, %error, "transcoder failed: restarting from the next keyframe");
                BridgeStats::count(&self.stats.faults);
                c.health.restarts += 1;
                c.health.last_error = Some(error.clone());
                c.health.state = BridgeState::Restarting;
            }
            Restart::Gap(gap) => {
                tracing::info!(stream = %self.stream, gap_ms = gap.as_millis() as u64, "media back after a gap: new transcoder run");
                BridgeStats::count(&self.stats.resumes);
            }
            Restart::Changed(what) => {
                tracing::info!(stream = %self.stream, "{what}: new transcoder run");
                BridgeStats::count(&self.stats.resumes);
            }
        }
    }

    /// The stream ended: drain the run, then end the renditions (the VOD is finalised).
    fn finish(&mut self) {
        if let Run::Running { transcoder, .. } = std::mem::replace(
            &mut self.run,
            Run::Prerolling {
                preroll: Preroll::default(),
                asked: None,
            },
        ) && let Err(e) = transcoder.stop()
        {
            tracing::warn!(stream = %self.stream, error = %e, "the transcoder stopped with an error");
        }
        if let Some(output) = self.output.take() {
            output.input.lock().unwrap_or_else(|e| e.into_inner()).finish();
            drop(output.slated);
        }
        lock(&self.control).health.state = BridgeState::Stopped;
        tracing::info!(stream = %self.stream, "bridge stopped");
    }
}
