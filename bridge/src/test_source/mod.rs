//! The built-in test source: a live GStreamer pipeline that encodes a multi-rendition H.264
//! ladder (plus AAC audio) with the wall clock burnt into every frame, and pushes the access
//! units into an [`hls::MediaSink`].
//!
//! ```no_run
//! # fn run(sink: Box<dyn hls::MediaSink>) -> Result<(), bridge::test_source::Error> {
//! use bridge::test_source::{TestSource, TestSourceConfig};
//! let source = TestSource::start(TestSourceConfig::default(), sink)?;
//! // ... the sink receives start(), then push() per access unit ...
//! source.health()?; // a pipeline error, if any element reported one
//! source.stop()?; // drains the encoders, then the sink's finish() is called
//! # Ok(()) }
//! ```
//!
//! Tracks are announced once every encoder has negotiated: one H.264 track per rendition, in
//! the order of [`TestSourceConfig::renditions`], then AAC if enabled. The anchor passed to
//! `start` is the wall-clock time of running time 0, and every frame shows its own time,
//! `anchor + pts`, both as text and as the [`clock_code`] that `web/js/clockcode.js` reads.
//! Keyframes fall on the same frames on every rung, one per
//! [`keyframe_interval`](TestSourceConfig::keyframe_interval).
//!
//! [`PushTest`] is the same clock-stamped pattern encoded once and pushed to an ingest server
//! over RTMP or SRT (`fanout-push-test`), or decoded again on the spot to measure the encoder.
//!
//! Threads: GStreamer's streaming threads (one per rung, one for the source and one for audio),
//! one pusher thread that owns the sink, one bus watcher.

pub mod clock_code;
mod clock_stamp;
mod config;
mod pipeline;
pub mod push;

use std::time::{Duration, SystemTime};

use gstreamer as gst;
use gstreamer::prelude::*;

pub use crate::Error;
pub use crate::media::aac::{AUDIO_BITRATE, AUDIO_CHANNELS, AUDIO_RATE};
use crate::media::plugins::{self, Needed};
use crate::media::pusher::Pusher;
use crate::media::running::Running;
pub use config::{Rendition, SpeedPreset, TestSourceConfig};
pub use push::{PushConfig, PushTarget, PushTest};

/// What the test source needs beyond a ladder.
const SOURCE: &[Needed] = &[
    ("videotestsrc", "gstreamer1.0-plugins-base"),
    ("textoverlay", "gstreamer1.0-x"),
    ("x264enc", "gstreamer1.0-plugins-ugly"),
];
/// Its audio source.
const TONE: &[Needed] = &[("audiotestsrc", "gstreamer1.0-plugins-base")];

/// Checks every element is installed; returns the AAC encoder to use when `audio`.
fn check(audio: bool) -> Result<Option<&'static str>, Error> {
    plugins::require(SOURCE)?;
    plugins::require(plugins::LADDER)?;
    if !audio {
        return Ok(None);
    }
    plugins::require(TONE)?;
    plugins::require(plugins::AUDIO)?;
    crate::media::aac::encoder().map(Some)
}

/// A running test source. Stops (and finishes the sink) on [`stop`](Self::stop) or drop.
pub struct TestSource {
    running: Running,
    aac_encoder: Option<&'static str>,
}

impl TestSource {
    /// Builds the pipeline for `config`, starts it, and pushes its output into `sink` from a
    /// thread of its own. Fails with [`Error::MissingElement`] / [`Error::NoAacEncoder`] when a
    /// plugin is not installed, [`Error::InvalidConfig`], or [`Error::Pipeline`] when the
    /// pipeline refuses to start.
    pub fn start(config: TestSourceConfig, sink: Box<dyn hls::MediaSink>) -> Result<TestSource, Error> {
        config.validate()?;
        gst::init().map_err(|e| Error::Init(e.to_string()))?;
        let aac_encoder = check(config.audio_bitrate.is_some())?;
        let pusher = Pusher::spawn("test-source", sink, config.track_count())
            .map_err(|e| Error::Build(e.to_string()))?;
        let pipeline = pipeline::build(&config, aac_encoder, &pusher.feed())?;
        let mut source = TestSource {
            running: Running::new(pipeline, pusher)?,
            aac_encoder,
        };
        tracing::info!(
            rungs = ?config.renditions.iter().map(|r| format!("{}x{}@{}", r.width, r.height, r.bitrate)).collect::<Vec<_>>(),
            fps = config.frame_rate,
            keyframe_interval = ?config.keyframe_interval,
            preset = config.speed_preset.nick(),
            aac_encoder = aac_encoder.unwrap_or("none"),
            "test source starting"
        );
        source.running.play()?;
        Ok(source)
    }

    /// The wall-clock time of pts 0 (the anchor given to the sink), once the pipeline plays.
    pub fn anchor(&self) -> Option<SystemTime> {
        let base_time = self.running.pipeline.base_time()?;
        Some(SystemTime::UNIX_EPOCH + Duration::from_nanos(base_time.nseconds()))
    }

    /// The AAC encoder element in use, `None` without audio.
    pub fn aac_encoder(&self) -> Option<&'static str> {
        self.aac_encoder
    }

    /// `Err` with the first error an element reported, if any: the stream is broken then and
    /// the source should be stopped (and started again, if wanted).
    pub fn health(&self) -> Result<(), Error> {
        self.running.health()
    }

    /// Ends the stream: the sources send end-of-stream, the encoders drain, everything pushed
    /// reaches the sink, then the sink's `finish` is called. Returns the first pipeline error,
    /// if one happened while running.
    pub fn stop(mut self) -> Result<(), Error> {
        self.shutdown();
        self.health()
    }

    fn shutdown(&mut self) {
        self.running.stop(Some(&|p: &gst::Pipeline| {
            p.send_event(gst::event::Eos::new());
        }));
        tracing::info!("test source stopped");
    }
}

impl Drop for TestSource {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_machine_has_the_whole_test_source() {
        gst::init().expect("GStreamer initialises");
        assert!(check(true).expect("every element").is_some());
    }

    #[test]
    fn a_source_can_move_to_another_thread() {
        fn send<T: Send>() {}
        send::<TestSource>();
    }

    #[test]
    fn an_invalid_config_fails_before_anything_starts() {
        struct Nothing;
        impl hls::MediaSink for Nothing {
            fn start(&mut self, _: Vec<hls::TrackConfig>, _: SystemTime) {}
            fn push(&mut self, _: usize, _: hls::AccessUnit) {}
            fn finish(&mut self) {}
        }
        let config = TestSourceConfig {
            renditions: vec![],
            ..TestSourceConfig::default()
        };
        assert!(matches!(
            TestSource::start(config, Box::new(Nothing)),
            Err(Error::InvalidConfig(_))
        ));
    }
}
