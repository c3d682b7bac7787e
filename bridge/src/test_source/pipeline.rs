//! Builds the ladder pipeline (diagram in `docs/bridge.md`):
//!
//! ```text
//! videotestsrc -> I420 top size -> [clock stamp probe] -> textoverlay -> tee
//!   tee -> queue -> videoscale -> rung size -> x264enc -> main profile -> h264parse -> avc/au -> appsink  (per rung)
//! audiotestsrc -> audioconvert -> audioresample -> 48 kHz stereo -> AAC encoder -> aacparse -> raw -> appsink
//! ```

use std::sync::mpsc::SyncSender;

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer_video as gst_video;

use super::config::{AUDIO_CHANNELS, AUDIO_RATE, Rendition, TestSourceConfig};
use super::pusher::Feed;
use super::track_sink::{self, TrackKind};
use super::{Error, clock_stamp};

/// Builds the pipeline for `config`, its appsinks feeding `feed`; `aac_encoder` is the element
/// [`plugins::check`](super::plugins::check) chose, `None` for no audio.
pub(crate) fn build(
    config: &TestSourceConfig,
    aac_encoder: Option<&str>,
    feed: &SyncSender<Feed>,
) -> Result<gst::Pipeline, Error> {
    let pipeline = gst::Pipeline::with_name("test-source");
    // Running time 0 is then a Unix time (the base time), which makes the anchor and the clock
    // burnt into the frames the same clock. A private instance: the default system clock is
    // shared with the rest of the process and must stay monotonic.
    let clock = glib::Object::builder::<gst::SystemClock>()
        .property("clock-type", gst::ClockType::Realtime)
        .build();
    pipeline.use_clock(Some(&clock));

    let tee = video_source(&pipeline, config)?;
    for (track, rung) in config.renditions.iter().enumerate() {
        let branch = rung_branch(&pipeline, config, track, rung, feed)?;
        let src = tee
            .request_pad_simple("src_%u")
            .ok_or_else(|| Error::Build("tee gave no pad".into()))?;
        let sink = branch.static_pad("sink").expect("a queue has a sink pad");
        src.link(&sink)
            .map_err(|e| Error::Build(format!("tee to rung {track}: {e}")))?;
    }
    if let (Some(encoder), Some(bitrate)) = (aac_encoder, config.audio_bitrate) {
        audio_branch(&pipeline, encoder, bitrate, config.renditions.len(), feed)?;
    }
    Ok(pipeline)
}

/// The live pattern at the top size with the clock burnt in; returns the tee.
fn video_source(pipeline: &gst::Pipeline, config: &TestSourceConfig) -> Result<gst::Element, Error> {
    let (width, height) = config.source_size();
    let fps = i32::try_from(config.frame_rate).expect("validated frame rate");
    let src = gst::ElementFactory::make("videotestsrc")
        .name("pattern")
        .property("is-live", true)
        .property_from_str("pattern", "smpte")
        // Scrolling bars: motion for the encoders and for the eye, at little cost.
        .property("horizontal-speed", 4i32)
        .build()?;
    let raw_caps = gst_video::VideoCapsBuilder::new()
        .format(gst_video::VideoFormat::I420)
        .width(i32::try_from(width).expect("validated width"))
        .height(i32::try_from(height).expect("validated height"))
        .framerate(gst::Fraction::new(fps, 1))
        .pixel_aspect_ratio(gst::Fraction::new(1, 1))
        .build();
    let raw = gst::ElementFactory::make("capsfilter")
        .name("raw")
        .property("caps", &raw_caps)
        .build()?;
    let overlay = gst::ElementFactory::make("textoverlay")
        .name("clock-text")
        // About a twentieth of the picture high, on one line: readable on the 360p rung.
        .property("font-desc", format!("Monospace Bold {}", (height / 40).max(6)))
        .property_from_str("wrap-mode", "none")
        .property_from_str("valignment", "top")
        .property_from_str("halignment", "left")
        .property("shaded-background", true)
        .build()?;
    let tee = gst::ElementFactory::make("tee").name("ladder").build()?;
    pipeline.add_many([&src, &raw, &overlay, &tee])?;
    gst::Element::link_many([&src, &raw, &overlay, &tee])?;

    let info = gst_video::VideoInfo::from_caps(&raw_caps)?;
    let pad = raw.static_pad("src").expect("a capsfilter has a src pad");
    clock_stamp::attach(&pad, info, &overlay, config.keyframe_interval);
    Ok(tee)
}

/// queue -> videoscale -> rung size -> x264enc -> h264parse -> appsink; returns the queue.
fn rung_branch(
    pipeline: &gst::Pipeline,
    config: &TestSourceConfig,
    track: usize,
    rung: &Rendition,
    feed: &SyncSender<Feed>,
) -> Result<gst::Element, Error> {
    let name = |what: &str| format!("{what}-{}p", rung.height);
    let queue = gst::ElementFactory::make("queue").name(name("queue")).build()?;
    let scale = gst::ElementFactory::make("videoscale")
        .name(name("scale"))
        // 854x480 is not exactly 16:9: stretch by a fraction of a pixel rather than add borders.
        .property("add-borders", false)
        .build()?;
    let size = gst::ElementFactory::make("capsfilter")
        .name(name("size"))
        .property(
            "caps",
            gst_video::VideoCapsBuilder::new()
                .width(i32::try_from(rung.width).expect("validated width"))
                .height(i32::try_from(rung.height).expect("validated height"))
                .pixel_aspect_ratio(gst::Fraction::new(1, 1))
                .build(),
        )
        .build()?;
    let encoder = gst::ElementFactory::make("x264enc")
        .name(name("x264"))
        .property("bitrate", (rung.bitrate / 1000).max(1))
        .property_from_str("tune", "zerolatency")
        .property_from_str("speed-preset", config.speed_preset.nick())
        .property("bframes", 0u32)
        // Keyframes come from the clock stamp probe's force-key-unit events, on the same frame
        // for every rung. The GOP limit is one frame longer than their interval: it never
        // fires while they arrive, yet bounds the GOP (still aligned, every rung counts the
        // same frames) if they stopped, and then the tests see GOPs one frame too long.
        .property("key-int-max", config.keyframe_interval_frames() + 1)
        // No scene-cut keyframes: a rung must not put a keyframe where the others have none.
        .property("option-string", "scenecut=0")
        .build()?;
    let profile = gst::ElementFactory::make("capsfilter")
        .name(name("profile"))
        .property(
            "caps",
            gst::Caps::builder("video/x-h264")
                .field("profile", "main")
                .build(),
        )
        .build()?;
    let parse = gst::ElementFactory::make("h264parse")
        .name(name("parse"))
        .build()?;
    let avc = gst::Caps::builder("video/x-h264")
        .field("stream-format", "avc")
        .field("alignment", "au")
        .build();
    let sink = track_sink::build(
        &name("sink"),
        &avc,
        track,
        TrackKind::H264 {
            bitrate: rung.bitrate,
        },
        feed.clone(),
    );
    let chain = [
        &queue,
        &scale,
        &size,
        &encoder,
        &profile,
        &parse,
        sink.upcast_ref(),
    ];
    pipeline.add_many(chain)?;
    gst::Element::link_many(chain)?;
    Ok(queue)
}

/// audiotestsrc -> audioconvert -> audioresample -> AAC -> aacparse -> appsink.
fn audio_branch(
    pipeline: &gst::Pipeline,
    encoder: &str,
    bitrate: u32,
    track: usize,
    feed: &SyncSender<Feed>,
) -> Result<(), Error> {
    let src = gst::ElementFactory::make("audiotestsrc")
        .name("tone")
        .property("is-live", true)
        // A 1 kHz tick every second, louder on every fifth: audible liveness and A/V offset.
        .property_from_str("wave", "ticks")
        .property("freq", 1000.0f64)
        .property("marker-tick-period", 5u32)
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
        .name("aac")
        .property(
            "bitrate",
            i32::try_from(bitrate).expect("validated audio bit rate"),
        )
        .build()?;
    let parse = gst::ElementFactory::make("aacparse").build()?;
    let raw = gst::Caps::builder("audio/mpeg")
        .field("mpegversion", 4i32)
        .field("stream-format", "raw")
        .build();
    let sink = track_sink::build("aac-sink", &raw, track, TrackKind::Aac { bitrate }, feed.clone());
    let chain = [
        &src,
        &convert,
        &resample,
        &format,
        &aac,
        &parse,
        sink.upcast_ref(),
    ];
    pipeline.add_many(chain)?;
    gst::Element::link_many(chain)?;
    Ok(())
}
