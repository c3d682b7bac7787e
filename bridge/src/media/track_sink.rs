//! The appsink at the end of each track: turns samples into track configs and access units
//! for the pusher, with timestamps as running time (time since the anchor).

use std::sync::mpsc::SyncSender;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use hls::{AccessUnit, TrackConfig};

use super::codec_data::parse_avcc;
use super::pusher::Feed;

/// What a track carries, beyond what its caps say.
#[derive(Debug, Clone, Copy)]
pub(crate) enum TrackKind {
    /// H.264 at this target bit rate; `frame_rate` stands in when the caps have none (a copied
    /// source whose SPS has no timing information).
    H264 { bitrate: u32, frame_rate: Option<u32> },
    /// AAC at this target bit rate.
    Aac { bitrate: u32 },
}

/// An appsink that accepts `caps` and sends track `track`'s output to `feed`.
pub(crate) fn build(
    name: &str,
    caps: &gst::Caps,
    track: usize,
    kind: TrackKind,
    feed: SyncSender<Feed>,
) -> gst_app::AppSink {
    let mut announced: Option<gst::Caps> = None;
    let callbacks = gst_app::AppSinkCallbacks::builder()
        .new_sample(move |appsink| {
            let sample = appsink.pull_sample().map_err(|_| gst::FlowError::Flushing)?;
            let caps = sample.caps().ok_or(gst::FlowError::NotNegotiated)?;
            if announced.as_ref().map(|c| c.as_ref()) != Some(caps) {
                let config = match track_config(caps, kind) {
                    Ok(config) => config,
                    Err(why) => {
                        gst::element_error!(appsink, gst::StreamError::Format, ["track {track}: {why}"]);
                        return Err(gst::FlowError::NotNegotiated);
                    }
                };
                let base_time = appsink.base_time().ok_or(gst::FlowError::Flushing)?;
                // The pipeline runs on the realtime clock: its base time is a Unix time.
                let anchor = SystemTime::UNIX_EPOCH + Duration::from_nanos(base_time.nseconds());
                feed.send(Feed::Caps {
                    track,
                    config,
                    anchor,
                })
                .map_err(|_| gst::FlowError::Flushing)?;
                announced = Some(caps.to_owned());
            }
            match access_unit(&sample) {
                Some(au) => feed
                    .send(Feed::Unit { track, au })
                    .map_err(|_| gst::FlowError::Flushing)?,
                None => tracing::debug!(track, "sample without a running time, dropped"),
            }
            Ok(gst::FlowSuccess::Ok)
        })
        .build();
    gst_app::AppSink::builder()
        .name(name)
        .caps(caps)
        // Live source: hand each access unit over as soon as it is encoded.
        .sync(false)
        .enable_last_sample(false)
        .callbacks(callbacks)
        .build()
}

fn track_config(caps: &gst::CapsRef, kind: TrackKind) -> Result<TrackConfig, String> {
    let s = caps.structure(0).ok_or("empty caps")?;
    let int = |field: &str| s.get::<i32>(field).map_err(|e| format!("{field}: {e}"));
    let codec_data = s
        .get::<gst::Buffer>("codec_data")
        .map_err(|e| format!("codec_data: {e}"))?;
    let codec_data = codec_data.map_readable().map_err(|e| e.to_string())?;
    match kind {
        TrackKind::H264 {
            bitrate,
            frame_rate: fallback,
        } => {
            let avc = parse_avcc(&codec_data)?;
            let frame_rate = match (s.get::<gst::Fraction>("framerate"), fallback) {
                (Ok(f), _) if f.numer() > 0 => f,
                (_, Some(fps)) => gst::Fraction::new(i32::try_from(fps).unwrap_or(30), 1),
                (Ok(_), None) => return Err("no frame rate".into()),
                (Err(e), None) => return Err(format!("framerate: {e}")),
            };
            Ok(TrackConfig::H264 {
                width: int("width")?.try_into().map_err(|_| "negative width")?,
                height: int("height")?.try_into().map_err(|_| "negative height")?,
                frame_rate: (
                    frame_rate.numer().try_into().map_err(|_| "negative frame rate")?,
                    frame_rate.denom().try_into().map_err(|_| "negative frame rate")?,
                ),
                bitrate,
                sps: avc.sps,
                pps: avc.pps,
            })
        }
        TrackKind::Aac { bitrate } => {
            if codec_data.is_empty() {
                return Err("empty AudioSpecificConfig".into());
            }
            Ok(TrackConfig::Aac {
                sample_rate: int("rate")?.try_into().map_err(|_| "negative rate")?,
                channels: int("channels")?
                    .try_into()
                    .map_err(|_| "channel count out of range")?,
                bitrate,
                audio_specific_config: Bytes::copy_from_slice(&codec_data),
            })
        }
    }
}

fn access_unit(sample: &gst::Sample) -> Option<AccessUnit> {
    let buffer = sample.buffer_owned()?;
    let segment = sample.segment()?.downcast_ref::<gst::ClockTime>()?;
    let pts = segment.to_running_time(buffer.pts()?)?;
    let dts = match buffer.dts() {
        Some(dts) => segment.to_running_time(dts)?,
        None => pts,
    };
    let keyframe = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
    // The bytes stay in the encoder's buffer; the packager holds a reference, not a copy.
    let data = Bytes::from_owner(buffer.into_mapped_buffer_readable().ok()?);
    Some(AccessUnit {
        pts: Duration::from_nanos(pts.nseconds()),
        dts: Duration::from_nanos(dts.nseconds()),
        keyframe,
        data,
    })
}
