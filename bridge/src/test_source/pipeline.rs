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

use super::clock_stamp;
use super::config::TestSourceConfig;
use crate::Error;
use crate::encoder::{EncoderChoice, VideoEncoder};
use crate::media::aac;
use crate::media::pusher::Feed;
use crate::media::rung::{self, RungEncoding};

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
    let encoding = RungEncoding {
        choice: EncoderChoice {
            encoder: VideoEncoder::X264,
            gpu_decode: false,
        },
        speed_preset: config.speed_preset,
        keyframe_interval_frames: config.keyframe_interval_frames(),
    };
    rung::build_all(&pipeline, &tee, &encoding, &config.renditions, 0, feed)?;
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

/// audiotestsrc -> the AAC tail (`media::aac`).
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
    let tail = aac::build(pipeline, encoder, bitrate, track, feed)?;
    pipeline.add(&src)?;
    src.link(&tail)?;
    Ok(())
}
