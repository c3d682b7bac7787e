//! H.264 access units as RTP payloads (RFC 6184, packetization-mode 1), for WebRTC viewers
//! of an ingested stream.
//!
//! Each access unit becomes one or more payloads of at most the MTU given, in decode order;
//! the caller adds the RTP headers (one timestamp for the whole access unit) and sets the
//! marker bit where the payloader says so: on the last payload of each access unit. Three
//! packet kinds are used, as packetization-mode 1 allows:
//! - a NAL unit that fits alone and next to nothing else goes as a single NAL unit packet;
//! - consecutive NAL units that fit together go as one STAP-A (aggregation, type 24): the
//!   parameter sets, SEI and a small slice of a keyframe often share one packet;
//! - a NAL unit larger than the MTU is cut into FU-A fragments (type 28).
//!
//! A viewer can only start at an IDR picture it has the parameter sets for, and a WebRTC
//! viewer joins mid-stream with no out-of-band SPS/PPS (the SDP has none), so a keyframe whose
//! access unit lacks them gets the latest configuration's copies in front. Access unit
//! delimiters and filler data are dropped: RTP marks access units itself, and filler only pads
//! a constant bit rate the network does not need. SEI is kept (it carries captions and
//! timecodes). Units of the types H.264 leaves unspecified are kept too, except 24 to 31,
//! which RFC 6184 takes for its own packet kinds: sent alone, such a unit would be read as one. The payloader is pure: it only remembers parameter sets seen in band.

use bytes::{BufMut, Bytes, BytesMut};

use crate::frame::{VideoConfig, VideoFrame};
use crate::h264::{self, NAL_AUD, NAL_FILLER, NAL_PPS, NAL_SPS};

/// The smallest MTU [`H264Payloader::new`] accepts: room for the two FU-A header bytes and
/// some data.
pub const MIN_MTU: usize = 8;
/// The largest MTU: a STAP-A counts each unit's size in 16 bits.
pub const MAX_MTU: usize = u16::MAX as usize;

/// STAP-A: single-time aggregation packet.
const STAP_A: u8 = 24;
/// FU-A: fragmentation unit without decoding order number.
const FU_A: u8 = 28;

/// Turns access units into RTP payloads of at most an MTU.
#[derive(Debug, Clone)]
pub struct H264Payloader {
    mtu: usize,
    /// Parameter sets last seen inside access units, for keyframes that come without them
    /// when no configuration is given.
    in_band: VideoConfig,
}

impl H264Payloader {
    /// A payloader whose payloads are at most `mtu` bytes (clamped to
    /// [`MIN_MTU`]..=[`MAX_MTU`]). 1200 leaves room for RTP, SRTP and IP headers on any path.
    pub fn new(mtu: usize) -> Self {
        H264Payloader {
            mtu: mtu.clamp(MIN_MTU, MAX_MTU),
            in_band: VideoConfig::default(),
        }
    }

    /// The payloads of one access unit, in order, each with its marker bit (set on the last).
    /// `config` is the stream's latest configuration: its SPS/PPS go in front of a keyframe
    /// that lacks them. Empty when the access unit holds nothing worth sending.
    pub fn payload(&mut self, config: Option<&VideoConfig>, frame: &VideoFrame) -> Vec<(Bytes, bool)> {
        let mut nalus: Vec<Bytes> = frame
            .nalus
            .iter()
            .filter(|nal| {
                !matches!(
                    h264::nal_unit_type(nal),
                    None | Some(NAL_AUD | NAL_FILLER | 24..=31)
                )
            })
            .cloned()
            .collect();
        let has = |nalus: &[Bytes], kind| nalus.iter().any(|nal| h264::nal_unit_type(nal) == Some(kind));
        let (has_sps, has_pps) = (has(&nalus, NAL_SPS), has(&nalus, NAL_PPS));
        if has_sps {
            self.in_band.sps = of_type(&nalus, NAL_SPS);
        }
        if has_pps {
            self.in_band.pps = of_type(&nalus, NAL_PPS);
        }
        if (frame.keyframe || h264::contains_idr(&nalus)) && !(has_sps && has_pps) {
            let source = config.unwrap_or(&self.in_band);
            let mut with_config = Vec::with_capacity(nalus.len() + 2);
            if !has_sps {
                with_config.extend(source.sps.iter().filter(|nal| !nal.is_empty()).cloned());
            }
            if !has_pps {
                with_config.extend(source.pps.iter().filter(|nal| !nal.is_empty()).cloned());
            }
            with_config.append(&mut nalus);
            nalus = with_config;
        }

        let mut payloads = Vec::new();
        let mut group: Vec<Bytes> = Vec::new();
        // The size of `group` as a STAP-A: its type byte and a 2-byte size per unit.
        let mut group_size = 1;
        for nal in nalus {
            if nal.len() > self.mtu {
                flush(&mut group, &mut payloads);
                group_size = 1;
                fragment(&nal, self.mtu, &mut payloads);
                continue;
            }
            let added = 2 + nal.len();
            if !group.is_empty() && group_size + added > self.mtu {
                flush(&mut group, &mut payloads);
                group_size = 1;
            }
            // A unit that fits the MTU alone always starts a group: if nothing joins it, it
            // goes as a single NAL unit packet, without the STAP-A overhead.
            group.push(nal);
            group_size += added;
        }
        flush(&mut group, &mut payloads);

        let last = payloads.len().saturating_sub(1);
        payloads
            .into_iter()
            .enumerate()
            .map(|(i, payload)| (payload, i == last))
            .collect()
    }
}

fn of_type(nalus: &[Bytes], kind: u8) -> Vec<Bytes> {
    nalus
        .iter()
        .filter(|nal| h264::nal_unit_type(nal) == Some(kind))
        .cloned()
        .collect()
}

/// Send the pending units: one alone as a single NAL unit packet, several as a STAP-A.
fn flush(group: &mut Vec<Bytes>, payloads: &mut Vec<Bytes>) {
    match group.len() {
        0 => {}
        1 => payloads.append(group),
        _ => {
            let size = 1 + group.iter().map(|nal| 2 + nal.len()).sum::<usize>();
            let mut stap = BytesMut::with_capacity(size);
            // The aggregate's F bit is set if any unit's is, and its NRI is the highest
            // (RFC 6184 5.7), so that a network element dropping by NRI keeps the packet.
            let forbidden = group.iter().fold(0, |acc, nal| acc | (nal[0] & 0x80));
            let nri = group.iter().map(|nal| nal[0] & 0x60).max().unwrap_or(0);
            stap.put_u8(forbidden | nri | STAP_A);
            for nal in group.drain(..) {
                // Each unit is at most the MTU, which is at most 65535.
                stap.put_u16(nal.len() as u16);
                stap.put_slice(&nal);
            }
            payloads.push(stap.freeze());
        }
    }
}

/// Cut a NAL unit into FU-A fragments (RFC 6184 5.8): each carries the unit's F and NRI bits
/// in its indicator and the unit's type in its header, with start and end bits on the first
/// and last; the unit's own header byte is not sent.
fn fragment(nal: &Bytes, mtu: usize, payloads: &mut Vec<Bytes>) {
    let header = nal[0];
    let indicator = (header & 0xe0) | FU_A;
    let body = nal.slice(1..);
    let chunk = mtu - 2;
    let count = body.len().div_ceil(chunk);
    for (i, piece) in body.chunks(chunk).enumerate() {
        let mut fu_header = header & 0x1f;
        if i == 0 {
            fu_header |= 0x80;
        }
        if i + 1 == count {
            fu_header |= 0x40;
        }
        let mut payload = BytesMut::with_capacity(2 + piece.len());
        payload.put_u8(indicator);
        payload.put_u8(fu_header);
        payload.put_slice(piece);
        payloads.push(payload.freeze());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A depacketizer for mode 1 payloads, written from RFC 6184 to check the payloader: the
    /// NAL units of each access unit, split at marker bits.
    fn depacketize(payloads: &[(Bytes, bool)]) -> Vec<Vec<Bytes>> {
        let mut units = Vec::new();
        let mut current: Vec<Bytes> = Vec::new();
        let mut fragmented: Option<BytesMut> = None;
        for (payload, marker) in payloads {
            match payload[0] & 0x1f {
                STAP_A => {
                    let mut rest = &payload[1..];
                    while rest.len() >= 2 {
                        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
                        assert!(rest.len() >= 2 + len, "STAP-A unit past the end");
                        current.push(Bytes::copy_from_slice(&rest[2..2 + len]));
                        rest = &rest[2 + len..];
                    }
                    assert!(rest.is_empty(), "trailing bytes in a STAP-A");
                }
                FU_A => {
                    let fu_header = payload[1];
                    if fu_header & 0x80 != 0 {
                        assert!(fragmented.is_none(), "FU-A start inside a fragmented unit");
                        let mut nal = BytesMut::new();
                        nal.put_u8((payload[0] & 0xe0) | (fu_header & 0x1f));
                        fragmented = Some(nal);
                    }
                    let nal = fragmented.as_mut().expect("FU-A continuation without a start");
                    nal.put_slice(&payload[2..]);
                    if fu_header & 0x40 != 0 {
                        current.push(fragmented.take().expect("just checked").freeze());
                    }
                }
                _ => current.push(payload.clone()),
            }
            if *marker {
                assert!(fragmented.is_none(), "marker inside a fragmented unit");
                units.push(std::mem::take(&mut current));
            }
        }
        assert!(current.is_empty(), "access unit without a marker");
        units
    }

    fn nal(header: u8, len: usize) -> Bytes {
        let mut nal = vec![header];
        nal.extend((1..len).map(|i| (i % 251) as u8));
        Bytes::from(nal)
    }

    fn frame(keyframe: bool, nalus: Vec<Bytes>) -> VideoFrame {
        VideoFrame {
            dts: 0,
            pts: 0,
            keyframe,
            nalus,
        }
    }

    fn config() -> VideoConfig {
        VideoConfig {
            sps: vec![nal(0x67, 12)],
            pps: vec![nal(0x68, 4)],
        }
    }

    #[test]
    fn small_units_share_one_stap_a() {
        let mut p = H264Payloader::new(1200);
        let idr = nal(0x65, 300);
        let payloads = p.payload(Some(&config()), &frame(true, vec![nal(0x06, 20), idr.clone()]));
        assert_eq!(payloads.len(), 1);
        assert_eq!(payloads[0].0[0], 0x60 | STAP_A, "highest NRI of the units");
        assert!(payloads[0].1);
        let config = config();
        assert_eq!(
            depacketize(&payloads),
            vec![vec![
                config.sps[0].clone(),
                config.pps[0].clone(),
                nal(0x06, 20),
                idr
            ]]
        );
    }

    #[test]
    fn a_unit_alone_goes_as_a_single_nal_unit_packet() {
        let mut p = H264Payloader::new(1200);
        let slice = nal(0x41, 1000);
        assert_eq!(
            p.payload(Some(&config()), &frame(false, vec![slice.clone()])),
            vec![(slice, true)]
        );
    }

    #[test]
    fn large_units_are_fragmented() {
        let mut p = H264Payloader::new(1200);
        let idr = nal(0x65, 5000);
        let payloads = p.payload(Some(&config()), &frame(true, vec![idr.clone()]));
        // One STAP-A of SPS+PPS, then ceil(4999 / 1198) = 5 fragments.
        assert_eq!(payloads.len(), 6);
        assert!(payloads.iter().all(|(payload, _)| payload.len() <= 1200));
        assert_eq!(payloads[1].0[..2], [0x60 | FU_A, 0x80 | 5]);
        assert_eq!(payloads[5].0[..2], [0x60 | FU_A, 0x40 | 5]);
        assert_eq!(payloads.iter().filter(|(_, marker)| *marker).count(), 1);
        let config = config();
        assert_eq!(
            depacketize(&payloads),
            vec![vec![config.sps[0].clone(), config.pps[0].clone(), idr]]
        );
    }

    #[test]
    fn delimiters_and_filler_are_dropped_sei_kept() {
        let mut p = H264Payloader::new(1200);
        let au = vec![nal(0x09, 2), nal(0x06, 10), nal(0x41, 50), nal(0x0c, 100)];
        assert_eq!(
            depacketize(&p.payload(None, &frame(false, au))),
            vec![vec![nal(0x06, 10), nal(0x41, 50)]]
        );
        assert!(
            p.payload(None, &frame(false, vec![nal(0x09, 2), Bytes::new()]))
                .is_empty()
        );
    }

    #[test]
    fn parameter_sets_go_in_front_of_keyframes_only_when_missing() {
        let mut p = H264Payloader::new(1200);
        let inband_sps = nal(0x67, 9);
        let inband_pps = nal(0x68, 3);
        let au = vec![inband_sps.clone(), inband_pps.clone(), nal(0x65, 100)];
        // In band already: nothing added.
        assert_eq!(
            depacketize(&p.payload(Some(&config()), &frame(true, au.clone()))),
            vec![au]
        );
        // Without a configuration, the parameter sets seen in band are used.
        assert_eq!(
            depacketize(&p.payload(None, &frame(true, vec![nal(0x65, 100)]))),
            vec![vec![inband_sps, inband_pps, nal(0x65, 100)]]
        );
        // Inter frames never get them.
        assert_eq!(
            depacketize(&p.payload(Some(&config()), &frame(false, vec![nal(0x41, 10)]))),
            vec![vec![nal(0x41, 10)]]
        );
    }

    #[test]
    fn tiny_mtus_are_raised() {
        let mut p = H264Payloader::new(0);
        let payloads = p.payload(None, &frame(false, vec![nal(0x41, 100)]));
        assert!(payloads.iter().all(|(payload, _)| payload.len() <= MIN_MTU));
        assert_eq!(depacketize(&payloads), vec![vec![nal(0x41, 100)]]);
    }

    proptest::proptest! {
        /// Any access units at any MTU: every payload fits, one marker per access unit, and the
        /// depacketized units are the input's, less delimiters and filler, plus the parameter
        /// sets in front of keyframes.
        #[test]
        fn round_trips_within_the_mtu(
            mtu in 0usize..1500,
            units in proptest::collection::vec(
                proptest::collection::vec((0u8..32, 0usize..3000), 0..8),
                1..5,
            ),
        ) {
            let mut p = H264Payloader::new(mtu);
            let config = config();
            for unit in units {
                let nalus: Vec<Bytes> = unit.iter().map(|&(kind, len)| nal(0x60 | kind, len + 1)).collect();
                let frame = frame(h264::contains_idr(&nalus), nalus.clone());
                let payloads = p.payload(Some(&config), &frame);
                proptest::prop_assert!(payloads.iter().all(|(payload, _)| payload.len() <= mtu.max(MIN_MTU)));
                let mut want: Vec<Bytes> = nalus
                    .into_iter()
                    .filter(|nal| !matches!(h264::nal_unit_type(nal), Some(NAL_AUD | NAL_FILLER | 24..=31)))
                    .collect();
                if frame.keyframe {
                    let mut front = Vec::new();
                    if !want.iter().any(|n| h264::nal_unit_type(n) == Some(NAL_SPS)) {
                        front.extend(config.sps.iter().cloned());
                    }
                    if !want.iter().any(|n| h264::nal_unit_type(n) == Some(NAL_PPS)) {
                        front.extend(config.pps.iter().cloned());
                    }
                    front.append(&mut want);
                    want = front;
                }
                let got = depacketize(&payloads);
                if want.is_empty() {
                    proptest::prop_assert!(got.is_empty());
                } else {
                    proptest::prop_assert_eq!(got, vec![want]);
                }
            }
        }
    }
}
