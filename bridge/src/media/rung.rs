//! One rung of a ladder: scale the shared raw frames to the rung's size, encode H.264, parse
//! into AVC access units, hand them to the pusher.
//!
//! ```text
//! tee ─▶ queue ─▶ videoscale ─▶ WxH ─▶ x264enc | vah264enc ─────────▶ main ─▶ h264parse ─▶ appsink
//!   (CUDA) queue ─▶ cudascale ─▶ WxH (CUDA) ─▶ cudadownload ─▶ x264enc ┘ or ─▶ nvh264enc ┘
//! ```
//!
//! Keyframes come from force-key-unit events sent before the tee (see [`super::keyframes`]);
//! the encoder's own GOP limit is one frame longer than their interval, so it never fires
//! while the events arrive but bounds the GOP if they stopped. No scene-cut keyframes: a rung
//! must not put a keyframe where the others have none.

use std::sync::mpsc::SyncSender;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_video as gst_video;

use super::pusher::Feed;
use super::track_sink::{self, TrackKind};
use crate::Error;
use crate::encoder::{EncoderChoice, VideoEncoder};
use crate::ladder::{Rendition, SpeedPreset};

/// How a ladder's rungs are encoded.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RungEncoding {
    /// Encoder and where frames are scaled.
    pub(crate) choice: EncoderChoice,
    /// x264's speed preset.
    pub(crate) speed_preset: SpeedPreset,
    /// Frames between the keyframes the probe forces.
    pub(crate) keyframe_interval_frames: u32,
}

/// Builds the rung for `rung` as track `track` in `pipeline`; returns its first element, to be
/// linked from the tee.
fn build(
    pipeline: &gst::Pipeline,
    encoding: &RungEncoding,
    track: usize,
    rung: &Rendition,
    feed: &SyncSender<Feed>,
) -> Result<gst::Element, Error> {
    let name = |what: &str| format!("{what}-{}p", rung.height);
    let queue = gst::ElementFactory::make("queue").name(name("queue")).build()?;
    let mut chain = vec![queue.clone()];
    let (width, height) = (
        i32::try_from(rung.width).expect("validated width"),
        i32::try_from(rung.height).expect("validated height"),
    );
    let size = if encoding.choice.gpu_decode {
        gst_video::VideoCapsBuilder::for_encoding("video/x-raw")
            .features(["memory:CUDAMemory"])
            .width(width)
            .height(height)
            .pixel_aspect_ratio(gst::Fraction::new(1, 1))
            .build()
    } else {
        gst_video::VideoCapsBuilder::new()
            .width(width)
            .height(height)
            .pixel_aspect_ratio(gst::Fraction::new(1, 1))
            .build()
    };
    if encoding.choice.gpu_decode {
        chain.push(
            gst::ElementFactory::make("cudascale")
                .name(name("scale"))
                .build()?,
        );
    } else {
        chain.push(
            gst::ElementFactory::make("videoscale")
                .name(name("scale"))
                // 854x480 is not exactly 16:9: stretch by a fraction of a pixel rather than add
                // borders.
                .property("add-borders", false)
                .build()?,
        );
    }
    chain.push(
        gst::ElementFactory::make("capsfilter")
            .name(name("size"))
            .property("caps", size)
            .build()?,
    );
    if encoding.choice.gpu_decode && encoding.choice.encoder != VideoEncoder::Nvenc {
        chain.push(
            gst::ElementFactory::make("cudadownload")
                .name(name("download"))
                .build()?,
        );
    }
    chain.push(encoder(encoding, rung, &name("encoder"))?);
    chain.push(
        gst::ElementFactory::make("capsfilter")
            .name(name("profile"))
            .property(
                "caps",
                gst::Caps::builder("video/x-h264")
                    .field("profile", "main")
                    .build(),
            )
            .build()?,
    );
    chain.push(
        gst::ElementFactory::make("h264parse")
            .name(name("parse"))
            .build()?,
    );
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
            frame_rate: None,
        },
        feed.clone(),
    );
    chain.push(sink.upcast());
    pipeline.add_many(&chain)?;
    gst::Element::link_many(&chain)?;
    Ok(queue)
}

/// Builds a rung per rendition (track `first_track + i` for rendition `i`) and links each
/// from `tee`.
pub(crate) fn build_all(
    pipeline: &gst::Pipeline,
    tee: &gst::Element,
    encoding: &RungEncoding,
    renditions: &[Rendition],
    first_track: usize,
    feed: &SyncSender<Feed>,
) -> Result<(), Error> {
    for (i, rendition) in renditions.iter().enumerate() {
        let track = first_track + i;
        let branch = build(pipeline, encoding, track, rendition, feed)?;
        let src = tee
            .request_pad_simple("src_%u")
            .ok_or_else(|| Error::Build("tee gave no pad".into()))?;
        let sink = branch.static_pad("sink").expect("a queue has a sink pad");
        src.link(&sink)
            .map_err(|e| Error::Build(format!("tee to rung {track}: {e}")))?;
    }
    Ok(())
}

fn encoder(encoding: &RungEncoding, rung: &Rendition, name: &str) -> Result<gst::Element, Error> {
    let kbps = (rung.bitrate / 1000).max(1);
    let gop = encoding.keyframe_interval_frames + 1;
    let element = match encoding.choice.encoder {
        VideoEncoder::X264 => gst::ElementFactory::make("x264enc")
            .name(name)
            .property("bitrate", kbps)
            .property_from_str("tune", "zerolatency")
            .property_from_str("speed-preset", encoding.speed_preset.nick())
            .property("bframes", 0u32)
            .property("key-int-max", gop)
            .property("option-string", "scenecut=0")
            .build()?,
        VideoEncoder::Nvenc => gst::ElementFactory::make("nvh264enc")
            .name(name)
            .property("bitrate", kbps)
            .property("bframes", 0u32)
            .property("gop-size", i32::try_from(gop).unwrap_or(i32::MAX))
            .property("zerolatency", true)
            .build()?,
        VideoEncoder::Vaapi => gst::ElementFactory::make("vah264enc")
            .name(name)
            .property("bitrate", kbps)
            .property("b-frames", 0u32)
            .property("key-int-max", gop)
            .build()?,
    };
    Ok(element)
}
