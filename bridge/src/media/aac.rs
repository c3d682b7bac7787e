//! The audio end of a pipeline: whatever raw audio comes in leaves as AAC-LC 48 kHz stereo.
//!
//! ```text
//! ─▶ audioconvert ─▶ audioresample ─▶ 48 kHz stereo ─▶ avenc_aac | voaacenc | fdkaacenc ─▶ aacparse ─▶ appsink
//! ```

use std::sync::mpsc::SyncSender;

use gstreamer as gst;
use gstreamer::prelude::*;

use super::pusher::Feed;
use super::track_sink::{self, TrackKind};
use crate::Error;

/// Default AAC bit rate.
pub const AUDIO_BITRATE: u32 = 128_000;
/// Audio sample rate.
pub const AUDIO_RATE: u32 = 48_000;
/// Audio channels.
pub const AUDIO_CHANNELS: u8 = 2;

/// AAC-LC encoders in order of preference.
pub(crate) const AAC_ENCODERS: &[&str] = &["avenc_aac", "voaacenc", "fdkaacenc"];

/// The first AAC encoder that is installed.
pub(crate) fn encoder() -> Result<&'static str, Error> {
    AAC_ENCODERS
        .iter()
        .find(|name| gst::ElementFactory::find(name).is_some())
        .copied()
        .ok_or_else(|| Error::NoAacEncoder {
            tried: AAC_ENCODERS.join(", "),
        })
}

/// Builds the chain in `pipeline` as track `track`; returns its first element.
pub(crate) fn build(
    pipeline: &gst::Pipeline,
    encoder: &str,
    bitrate: u32,
    track: usize,
    feed: &SyncSender<Feed>,
) -> Result<gst::Element, Error> {
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
    let chain = [&convert, &resample, &format, &aac, &parse, sink.upcast_ref()];
    pipeline.add_many(chain)?;
    gst::Element::link_many(chain)?;
    Ok(convert)
}
