//! The pad probe on the raw source frames: burns each frame's wall-clock time into the picture
//! (the machine-readable [`clock_code`](super::clock_code) and the text of the overlay that
//! follows) and asks every encoder for a keyframe at the same frames.
//!
//! A frame's wall-clock time is the pipeline clock's time when the frame is due: base time plus
//! its running time. The pipeline runs on the realtime system clock, so that is Unix time, and
//! it is exactly `anchor + pts` for the access units encoded from the frame.

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer_video as gst_video;
use gstreamer_video::prelude::*;

use super::clock_code;
use crate::media::keyframes::{KeyframeSchedule, force_key_unit};

/// Installs the probe on `pad`, the source pad carrying raw I420 frames of `info`'s size;
/// `overlay` is the textoverlay downstream whose text is set to the frame's time.
pub(crate) fn attach(
    pad: &gst::Pad,
    info: gst_video::VideoInfo,
    overlay: &gst::Element,
    keyframe_interval: std::time::Duration,
) {
    let overlay = overlay.downgrade();
    let schedule = KeyframeSchedule::new(keyframe_interval);
    pad.add_probe(gst::PadProbeType::BUFFER, move |pad, probe| {
        let Some(buffer) = probe.buffer_mut() else {
            return gst::PadProbeReturn::Ok;
        };
        let Some((pts, running_time, wall_ms)) = frame_time(pad, buffer) else {
            tracing::warn!("raw frame without a running time, not stamped");
            return gst::PadProbeReturn::Ok;
        };
        stamp(buffer.make_mut(), &info, wall_ms);
        if let Some(overlay) = overlay.upgrade() {
            overlay.set_property("text", utc_text(wall_ms));
        }
        if let Some(gop) = schedule.gop_start(running_time.nseconds()) {
            force_key_unit(pad, pts, gop);
        }
        gst::PadProbeReturn::Ok
    });
}

/// The frame's pts, running time and wall-clock Unix milliseconds (rounded to nearest).
fn frame_time(pad: &gst::Pad, buffer: &gst::Buffer) -> Option<(gst::ClockTime, gst::ClockTime, u64)> {
    let pts = buffer.pts()?;
    let base_time = pad.parent_element()?.base_time()?;
    let segment = pad.sticky_event::<gst::event::Segment>(0)?;
    let running_time = segment
        .segment()
        .downcast_ref::<gst::ClockTime>()?
        .to_running_time(pts)?;
    let wall_ns = (base_time + running_time).nseconds();
    Some((pts, running_time, (wall_ns + 500_000) / 1_000_000))
}

fn stamp(buffer: &mut gst::BufferRef, info: &gst_video::VideoInfo, wall_ms: u64) {
    let mut frame = match gst_video::VideoFrameRef::from_buffer_ref_writable(buffer, info) {
        Ok(frame) => frame,
        Err(e) => {
            tracing::warn!(error = %e, "raw frame not mappable, not stamped");
            return;
        }
    };
    let (width, height) = (frame.width(), frame.height());
    let strides: Vec<usize> = frame.plane_stride().iter().map(|&s| s.max(0) as usize).collect();
    if let Ok(luma) = frame.plane_data_mut(0) {
        clock_code::paint_luma(luma, strides[0], width, height, wall_ms);
    }
    for plane in 1..3 {
        if let Ok(chroma) = frame.plane_data_mut(plane) {
            clock_code::paint_chroma(chroma, strides[plane as usize], width, height);
        }
    }
}

/// `2026-11-21 16:04:51.123 UTC` for Unix milliseconds.
pub(crate) fn utc_text(unix_ms: u64) -> glib::GString {
    let (days, ms_of_day) = (unix_ms / 86_400_000, unix_ms % 86_400_000);
    let (year, month, day) = civil_date(days);
    let (h, m, s, ms) = (
        ms_of_day / 3_600_000,
        ms_of_day / 60_000 % 60,
        ms_of_day / 1000 % 60,
        ms_of_day % 1000,
    );
    glib::gformat!("{year:04}-{month:02}-{day:02} {h:02}:{m:02}:{s:02}.{ms:03} UTC")
}

/// Proleptic Gregorian (year, month, day) of a day count since 1970-01-01, by counting
/// 400-year eras of 146097 days from 0000-03-01 (so the leap day ends a year).
fn civil_date(days_since_epoch: u64) -> (u64, u64, u64) {
    let days = days_since_epoch + 719_468; // 0000-03-01 to 1970-01-01
    let era = days / 146_097;
    let day_of_era = days % 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = era * 400 + year_of_era + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_text_of_known_instants() {
        assert_eq!(utc_text(0).as_str(), "1970-01-01 00:00:00.000 UTC");
        assert_eq!(
            utc_text(1_763_740_800_123).as_str(),
            "2025-11-21 16:00:00.123 UTC"
        );
        assert_eq!(utc_text(951_782_400_000).as_str(), "2000-02-29 00:00:00.000 UTC");
        assert_eq!(
            utc_text(4_107_542_399_999).as_str(),
            "2100-02-28 23:59:59.999 UTC"
        );
        assert_eq!(
            utc_text(4_107_542_400_000).as_str(),
            "2100-03-01 00:00:00.000 UTC"
        );
    }
}
