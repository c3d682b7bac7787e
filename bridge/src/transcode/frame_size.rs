//! A source's picture size from the RTP payload of its first keyframe, before anything is
//! decoded: the transcoder's ladder (rungs at or below the source) is built from it.
//!
//! VP8: the keyframe header after the payload descriptor. VP9: the scalability structure of
//! the payload descriptor, else the keyframe's uncompressed header. H.264: the sequence
//! parameter set, alone, in a STAP-A, or at the start of an FU-A. AV1: the sequence header
//! OBU that starts a coded video sequence's first packet (its maximum frame size: the frame
//! headers may only go smaller).

use crate::transcode::av1;
use crate::transcode::bits::BitReader;

/// The codecs a room's video can arrive in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    /// VP8 (RFC 7741).
    Vp8,
    /// VP9 (RFC 9628).
    Vp9,
    /// H.264 (RFC 6184).
    H264,
    /// AV1 (AOMedia RTP payload format, depacketized in [`crate::transcode`]).
    Av1,
}

/// Width and height of the picture a keyframe packet starts, if it says.
pub fn frame_size(codec: VideoCodec, payload: &[u8]) -> Option<(u32, u32)> {
    match codec {
        VideoCodec::Vp8 => vp8(payload),
        VideoCodec::Vp9 => vp9(payload),
        VideoCodec::H264 => h264(payload),
        VideoCodec::Av1 => av1_sequence_header(av1::sequence_header(payload)?),
    }
}

/// The maximum frame size in an AV1 sequence header OBU's payload (AV1 specification 5.5).
fn av1_sequence_header(seq: &[u8]) -> Option<(u32, u32)> {
    let mut r = BitReader::new(seq);
    r.bits(4)?; // seq_profile, still_picture
    if r.bit()? == 1 {
        // reduced_still_picture_header: one operating point, its level alone.
        r.bits(5)?;
    } else {
        let mut buffer_delay_bits = None;
        if r.bit()? == 1 {
            // timing_info: num_units_in_display_tick, time_scale, equal_picture_interval.
            r.bits(32)?;
            r.bits(32)?;
            if r.bit()? == 1 {
                uvlc(&mut r)?; // num_ticks_per_picture_minus_1
            }
            if r.bit()? == 1 {
                // decoder_model_info: buffer_delay_length_minus_1, num_units_in_decoding_tick,
                // buffer_removal_time_length_minus_1, frame_presentation_time_length_minus_1.
                buffer_delay_bits = Some(r.bits(5)? + 1);
                r.bits(32)?;
                r.bits(10)?;
            }
        }
        let initial_display_delay = r.bit()? == 1;
        let operating_points = r.bits(5)? + 1;
        for _ in 0..operating_points {
            r.bits(12)?; // operating_point_idc
            if r.bits(5)? > 7 {
                r.bit()?; // seq_tier
            }
            if let Some(bits) = buffer_delay_bits
                && r.bit()? == 1
            {
                // decoder_buffer_delay, encoder_buffer_delay, low_delay_mode_flag
                r.bits(bits)?;
                r.bits(bits)?;
                r.bit()?;
            }
            if initial_display_delay && r.bit()? == 1 {
                r.bits(4)?; // initial_display_delay_minus_1
            }
        }
    }
    let width_bits = r.bits(4)? + 1;
    let height_bits = r.bits(4)? + 1;
    let width = r.bits(width_bits)? + 1;
    let height = r.bits(height_bits)? + 1;
    Some((width, height))
}

/// Skips an AV1 uvlc() number.
fn uvlc(r: &mut BitReader<'_>) -> Option<()> {
    let mut zeros = 0;
    while r.bit()? == 0 {
        zeros += 1;
    }
    if zeros < 32 {
        r.bits(zeros)?;
    }
    Some(())
}

fn vp8(p: &[u8]) -> Option<(u32, u32)> {
    let b0 = *p.first()?;
    let mut i = 1;
    if b0 & 0x80 != 0 {
        let x = *p.get(i)?;
        i += 1;
        if x & 0x80 != 0 {
            i += if p.get(i)? & 0x80 != 0 { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            i += 1;
        }
        if x & 0x30 != 0 {
            i += 1;
        }
    }
    let frame = p.get(i..)?;
    // Frame tag (3 bytes, bit 0 clear on a keyframe), then the start code 9d 01 2a.
    if frame.len() < 10 || frame[0] & 1 != 0 || frame[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let width = u32::from(u16::from_le_bytes([frame[6], frame[7]]) & 0x3fff);
    let height = u32::from(u16::from_le_bytes([frame[8], frame[9]]) & 0x3fff);
    (width > 0 && height > 0).then_some((width, height))
}

fn vp9(p: &[u8]) -> Option<(u32, u32)> {
    let b0 = *p.first()?;
    let (picture_id, inter, layers, flexible, start, scalability) = (
        b0 & 0x80 != 0,
        b0 & 0x40 != 0,
        b0 & 0x20 != 0,
        b0 & 0x10 != 0,
        b0 & 0x08 != 0,
        b0 & 0x02 != 0,
    );
    let mut i = 1;
    if picture_id {
        i += if p.get(i)? & 0x80 != 0 { 2 } else { 1 };
    }
    if layers {
        i += if flexible { 1 } else { 2 };
    }
    if flexible && inter {
        // Up to three reference indices, each saying whether another follows.
        for _ in 0..3 {
            let more = p.get(i)? & 1 != 0;
            i += 1;
            if !more {
                break;
            }
        }
    }
    if scalability {
        let ss = *p.get(i)?;
        i += 1;
        let spatial_layers = usize::from(ss >> 5) + 1;
        if ss & 0x10 != 0 {
            // Resolutions present: the last spatial layer is the largest.
            let at = i + 4 * (spatial_layers - 1);
            let r = p.get(at..at + 4)?;
            let width = u32::from(u16::from_be_bytes([r[0], r[1]]));
            let height = u32::from(u16::from_be_bytes([r[2], r[3]]));
            return (width > 0 && height > 0).then_some((width, height));
        }
        i += 4 * spatial_layers;
        if ss & 0x08 != 0 {
            let groups = usize::from(*p.get(i)?);
            i += 1;
            for _ in 0..groups {
                let g = *p.get(i)?;
                i += 1 + usize::from((g >> 2) & 0x03);
            }
        }
    }
    if !start {
        return None;
    }
    vp9_uncompressed_header(p.get(i..)?)
}

/// The frame size in a VP9 keyframe's uncompressed header.
fn vp9_uncompressed_header(frame: &[u8]) -> Option<(u32, u32)> {
    let mut r = BitReader::new(frame);
    if r.bits(2)? != 0b10 {
        return None;
    }
    let profile = r.bit()? | (r.bit()? << 1);
    if profile == 3 {
        r.bit()?;
    }
    if r.bit()? == 1 {
        return None; // show_existing_frame
    }
    if r.bit()? != 0 {
        return None; // not a keyframe
    }
    r.bits(2)?; // show_frame, error_resilient_mode
    if r.bits(24)? != 0x49_83_42 {
        return None;
    }
    if profile >= 2 {
        r.bit()?; // ten_or_twelve_bit
    }
    let color_space = r.bits(3)?;
    if color_space != 7 {
        r.bit()?; // color_range
        if profile == 1 || profile == 3 {
            r.bits(3)?; // subsampling_x, subsampling_y, reserved
        }
    } else if profile == 1 || profile == 3 {
        r.bit()?;
    }
    let width = r.bits(16)? + 1;
    let height = r.bits(16)? + 1;
    Some((width, height))
}

fn h264(p: &[u8]) -> Option<(u32, u32)> {
    let header = *p.first()?;
    match header & 0x1f {
        7 => sps_size(&p[1..]),
        24 => {
            let mut i = 1;
            while i + 2 < p.len() {
                let len = usize::from(u16::from_be_bytes([p[i], p[i + 1]]));
                let nal = p.get(i + 2..i + 2 + len)?;
                if nal.first().is_some_and(|h| h & 0x1f == 7) {
                    return sps_size(&nal[1..]);
                }
                i += 2 + len;
            }
            None
        }
        28 => {
            let fu = *p.get(1)?;
            (fu & 0x80 != 0 && fu & 0x1f == 7).then(|| sps_size(&p[2..]))?
        }
        _ => None,
    }
}

/// The cropped picture size in a sequence parameter set (after its NAL header).
fn sps_size(sps: &[u8]) -> Option<(u32, u32)> {
    let rbsp = unescape(sps);
    let mut r = BitReader::new(&rbsp);
    let profile = r.bits(8)?;
    r.bits(16)?; // constraint flags, level
    r.ue()?; // seq_parameter_set_id
    let mut chroma_format = 1;
    if matches!(
        profile,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        chroma_format = r.ue()?;
        if chroma_format == 3 {
            r.bit()?; // separate_colour_plane_flag
        }
        r.ue()?; // bit_depth_luma_minus8
        r.ue()?; // bit_depth_chroma_minus8
        r.bit()?; // qpprime_y_zero_transform_bypass_flag
        if r.bit()? == 1 {
            let lists = if chroma_format == 3 { 12 } else { 8 };
            for list in 0..lists {
                if r.bit()? == 1 {
                    skip_scaling_list(&mut r, if list < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    r.ue()?; // log2_max_frame_num_minus4
    match r.ue()? {
        0 => {
            r.ue()?; // log2_max_pic_order_cnt_lsb_minus4
        }
        1 => {
            r.bit()?;
            r.se()?;
            r.se()?;
            for _ in 0..r.ue()? {
                r.se()?;
            }
        }
        _ => {}
    }
    r.ue()?; // max_num_ref_frames
    r.bit()?; // gaps_in_frame_num_value_allowed_flag
    let width_mbs = r.ue()? + 1;
    let height_units = r.ue()? + 1;
    let frame_mbs_only = r.bit()?;
    if frame_mbs_only == 0 {
        r.bit()?; // mb_adaptive_frame_field_flag
    }
    r.bit()?; // direct_8x8_inference_flag
    let (mut crop_x, mut crop_y) = (0, 0);
    if r.bit()? == 1 {
        let (left, right, top, bottom) = (r.ue()?, r.ue()?, r.ue()?, r.ue()?);
        let (unit_x, unit_y) = match chroma_format {
            0 => (1, 2 - frame_mbs_only),
            1 => (2, 2 * (2 - frame_mbs_only)),
            2 => (2, 2 - frame_mbs_only),
            _ => (1, 2 - frame_mbs_only),
        };
        crop_x = unit_x * (left + right);
        crop_y = unit_y * (top + bottom);
    }
    let width = (width_mbs * 16).checked_sub(crop_x)?;
    let height = ((2 - frame_mbs_only) * height_units * 16).checked_sub(crop_y)?;
    (width > 0 && height > 0).then_some((width, height))
}

fn skip_scaling_list(r: &mut BitReader<'_>, size: usize) -> Option<()> {
    let (mut last, mut next) = (8i64, 8i64);
    for _ in 0..size {
        if next != 0 {
            next = (last + r.se()? + 256) % 256;
        }
        if next != 0 {
            last = next;
        }
    }
    Some(())
}

/// The RBSP of a NAL unit: emulation-prevention bytes (00 00 03) removed.
fn unescape(nal: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len());
    let mut zeros = 0;
    for &b in nal {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vp8_keyframe_with_a_long_picture_id() {
        // Descriptor X+S, I with a 15-bit picture id; frame tag of a keyframe; 1280x720.
        let p = [
            0x90, 0x80, 0x81, 0x23, 0x50, 0x42, 0x00, 0x9d, 0x01, 0x2a, 0x00, 0x05, 0xd0, 0x02,
        ];
        assert_eq!(frame_size(VideoCodec::Vp8, &p), Some((1280, 720)));
        // A delta frame says nothing.
        let mut delta = p;
        delta[4] |= 1;
        assert_eq!(frame_size(VideoCodec::Vp8, &delta), None);
    }

    #[test]
    fn vp9_from_the_scalability_structure() {
        // I (7-bit id), B, V; SS: one spatial layer, resolutions present, 640x360.
        let p = [0x8a, 0x05, 0x18, 0x02, 0x80, 0x01, 0x68, 0x00];
        assert_eq!(frame_size(VideoCodec::Vp9, &p), Some((640, 360)));
    }

    #[test]
    fn vp9_from_the_uncompressed_header() {
        // B only; profile 0 keyframe, shown, sync code, BT.601, 1280x720.
        let header = [0x82, 0x49, 0x83, 0x42, 0x00, 0x4f, 0xf0, 0x2c, 0xf0];
        let mut p = vec![0x08];
        p.extend_from_slice(&header);
        assert_eq!(frame_size(VideoCodec::Vp9, &p), Some((1280, 720)));
    }

    /// x264's SPS for 1280x720 in its default (high 4:4:4 predictive) profile: scaling
    /// matrices off, emulation-prevention bytes in it.
    const SPS_720P: [u8; 30] = [
        0x67, 0xf4, 0x00, 0x1f, 0x90, 0xd9, 0xb2, 0x80, 0xa0, 0x0b, 0x76, 0x02, 0xd4, 0x04, 0x04, 0x05, 0x00,
        0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x03, 0x00, 0x3c, 0x8f, 0x18, 0x31, 0x96,
    ];
    /// x264's SPS for 640x360, constrained baseline (cropped from 368 rows).
    const SPS_360P: [u8; 28] = [
        0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0xa0, 0x2f, 0xf9, 0x70, 0x16, 0xa0, 0xc0, 0xc0, 0xd4, 0xa0, 0x00,
        0x00, 0x03, 0x00, 0x20, 0x00, 0x00, 0x07, 0x91, 0xe2, 0xc5, 0xc9,
    ];

    #[test]
    fn h264_sps_alone_and_in_a_stap_a() {
        assert_eq!(frame_size(VideoCodec::H264, &SPS_360P), Some((640, 360)));
        let size = frame_size(VideoCodec::H264, &SPS_720P);
        assert_eq!(size, Some((1280, 720)));
        let mut stap = vec![0x18, 0x00, SPS_720P.len() as u8];
        stap.extend_from_slice(&SPS_720P);
        stap.extend_from_slice(&[0x00, 0x02, 0x68, 0xce]);
        assert_eq!(frame_size(VideoCodec::H264, &stap), size);
        // An IDR slice alone says nothing.
        assert_eq!(frame_size(VideoCodec::H264, &[0x65, 0x88, 0x84]), None);
    }

    /// The sequence header libaom (GStreamer's av1enc, realtime) wrote for a 640x360 picture
    /// in 4:4:4 (profile 1): `videotestsrc num-buffers=1 ! video/x-raw,width=640,height=360 !
    /// av1enc ! av1parse ! video/x-av1,stream-format=obu-stream`. As written, with its size.
    const AV1_SEQUENCE_HEADER_360P: [u8; 13] = [
        0x0a, 0x0b, 0x20, 0x00, 0x00, 0x0c, 0xc4, 0xff, 0x67, 0xe0, 0x6d, 0x7c, 0x81,
    ];

    #[test]
    fn av1_from_the_sequence_header() {
        // As sent: W=2, N=1; the sequence header without its size field, a frame after it.
        let mut p = vec![0x28, 12, 0x08];
        p.extend_from_slice(&AV1_SEQUENCE_HEADER_360P[2..]);
        p.extend_from_slice(&[0x30, 0x00, 0x01]);
        assert_eq!(frame_size(VideoCodec::Av1, &p), Some((640, 360)));
        // With its size field (W=1), and cut short by a fragment boundary after the size.
        let mut p = vec![0x18];
        p.extend_from_slice(&AV1_SEQUENCE_HEADER_360P[..9]);
        assert_eq!(frame_size(VideoCodec::Av1, &p), Some((640, 360)));
        // A frame alone, or a continued fragment, says nothing.
        assert_eq!(frame_size(VideoCodec::Av1, &[0x10, 0x30, 0x00]), None);
        let mut p = vec![0x90];
        p.extend_from_slice(&AV1_SEQUENCE_HEADER_360P[..]);
        assert_eq!(frame_size(VideoCodec::Av1, &p), None);
    }

    /// Writes bits most significant first.
    #[derive(Default)]
    struct BitWriter {
        bytes: Vec<u8>,
        bits: usize,
    }

    impl BitWriter {
        fn put(&mut self, value: u32, n: u32) -> &mut Self {
            for i in (0..n).rev() {
                if self.bits.is_multiple_of(8) {
                    self.bytes.push(0);
                }
                let bit = ((value >> i) & 1) as u8;
                *self.bytes.last_mut().expect("pushed above") |= bit << (7 - self.bits % 8);
                self.bits += 1;
            }
            self
        }
    }

    #[test]
    fn av1_sequence_headers_with_timing_decoder_model_and_operating_points() {
        let mut w = BitWriter::default();
        w.put(0, 3).put(0, 1).put(0, 1); // profile 0, not still, full header
        w.put(1, 1).put(1001, 32).put(60_000, 32).put(1, 1).put(1, 1); // timing, uvlc 0
        w.put(1, 1).put(9, 5).put(90_000, 32).put(4, 5).put(4, 5); // decoder model, 10-bit delays
        w.put(1, 1).put(1, 5); // initial display delays, two operating points
        // One at level 4.0 (index 8: a tier bit), with a decoder model and a display delay.
        w.put(0x103, 12).put(8, 5).put(1, 1);
        w.put(1, 1)
            .put(700, 10)
            .put(300, 10)
            .put(0, 1)
            .put(1, 1)
            .put(3, 4);
        // One at level 3.1 without either.
        w.put(0x101, 12).put(5, 5).put(0, 1).put(0, 1);
        w.put(10, 4).put(10, 4).put(1919, 11).put(1079, 11);
        assert_eq!(av1_sequence_header(&w.bytes), Some((1920, 1080)));

        // A reduced still-picture header.
        let mut w = BitWriter::default();
        w.put(0, 3).put(1, 1).put(1, 1).put(2, 5);
        w.put(8, 4).put(7, 4).put(319, 9).put(239, 8);
        assert_eq!(av1_sequence_header(&w.bytes), Some((320, 240)));
        // Cut anywhere: none.
        for len in 0..w.bytes.len() {
            assert_eq!(av1_sequence_header(&w.bytes[..len]), None);
        }
    }

    #[test]
    fn truncated_or_garbage_payloads_are_none_never_a_panic() {
        for codec in [
            VideoCodec::Vp8,
            VideoCodec::Vp9,
            VideoCodec::H264,
            VideoCodec::Av1,
        ] {
            for len in 0..16 {
                let _ = frame_size(codec, &SPS_720P[..len.min(SPS_720P.len())]);
                let _ = frame_size(codec, &vec![0xff; len]);
                let _ = frame_size(codec, &vec![0x00; len]);
            }
        }
    }
}
