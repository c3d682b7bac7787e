//! PES packets: reassembly from TS payloads, the header's timestamps, and 33-bit wraparound.
//!
//! A PES packet starts in a TS packet with payload_unit_start_indicator set and runs until
//! its PES_packet_length is reached or, when that length is 0 (allowed for video, and what
//! ffmpeg writes for it), until the next start on the same PID. Each PES is capped: a
//! stream that never starts a new unit would otherwise grow the buffer without end.

use bytes::{Bytes, BytesMut};

use crate::frame::Ticks;

/// Why a PES was not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PesError {
    /// No 00 00 01 start code prefix.
    #[error("no PES start code")]
    StartCode,
    /// The header is shorter than its own fields say.
    #[error("truncated PES header")]
    Truncated,
    /// A PTS/DTS field without its marker bits.
    #[error("malformed PES timestamp")]
    Timestamp,
}

/// A PES packet's payload with its times (33-bit, not yet unwrapped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pes {
    /// Presentation time stamp.
    pub(crate) pts: Option<u64>,
    /// Decode time stamp (only sent when it differs from the PTS).
    pub(crate) dts: Option<u64>,
    /// The elementary stream bytes.
    pub(crate) payload: Bytes,
}

/// What the assembler is doing.
#[derive(Debug, Default)]
enum State {
    /// Waiting for a unit start (at the beginning, after a gap, after an overflow).
    #[default]
    Idle,
    /// Collecting a PES; `expected` is its total length when the header gave one.
    Assembling { buf: BytesMut, expected: Option<usize> },
}

/// What a packet did to the PES being assembled.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Pushed {
    /// Completed PES packets (at most two: the one a unit start ended, and a short new one
    /// that is already complete).
    pub(crate) complete: Vec<Bytes>,
    /// PES packets thrown away: over the cap, or cut short by the next unit start.
    pub(crate) dropped: u64,
}

/// Reassembles the PES packets of one PID.
#[derive(Debug)]
pub(crate) struct PesAssembler {
    state: State,
    cap: usize,
}

impl PesAssembler {
    /// An assembler that drops any PES longer than `cap` bytes.
    pub(crate) fn new(cap: usize) -> Self {
        PesAssembler {
            state: State::Idle,
            cap,
        }
    }

    /// Take one TS packet's payload.
    pub(crate) fn push(&mut self, unit_start: bool, payload: &[u8]) -> Pushed {
        let mut pushed = Pushed::default();
        if unit_start {
            match std::mem::take(&mut self.state) {
                State::Assembling { buf, expected: None } => pushed.complete.push(buf.freeze()),
                // Shorter than announced: a packet went missing without a CC gap we could see.
                State::Assembling {
                    expected: Some(_), ..
                } => pushed.dropped += 1,
                State::Idle => {}
            }
            let expected = match payload {
                [_, _, _, _, hi, lo, ..] => match u16::from_be_bytes([*hi, *lo]) {
                    0 => None,
                    n => Some(6 + usize::from(n)),
                },
                _ => None,
            };
            let mut buf = BytesMut::with_capacity(expected.unwrap_or(payload.len()).min(self.cap));
            buf.extend_from_slice(payload);
            self.state = State::Assembling { buf, expected };
        } else if let State::Assembling { buf, .. } = &mut self.state {
            buf.extend_from_slice(payload);
        }
        if let State::Assembling { buf, expected } = &mut self.state {
            if buf.len() > self.cap {
                self.state = State::Idle;
                pushed.dropped += 1;
            } else if let Some(expected) = *expected
                && buf.len() >= expected
            {
                // Anything past the announced length is stuffing.
                buf.truncate(expected);
                pushed.complete.push(std::mem::take(buf).freeze());
                self.state = State::Idle;
            }
        }
        pushed
    }

    /// End of stream: the PES in progress if it can be complete (an unbounded one ends with
    /// the stream), else `None`; returns whether one was dropped, too.
    pub(crate) fn flush(&mut self) -> (Option<Bytes>, bool) {
        match std::mem::take(&mut self.state) {
            State::Assembling { buf, expected: None } => (Some(buf.freeze()), false),
            State::Assembling {
                expected: Some(_), ..
            } => (None, true),
            State::Idle => (None, false),
        }
    }

    /// Abandon the PES in progress (after a continuity gap); returns whether there was one.
    pub(crate) fn reset(&mut self) -> bool {
        matches!(std::mem::take(&mut self.state), State::Assembling { .. })
    }

    /// Bytes held for the PES in progress.
    pub(crate) fn buffered(&self) -> usize {
        match &self.state {
            State::Assembling { buf, .. } => buf.len(),
            State::Idle => 0,
        }
    }
}

/// Parses a whole PES packet.
pub(crate) fn parse(pes: Bytes) -> Result<Pes, PesError> {
    let [0x00, 0x00, 0x01, stream_id, ..] = pes[..] else {
        return Err(PesError::StartCode);
    };
    // These stream ids have no optional header (ISO 13818-1, 2.4.3.7): padding, private 2,
    // ECM, EMM, DSM-CC, H.222.1 type E, program stream directory.
    if matches!(stream_id, 0xBC | 0xBE | 0xBF | 0xF0 | 0xF1 | 0xF2 | 0xF8 | 0xFF) {
        return Ok(Pes {
            pts: None,
            dts: None,
            payload: pes.slice(pes.len().min(6)..),
        });
    }
    let [_, _, _, _, _, _, _, flags, header_len, ..] = pes[..] else {
        return Err(PesError::Truncated);
    };
    let start = 9 + usize::from(header_len);
    if pes.len() < start {
        return Err(PesError::Truncated);
    }
    let fields = &pes[9..start];
    let (pts, dts) = match flags >> 6 {
        0b10 => (Some(timestamp(fields.get(..5))?), None),
        0b11 => (
            Some(timestamp(fields.get(..5))?),
            Some(timestamp(fields.get(5..10))?),
        ),
        _ => (None, None),
    };
    Ok(Pes {
        pts,
        dts,
        payload: pes.slice(start..),
    })
}

/// A 33-bit PTS or DTS from its 5-byte field (three parts, each followed by a marker bit).
fn timestamp(field: Option<&[u8]>) -> Result<u64, PesError> {
    let Some(&[a, b, c, d, e]) = field else {
        return Err(PesError::Truncated);
    };
    if a & 1 == 0 || c & 1 == 0 || e & 1 == 0 {
        return Err(PesError::Timestamp);
    }
    Ok(u64::from(a >> 1 & 0x07) << 30
        | u64::from(b) << 22
        | u64::from(c >> 1) << 15
        | u64::from(d) << 7
        | u64::from(e >> 1))
}

/// The 33-bit timestamp period.
const WRAP: i64 = 1 << 33;

/// Extends 33-bit timestamps (they wrap every 26.5 hours) into [`Ticks`] that keep counting.
///
/// One unwrapper serves all the streams of a program: they share one clock, and unwrapping
/// them apart would put a stream that starts just after a wrap 2^33 ticks away from one that
/// starts just before it. Each value is taken as the one nearest the previous value, so any
/// jump under 13 hours either way is followed.
#[derive(Debug, Default)]
pub(crate) struct Unwrapper {
    last: Option<Ticks>,
}

impl Unwrapper {
    /// The extended value of a 33-bit timestamp.
    pub(crate) fn extend(&mut self, raw: u64) -> Ticks {
        // A 33-bit value always fits.
        let raw = (raw & (WRAP as u64 - 1)) as i64;
        let value = match self.last {
            None => raw,
            Some(last) => {
                let delta = (raw - last.rem_euclid(WRAP)).rem_euclid(WRAP);
                let delta = if delta >= WRAP / 2 { delta - WRAP } else { delta };
                // Saturating: only billions of PES with garbage times could get there, and
                // that must not be a panic either.
                last.saturating_add(delta)
            }
        };
        self.last = Some(value);
        value
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The 5-byte PTS/DTS field with the given 4-bit prefix.
    pub(crate) fn ts_field(prefix: u8, t: u64) -> [u8; 5] {
        [
            prefix << 4 | ((t >> 29) as u8 & 0x0E) | 1,
            (t >> 22) as u8,
            ((t >> 14) as u8 & 0xFE) | 1,
            (t >> 7) as u8,
            ((t << 1) as u8) | 1,
        ]
    }

    /// A PES packet (stream id 0xE0 or 0xC0...) around `payload`.
    pub(crate) fn pes(
        stream_id: u8,
        pts: Option<u64>,
        dts: Option<u64>,
        payload: &[u8],
        bounded: bool,
    ) -> Vec<u8> {
        let mut header = Vec::new();
        let flags = match (pts, dts) {
            (Some(p), Some(d)) => {
                header.extend_from_slice(&ts_field(0b0011, p));
                header.extend_from_slice(&ts_field(0b0001, d));
                0xC0
            }
            (Some(p), None) => {
                header.extend_from_slice(&ts_field(0b0010, p));
                0x80
            }
            _ => 0x00,
        };
        let len = if bounded {
            3 + header.len() + payload.len()
        } else {
            0
        };
        let mut out = vec![
            0,
            0,
            1,
            stream_id,
            (len >> 8) as u8,
            len as u8,
            0x80,
            flags,
            header.len() as u8,
        ];
        out.extend_from_slice(&header);
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn parses_pts_and_dts() {
        let p = pes(0xE0, Some(0x1_2345_6789), Some(0x1_2345_0000), b"data", false);
        let parsed = parse(Bytes::from(p)).expect("valid PES");
        assert_eq!(parsed.pts, Some(0x1_2345_6789));
        assert_eq!(parsed.dts, Some(0x1_2345_0000));
        assert_eq!(&parsed.payload[..], b"data");
        let p = pes(0xC0, Some(90_000), None, b"x", true);
        let parsed = parse(Bytes::from(p)).expect("valid PES");
        assert_eq!((parsed.pts, parsed.dts), (Some(90_000), None));
    }

    #[test]
    fn rejects_bad_headers() {
        assert_eq!(
            parse(Bytes::from_static(&[0, 0, 2, 0xE0])),
            Err(PesError::StartCode)
        );
        assert_eq!(
            parse(Bytes::from_static(&[0, 0, 1, 0xE0, 0, 0, 0x80])),
            Err(PesError::Truncated)
        );
        assert_eq!(
            parse(Bytes::from_static(&[0, 0, 1, 0xE0, 0, 0, 0x80, 0x80, 10, 1, 2])),
            Err(PesError::Truncated)
        );
        let mut p = pes(0xE0, Some(1), None, b"", false);
        p[9] &= 0xFE;
        assert_eq!(parse(Bytes::from(p)), Err(PesError::Timestamp));
    }

    #[test]
    fn unwraps_across_the_33_bit_boundary() {
        let mut u = Unwrapper::default();
        assert_eq!(u.extend(WRAP as u64 - 3000), WRAP - 3000);
        assert_eq!(u.extend(100), WRAP + 100);
        // A B-frame's PTS before the wrap, after the DTS crossed it.
        assert_eq!(u.extend(WRAP as u64 - 10), WRAP - 10);
        assert_eq!(u.extend(3100), WRAP + 3100);
        // The next lap, in steps under half the period.
        assert_eq!(u.extend(WRAP as u64 / 2), WRAP + WRAP / 2);
        assert_eq!(u.extend(WRAP as u64 - 5), 2 * WRAP - 5);
        assert_eq!(u.extend(5), 2 * WRAP + 5);
    }

    #[test]
    fn assembles_bounded_and_unbounded_pes() {
        let mut a = PesAssembler::new(1000);
        let unbounded = pes(0xE0, Some(1), None, &[7; 300], false);
        assert_eq!(a.push(true, &unbounded[..184]), Pushed::default());
        assert_eq!(a.push(false, &unbounded[184..]), Pushed::default());
        let bounded = pes(0xE0, Some(2), None, &[8; 10], true);
        let mut padded = bounded.clone();
        padded.extend_from_slice(&[0xFF; 5]);
        // The next unit start completes the unbounded one; the bounded one is complete at
        // once, without its stuffing.
        let pushed = a.push(true, &padded);
        assert_eq!(
            pushed.complete,
            vec![Bytes::from(unbounded), Bytes::from(bounded)]
        );
        assert_eq!(a.buffered(), 0);
    }

    #[test]
    fn drops_over_the_cap_and_truncated() {
        let mut a = PesAssembler::new(100);
        let big = pes(0xE0, None, None, &[0; 200], false);
        assert_eq!(a.push(true, &big[..90]).dropped, 0);
        assert_eq!(a.push(false, &big[90..]).dropped, 1);
        assert_eq!(a.buffered(), 0);
        // Continuation bytes while idle are ignored until the next unit start.
        assert_eq!(a.push(false, &[1, 2, 3]), Pushed::default());
        let short = pes(0xC0, None, None, &[0; 50], true);
        assert_eq!(a.push(true, &short[..20]), Pushed::default());
        assert_eq!(a.push(true, &short[..20]).dropped, 1);
        assert!(a.reset());
        assert!(!a.reset());
        assert_eq!(a.push(true, &short[..20]), Pushed::default());
        assert_eq!(a.flush(), (None, true));
        let unbounded = pes(0xE0, None, None, &[1; 10], false);
        assert_eq!(a.push(true, &unbounded), Pushed::default());
        assert_eq!(a.flush(), (Some(Bytes::from(unbounded)), false));
        assert_eq!(a.flush(), (None, false));
    }
}
