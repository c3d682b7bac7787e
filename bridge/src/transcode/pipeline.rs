//! Builds a room's transcoding pipeline (diagram in `docs/bridge.md`):
//!
//! ```text
//! appsrc (RTP) -> depayloader -> decoder -> videoconvert -> videorate -> I420 N fps
//!     -> [force-key-unit probe] -> tee -> rung per rendition (media::rung)
//! appsrc (AV1 temporal units, depacketized by super::av1) -> av1parse -> av1dec -> videoconvert ...
//! appsrc (RTP Opus) -> rtpopusdepay -> opusdec -> the AAC tail (media::aac)
//! ```
//!
//! An ingest source's AAC (`audio_copy`) reaches an appsrc as raw frames with their
//! AudioSpecificConfig and goes to the audio track through `aacparse` only.
//!
//! An ingest source's H.264 (`copy_top`) is copied as the top rung: after `h264parse` a tee
//! sends its access units to that rung's appsink as they are and to the decoder for the rungs
//! below (none when the source is the only rung), whose keyframes follow the source's
//! (`keyframes::follow`).
//!
//! With NVDEC (see [`crate::encoder`]) the decoder is nvcodec's and frames stay in CUDA
//! memory up to each rung's `cudascale`; there is no `videoconvert`. GStreamer 1.22's nvcodec
//! has no AV1 decoder, so an AV1 room decodes with libaom and scales on the CPU, whatever the
//! probe found (see [`run_encoding`]); its rungs still use the probe's encoder.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;

use super::TranscodeConfig;
use super::frame_size::VideoCodec;
use super::preroll::{AudioInput, VideoInput};
use crate::Error;
use crate::encoder::EncoderChoice;
use crate::media::aac;
use crate::media::keyframes::{self, SourceKeyframes};
use crate::media::plugins::{self, Needed};
use crate::media::pusher::Feed;
use crate::media::rung::{self, RungEncoding};
use crate::media::track_sink::{self, TrackKind};

/// Elements of the video input, with their packages.
const VIDEO_IN: &[Needed] = &[
    ("appsrc", "gstreamer1.0-plugins-base"),
    ("videoconvert", "gstreamer1.0-plugins-base"),
    ("videorate", "gstreamer1.0-plugins-base"),
];
/// Elements of the audio input.
const AUDIO_IN: &[Needed] = &[
    ("appsrc", "gstreamer1.0-plugins-base"),
    ("rtpopusdepay", "gstreamer1.0-plugins-good"),
    ("opusdec", "gstreamer1.0-plugins-base"),
];

/// Depayloader (none where our code depacketizes), parser (if any) and decoder of a codec,
/// with the decoder's package.
fn video_elements(
    codec: VideoCodec,
    gpu: bool,
) -> (
    Option<&'static str>,
    Option<&'static str>,
    &'static str,
    &'static str,
) {
    match (codec, gpu) {
        (VideoCodec::Vp8, false) => (Some("rtpvp8depay"), None, "vp8dec", "gstreamer1.0-plugins-good"),
        (VideoCodec::Vp8, true) => (Some("rtpvp8depay"), None, "nvvp8dec", "gstreamer1.0-plugins-bad"),
        (VideoCodec::Vp9, false) => (Some("rtpvp9depay"), None, "vp9dec", "gstreamer1.0-plugins-good"),
        (VideoCodec::Vp9, true) => (Some("rtpvp9depay"), None, "nvvp9dec", "gstreamer1.0-plugins-bad"),
        (VideoCodec::H264, false) => (
            Some("rtph264depay"),
            Some("h264parse"),
            "avdec_h264",
            "gstreamer1.0-libav",
        ),
        (VideoCodec::H264, true) => (
            Some("rtph264depay"),
            Some("h264parse"),
            "nvh264dec",
            "gstreamer1.0-plugins-bad",
        ),
        // GStreamer 1.22 has no AV1 depayloader (ours is `super::av1`) and no NVDEC AV1
        // decoder; av1parse and av1dec (libaom) are both in plugins-bad.
        (VideoCodec::Av1, _) => (None, Some("av1parse"), "av1dec", "gstreamer1.0-plugins-bad"),
    }
}

/// What a run of `config` encodes and decodes with: the probe's choice, with decoding (and
/// scaling) on the GPU only where nvcodec decodes the codec. An AV1 room decodes with libaom,
/// and its frames stay in system memory up to the encoder (NVENC takes them there too) rather
/// than being uploaded for `cudascale`: the upload would buy back only the scaling, and the
/// CPU chain is the one the tests run.
pub(crate) fn run_encoding(config: &TranscodeConfig) -> EncoderChoice {
    EncoderChoice {
        gpu_decode: config.encoder.gpu_decode && config.video.is_none_or(|v| v.codec != VideoCodec::Av1),
        ..config.encoder
    }
}

fn encoding_name(codec: VideoCodec) -> &'static str {
    match codec {
        VideoCodec::Vp8 => "VP8",
        VideoCodec::Vp9 => "VP9",
        VideoCodec::H264 => "H264",
        VideoCodec::Av1 => "AV1",
    }
}

/// Checks every element `config` needs is installed (one clear error, nothing built).
pub(crate) fn check(config: &TranscodeConfig) -> Result<(), Error> {
    if let Some(video) = &config.video {
        plugins::require(VIDEO_IN)?;
        plugins::require(plugins::LADDER)?;
        let (depay, parse, decoder, package) = video_elements(video.codec, run_encoding(config).gpu_decode);
        if let Some(depay) = depay {
            plugins::require(&[(depay, "gstreamer1.0-plugins-good")])?;
        }
        plugins::require(&[(decoder, package)])?;
        if let Some(parse) = parse {
            plugins::require(&[(parse, "gstreamer1.0-plugins-bad")])?;
        }
    }
    if config.audio.is_some() && config.audio_copy.is_some() {
        plugins::require(&[("aacparse", "gstreamer1.0-plugins-good")])?;
    } else if config.audio.is_some() {
        plugins::require(AUDIO_IN)?;
        plugins::require(plugins::AUDIO)?;
    }
    Ok(())
}

/// The pipeline with its input appsrcs.
pub(crate) struct Built {
    pub(crate) pipeline: gst::Pipeline,
    pub(crate) video: Option<gst_app::AppSrc>,
    pub(crate) audio: Option<gst_app::AppSrc>,
    /// Set when an element (depayloader, decoder) asked upstream for a keyframe.
    pub(crate) keyframe_wanted: Arc<AtomicBool>,
    /// The copied source's keyframes (`copy_top`).
    pub(crate) source_keyframes: Option<Arc<SourceKeyframes>>,
}

/// Builds the pipeline for `config`, its appsinks feeding `feed`.
pub(crate) fn build(
    name: &str,
    config: &TranscodeConfig,
    aac_encoder: Option<&str>,
    feed: &SyncSender<Feed>,
) -> Result<Built, Error> {
    let pipeline = gst::Pipeline::with_name(name);
    // The realtime clock: running time 0 is a Unix time, the anchor (set by the caller as
    // the base time), and a buffer's pts is its wall-clock time minus the anchor.
    let clock = glib::Object::builder::<gst::SystemClock>()
        .property("clock-type", gst::ClockType::Realtime)
        .build();
    pipeline.use_clock(Some(&clock));
    let keyframe_wanted = Arc::new(AtomicBool::new(false));
    let (video, source_keyframes) = match &config.video {
        Some(input) => {
            let (src, keyframes) = video_input(&pipeline, config, input, feed)?;
            keyframe_requests(&src, keyframe_wanted.clone());
            (Some(src), keyframes)
        }
        None => (None, None),
    };
    let audio = match (&config.audio, &config.audio_copy, aac_encoder) {
        (Some(_), Some(asc), _) => Some(aac_copy_input(
            &pipeline,
            asc,
            config.audio_bitrate,
            config.video_tracks(),
            feed,
        )?),
        (Some(input), None, Some(encoder)) => Some(audio_input(
            &pipeline,
            input,
            encoder,
            config.audio_bitrate,
            config.video_tracks(),
            feed,
        )?),
        _ => None,
    };
    Ok(Built {
        pipeline,
        video,
        audio,
        keyframe_wanted,
        source_keyframes,
    })
}

/// Keyframe requests from downstream (a depayloader that saw a gap, a decoder that failed)
/// end at the appsrc: note them, for the bridge to ask the publisher.
fn keyframe_requests(src: &gst_app::AppSrc, wanted: Arc<AtomicBool>) {
    let pad = src.static_pad("src").expect("an appsrc has a src pad");
    pad.add_probe(gst::PadProbeType::EVENT_UPSTREAM, move |_, probe| {
        if let Some(event) = probe.event()
            && gst_video::UpstreamForceKeyUnitEvent::parse(event).is_ok()
        {
            wanted.store(true, Ordering::Relaxed);
        }
        gst::PadProbeReturn::Ok
    });
}

/// A live appsrc for the track's packets (or, for AV1, its temporal units).
/// Where `src`'s RTP leaves it for the depayloader.
fn rtp_in(src: &gst_app::AppSrc) -> gst::Pad {
    src.static_pad("src").expect("an appsrc has a src pad")
}

fn live_source(name: &str, caps: gst::Caps) -> gst_app::AppSrc {
    gst_app::AppSrc::builder()
        .name(name)
        .caps(&caps)
        .is_live(true)
        .format(gst::Format::Time)
        // Packets carry their own times (the track clock); not the time they were pushed.
        .do_timestamp(false)
        // The bridge's thread must never wait here: a stuck decoder drops input instead, and
        // the tap's keyframe recovery takes it from there.
        .block(false)
        .max_bytes(8 << 20)
        .build()
}

/// The video's appsrc, and the source's keyframes when its H.264 is copied.
fn video_input(
    pipeline: &gst::Pipeline,
    config: &TranscodeConfig,
    input: &VideoInput,
    feed: &SyncSender<Feed>,
) -> Result<(gst_app::AppSrc, Option<Arc<SourceKeyframes>>), Error> {
    let encoding = run_encoding(config);
    let gpu = encoding.gpu_decode;
    let (depay, parse, decoder, _) = video_elements(input.codec, gpu);
    let caps = match depay {
        Some(_) => gst::Caps::builder("application/x-rtp")
            .field("media", "video")
            .field("clock-rate", 90_000i32)
            .field("encoding-name", encoding_name(input.codec))
            .field("payload", i32::from(input.payload_type))
            .build(),
        // Whole temporal units from `super::av1` (which waits for a keyframe after a gap and
        // asks for it itself).
        None => gst::Caps::builder("video/x-av1")
            .field("stream-format", "obu-stream")
            .field("alignment", "tu")
            .build(),
    };
    let src = live_source("video-in", caps);
    let mut chain: Vec<gst::Element> = vec![src.clone().upcast()];
    if let Some(depay) = depay {
        let depay = gst::ElementFactory::make(depay).name("depay").build()?;
        for property in ["wait-for-keyframe", "request-keyframe"] {
            // After a gap (the tap dropped to the next keyframe) wait for one rather than
            // decode a picture with missing references, and ask for it (the request reaches
            // the publisher as a PLI, see `keyframe_requests`).
            if depay.has_property(property) {
                depay.set_property(property, true);
            }
        }
        chain.push(depay);
    }
    if let Some(parse) = parse {
        chain.push(gst::ElementFactory::make(parse).build()?);
    }
    // The source's H.264 copied as the top rung: parsed into AVC access units, split between
    // the copy and the decoder (which the lower rungs need, if there are any).
    let copy = if let Some(window) = &config.copy_top {
        let avc = avc_caps();
        let parsed = gst::ElementFactory::make("capsfilter")
            .name("source-avc")
            .property("caps", &avc)
            .build()?;
        let split = gst::ElementFactory::make("tee").name("source").build()?;
        chain.push(parsed.clone());
        chain.push(split.clone());
        pipeline.add_many(&chain)?;
        gst::Element::link_many(&chain)?;
        let top = &config.renditions[0];
        let queue = gst::ElementFactory::make("queue").name("queue-source").build()?;
        let sink = track_sink::build(
            "sink-source",
            &avc,
            0,
            TrackKind::H264 {
                bitrate: top.bitrate,
                frame_rate: Some(config.frame_rate),
            },
            feed.clone(),
        );
        pipeline.add_many([&queue, sink.upcast_ref()])?;
        gst::Element::link_many([&split, &queue, sink.upcast_ref()])?;
        let parsed = parsed.static_pad("src").expect("a capsfilter has a src pad");
        if config.renditions.len() == 1 {
            // Nothing to decode for.
            let keyframes = keyframes::follow(&rtp_in(&src), &parsed, None, config.frame_rate, window);
            return Ok((src, Some(keyframes)));
        }
        chain = vec![gst::ElementFactory::make("queue").name("queue-decode").build()?];
        Some((split, parsed, window))
    } else {
        None
    };
    let decoder = gst::ElementFactory::make(decoder).name("decoder").build()?;
    if decoder.has_property("max-errors") {
        // GStreamer's default (-1) ignores decoding errors forever: a broken bitstream would
        // stall the stream without a word. A second of consecutive failures is a fault, and
        // the bridge restarts the transcoder from the next keyframe.
        decoder.set_property("max-errors", i32::try_from(config.frame_rate).unwrap_or(30));
    }
    chain.push(decoder);
    if !gpu {
        chain.push(gst::ElementFactory::make("videoconvert").build()?);
    }
    chain.push(
        gst::ElementFactory::make("videorate")
            // A publisher that paused is restarted by the bridge; never fill a gap this long
            // with copies of one frame.
            .property("max-duplication-time", gst::ClockTime::from_mseconds(500))
            .build()?,
    );
    let fps = i32::try_from(config.frame_rate).expect("validated frame rate");
    let raw = if gpu {
        gst_video::VideoCapsBuilder::for_encoding("video/x-raw")
            .features(["memory:CUDAMemory"])
            .framerate(gst::Fraction::new(fps, 1))
            .build()
    } else {
        gst_video::VideoCapsBuilder::new()
            .format(gst_video::VideoFormat::I420)
            .framerate(gst::Fraction::new(fps, 1))
            .build()
    };
    let frames = gst::ElementFactory::make("capsfilter")
        .name("frames")
        .property("caps", raw)
        .build()?;
    chain.push(frames.clone());
    let tee = gst::ElementFactory::make("tee").name("ladder").build()?;
    chain.push(tee.clone());
    pipeline.add_many(&chain)?;
    gst::Element::link_many(&chain)?;
    let frames_out = frames.static_pad("src").expect("a capsfilter has a src pad");
    let mut encoding = RungEncoding {
        choice: encoding,
        speed_preset: config.speed_preset,
        keyframe_interval_frames: config.keyframe_interval_frames(),
    };
    let (first_encoded, source_keyframes) = match copy {
        Some((split, parsed, window)) => {
            split.link(&chain[0])?;
            // Keyframes where the copy has them; the encoders' own GOP limit only bounds a
            // source whose keyframes stopped (the bridge then encodes the top rung too).
            let keyframes = keyframes::follow(
                &rtp_in(&src),
                &parsed,
                Some(&frames_out),
                config.frame_rate,
                window,
            );
            encoding.keyframe_interval_frames *= 2;
            (1, Some(keyframes))
        }
        None => {
            keyframes::attach(&frames_out, config.keyframe_interval);
            (0, None)
        }
    };
    rung::build_all(
        pipeline,
        &tee,
        &encoding,
        &config.renditions[first_encoded..],
        first_encoded,
        feed,
    )?;
    Ok((src, source_keyframes))
}

/// H.264 as AVC access units: what the copy and the packager take.
fn avc_caps() -> gst::Caps {
    gst::Caps::builder("video/x-h264")
        .field("stream-format", "avc")
        .field("alignment", "au")
        .build()
}

/// An ingest source's AAC as it came (raw frames with their AudioSpecificConfig): parsed for
/// its rate and channels, then the audio track as it is.
fn aac_copy_input(
    pipeline: &gst::Pipeline,
    audio_specific_config: &[u8],
    bitrate: u32,
    track: usize,
    feed: &SyncSender<Feed>,
) -> Result<gst_app::AppSrc, Error> {
    let caps = gst::Caps::builder("audio/mpeg")
        .field("mpegversion", 4i32)
        .field("stream-format", "raw")
        .field(
            "codec_data",
            gst::Buffer::from_slice(audio_specific_config.to_vec()),
        )
        .build();
    let src = live_source("audio-in", caps);
    let parse = gst::ElementFactory::make("aacparse").build()?;
    let raw = gst::Caps::builder("audio/mpeg")
        .field("mpegversion", 4i32)
        .field("stream-format", "raw")
        .build();
    let sink = track_sink::build(
        "sink-audio",
        &raw,
        track,
        TrackKind::Aac { bitrate },
        feed.clone(),
    );
    pipeline.add_many([src.upcast_ref(), &parse, sink.upcast_ref()])?;
    gst::Element::link_many([src.upcast_ref(), &parse, sink.upcast_ref()])?;
    Ok(src)
}

fn audio_input(
    pipeline: &gst::Pipeline,
    input: &AudioInput,
    encoder: &str,
    bitrate: u32,
    track: usize,
    feed: &SyncSender<Feed>,
) -> Result<gst_app::AppSrc, Error> {
    let caps = gst::Caps::builder("application/x-rtp")
        .field("media", "audio")
        .field("clock-rate", 48_000i32)
        .field("encoding-name", "OPUS")
        .field("payload", i32::from(input.payload_type))
        .build();
    let src = live_source("audio-in", caps);
    let depay = gst::ElementFactory::make("rtpopusdepay").build()?;
    // Conceals a lost packet instead of leaving a hole the AAC encoder would have to bridge.
    let decode = gst::ElementFactory::make("opusdec")
        .property("plc", true)
        .build()?;
    let tail = aac::build(pipeline, encoder, bitrate, track, feed)?;
    pipeline.add_many([src.upcast_ref(), &depay, &decode])?;
    gst::Element::link_many([src.upcast_ref(), &depay, &decode, &tail])?;
    Ok(src)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoder::VideoEncoder;
    use crate::ladder::SpeedPreset;
    use std::time::Duration;

    fn config(codec: VideoCodec, gpu_decode: bool) -> TranscodeConfig {
        TranscodeConfig {
            video: Some(VideoInput {
                codec,
                payload_type: 96,
                size: Some((1280, 720)),
            }),
            audio: None,
            renditions: Vec::new(),
            frame_rate: 30,
            keyframe_interval: Duration::from_secs(2),
            encoder: EncoderChoice {
                encoder: VideoEncoder::X264,
                gpu_decode,
            },
            speed_preset: SpeedPreset::Ultrafast,
            audio_bitrate: 128_000,
            copy_top: None,
            audio_copy: None,
        }
    }

    #[test]
    fn nvdec_decodes_every_codec_nvcodec_has_and_av1_stays_on_the_cpu() {
        for codec in [VideoCodec::Vp8, VideoCodec::Vp9, VideoCodec::H264] {
            assert!(run_encoding(&config(codec, true)).gpu_decode, "{codec:?}");
            assert!(!run_encoding(&config(codec, false)).gpu_decode, "{codec:?}");
        }
        assert!(!run_encoding(&config(VideoCodec::Av1, true)).gpu_decode);
    }
}
