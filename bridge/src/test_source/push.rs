//! The test pattern with the wall clock burnt in, encoded the way a streaming encoder would and
//! pushed to an ingest server over RTMP or SRT — or decoded again on the spot, to measure what
//! the encoder alone costs in latency (the floor of an ingest glass-to-glass figure).
//!
//! ```text
//! videotestsrc -> I420 -> [clock stamp probe] -> textoverlay -> x264enc -> main profile -> h264parse ─┐
//! audiotestsrc -> audioconvert -> audioresample -> 48 kHz stereo -> AAC -> aacparse ─────────────────┤
//!        RTMP: flvmux -> rtmp2sink      SRT: mpegtsmux (7 packets a datagram) -> srtsink  ◀────────┘
//!        floor: h264parse -> avdec_h264 -> appsink (no audio): each frame's age when decoded
//! ```
//!
//! Every frame carries the [`clock_code`](super::clock_code) of its own wall-clock time (the
//! pipeline runs on the realtime clock), so a viewer that reads the code from a frame it shows
//! knows how old the frame is. Without B-frames x264 runs `zerolatency` (what a low-latency
//! encoder sends, and what the server passes through); with B-frames it keeps its lookahead
//! short (10 frames) and puts exactly that many B-frames between references (what OBS-like
//! encoders send by default, and what the server re-encodes).

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;
use gstreamer_video::prelude::*;

use super::{clock_code, clock_stamp};
use crate::Error;
use crate::media::aac::{self, AUDIO_BITRATE, AUDIO_CHANNELS, AUDIO_RATE};
use crate::media::bus::BusWatcher;
use crate::media::plugins::{self, Needed};

/// Where the encoded stream goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushTarget {
    /// FLV over RTMP to this URL, e.g. `rtmp://127.0.0.1:1935/live/KEY`.
    Rtmp(String),
    /// MPEG-TS over SRT (caller mode) to `uri` (`srt://127.0.0.1:8890`), with this stream id
    /// (`publish:KEY`) and SRT latency.
    Srt {
        /// `srt://host:port`, without query.
        uri: String,
        /// The SRT stream id, if any.
        stream_id: Option<String>,
        /// The latency this caller asks for; the larger of both ends' applies.
        latency: Duration,
    },
    /// Nowhere: decoded again in this process and each frame's age measured (video only).
    Floor,
}

/// What to encode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushConfig {
    /// Where to.
    pub target: PushTarget,
    /// Picture width and height.
    pub width: u32,
    /// Picture height.
    pub height: u32,
    /// Frames per second.
    pub frame_rate: u32,
    /// Video bit rate in bit/s.
    pub bitrate: u32,
    /// B-frames between references: 0 for a stream the server passes through.
    pub b_frames: u32,
    /// Distance between keyframes.
    pub keyframe_interval: Duration,
    /// AAC-LC audio (48 kHz stereo, 128 kbit/s) beside the video; ignored by the floor.
    pub audio: bool,
}

impl Default for PushConfig {
    fn default() -> Self {
        PushConfig {
            target: PushTarget::Floor,
            width: 1280,
            height: 720,
            frame_rate: 30,
            bitrate: 2_500_000,
            b_frames: 0,
            keyframe_interval: Duration::from_secs(2),
            audio: true,
        }
    }
}

const VIDEO: &[Needed] = &[
    ("videotestsrc", "gstreamer1.0-plugins-base"),
    ("textoverlay", "gstreamer1.0-x"),
    ("x264enc", "gstreamer1.0-plugins-ugly"),
    ("h264parse", "gstreamer1.0-plugins-bad"),
];
const AUDIO: &[Needed] = &[("audiotestsrc", "gstreamer1.0-plugins-base")];
const RTMP: &[Needed] = &[
    ("flvmux", "gstreamer1.0-plugins-good"),
    ("rtmp2sink", "gstreamer1.0-plugins-bad"),
];
const SRT: &[Needed] = &[
    ("mpegtsmux", "gstreamer1.0-plugins-bad"),
    ("srtsink", "gstreamer1.0-plugins-bad"),
];
const FLOOR: &[Needed] = &[
    ("avdec_h264", "gstreamer1.0-libav"),
    ("appsink", "gstreamer1.0-plugins-base"),
];

/// A running push (or floor). Stops on [`stop`](Self::stop) or drop.
pub struct PushTest {
    pipeline: gst::Pipeline,
    bus: BusWatcher,
    ages: Arc<Mutex<Vec<f64>>>,
}

/// FLV's tag type of a video tag (the first byte of each tag flvmux pushes).
const FLV_VIDEO_TAG: u8 = 9;

impl PushTest {
    /// Builds and starts the pipeline. Fails when an element is missing, the configuration is
    /// impossible, or the pipeline does not start (e.g. nothing listens at the RTMP URL).
    pub fn start(config: &PushConfig) -> Result<PushTest, Error> {
        if config.width < 72 || config.height < 40 || config.frame_rate == 0 || config.bitrate < 1000 {
            return Err(Error::InvalidConfig(format!("{config:?}")));
        }
        gst::init().map_err(|e| Error::Init(e.to_string()))?;
        plugins::require(VIDEO)?;
        let audio = config.audio && config.target != PushTarget::Floor;
        plugins::require(match config.target {
            PushTarget::Rtmp(_) => RTMP,
            PushTarget::Srt { .. } => SRT,
            PushTarget::Floor => FLOOR,
        })?;
        let aac_encoder = if audio {
            plugins::require(AUDIO)?;
            plugins::require(plugins::AUDIO)?;
            Some(aac::encoder()?)
        } else {
            None
        };

        let pipeline = gst::Pipeline::with_name("push-test");
        // Running time 0 is a Unix time, so the stamped clock is the wall clock (as in the
        // test source); a private clock, the process's default one stays monotonic.
        let clock = glib_realtime_clock();
        pipeline.use_clock(Some(&clock));
        let ages = Arc::new(Mutex::new(Vec::new()));
        let video = video_branch(&pipeline, config)?;
        match &config.target {
            PushTarget::Floor => floor_tail(&pipeline, &video, config, ages.clone())?,
            target => {
                let mux = mux_tail(&pipeline, target)?;
                if matches!(target, PushTarget::Rtmp(_)) {
                    sent_ages(&mux, ages.clone());
                }
                video.link(&mux)?;
                if let Some(encoder) = aac_encoder {
                    audio_branch(&pipeline, encoder)?.link(&mux)?;
                }
            }
        }
        let bus = BusWatcher::spawn(&pipeline).map_err(|e| Error::Build(e.to_string()))?;
        let push = PushTest { pipeline, bus, ages };
        if push.pipeline.set_state(gst::State::Playing).is_err() {
            std::thread::sleep(Duration::from_millis(500));
            push.health()?;
            return Err(Error::Build("the pipeline did not start".into()));
        }
        Ok(push)
    }

    /// `Err` with the first error an element reported (a refused connection, a closed socket).
    pub fn health(&self) -> Result<(), Error> {
        match self.bus.first_error() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The samples so far, and forgets them. The floor: for each decoded frame, the
    /// milliseconds from its stamped time to the moment it left the decoder. RTMP: for each
    /// video frame, from its stamped time to the moment the muxer handed it to the network
    /// sink (what the encoder and the muxer's interleaving with audio cost before the server
    /// sees a byte). Empty for SRT.
    pub fn take_ages_ms(&self) -> Vec<f64> {
        std::mem::take(&mut *self.ages.lock().expect("no code panics while holding the ages"))
    }

    /// Stops the pipeline.
    pub fn stop(mut self) -> Result<(), Error> {
        self.shutdown();
        self.health()
    }

    fn shutdown(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
        self.bus.stop();
    }
}

impl Drop for PushTest {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn glib_realtime_clock() -> gst::SystemClock {
    gst::glib::Object::builder::<gst::SystemClock>()
        .property("clock-type", gst::ClockType::Realtime)
        .build()
}

/// The stamped pattern through x264 and h264parse; returns the parser.
fn video_branch(pipeline: &gst::Pipeline, config: &PushConfig) -> Result<gst::Element, Error> {
    let fps = i32::try_from(config.frame_rate).map_err(|_| Error::InvalidConfig("frame rate".into()))?;
    let size = |v: u32| i32::try_from(v).map_err(|_| Error::InvalidConfig("picture size".into()));
    let src = gst::ElementFactory::make("videotestsrc")
        .property("is-live", true)
        .property_from_str("pattern", "smpte")
        .property("horizontal-speed", 4i32)
        .build()?;
    let raw_caps = gst_video::VideoCapsBuilder::new()
        .format(gst_video::VideoFormat::I420)
        .width(size(config.width)?)
        .height(size(config.height)?)
        .framerate(gst::Fraction::new(fps, 1))
        .pixel_aspect_ratio(gst::Fraction::new(1, 1))
        .build();
    let raw = gst::ElementFactory::make("capsfilter")
        .property("caps", &raw_caps)
        .build()?;
    let overlay = gst::ElementFactory::make("textoverlay")
        .property(
            "font-desc",
            format!("Monospace Bold {}", (config.height / 40).max(6)),
        )
        .property_from_str("wrap-mode", "none")
        .property_from_str("valignment", "top")
        .property_from_str("halignment", "left")
        .property("shaded-background", true)
        .build()?;
    let gop = (config.keyframe_interval.as_secs_f64() * f64::from(config.frame_rate))
        .round()
        .max(1.0) as u32;
    let mut x264 = gst::ElementFactory::make("x264enc")
        .property_from_str("speed-preset", "veryfast")
        .property("bitrate", (config.bitrate / 1000).max(1))
        .property("key-int-max", gop)
        .property("bframes", config.b_frames);
    x264 = if config.b_frames == 0 {
        x264.property_from_str("tune", "zerolatency")
    } else {
        // Exactly `b_frames` B-frames between references, with a short lookahead.
        x264.property("b-adapt", false).property("rc-lookahead", 10i32)
    };
    let x264 = x264.build()?;
    let profile = gst::ElementFactory::make("capsfilter")
        .property(
            "caps",
            gst::Caps::builder("video/x-h264")
                .field("profile", "main")
                .build(),
        )
        .build()?;
    let parse = gst::ElementFactory::make("h264parse")
        .property("config-interval", -1i32)
        .build()?;
    let chain = [&src, &raw, &overlay, &x264, &profile, &parse];
    pipeline.add_many(chain)?;
    gst::Element::link_many(chain)?;
    let info = gst_video::VideoInfo::from_caps(&raw_caps)?;
    let pad = raw.static_pad("src").expect("a capsfilter has a src pad");
    clock_stamp::attach(&pad, info, &overlay, config.keyframe_interval);
    Ok(parse)
}

/// audiotestsrc -> AAC-LC 48 kHz stereo -> aacparse; returns the parser.
fn audio_branch(pipeline: &gst::Pipeline, encoder: &str) -> Result<gst::Element, Error> {
    let src = gst::ElementFactory::make("audiotestsrc")
        .property("is-live", true)
        .property_from_str("wave", "ticks")
        .property("volume", 0.4f64)
        .property("samplesperbuffer", 1024i32)
        .build()?;
    let convert = gst::ElementFactory::make("audioconvert").build()?;
    let resample = gst::ElementFactory::make("audioresample").build()?;
    let format = gst::ElementFactory::make("capsfilter")
        .property(
            "caps",
            gst::Caps::builder("audio/x-raw")
                .field("rate", i32::try_from(AUDIO_RATE).expect("48000 fits"))
                .field("channels", i32::from(AUDIO_CHANNELS))
                .build(),
        )
        .build()?;
    let aac = gst::ElementFactory::make(encoder)
        .property("bitrate", i32::try_from(AUDIO_BITRATE).expect("128000 fits"))
        .build()?;
    let parse = gst::ElementFactory::make("aacparse").build()?;
    let chain = [&src, &convert, &resample, &format, &aac, &parse];
    pipeline.add_many(chain)?;
    gst::Element::link_many(chain)?;
    Ok(parse)
}

/// The muxer and network sink for `target`; returns the muxer.
fn mux_tail(pipeline: &gst::Pipeline, target: &PushTarget) -> Result<gst::Element, Error> {
    let (mux, sink) = match target {
        PushTarget::Rtmp(url) => (
            gst::ElementFactory::make("flvmux")
                .property("streamable", true)
                .build()?,
            gst::ElementFactory::make("rtmp2sink")
                .property("location", url)
                .build()?,
        ),
        PushTarget::Srt {
            uri,
            stream_id,
            latency,
        } => {
            let mut sink = gst::ElementFactory::make("srtsink")
                .property("uri", uri)
                .property("latency", i32::try_from(latency.as_millis()).unwrap_or(i32::MAX))
                // Push into the network as it comes: the clock is the encoder's business.
                .property("sync", false);
            if let Some(id) = stream_id {
                sink = sink.property("streamid", id);
            }
            (
                // Seven 188-byte packets to a datagram: 1316 bytes, SRT's usual payload.
                gst::ElementFactory::make("mpegtsmux")
                    .property("alignment", 7i32)
                    .build()?,
                sink.build()?,
            )
        }
        PushTarget::Floor => unreachable!("the floor has no muxer"),
    };
    pipeline.add_many([&mux, &sink])?;
    mux.link(&sink)?;
    Ok(mux)
}

/// A probe on the FLV muxer's output recording each video tag's age as it leaves for the
/// network: the pipeline's clock is the realtime one with running time 0 at the base time, so
/// base time + running time is the frame's stamped wall-clock time.
fn sent_ages(mux: &gst::Element, ages: Arc<Mutex<Vec<f64>>>) {
    let pad = mux.static_pad("src").expect("flvmux has a src pad");
    pad.add_probe(gst::PadProbeType::BUFFER, move |pad, probe| {
        let Some(buffer) = probe.buffer() else {
            return gst::PadProbeReturn::Ok;
        };
        let video = buffer
            .map_readable()
            .is_ok_and(|m| m.first() == Some(&FLV_VIDEO_TAG));
        let running = buffer.pts().and_then(|pts| {
            pad.sticky_event::<gst::event::Segment>(0)?
                .segment()
                .downcast_ref::<gst::ClockTime>()?
                .to_running_time(pts)
        });
        let parent = pad.parent_element();
        let now = parent.as_ref().and_then(|e| e.current_running_time());
        if video && let (Some(running), Some(now)) = (running, now) {
            let age_ms = (now.nseconds() as f64 - running.nseconds() as f64) / 1e6;
            ages.lock()
                .expect("no code panics while holding the ages")
                .push(age_ms);
        }
        gst::PadProbeReturn::Ok
    });
}

/// avdec_h264 -> appsink that reads each decoded frame's code and records its age.
fn floor_tail(
    pipeline: &gst::Pipeline,
    parse: &gst::Element,
    config: &PushConfig,
    ages: Arc<Mutex<Vec<f64>>>,
) -> Result<(), Error> {
    let decode = gst::ElementFactory::make("avdec_h264")
        // As the server's re-encoder decodes: frame threads would hold frames back.
        .property_from_str("thread-type", "slice")
        .build()?;
    let sink = gst_app::AppSink::builder()
        .caps(
            &gst_video::VideoCapsBuilder::new()
                .format(gst_video::VideoFormat::I420)
                .build(),
        )
        .sync(false)
        .build();
    let (width, height) = (config.width, config.height);
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let decoded_at = SystemTime::now();
                let (Some(buffer), Some(caps)) = (sample.buffer(), sample.caps()) else {
                    return Ok(gst::FlowSuccess::Ok);
                };
                let Ok(info) = gst_video::VideoInfo::from_caps(caps) else {
                    return Ok(gst::FlowSuccess::Ok);
                };
                let Ok(frame) = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &info) else {
                    return Ok(gst::FlowSuccess::Ok);
                };
                let stride = frame.plane_stride()[0].max(0) as usize;
                let stamp = frame
                    .plane_data(0)
                    .ok()
                    .and_then(|luma| clock_code::read_luma(luma, stride, width, height));
                if let Some(stamp) = stamp {
                    let now_ms = decoded_at
                        .duration_since(SystemTime::UNIX_EPOCH)
                        .unwrap_or_default()
                        .as_secs_f64()
                        * 1e3;
                    ages.lock()
                        .expect("no code panics while holding the ages")
                        .push(now_ms - stamp as f64);
                }
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    pipeline.add_many([&decode, sink.upcast_ref()])?;
    gst::Element::link_many([parse, &decode, sink.upcast_ref()])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_reads_back_the_clock_of_every_frame() {
        let config = PushConfig {
            width: 320,
            height: 180,
            bitrate: 300_000,
            ..PushConfig::default()
        };
        let push = PushTest::start(&config).expect("floor starts");
        std::thread::sleep(Duration::from_millis(1500));
        push.health().expect("healthy");
        let ages = push.take_ages_ms();
        push.stop().expect("stops cleanly");
        assert!(ages.len() >= 20, "{} frames read in 1.5 s", ages.len());
        // Encoding and decoding a 180p frame takes milliseconds, not seconds; never negative
        // beyond rounding to whole milliseconds.
        assert!(ages.iter().all(|&a| (-1.0..1000.0).contains(&a)), "{ages:?}");
    }
}
