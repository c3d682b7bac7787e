//! H.264 in MPEG-TS: Annex-B byte streams, one access unit per PES, to video frames.
//!
//! A PES of an H.264 stream holds one access unit as NAL units behind 00 00 01 or
//! 00 00 00 01 start codes (ISO 13818-1 2.14 asks for an access unit delimiter first). The
//! frames this crate produces carry bare NAL units, so the start codes go, and with them the
//! delimiters, which only mark boundaries the PES already gives. Parameter sets stay in the
//! frame (a decoder joining at this keyframe needs them) and, when they change, also go out
//! first as a [`Frame::VideoConfig`].

use bytes::Bytes;

use crate::frame::{Frame, Ticks, VideoConfig, VideoFrame};

const NAL_IDR: u8 = 5;
const NAL_SPS: u8 = 7;
const NAL_PPS: u8 = 8;
const NAL_AUD: u8 = 9;

/// Parameter sets and SEI seen in a PES without any picture are held for the next picture;
/// a stream that never sends one must not grow the hold without bound, so only the newest
/// few are kept, and none when they are large (parameter sets are tens of bytes).
const MAX_HELD_NALUS: usize = 16;
const MAX_HELD_BYTES: usize = 64 * 1024;

fn nal_type(nalu: &Bytes) -> u8 {
    nalu.first().map_or(0, |b| b & 0x1F)
}

/// Splits an Annex-B byte stream into NAL units (without start codes, trailing zero bytes
/// dropped: they are the leading zero of a 4-byte start code or trailing_zero_8bits, never
/// part of a NAL unit, whose last byte is non-zero). Bytes before the first start code are
/// not a NAL unit and are skipped.
pub(crate) fn split_annexb(data: &Bytes) -> Vec<Bytes> {
    let mut nalus = Vec::new();
    let mut start = None;
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            if let Some(s) = start {
                push_nalu(data, s, i, &mut nalus);
            }
            i += 3;
            start = Some(i);
        } else if data[i + 2] > 1 {
            // No start code can begin at i, i + 1 or i + 2.
            i += 3;
        } else {
            i += 1;
        }
    }
    if let Some(s) = start {
        push_nalu(data, s, data.len(), &mut nalus);
    }
    nalus
}

fn push_nalu(data: &Bytes, start: usize, end: usize, nalus: &mut Vec<Bytes>) {
    let nalu = &data[start..end];
    let len = nalu.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
    if len > 0 {
        nalus.push(data.slice(start..start + len));
    }
}

/// The H.264 stream of one PID.
#[derive(Debug, Default)]
pub(crate) struct VideoTrack {
    /// The parameter sets last sent as a [`Frame::VideoConfig`].
    config: Option<VideoConfig>,
    /// Non-picture NAL units from a PES without a picture, for the next picture.
    held: Vec<Bytes>,
}

impl VideoTrack {
    /// Takes one PES payload (an access unit) with its times.
    pub(crate) fn push(&mut self, pts: Ticks, dts: Ticks, data: &Bytes, out: &mut Vec<Frame>) {
        let mut nalus = std::mem::take(&mut self.held);
        nalus.extend(split_annexb(data).into_iter().filter(|n| nal_type(n) != NAL_AUD));
        let mut config = VideoConfig::default();
        let mut keyframe = false;
        let mut picture = false;
        for nalu in &nalus {
            match nal_type(nalu) {
                NAL_SPS => config.sps.push(nalu.clone()),
                NAL_PPS => config.pps.push(nalu.clone()),
                NAL_IDR => {
                    keyframe = true;
                    picture = true;
                }
                1..=4 => picture = true,
                _ => {}
            }
        }
        if !config.sps.is_empty() && !config.pps.is_empty() && self.config.as_ref() != Some(&config) {
            self.config = Some(config.clone());
            out.push(Frame::VideoConfig(config));
        }
        if !picture {
            let excess = nalus.len().saturating_sub(MAX_HELD_NALUS);
            nalus.drain(..excess);
            if nalus.iter().map(Bytes::len).sum::<usize>() > MAX_HELD_BYTES {
                nalus.clear();
            }
            self.held = nalus;
            return;
        }
        out.push(Frame::Video(VideoFrame {
            dts,
            pts,
            keyframe,
            nalus,
        }));
    }

    /// Bytes held for the next picture.
    pub(crate) fn buffered(&self) -> usize {
        self.held.iter().map(Bytes::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_three_and_four_byte_start_codes() {
        let data = Bytes::from_static(&[
            0xAA, 0, 0, 0, 1, 0x09, 0xF0, 0, 0, 1, 0x67, 1, 2, 0, 0, 0, 1, 0x68, 3, 0, 0, 1, 0x65, 0, 0, 3,
            1, 0, 0,
        ]);
        let nalus = split_annexb(&data);
        let want: Vec<&[u8]> = vec![&[0x09, 0xF0], &[0x67, 1, 2], &[0x68, 3], &[0x65, 0, 0, 3, 1]];
        assert_eq!(nalus, want);
        assert!(split_annexb(&Bytes::from_static(&[0, 0, 1])).is_empty());
        assert!(split_annexb(&Bytes::from_static(&[1, 2, 3, 4])).is_empty());
        assert_eq!(
            split_annexb(&Bytes::from_static(&[0, 0, 1, 0, 0, 1, 0x41])),
            vec![&[0x41][..]]
        );
    }

    fn annexb(nalus: &[&[u8]]) -> Bytes {
        let mut out = Vec::new();
        for n in nalus {
            out.extend_from_slice(&[0, 0, 0, 1]);
            out.extend_from_slice(n);
        }
        Bytes::from(out)
    }

    #[test]
    fn keyframes_config_and_dropped_delimiters() {
        let mut track = VideoTrack::default();
        let mut out = Vec::new();
        let idr = annexb(&[&[0x09, 0xF0], &[0x67, 1], &[0x68, 2], &[0x65, 9]]);
        track.push(3000, 0, &idr, &mut out);
        track.push(6000, 3000, &annexb(&[&[0x09, 0xF0], &[0x41, 7]]), &mut out);
        // The same parameter sets again: no new config.
        track.push(9000, 6000, &idr, &mut out);
        let config = VideoConfig {
            sps: vec![Bytes::from_static(&[0x67, 1])],
            pps: vec![Bytes::from_static(&[0x68, 2])],
        };
        let key = |pts, dts| {
            Frame::Video(VideoFrame {
                dts,
                pts,
                keyframe: true,
                nalus: vec![
                    Bytes::from_static(&[0x67, 1]),
                    Bytes::from_static(&[0x68, 2]),
                    Bytes::from_static(&[0x65, 9]),
                ],
            })
        };
        let delta = Frame::Video(VideoFrame {
            dts: 3000,
            pts: 6000,
            keyframe: false,
            nalus: vec![Bytes::from_static(&[0x41, 7])],
        });
        assert_eq!(
            out,
            vec![Frame::VideoConfig(config), key(3000, 0), delta, key(9000, 6000)]
        );
        // New parameter sets: a new config.
        out.clear();
        track.push(
            12000,
            9000,
            &annexb(&[&[0x67, 3], &[0x68, 2], &[0x65, 9]]),
            &mut out,
        );
        assert!(matches!(&out[0], Frame::VideoConfig(c) if c.sps[0][..] == [0x67, 3]));
    }

    #[test]
    fn parameter_sets_without_a_picture_wait_for_one() {
        let mut track = VideoTrack::default();
        let mut out = Vec::new();
        track.push(0, 0, &annexb(&[&[0x67, 1], &[0x68, 2]]), &mut out);
        assert_eq!(out.len(), 1);
        assert!(track.buffered() > 0);
        track.push(3000, 3000, &annexb(&[&[0x65, 1]]), &mut out);
        assert!(matches!(&out[1], Frame::Video(v) if v.keyframe && v.nalus.len() == 3));
        assert_eq!(track.buffered(), 0);
        for _ in 0..100 {
            track.push(0, 0, &annexb(&[&[0x06, 1]]), &mut out);
        }
        assert_eq!(track.held.len(), MAX_HELD_NALUS);
    }
}
