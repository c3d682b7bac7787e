//! Codec-specific reading of RTP payloads: just enough to know where keyframes start.
//!
//! Every function here reads untrusted bytes from a publisher and must never panic.

use str0m::format::Codec;

/// The codecs the SFU forwards, reduced to what forwarding needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodecKind {
    /// VP8 (RFC 7741 payload descriptor).
    Vp8,
    /// VP9 (draft-ietf-payload-vp9 descriptor).
    Vp9,
    /// H.264 (RFC 6184).
    H264,
    /// AV1 (RTP payload format for AV1).
    Av1,
    /// Any audio codec: every packet is independently decodable.
    Audio,
    /// Something we forward without understanding.
    Other,
}

impl CodecKind {
    /// Classify a str0m codec.
    pub fn from_codec(codec: Codec) -> Self {
        match codec {
            Codec::Vp8 => CodecKind::Vp8,
            Codec::Vp9 => CodecKind::Vp9,
            Codec::H264 => CodecKind::H264,
            Codec::Av1 => CodecKind::Av1,
            c if c.is_audio() => CodecKind::Audio,
            _ => CodecKind::Other,
        }
    }
}

/// Whether this packet belongs to a keyframe and starts it, so that a decoder that
/// begins here can decode.
///
/// For audio every packet counts as a keyframe.
pub fn is_keyframe(codec: CodecKind, payload: &[u8]) -> bool {
    match codec {
        CodecKind::Vp8 => vp8_keyframe_start(payload),
        CodecKind::Vp9 => vp9_keyframe_start(payload),
        CodecKind::H264 => h264_keyframe(payload),
        CodecKind::Av1 => av1_keyframe_start(payload),
        CodecKind::Audio => true,
        CodecKind::Other => false,
    }
}

fn vp8_keyframe_start(p: &[u8]) -> bool {
    // RFC 7741 §4.2: X|R|N|S|R|PID. A frame starts where S=1 and PID=0.
    let Some(&b0) = p.first() else { return false };
    let start = b0 & 0x10 != 0 && b0 & 0x07 == 0;
    if !start {
        return false;
    }
    let mut i = 1;
    if b0 & 0x80 != 0 {
        let Some(&x) = p.get(i) else { return false };
        i += 1;
        if x & 0x80 != 0 {
            let Some(&pid) = p.get(i) else { return false };
            i += if pid & 0x80 != 0 { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            i += 1;
        }
        if x & 0x30 != 0 {
            i += 1;
        }
    }
    // VP8 payload header: bit 0 of the first byte is the inverse key frame flag.
    match p.get(i) {
        Some(&h) => h & 0x01 == 0,
        None => false,
    }
}

fn vp9_keyframe_start(p: &[u8]) -> bool {
    // I|P|L|F|B|E|V|Z: a keyframe start is B=1 and P=0 (not inter-predicted).
    let Some(&b0) = p.first() else { return false };
    let inter_predicted = b0 & 0x40 != 0;
    let begin = b0 & 0x08 != 0;
    begin && !inter_predicted
}

fn h264_keyframe(p: &[u8]) -> bool {
    let Some(&b0) = p.first() else { return false };
    match b0 & 0x1f {
        // SPS or IDR as a single NAL unit.
        5 | 7 => true,
        // STAP-A: length-prefixed NAL units.
        24 => {
            let mut i = 1;
            while i + 2 < p.len() {
                let len = usize::from(u16::from_be_bytes([p[i], p[i + 1]]));
                let Some(&nal) = p.get(i + 2) else {
                    return false;
                };
                if matches!(nal & 0x1f, 5 | 7) {
                    return true;
                }
                i += 2 + len;
            }
            false
        }
        // FU-A: the start fragment of an IDR.
        28 => match p.get(1) {
            Some(&fu) => fu & 0x80 != 0 && fu & 0x1f == 5,
            None => false,
        },
        _ => false,
    }
}

fn av1_keyframe_start(p: &[u8]) -> bool {
    // Aggregation header Z|Y|W W|N|-|-|-: N=1 marks the first packet of a coded video sequence.
    match p.first() {
        Some(&b0) => b0 & 0x08 != 0 && b0 & 0x80 == 0,
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vp8_keyframe_with_picture_id() {
        // X=1 S=1, I=1 with 15-bit picture id, then a payload header with P=0.
        let key = [0x90, 0x80, 0x81, 0x23, 0x10, 0x02, 0x00];
        assert!(is_keyframe(CodecKind::Vp8, &key));
        let delta = [0x90, 0x80, 0x81, 0x23, 0x11, 0x02, 0x00];
        assert!(!is_keyframe(CodecKind::Vp8, &delta));
        let continuation = [0x80, 0x80, 0x81, 0x23, 0x10];
        assert!(!is_keyframe(CodecKind::Vp8, &continuation));
    }

    #[test]
    fn h264_forms() {
        assert!(is_keyframe(CodecKind::H264, &[0x67, 0x42]));
        assert!(is_keyframe(CodecKind::H264, &[0x65, 0x88]));
        assert!(!is_keyframe(CodecKind::H264, &[0x41, 0x9a]));
        // STAP-A with SPS + PPS.
        let stap = [0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x02, 0x68, 0xce];
        assert!(is_keyframe(CodecKind::H264, &stap));
        // FU-A start of an IDR, and a middle fragment.
        assert!(is_keyframe(CodecKind::H264, &[0x7c, 0x85, 0x00]));
        assert!(!is_keyframe(CodecKind::H264, &[0x7c, 0x05, 0x00]));
    }

    #[test]
    fn never_panics_on_short_input() {
        for codec in [CodecKind::Vp8, CodecKind::Vp9, CodecKind::H264, CodecKind::Av1] {
            for len in 0..8 {
                for fill in [0x00u8, 0xff, 0x80, 0x18, 0x1c] {
                    let _ = is_keyframe(codec, &vec![fill; len]);
                }
            }
        }
        // STAP-A whose length runs past the end.
        assert!(!is_keyframe(CodecKind::H264, &[0x78, 0xff, 0xff, 0x41]));
    }
}
