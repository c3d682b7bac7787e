//! Program-specific information: the PAT and PMT sections that say which PIDs carry what.
//!
//! A section can start anywhere in a packet's payload (after the pointer field of a packet
//! with payload_unit_start_indicator), span several packets, and be followed by another
//! section or by 0xFF stuffing. [`SectionAssembler`] turns payloads back into whole sections,
//! and only sections whose CRC-32 checks reach [`parse_pat`] and [`parse_pmt`]: a corrupt PMT
//! would otherwise switch the demuxer onto garbage PIDs.

/// The longest PAT or PMT section (ISO 13818-1: section_length at most 1021, plus 3 header
/// bytes).
const MAX_SECTION: usize = 1024;

/// Why a section was not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PsiError {
    /// Shorter than its fixed fields, or its lengths point outside it.
    #[error("truncated or inconsistent section")]
    Truncated,
    /// The CRC-32 did not match.
    #[error("section CRC mismatch")]
    Crc,
    /// Not the table this PID carries.
    #[error("unexpected table id {0:#04x}")]
    TableId(u8),
    /// current_next_indicator is 0: the table is announced, not yet in force.
    #[error("section not yet applicable")]
    NotCurrent,
}

/// Reassembles sections of one PSI PID from packet payloads.
#[derive(Debug, Default)]
pub(crate) struct SectionAssembler {
    buf: Vec<u8>,
    /// A section is in progress (we saw its start); without one, payloads that continue a
    /// section are ignored.
    active: bool,
}

impl SectionAssembler {
    /// Take one packet's payload; returns the sections it completed.
    pub(crate) fn push(&mut self, unit_start: bool, payload: &[u8]) -> Vec<Vec<u8>> {
        let mut done = Vec::new();
        if unit_start {
            let Some((&pointer, rest)) = payload.split_first() else {
                self.reset();
                return done;
            };
            let pointer = usize::from(pointer);
            let Some((tail, start)) = rest.split_at_checked(pointer) else {
                self.reset();
                return done;
            };
            // The bytes before the pointer finish the section already in progress.
            if self.active {
                self.append(tail, &mut done);
            }
            self.buf.clear();
            self.active = true;
            self.append(start, &mut done);
        } else if self.active {
            self.append(payload, &mut done);
        }
        done
    }

    /// Forget a partial section (after a continuity gap).
    pub(crate) fn reset(&mut self) {
        self.buf.clear();
        self.active = false;
    }

    /// Bytes held for a partial section.
    pub(crate) fn buffered(&self) -> usize {
        self.buf.len()
    }

    fn append(&mut self, bytes: &[u8], done: &mut Vec<Vec<u8>>) {
        let mut bytes = bytes;
        while self.active && !bytes.is_empty() {
            // Take only up to the end of the current section, so what follows it (another
            // section, or stuffing) is looked at on its own.
            let want = match section_len(&self.buf) {
                Some(len) => len - self.buf.len(),
                None => 3 - self.buf.len().min(3),
            };
            let take = want.min(bytes.len()).max(1);
            self.buf.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.buf.first() == Some(&0xFF) {
                // Stuffing: nothing more in this packet.
                self.reset();
                return;
            }
            match section_len(&self.buf) {
                Some(len) if len > MAX_SECTION => self.reset(),
                Some(len) if self.buf.len() >= len => {
                    done.push(std::mem::take(&mut self.buf));
                }
                _ => {}
            }
        }
    }
}

/// The whole length of the section that `buf` starts, once its 3-byte header is there.
fn section_len(buf: &[u8]) -> Option<usize> {
    match buf {
        [_, hi, lo, ..] => Some(3 + (usize::from(hi & 0x0F) << 8 | usize::from(*lo))),
        _ => None,
    }
}

/// CRC-32/MPEG-2 (polynomial 0x04C11DB7, MSB first, no final xor). Over a whole section
/// including its CRC field it is 0. Sections are small and rare (a few per second), so the
/// bitwise form is fast enough.
pub(crate) fn crc32_mpeg2(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= u32::from(b) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04C1_1DB7
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// Checks the long-form section header and CRC; returns the bytes between the 8-byte header
/// and the CRC.
fn section_body(section: &[u8], table_id: u8) -> Result<&[u8], PsiError> {
    let len = section_len(section).ok_or(PsiError::Truncated)?;
    // 5 more header bytes after the 3, and the 4-byte CRC.
    if len < 12 || section.len() < len {
        return Err(PsiError::Truncated);
    }
    let section = &section[..len];
    if crc32_mpeg2(section) != 0 {
        return Err(PsiError::Crc);
    }
    if section[0] != table_id {
        return Err(PsiError::TableId(section[0]));
    }
    if section[5] & 0x01 == 0 {
        return Err(PsiError::NotCurrent);
    }
    Ok(&section[8..len - 4])
}

fn pid_of(hi: u8, lo: u8) -> u16 {
    u16::from(hi & 0x1F) << 8 | u16::from(lo)
}

/// The PMT PID of the first program in a PAT (program number 0 names the network PID, not a
/// program).
pub(crate) fn parse_pat(section: &[u8]) -> Result<Option<u16>, PsiError> {
    let body = section_body(section, 0x00)?;
    Ok(body
        .chunks_exact(4)
        .find(|e| u16::from_be_bytes([e[0], e[1]]) != 0)
        .map(|e| pid_of(e[2], e[3])))
}

/// What an elementary stream carries, as far as this demuxer cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EsKind {
    /// H.264 (stream_type 0x1B).
    H264,
    /// AAC in ADTS (stream_type 0x0F).
    AdtsAac,
    /// Opus (stream_type 0x06, registration descriptor "Opus").
    Opus {
        /// From the Opus extension descriptor's channel_config_code; 2 when absent.
        channels: u8,
    },
}

/// One elementary stream of a PMT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EsInfo {
    /// Its PID.
    pub(crate) pid: u16,
    /// What it carries.
    pub(crate) kind: EsKind,
}

/// The streams of a program this demuxer can use: the first H.264 stream and the first
/// supported audio stream. Other streams (subtitles, SCTE-35, a second audio language) are
/// ignored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ProgramMap {
    /// The video stream.
    pub(crate) video: Option<EsInfo>,
    /// The audio stream.
    pub(crate) audio: Option<EsInfo>,
}

/// Parses a PMT section.
pub(crate) fn parse_pmt(section: &[u8]) -> Result<ProgramMap, PsiError> {
    let body = section_body(section, 0x02)?;
    let [_pcr_hi, _pcr_lo, info_hi, info_lo, rest @ ..] = body else {
        return Err(PsiError::Truncated);
    };
    let program_info_len = usize::from(info_hi & 0x0F) << 8 | usize::from(*info_lo);
    let mut es = rest.get(program_info_len..).ok_or(PsiError::Truncated)?;
    let mut map = ProgramMap::default();
    while let [stream_type, pid_hi, pid_lo, len_hi, len_lo, rest @ ..] = es {
        let info_len = usize::from(len_hi & 0x0F) << 8 | usize::from(*len_lo);
        let (descriptors, next) = rest.split_at_checked(info_len).ok_or(PsiError::Truncated)?;
        es = next;
        let pid = pid_of(*pid_hi, *pid_lo);
        let kind = match stream_type {
            0x1B => Some(EsKind::H264),
            0x0F => Some(EsKind::AdtsAac),
            0x06 => opus_descriptor(descriptors).map(|channels| EsKind::Opus { channels }),
            _ => None,
        };
        match kind {
            Some(kind @ EsKind::H264) if map.video.is_none() => map.video = Some(EsInfo { pid, kind }),
            Some(kind @ (EsKind::AdtsAac | EsKind::Opus { .. })) if map.audio.is_none() => {
                map.audio = Some(EsInfo { pid, kind })
            }
            _ => {}
        }
    }
    Ok(map)
}

/// For a private-data stream (0x06): its Opus channel count when a registration descriptor
/// (tag 0x05) says "Opus", else `None`. The channel count comes from the DVB extension
/// descriptor (tag 0x7F) with the provisional Opus extension tag 0x80: channel_config_code
/// 1..=8 is the channel count, 0 is dual mono (2 channels), and the codes for explicit
/// mappings (0x80 and up) are read as 2 since [`crate::AudioCodec::Opus`] has no mapping.
fn opus_descriptor(mut descriptors: &[u8]) -> Option<u8> {
    let mut is_opus = false;
    let mut channels = None;
    while let [tag, len, rest @ ..] = descriptors {
        let (body, next) = rest.split_at_checked(usize::from(*len))?;
        descriptors = next;
        match (tag, body) {
            (0x05, [b'O', b'p', b'u', b's', ..]) => is_opus = true,
            (0x7F, [0x80, code, ..]) => {
                channels = Some(match code {
                    1..=8 => *code,
                    _ => 2,
                })
            }
            _ => {}
        }
    }
    is_opus.then_some(channels.unwrap_or(2))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Wraps a section body (after the 8-byte header) into a section with a valid CRC.
    pub(crate) fn section(table_id: u8, id: u16, body: &[u8]) -> Vec<u8> {
        let len = 5 + body.len() + 4;
        let mut s = vec![table_id, 0xB0 | (len >> 8) as u8, len as u8];
        s.extend_from_slice(&id.to_be_bytes());
        s.extend_from_slice(&[0xC1, 0x00, 0x00]);
        s.extend_from_slice(body);
        let crc = crc32_mpeg2(&s);
        s.extend_from_slice(&crc.to_be_bytes());
        s
    }

    #[test]
    fn crc_of_a_section_with_its_crc_is_zero() {
        let s = section(0, 1, &[0x00, 0x01, 0xF0, 0x00]);
        assert_eq!(crc32_mpeg2(&s), 0);
        // The PAT ffmpeg writes (program 1, PMT PID 0x1000) has this well-known CRC.
        let ffmpeg_pat = [
            0x00, 0xB0, 0x0D, 0x00, 0x01, 0xC1, 0x00, 0x00, 0x00, 0x01, 0xF0, 0x00,
        ];
        assert_eq!(crc32_mpeg2(&ffmpeg_pat), 0x2AB1_04B2);
    }

    #[test]
    fn pat_skips_the_network_pid() {
        let s = section(0, 1, &[0x00, 0x00, 0xE0, 0x10, 0x00, 0x07, 0xE1, 0x00]);
        assert_eq!(parse_pat(&s), Ok(Some(0x100)));
        let mut bad = s.clone();
        bad[9] ^= 1;
        assert_eq!(parse_pat(&bad), Err(PsiError::Crc));
        assert_eq!(parse_pat(&s[..10]), Err(PsiError::Truncated));
    }

    #[test]
    fn pmt_finds_video_and_opus() {
        let body = [
            0xE1, 0x00, 0xF0, 0x00, // PCR PID, no program descriptors
            0x1B, 0xE1, 0x00, 0xF0, 0x00, // H.264 on 0x100
            0x06, 0xE1, 0x01, 0xF0, 0x0A, // private data on 0x101, 10 bytes of descriptors
            0x05, 0x04, b'O', b'p', b'u', b's', 0x7F, 0x02, 0x80, 0x01, // Opus, mono
            0x0F, 0xE1, 0x02, 0xF0, 0x00, // a second audio stream (AAC), ignored
        ];
        let map = parse_pmt(&section(2, 1, &body)).expect("valid PMT");
        assert_eq!(
            map.video,
            Some(EsInfo {
                pid: 0x100,
                kind: EsKind::H264
            })
        );
        assert_eq!(
            map.audio,
            Some(EsInfo {
                pid: 0x101,
                kind: EsKind::Opus { channels: 1 }
            })
        );
    }

    #[test]
    fn private_data_without_opus_registration_is_ignored() {
        let body = [0xE1, 0x00, 0xF0, 0x00, 0x06, 0xE1, 0x01, 0xF0, 0x00];
        assert_eq!(parse_pmt(&section(2, 1, &body)), Ok(ProgramMap::default()));
    }

    #[test]
    fn assembler_handles_split_sections_pointer_and_stuffing() {
        let s = section(0, 1, &[0x00, 0x01, 0xE1, 0x00]);
        let mut a = SectionAssembler::default();
        // Start with a pointer to skip 2 bytes of an earlier section we never saw.
        let mut first = vec![2, 0xAA, 0xBB];
        first.extend_from_slice(&s[..5]);
        assert!(a.push(true, &first).is_empty());
        let mut second = s[5..].to_vec();
        second.extend_from_slice(&[0xFF; 20]);
        assert_eq!(a.push(false, &second), vec![s.clone()]);
        // Two sections in one payload.
        let mut both = vec![0];
        both.extend_from_slice(&s);
        both.extend_from_slice(&s);
        assert_eq!(a.push(true, &both), vec![s.clone(), s.clone()]);
        // A pointer past the end of the payload is garbage, not a panic.
        assert!(a.push(true, &[200, 1, 2]).is_empty());
        assert_eq!(a.buffered(), 0);
    }
}
