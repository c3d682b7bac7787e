//! One re-encode for a source whose H.264 browsers cannot play as is (B-frames, which WebRTC
//! decoders show out of order, or a profile they do not decode).
//!
//! ```text
//! appsrc (Annex B access units, dts/pts) ─▶ h264parse ─▶ avdec_h264 ─▶ videoconvert ─▶ I420
//!   ─▶ x264enc (zerolatency: no B-frames, no lookahead) ─▶ h264parse ─▶ Annex B AUs ─▶ appsink
//! ```
//!
//! The room's keyframe requests reach x264 as upstream force-key-unit events: unlike a
//! passthrough source, a re-encoded one can answer them. The converter forces one every two
//! seconds of source time as well, so the LL-HLS bridge can cut segments on them and copy the
//! re-encode as its top rung.

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_video as gst_video;

use super::filter::{Filter, Output};
use super::opus::ticks_to_time;
use crate::Error;
use crate::media::plugins::require;

/// A running re-encode.
#[derive(Debug)]
pub(crate) struct Reencoder {
    filter: Filter,
    base: Option<i64>,
}

impl Reencoder {
    /// Start; `frame` gets each encoded access unit (Annex B) with its time since the first
    /// input's decode time.
    pub(crate) fn start(
        bitrate_kbps: u32,
        frame: impl FnMut(Output) + Send + 'static,
    ) -> Result<Reencoder, Error> {
        require(&[
            ("h264parse", "gstreamer1.0-plugins-bad"),
            ("avdec_h264", "gstreamer1.0-libav"),
            ("videoconvert", "gstreamer1.0-plugins-base"),
            ("x264enc", "gstreamer1.0-plugins-ugly"),
        ])?;
        let caps = gst::Caps::builder("video/x-h264")
            .field("stream-format", "byte-stream")
            .field("alignment", "au")
            .build();
        let chain = vec![
            gst::ElementFactory::make("h264parse").build()?,
            gst::ElementFactory::make("avdec_h264")
                // Frame threads hold frames back; slices do not.
                .property_from_str("thread-type", "slice")
                .build()?,
            gst::ElementFactory::make("videoconvert").build()?,
            gst::ElementFactory::make("capsfilter")
                .property(
                    "caps",
                    gst::Caps::builder("video/x-raw").field("format", "I420").build(),
                )
                .build()?,
            gst::ElementFactory::make("x264enc")
                .name("encoder")
                .property_from_str("tune", "zerolatency")
                .property_from_str("speed-preset", "veryfast")
                .property("bitrate", bitrate_kbps)
                // Keyframes are forced every two seconds of source time (the converter does
                // it); this only bounds the GOP should that stop.
                .property("key-int-max", 300u32)
                .property("bframes", 0u32)
                .build()?,
            gst::ElementFactory::make("capsfilter")
                .property(
                    "caps",
                    gst::Caps::builder("video/x-h264")
                        .field("profile", "main")
                        .build(),
                )
                .build()?,
            gst::ElementFactory::make("h264parse")
                .property("config-interval", -1i32)
                .build()?,
            gst::ElementFactory::make("capsfilter")
                .property(
                    "caps",
                    gst::Caps::builder("video/x-h264")
                        .field("stream-format", "byte-stream")
                        .field("alignment", "au")
                        .build(),
                )
                .build()?,
        ];
        let filter = Filter::start("ingest-reencode", caps, chain, frame)?;
        Ok(Reencoder { filter, base: None })
    }

    /// Feed one access unit (Annex B) with its decode and presentation times (90 kHz).
    pub(crate) fn push(&mut self, dts: i64, pts: i64, annex_b: Vec<u8>) -> Result<(), Error> {
        let base = *self.base.get_or_insert(dts);
        let mut buffer = gst::Buffer::from_slice(annex_b);
        if let Some(b) = buffer.get_mut() {
            b.set_dts(ticks_to_time(dts - base));
            b.set_pts(ticks_to_time(pts - base));
        }
        self.filter.push(buffer)
    }

    /// The input time its output's zero stands for.
    pub(crate) fn base(&self) -> Option<i64> {
        self.base
    }

    /// Make the next output frame a keyframe.
    pub(crate) fn force_keyframe(&self) {
        let Some(encoder) = self.filter.element("encoder") else {
            return;
        };
        let Some(pad) = encoder.static_pad("src") else {
            return;
        };
        let event = gst_video::UpstreamForceKeyUnitEvent::builder()
            .all_headers(true)
            .build();
        pad.send_event(event);
    }
}
