//! Keyframe detection on RTP payloads, without decoding.
//!
//! A viewer uses this to say "a keyframe arrived" from the packets alone: for VP8 the payload
//! descriptor (RFC 7741 §4.2) and the inverse key frame flag of the VP8 payload header; for H.264
//! an IDR slice or an SPS (RFC 6184), also when it travels inside a STAP-A/STAP-B aggregate or
//! starts an FU-A/FU-B fragment.

use crate::codec::VideoCodec;

const H264_NAL_IDR: u8 = 5;
const H264_NAL_SPS: u8 = 7;
const H264_STAP_A: u8 = 24;
const H264_STAP_B: u8 = 25;
const H264_FU_A: u8 = 28;
const H264_FU_B: u8 = 29;

/// Whether this RTP payload starts (or is) a keyframe of `codec`.
pub fn is_keyframe(codec: VideoCodec, payload: &[u8]) -> bool {
    match codec {
        VideoCodec::Vp8 => vp8_is_keyframe(payload),
        VideoCodec::H264 => h264_is_keyframe(payload),
    }
}

/// Whether a VP8 RTP payload is the first packet of a key frame.
///
/// Only the packet that starts partition 0 carries the VP8 payload header, so only that packet
/// can say "key frame"; the other packets of the same frame return false.
pub fn vp8_is_keyframe(payload: &[u8]) -> bool {
    let Some(&first) = payload.first() else {
        return false;
    };
    let extended = first & 0x80 != 0;
    let start_of_partition = first & 0x10 != 0;
    let partition_index = first & 0x07;
    if !start_of_partition || partition_index != 0 {
        return false;
    }
    let mut offset = 1;
    if extended {
        let Some(&ext) = payload.get(offset) else {
            return false;
        };
        offset += 1;
        let has_picture_id = ext & 0x80 != 0;
        let has_tl0_pic_idx = ext & 0x40 != 0;
        let has_tid_or_key_idx = ext & 0x30 != 0;
        if has_picture_id {
            let Some(&pid) = payload.get(offset) else {
                return false;
            };
            // M bit: a 15-bit picture id takes two bytes.
            offset += if pid & 0x80 != 0 { 2 } else { 1 };
        }
        if has_tl0_pic_idx {
            offset += 1;
        }
        if has_tid_or_key_idx {
            offset += 1;
        }
    }
    // VP8 payload header, RFC 6386 §9.1: bit 0 is the inverse key frame flag.
    payload.get(offset).is_some_and(|header| header & 0x01 == 0)
}

/// Whether an H.264 RTP payload carries an IDR slice or an SPS, or starts a fragmented one.
pub fn h264_is_keyframe(payload: &[u8]) -> bool {
    let Some(&first) = payload.first() else {
        return false;
    };
    match first & 0x1f {
        H264_NAL_IDR | H264_NAL_SPS => true,
        H264_STAP_A => aggregate_has_keyframe(&payload[1..]),
        // STAP-B carries a 16-bit decoding order number before the first unit.
        H264_STAP_B => payload.get(3..).is_some_and(aggregate_has_keyframe),
        H264_FU_A | H264_FU_B => payload.get(1).is_some_and(|fu_header| {
            let start = fu_header & 0x80 != 0;
            let nal_type = fu_header & 0x1f;
            start && matches!(nal_type, H264_NAL_IDR | H264_NAL_SPS)
        }),
        _ => false,
    }
}

/// Walks the `[u16 size][NAL unit]...` list of a STAP.
fn aggregate_has_keyframe(mut units: &[u8]) -> bool {
    while units.len() >= 2 {
        let size = usize::from(u16::from_be_bytes([units[0], units[1]]));
        let Some(unit) = units.get(2..2 + size) else {
            return false;
        };
        if unit
            .first()
            .is_some_and(|h| matches!(h & 0x1f, H264_NAL_IDR | H264_NAL_SPS))
        {
            return true;
        }
        units = &units[2 + size..];
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    // VP8 frame tags (RFC 6386 §9.1): bit 0 clear = key frame.
    const VP8_KEY_TAG: u8 = 0x10;
    const VP8_DELTA_TAG: u8 = 0x11;

    #[test]
    fn vp8_minimal_descriptor() {
        assert!(vp8_is_keyframe(&[0x10, VP8_KEY_TAG, 0, 0x9d, 0x01, 0x2a]));
        assert!(!vp8_is_keyframe(&[0x10, VP8_DELTA_TAG, 0]));
    }

    #[test]
    fn vp8_needs_start_of_partition_zero() {
        // S clear: a continuation packet, whatever its first payload byte looks like.
        assert!(!vp8_is_keyframe(&[0x00, VP8_KEY_TAG]));
        // S set but partition 1.
        assert!(!vp8_is_keyframe(&[0x11, VP8_KEY_TAG]));
    }

    #[test]
    fn vp8_extended_descriptor_with_15_bit_picture_id() {
        // X=1, S=1; I=1; picture id with M=1 (2 bytes); then the payload header.
        let key = [0x90, 0x80, 0x80 | 0x12, 0x34, VP8_KEY_TAG];
        let delta = [0x90, 0x80, 0x80 | 0x12, 0x34, VP8_DELTA_TAG];
        assert!(vp8_is_keyframe(&key));
        assert!(!vp8_is_keyframe(&delta));
    }

    #[test]
    fn vp8_extended_descriptor_with_everything() {
        // I (7-bit pid), L (tl0picidx), T and K (one shared byte).
        let key = [0x90, 0xf0, 0x05, 0x07, 0x20, VP8_KEY_TAG];
        assert!(vp8_is_keyframe(&key));
        let delta = [0x90, 0xf0, 0x05, 0x07, 0x20, VP8_DELTA_TAG];
        assert!(!vp8_is_keyframe(&delta));
    }

    #[test]
    fn vp8_truncated_is_not_a_keyframe() {
        assert!(!vp8_is_keyframe(&[]));
        assert!(!vp8_is_keyframe(&[0x90]));
        assert!(!vp8_is_keyframe(&[0x90, 0x80, 0x80]));
        assert!(!vp8_is_keyframe(&[0x10]));
    }

    #[test]
    fn h264_single_nal_units() {
        assert!(h264_is_keyframe(&[0x65, 0x88])); // IDR, nri=3
        assert!(h264_is_keyframe(&[0x67, 0x42])); // SPS
        assert!(!h264_is_keyframe(&[0x68, 0xce])); // PPS alone
        assert!(!h264_is_keyframe(&[0x41, 0x9a])); // non-IDR slice
        assert!(!h264_is_keyframe(&[0x06, 0x05])); // SEI
        assert!(!h264_is_keyframe(&[]));
    }

    #[test]
    fn h264_stap_a_with_sps_pps() {
        let stap = [0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x02, 0x68, 0xce];
        assert!(h264_is_keyframe(&stap));
        let no_key = [0x78, 0x00, 0x02, 0x06, 0x05, 0x00, 0x02, 0x68, 0xce];
        assert!(!h264_is_keyframe(&no_key));
        // A unit size running past the end stops the walk.
        assert!(!h264_is_keyframe(&[0x78, 0x00, 0x09, 0x65]));
    }

    #[test]
    fn h264_stap_a_second_unit_is_idr() {
        let stap = [0x78, 0x00, 0x01, 0x09, 0x00, 0x02, 0x65, 0x88];
        assert!(h264_is_keyframe(&stap));
    }

    #[test]
    fn h264_stap_b_skips_don() {
        let stap_b = [0x79, 0x12, 0x34, 0x00, 0x02, 0x67, 0x42];
        assert!(h264_is_keyframe(&stap_b));
    }

    #[test]
    fn h264_fu_a_only_the_start_fragment_counts() {
        assert!(h264_is_keyframe(&[0x7c, 0x85, 0xaa])); // S=1, type 5
        assert!(!h264_is_keyframe(&[0x7c, 0x05, 0xaa])); // middle fragment
        assert!(!h264_is_keyframe(&[0x7c, 0x45, 0xaa])); // end fragment
        assert!(!h264_is_keyframe(&[0x7c, 0x81, 0xaa])); // start of a non-IDR slice
        assert!(!h264_is_keyframe(&[0x7c]));
    }

    #[test]
    fn dispatch_by_codec() {
        assert!(is_keyframe(VideoCodec::Vp8, &[0x10, VP8_KEY_TAG]));
        assert!(is_keyframe(VideoCodec::H264, &[0x65]));
        assert!(!is_keyframe(VideoCodec::H264, &[0x10, VP8_KEY_TAG]));
    }
}
