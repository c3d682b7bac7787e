//! AAC to Opus for an ingest source's audio: WebRTC has no AAC.
//!
//! ```text
//! appsrc (raw AAC + AudioSpecificConfig) ─▶ avdec_aac ─▶ audioconvert ─▶ audioresample
//!   ─▶ 48 kHz stereo ─▶ opusenc (20 ms frames, in-band FEC) ─▶ appsink ─▶ one Opus packet each
//! ```

use gstreamer as gst;

use super::filter::{Filter, Output};
use crate::Error;
use crate::media::plugins::require;

/// Opus bit rate for converted audio.
const OPUS_BITRATE: i32 = 96_000;
/// libopus's encoder complexity (0-10, default 10). At 10 libopus was 46 % of the server's CPU
/// with passthrough ingests only, at 5 it is 32 % (perf; docs/benchmarks.md, "Ingest"); at
/// 96 kb/s stereo the lower complexity costs little quality.
const OPUS_COMPLEXITY: i32 = 5;

/// A running AAC to Opus conversion.
#[derive(Debug)]
pub(crate) struct AacToOpus {
    filter: Filter,
    /// The input time (90 kHz) that maps to the filter's time zero.
    base: Option<i64>,
}

impl AacToOpus {
    /// Start for a track described by `config` (the AudioSpecificConfig); `packet` gets each
    /// Opus packet with its time since the first input, nanoseconds.
    pub(crate) fn start(
        config: &[u8],
        packet: impl FnMut(Output) + Send + 'static,
    ) -> Result<AacToOpus, Error> {
        require(&[
            ("avdec_aac", "gstreamer1.0-libav"),
            ("audioconvert", "gstreamer1.0-plugins-base"),
            ("audioresample", "gstreamer1.0-plugins-base"),
            ("opusenc", "gstreamer1.0-plugins-base"),
        ])?;
        let caps = gst::Caps::builder("audio/mpeg")
            .field("mpegversion", 4i32)
            .field("stream-format", "raw")
            .field("codec_data", gst::Buffer::from_slice(config.to_vec()))
            .build();
        let chain = vec![
            gst::ElementFactory::make("avdec_aac").build()?,
            gst::ElementFactory::make("audioconvert").build()?,
            gst::ElementFactory::make("audioresample").build()?,
            gst::ElementFactory::make("capsfilter")
                .property(
                    "caps",
                    gst::Caps::builder("audio/x-raw")
                        .field("rate", 48_000i32)
                        .field("channels", 2i32)
                        .build(),
                )
                .build()?,
            gst::ElementFactory::make("opusenc")
                .property("bitrate", OPUS_BITRATE)
                .property("complexity", OPUS_COMPLEXITY)
                .property("inband-fec", true)
                .build()?,
        ];
        let filter = Filter::start("ingest-aac-opus", caps, chain, packet)?;
        Ok(AacToOpus { filter, base: None })
    }

    /// Feed one raw AAC frame with its time (90 kHz).
    pub(crate) fn push(&mut self, pts: i64, data: &[u8]) -> Result<(), Error> {
        let base = *self.base.get_or_insert(pts);
        let mut buffer = gst::Buffer::from_slice(data.to_vec());
        if let Some(b) = buffer.get_mut() {
            b.set_pts(ticks_to_time(pts - base));
        }
        self.filter.push(buffer)
    }

    /// The input time its output's zero stands for.
    pub(crate) fn base(&self) -> Option<i64> {
        self.base
    }
}

/// 90 kHz ticks since the base to a GStreamer time (negative times, a source going back,
/// are clamped to zero).
pub(crate) fn ticks_to_time(ticks: i64) -> gst::ClockTime {
    gst::ClockTime::from_nseconds((ticks.max(0) as u64).saturating_mul(100_000) / 9)
}
