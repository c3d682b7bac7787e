//! AAC in ADTS: splitting PES payloads into raw AAC frames with their times and config.
//!
//! Each ADTS frame is a 7-byte header (9 with a CRC) and one raw AAC frame of 1024 samples.
//! A PES usually holds several, and its PTS belongs to the first frame that starts in it;
//! the others are 1024 samples apart. Some muxers let a frame run on into the next PES, so
//! the tail of one PES is kept and finished by the next. The header also gives the
//! AudioSpecificConfig that a decoder needs out of band: object type, sample rate index and
//! channel configuration, the 2 bytes of ISO 14496-3 1.6.2.1.

use bytes::Bytes;

use crate::frame::{AudioCodec, AudioFrame, Frame, TICKS_PER_SECOND, Ticks};

/// The sample rates of the sampling_frequency_index (ISO 14496-3 table 1.18); 13 and 14 are
/// reserved and 15 (explicit rate) cannot appear in ADTS.
const SAMPLE_RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

/// Samples in one AAC frame (the 960-sample variant is not signalled in ADTS).
const SAMPLES_PER_FRAME: u64 = 1024;

/// Why bytes were not an ADTS frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AdtsError {
    /// No 0xFFF syncword, or layer not 0.
    #[error("no ADTS sync")]
    Sync,
    /// A reserved sampling frequency index.
    #[error("bad sampling frequency index {0}")]
    SampleRate(u8),
    /// frame_length shorter than the header.
    #[error("bad ADTS frame length {0}")]
    Length(usize),
}

/// The fields of an ADTS header this demuxer uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AdtsHeader {
    /// MPEG-4 audio object type minus one (1 is AAC-LC).
    pub(crate) profile: u8,
    /// Index into the sample rate table.
    pub(crate) rate_index: u8,
    /// Channel configuration (0: defined by a PCE in the stream).
    pub(crate) channels: u8,
    /// 7, or 9 with a CRC.
    pub(crate) header_len: usize,
    /// The whole frame, header included.
    pub(crate) frame_len: usize,
    /// number_of_raw_data_blocks_in_frame: frames that hold more than one AAC frame (a
    /// value above 0) are not split, because without a CRC their block boundaries are
    /// unknown; encoders for live streaming write one.
    pub(crate) extra_blocks: u8,
}

impl AdtsHeader {
    /// Parses the header at the start of `b` (at least 7 bytes).
    pub(crate) fn parse(b: &[u8]) -> Result<Self, AdtsError> {
        let [0xFF, b1, b2, b3, b4, b5, b6, ..] = *b else {
            return Err(AdtsError::Sync);
        };
        if b1 & 0xF6 != 0xF0 {
            return Err(AdtsError::Sync);
        }
        let rate_index = b2 >> 2 & 0x0F;
        if usize::from(rate_index) >= SAMPLE_RATES.len() {
            return Err(AdtsError::SampleRate(rate_index));
        }
        let header_len = if b1 & 0x01 == 1 { 7 } else { 9 };
        let frame_len = usize::from(b3 & 0x03) << 11 | usize::from(b4) << 3 | usize::from(b5 >> 5);
        if frame_len <= header_len {
            return Err(AdtsError::Length(frame_len));
        }
        Ok(AdtsHeader {
            profile: b2 >> 6,
            rate_index,
            channels: (b2 & 0x01) << 2 | b3 >> 6,
            header_len,
            frame_len,
            extra_blocks: b6 & 0x03,
        })
    }

    /// The 2-byte AudioSpecificConfig: 5 bits object type, 4 bits sample rate index, 4 bits
    /// channel configuration, then frameLengthFlag, dependsOnCoreCoder and extensionFlag, all 0.
    pub(crate) fn audio_specific_config(&self) -> [u8; 2] {
        let object_type = self.profile + 1;
        [
            object_type << 3 | self.rate_index >> 1,
            (self.rate_index & 1) << 7 | self.channels << 3,
        ]
    }

    fn sample_rate(&self) -> u32 {
        SAMPLE_RATES[usize::from(self.rate_index)]
    }
}

/// Where the next frame's time comes from: a PTS and the samples since it.
#[derive(Debug, Clone, Copy)]
struct Clock {
    base: Ticks,
    samples: u64,
    rate: u32,
}

impl Clock {
    // Counting samples from the last PTS instead of adding a rounded tick step per frame
    // keeps 44.1 kHz (2089.8 ticks per frame) from drifting.
    fn now(&self) -> Ticks {
        let offset = self.samples.saturating_mul(TICKS_PER_SECOND as u64) / u64::from(self.rate);
        self.base
            .saturating_add(i64::try_from(offset).unwrap_or(i64::MAX))
    }
}

/// The ADTS stream of one PID.
#[derive(Debug, Default)]
pub(crate) struct AdtsTrack {
    /// The start of a frame that the last PES did not finish.
    carry: Vec<u8>,
    clock: Option<Clock>,
    /// The AudioSpecificConfig last sent.
    config: Option<[u8; 2]>,
}

impl AdtsTrack {
    /// Takes one PES payload; returns how many times sync was lost or a frame skipped.
    pub(crate) fn push(&mut self, pts: Option<Ticks>, data: &[u8], out: &mut Vec<Frame>) -> u64 {
        let new_from = self.carry.len();
        self.carry.extend_from_slice(data);
        let mut pts = pts;
        let mut errors = 0;
        let mut in_sync = true;
        let mut pos = 0;
        while let Some(rest) = self.carry.get(pos..)
            && rest.len() >= 7
        {
            let header = match AdtsHeader::parse(rest) {
                Ok(header)
                    // While hunting for sync, a header in garbage may be a false one: the
                    // next frame must follow it, unless it ends the data.
                    if in_sync
                        || rest.len() <= header.frame_len
                        || AdtsHeader::parse(&rest[header.frame_len..]).is_ok()
                        || rest.len() < header.frame_len + 7 =>
                {
                    header
                }
                _ => {
                    if in_sync {
                        errors += 1;
                        in_sync = false;
                    }
                    pos += 1;
                    continue;
                }
            };
            if rest.len() < header.frame_len {
                break;
            }
            in_sync = true;
            // The PES's PTS is the time of the first frame that starts in it.
            if pos >= new_from
                && let Some(pts) = pts.take()
            {
                self.clock = Some(Clock {
                    base: pts,
                    samples: 0,
                    rate: header.sample_rate(),
                });
            }
            let frame = &rest[header.header_len..header.frame_len];
            pos += header.frame_len;
            if header.extra_blocks > 0 {
                errors += 1;
                continue;
            }
            let Some(clock) = self.clock.as_mut() else {
                // No time yet (the stream started without a PTS): nothing to place it at.
                continue;
            };
            if clock.rate != header.sample_rate() {
                *clock = Clock {
                    base: clock.now(),
                    samples: 0,
                    rate: header.sample_rate(),
                };
            }
            let config = header.audio_specific_config();
            if self.config != Some(config) {
                self.config = Some(config);
                out.push(Frame::AudioConfig(AudioCodec::Aac {
                    config: Bytes::copy_from_slice(&config),
                }));
            }
            out.push(Frame::Audio(AudioFrame {
                pts: clock.now(),
                data: Bytes::copy_from_slice(frame),
            }));
            clock.samples += SAMPLES_PER_FRAME;
        }
        self.carry.drain(..pos.min(self.carry.len()));
        errors
    }

    /// Forget a partial frame (after a continuity gap).
    pub(crate) fn reset(&mut self) {
        self.carry.clear();
    }

    /// Bytes held for a partial frame.
    pub(crate) fn buffered(&self) -> usize {
        self.carry.len()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An ADTS frame: AAC-LC, the given rate index, stereo, no CRC.
    pub(crate) fn adts(rate_index: u8, payload: &[u8]) -> Vec<u8> {
        let len = 7 + payload.len();
        let mut f = vec![
            0xFF,
            0xF1,
            0x40 | rate_index << 2,
            0x80 | (len >> 11) as u8,
            (len >> 3) as u8,
            ((len & 7) << 5) as u8 | 0x1F,
            0xFC,
        ];
        f.extend_from_slice(payload);
        f
    }

    fn audio(frames: &[Frame]) -> Vec<(Ticks, Vec<u8>)> {
        frames
            .iter()
            .filter_map(|f| match f {
                Frame::Audio(a) => Some((a.pts, a.data.to_vec())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn config_for_aac_lc_48k_stereo() {
        let h = AdtsHeader::parse(&adts(3, &[1, 2, 3])).expect("valid header");
        assert_eq!((h.profile, h.rate_index, h.channels, h.frame_len), (1, 3, 2, 10));
        // The well-known AAC-LC 48 kHz stereo config.
        assert_eq!(h.audio_specific_config(), [0x11, 0x90]);
        let h44 = AdtsHeader::parse(&adts(4, &[1])).expect("valid header");
        assert_eq!(h44.audio_specific_config(), [0x12, 0x10]);
    }

    #[test]
    fn several_frames_per_pes_get_sample_accurate_times() {
        let mut data = adts(4, b"one");
        data.extend(adts(4, b"two"));
        data.extend(adts(4, b"three"));
        let mut track = AdtsTrack::default();
        let mut out = Vec::new();
        assert_eq!(track.push(Some(1000), &data, &mut out), 0);
        assert_eq!(
            out[0],
            Frame::AudioConfig(AudioCodec::Aac {
                config: Bytes::from_static(&[0x12, 0x10])
            })
        );
        // 1024 samples at 44.1 kHz = 2089.79 ticks; 2048 = 4179.59.
        assert_eq!(
            audio(&out),
            vec![
                (1000, b"one".to_vec()),
                (3089, b"two".to_vec()),
                (5179, b"three".to_vec())
            ]
        );
    }

    #[test]
    fn a_frame_split_across_pes_keeps_its_time() {
        let mut data = adts(3, b"first");
        data.extend(adts(3, b"second"));
        let mut track = AdtsTrack::default();
        let mut out = Vec::new();
        track.push(Some(0), &data[..15], &mut out);
        assert_eq!(audio(&out), vec![(0, b"first".to_vec())]);
        assert_eq!(track.buffered(), 3);
        // The next PES's PTS belongs to the frame that starts in it, not the finished one.
        let mut next = data[15..].to_vec();
        next.extend(adts(3, b"third"));
        out.clear();
        track.push(Some(10_000), &next, &mut out);
        assert_eq!(
            audio(&out),
            vec![(1920, b"second".to_vec()), (10_000, b"third".to_vec())]
        );
    }

    #[test]
    fn garbage_before_and_between_frames_is_skipped() {
        let mut data = vec![0x12, 0xFF, 0x00, 0x34, 0x56];
        // A header that claims a 16-byte frame, not followed by another header: a false sync.
        data.extend([0xFF, 0xF1, 0x4C, 0x80, 0x02, 0x1F, 0xFC]);
        data.extend(adts(3, b"a"));
        data.extend(adts(3, b"b"));
        data.extend([0xAB; 9]);
        data.extend(adts(3, b"c"));
        let mut track = AdtsTrack::default();
        let mut out = Vec::new();
        assert_eq!(track.push(Some(0), &data, &mut out), 2);
        assert_eq!(
            audio(&out),
            vec![(0, b"a".to_vec()), (1920, b"b".to_vec()), (3840, b"c".to_vec())]
        );
    }

    #[test]
    fn config_is_sent_again_on_a_change() {
        let mut track = AdtsTrack::default();
        let mut out = Vec::new();
        track.push(Some(0), &adts(3, b"a"), &mut out);
        track.push(Some(1920), &adts(3, b"b"), &mut out);
        track.push(Some(3840), &adts(4, b"c"), &mut out);
        let configs: Vec<_> = out
            .iter()
            .filter(|f| matches!(f, Frame::AudioConfig(_)))
            .collect();
        assert_eq!(configs.len(), 2);
    }
}
