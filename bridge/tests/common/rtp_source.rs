//! A publisher made of GStreamer: a live test picture and tone, encoded and packetised the
//! way a browser or OBS sends them (VP8, VP9 or H.264 without B-frames, AV1, Opus), turned
//! into the packets a room tap delivers. Test fixture only (a launch string is fine here).
//! AV1 is packetised by [`super::av1_packetizer`]: GStreamer 1.22 has no `rtpav1pay`.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::{Instant, SystemTime};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use sfu::{CodecKind, MediaKind, TapPacket, is_keyframe};

use super::av1_packetizer;
use str0m::format::{Codec, CodecSpec, FormatParams, PayloadParams};
use str0m::media::{Frequency, Pt};

/// What the fixture publishes.
#[derive(Debug, Clone, Copy)]
pub struct Publish {
    /// Video codec, `None` for audio only.
    pub video: Option<Codec>,
    /// Picture size.
    pub width: u32,
    /// Picture height.
    pub height: u32,
    /// Opus audio.
    pub audio: bool,
    /// Stamp packets with a capture time (as if sender reports had arrived).
    pub capture_times: bool,
}

/// A running fixture; its packets arrive on `packets`.
pub struct RtpSource {
    pipeline: gst::Pipeline,
    /// The tap's packets, in the order the payloaders produced them.
    pub packets: Receiver<TapPacket>,
}

impl RtpSource {
    /// Ask the video encoder for a keyframe, as a PLI would.
    pub fn request_keyframe(&self) {
        let Some(sink) = self.pipeline.by_name("video") else {
            return;
        };
        let Some(pad) = sink.static_pad("sink") else {
            return;
        };
        let event = gstreamer_video::UpstreamForceKeyUnitEvent::builder()
            .all_headers(true)
            .build();
        pad.push_event(event);
    }
}

impl Drop for RtpSource {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

const VIDEO_PT: u8 = 96;
/// RTP payload size at most, as the payloaders are told.
const MTU: usize = 1200;
const AUDIO_PT: u8 = 111;

fn params(codec: Codec) -> PayloadParams {
    let (pt, rate, channels) = match codec {
        Codec::Opus => (AUDIO_PT, Frequency::FORTY_EIGHT_KHZ, Some(2)),
        _ => (VIDEO_PT, Frequency::NINETY_KHZ, None),
    };
    PayloadParams::new(
        Pt::new_with_value(pt),
        None,
        CodecSpec {
            codec,
            clock_rate: rate,
            channels,
            format: FormatParams::default(),
        },
    )
}

impl RtpSource {
    /// Starts publishing.
    pub fn start(publish: Publish) -> RtpSource {
        gst::init().expect("GStreamer initialises");
        let mut parts = Vec::new();
        if let Some(codec) = publish.video {
            let encode = match codec {
                Codec::Vp8 => {
                    "vp8enc deadline=1 cpu-used=8 keyframe-max-dist=90 ! rtpvp8pay picture-id-mode=15-bit"
                }
                Codec::Vp9 => {
                    "vp9enc deadline=1 cpu-used=8 keyframe-max-dist=90 ! rtpvp9pay picture-id-mode=15-bit"
                }
                Codec::H264 => {
                    "x264enc tune=zerolatency speed-preset=ultrafast bframes=0 key-int-max=90 ! \
                     video/x-h264,profile=constrained-baseline ! rtph264pay config-interval=-1 aggregate-mode=zero-latency"
                }
                // libaom's realtime mode, as a browser runs it; whole temporal units for our
                // packetizer.
                Codec::Av1 => {
                    "av1enc usage-profile=realtime cpu-used=10 end-usage=cbr target-bitrate=800 \
                     min-quantizer=4 max-quantizer=56 \
                     keyframe-max-dist=90 lag-in-frames=0 threads=2 ! av1parse ! \
                     video/x-av1,stream-format=obu-stream,alignment=tu"
                }
                other => panic!("no fixture for {other:?}"),
            };
            let payloader = if codec == Codec::Av1 {
                String::new()
            } else {
                format!(" pt={VIDEO_PT} mtu={MTU}")
            };
            parts.push(format!(
                "videotestsrc is-live=true pattern=ball ! video/x-raw,format=I420,width={},height={},framerate=30/1 ! \
                 {encode}{payloader} ! appsink name=video sync=false",
                publish.width, publish.height
            ));
        }
        if publish.audio {
            parts.push(format!(
                "audiotestsrc is-live=true wave=ticks ! audio/x-raw,rate=48000,channels=2 ! opusenc ! \
                 rtpopuspay pt={AUDIO_PT} ! appsink name=audio sync=false"
            ));
        }
        let pipeline = gst::parse::launch(&parts.join(" "))
            .expect("the fixture pipeline parses")
            .downcast::<gst::Pipeline>()
            .expect("a pipeline");
        // The realtime clock: a buffer's running time plus the base time is its Unix time, the
        // capture time a sender report would give.
        let clock = gst::glib::Object::builder::<gst::SystemClock>()
            .property("clock-type", gst::ClockType::Realtime)
            .build();
        pipeline.use_clock(Some(&clock));
        let (tx, rx) = sync_channel(4096);
        if publish.video == Some(Codec::Av1) {
            attach_av1(&pipeline, publish.capture_times, tx.clone());
        } else if let Some(codec) = publish.video {
            attach(
                &pipeline,
                "video",
                MediaKind::Video,
                codec,
                publish.capture_times,
                tx.clone(),
            );
        }
        if publish.audio {
            attach(
                &pipeline,
                "audio",
                MediaKind::Audio,
                Codec::Opus,
                publish.capture_times,
                tx,
            );
        }
        pipeline
            .set_state(gst::State::Playing)
            .expect("the fixture plays");
        RtpSource {
            pipeline,
            packets: rx,
        }
    }
}

fn attach(
    pipeline: &gst::Pipeline,
    name: &str,
    kind: MediaKind,
    codec: Codec,
    capture_times: bool,
    tx: SyncSender<TapPacket>,
) {
    let sink = appsink(pipeline, name);
    let params = params(codec);
    let codec_kind = CodecKind::from_codec(codec);
    let mut last: Option<(u16, u64)> = None;
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let buffer = sample.buffer().ok_or(gst::FlowError::Error)?;
                let captured = capture_time(sink, &sample, buffer);
                let map = buffer.map_readable().map_err(|_| gst::FlowError::Error)?;
                let Some((seq, rtp_time, marker, payload)) = parse_rtp(&map) else {
                    return Ok(gst::FlowSuccess::Ok);
                };
                let ext = match last {
                    None => u64::from(seq),
                    Some((prev, ext)) => ext.wrapping_add(u64::from(seq.wrapping_sub(prev))),
                };
                last = Some((seq, ext));
                let packet = tap_packet(
                    (kind, params, codec_kind),
                    (ext, rtp_time, marker),
                    Instant::now(),
                    captured.filter(|_| capture_times),
                    payload,
                );
                // A full channel means the test stopped reading: drop, as a tap would.
                let _ = tx.try_send(packet);
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
}

/// AV1: each temporal unit from the encoder becomes the packets `av1_packetizer` makes of
/// it, with the sequence numbers and 90 kHz timestamps a payloader would give them.
fn attach_av1(pipeline: &gst::Pipeline, capture_times: bool, tx: SyncSender<TapPacket>) {
    let sink = appsink(pipeline, "video");
    let params = params(Codec::Av1);
    // Not zero, as a payloader's random start.
    let mut seq: u64 = 4_321;
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let buffer = sample.buffer().ok_or(gst::FlowError::Error)?;
                let captured = capture_time(sink, &sample, buffer);
                let running = sample
                    .segment()
                    .and_then(|s| s.downcast_ref::<gst::ClockTime>()?.to_running_time(buffer.pts()?))
                    .ok_or(gst::FlowError::Error)?;
                let rtp_time = (running.nseconds() * 9 / 100_000) as u32;
                let rtp_time = rtp_time.wrapping_add(0x1234_5678);
                let map = buffer.map_readable().map_err(|_| gst::FlowError::Error)?;
                let elements = av1_packetizer::obu_elements(&map);
                let keyframe = av1_packetizer::starts_sequence(&elements);
                let payloads = av1_packetizer::packetize(&elements, keyframe, MTU);
                let last = payloads.len().saturating_sub(1);
                let received = Instant::now();
                for (i, payload) in payloads.into_iter().enumerate() {
                    let packet = tap_packet(
                        (MediaKind::Video, params, CodecKind::Av1),
                        (seq, rtp_time, i == last),
                        received,
                        captured.filter(|_| capture_times),
                        &payload,
                    );
                    seq += 1;
                    // A full channel means the test stopped reading: drop, as a tap would.
                    let _ = tx.try_send(packet);
                }
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
}

fn appsink(pipeline: &gst::Pipeline, name: &str) -> gst_app::AppSink {
    pipeline
        .by_name(name)
        .expect("the appsink is there")
        .downcast::<gst_app::AppSink>()
        .expect("an appsink")
}

/// The packet a room tap delivers: (kind, payload parameters, codec), (extended sequence
/// number, RTP timestamp, marker), arrival, capture time, payload.
fn tap_packet(
    (kind, params, codec): (MediaKind, PayloadParams, CodecKind),
    (seq, rtp_time, marker): (u64, u32, bool),
    received: Instant,
    capture: Option<SystemTime>,
    payload: &[u8],
) -> TapPacket {
    TapPacket {
        kind,
        params,
        seq,
        rtp_time,
        marker,
        keyframe: is_keyframe(codec, payload),
        rid: None,
        epoch: 1,
        received,
        capture,
        top_layer: true,
        payload: Arc::from(payload),
    }
}

/// The Unix time the packet's frame was captured: base time plus its running time.
fn capture_time(
    sink: &gst_app::AppSink,
    sample: &gst::Sample,
    buffer: &gst::BufferRef,
) -> Option<SystemTime> {
    let segment = sample.segment()?.downcast_ref::<gst::ClockTime>()?;
    let running = segment.to_running_time(buffer.pts()?)?;
    let base = sink.base_time()?;
    Some(SystemTime::UNIX_EPOCH + std::time::Duration::from_nanos((base + running).nseconds()))
}

/// (sequence number, timestamp, marker, payload) of an RTP packet.
fn parse_rtp(b: &[u8]) -> Option<(u16, u32, bool, &[u8])> {
    if b.len() < 12 || b[0] >> 6 != 2 {
        return None;
    }
    let csrc = usize::from(b[0] & 0x0f);
    let mut at = 12 + 4 * csrc;
    if b[0] & 0x10 != 0 {
        let words = usize::from(u16::from_be_bytes([*b.get(at + 2)?, *b.get(at + 3)?]));
        at += 4 + 4 * words;
    }
    let mut end = b.len();
    if b[0] & 0x20 != 0 {
        end = end.checked_sub(usize::from(*b.last()?))?;
    }
    Some((
        u16::from_be_bytes([b[2], b[3]]),
        u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        b[1] & 0x80 != 0,
        b.get(at..end)?,
    ))
}
