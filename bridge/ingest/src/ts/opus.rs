//! Opus in MPEG-TS: the access units of a private-data stream registered as "Opus".
//!
//! Each Opus packet in a PES is preceded by a control header (the layout ffmpeg writes and
//! reads, from the provisional ETSI Opus-in-TS draft): an 11-bit prefix 0x3FF, flags for
//! start trim, end trim and a control extension, the packet size as a run of 0xFF bytes plus
//! a last byte under 0xFF, then the optional fields the flags announce. The PES's PTS is the
//! first packet's; each later packet follows the previous by its duration, read from its TOC
//! byte (RFC 6716, 3.1).

use bytes::Bytes;

use crate::frame::{AudioCodec, AudioFrame, Frame, Ticks};

/// Why bytes were not an Opus access unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum OpusError {
    /// The control header prefix is not 0x3FF.
    #[error("no Opus control header")]
    Prefix,
    /// The header or the packet runs past the PES.
    #[error("Opus access unit truncated")]
    Truncated,
}

/// One access unit: the Opus packet and the bytes it used.
struct AccessUnit<'a> {
    packet: &'a [u8],
    len: usize,
}

fn access_unit(b: &[u8]) -> Result<AccessUnit<'_>, OpusError> {
    let [b0, b1, ..] = *b else {
        return Err(OpusError::Truncated);
    };
    if u16::from_be_bytes([b0, b1]) & 0xFFE0 != 0x7FE0 {
        return Err(OpusError::Prefix);
    }
    let mut pos = 2;
    let mut size = 0usize;
    loop {
        let byte = *b.get(pos).ok_or(OpusError::Truncated)?;
        pos += 1;
        size += usize::from(byte);
        if byte != 0xFF {
            break;
        }
    }
    // Trim values are for a decoder's output; the packets themselves are passed on whole.
    if b1 & 0x10 != 0 {
        pos += 2;
    }
    if b1 & 0x08 != 0 {
        pos += 2;
    }
    if b1 & 0x04 != 0 {
        pos += 1 + usize::from(*b.get(pos).ok_or(OpusError::Truncated)?);
    }
    let end = pos.checked_add(size).ok_or(OpusError::Truncated)?;
    let packet = b.get(pos..end).ok_or(OpusError::Truncated)?;
    Ok(AccessUnit { packet, len: end })
}

/// The duration of an Opus packet in 48 kHz samples, from its TOC byte and frame count;
/// 0 for an empty or malformed packet.
pub(crate) fn packet_samples(packet: &[u8]) -> u64 {
    let Some(&toc) = packet.first() else {
        return 0;
    };
    let config = toc >> 3;
    let frame = match config {
        0..=11 => [480, 960, 1920, 2880][usize::from(config & 3)],
        12..=15 => [480, 960][usize::from(config & 1)],
        _ => [120, 240, 480, 960][usize::from(config & 3)],
    };
    let frames = match toc & 3 {
        0 => 1,
        1 | 2 => 2,
        _ => packet.get(1).map_or(0, |b| u64::from(b & 0x3F)),
    };
    frame * frames
}

/// The Opus stream of one PID.
#[derive(Debug)]
pub(crate) struct OpusTrack {
    channels: u8,
    config_sent: bool,
    /// The last PTS and the 48 kHz samples since.
    clock: Option<(Ticks, u64)>,
}

impl OpusTrack {
    /// A track with the channel count of its PMT descriptor.
    pub(crate) fn new(channels: u8) -> Self {
        OpusTrack {
            channels,
            config_sent: false,
            clock: None,
        }
    }

    /// Takes one PES payload; returns whether it was malformed (the packets before the fault
    /// are still sent).
    pub(crate) fn push(&mut self, pts: Option<Ticks>, data: &Bytes, out: &mut Vec<Frame>) -> bool {
        if let Some(pts) = pts {
            self.clock = Some((pts, 0));
        }
        let mut pos = 0;
        while pos < data.len() {
            let unit = match access_unit(&data[pos..]) {
                Ok(unit) => unit,
                Err(_) => return true,
            };
            let start = pos + unit.len - unit.packet.len();
            pos += unit.len;
            let Some((base, samples)) = self.clock.as_mut() else {
                continue;
            };
            if unit.packet.is_empty() {
                continue;
            }
            if !self.config_sent {
                self.config_sent = true;
                out.push(Frame::AudioConfig(AudioCodec::Opus {
                    channels: self.channels,
                }));
            }
            // 90 kHz / 48 kHz = 15 / 8.
            let offset = i64::try_from(*samples * 15 / 8).unwrap_or(i64::MAX);
            out.push(Frame::Audio(AudioFrame {
                pts: base.saturating_add(offset),
                data: data.slice(start..start + unit.packet.len()),
            }));
            *samples += packet_samples(unit.packet);
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(packet: &[u8], flags: u8, extra: &[u8]) -> Vec<u8> {
        let mut u = vec![0x7F, 0xE0 | flags];
        let mut n = packet.len();
        while n >= 255 {
            u.push(0xFF);
            n -= 255;
        }
        u.push(n as u8);
        u.extend_from_slice(extra);
        u.extend_from_slice(packet);
        u
    }

    #[test]
    fn durations_from_the_toc() {
        // CELT 20 ms, one frame.
        assert_eq!(packet_samples(&[0xF8, 0]), 960);
        // SILK 60 ms.
        assert_eq!(packet_samples(&[0x18]), 2880);
        // CELT 2.5 ms, code 3 with 4 frames.
        assert_eq!(packet_samples(&[0x83, 0x04]), 480);
        // Hybrid 20 ms, two frames.
        assert_eq!(packet_samples(&[0x69]), 1920);
        assert_eq!(packet_samples(&[]), 0);
    }

    #[test]
    fn splits_units_with_sizes_trims_and_extensions() {
        let big = vec![0xF8; 300];
        let mut data = unit(&big, 0, &[]);
        data.extend(unit(&[0xF8, 1, 2], 0x10 | 0x08 | 0x04, &[0, 10, 0, 20, 2, 9, 9]));
        let mut track = OpusTrack::new(2);
        let mut out = Vec::new();
        assert!(!track.push(Some(900), &Bytes::from(data), &mut out));
        assert_eq!(out.len(), 3);
        assert_eq!(out[0], Frame::AudioConfig(AudioCodec::Opus { channels: 2 }));
        assert_eq!(
            out[1],
            Frame::Audio(AudioFrame {
                pts: 900,
                data: Bytes::from(big)
            })
        );
        assert_eq!(
            out[2],
            Frame::Audio(AudioFrame {
                pts: 900 + 1800,
                data: Bytes::from_static(&[0xF8, 1, 2])
            })
        );
    }

    #[test]
    fn malformed_units_stop_the_pes_without_panicking() {
        let mut track = OpusTrack::new(1);
        let mut out = Vec::new();
        let mut data = unit(&[0xF8], 0, &[]);
        data.extend([0x7F, 0xE0, 0xFF, 0xFF]);
        assert!(track.push(Some(0), &Bytes::from(data), &mut out));
        assert_eq!(out.len(), 2);
        assert!(track.push(None, &Bytes::from_static(&[0x12, 0x34]), &mut out));
        assert!(track.push(None, &Bytes::from_static(&[0x7F, 0xF4, 0x05]), &mut out));
    }
}
