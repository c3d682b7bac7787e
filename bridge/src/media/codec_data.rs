//! Decoder configuration from the encoders' caps: SPS/PPS out of `avcC`, the AAC
//! AudioSpecificConfig as it is.

use bytes::Bytes;

/// Parameter sets carried in an `AVCDecoderConfigurationRecord` (ISO/IEC 14496-15 5.3.3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvcConfig {
    /// AVC profile indication (66 baseline, 77 main, 100 high).
    pub profile: u8,
    /// Level indication times ten (31 = level 3.1).
    pub level: u8,
    /// Sequence parameter sets.
    pub sps: Vec<Bytes>,
    /// Picture parameter sets.
    pub pps: Vec<Bytes>,
}

/// Parses an `avcC` record whose samples use 4-byte NAL length prefixes, the only kind the
/// packager takes. Returns a reason when the record is malformed or uses another length size.
pub fn parse_avcc(avcc: &[u8]) -> Result<AvcConfig, String> {
    let mut r = Reader { data: avcc, pos: 0 };
    let version = r.u8()?;
    if version != 1 {
        return Err(format!("avcC version {version}"));
    }
    let profile = r.u8()?;
    let _compatibility = r.u8()?;
    let level = r.u8()?;
    let length_size = (r.u8()? & 0x03) + 1;
    if length_size != 4 {
        return Err(format!("NAL length size {length_size}, expected 4"));
    }
    let sps_count = r.u8()? & 0x1f;
    let sps = (0..sps_count).map(|_| r.nal()).collect::<Result<Vec<_>, _>>()?;
    let pps_count = r.u8()?;
    let pps = (0..pps_count).map(|_| r.nal()).collect::<Result<Vec<_>, _>>()?;
    if sps.is_empty() || pps.is_empty() {
        return Err(format!("{} SPS and {} PPS", sps.len(), pps.len()));
    }
    Ok(AvcConfig {
        profile,
        level,
        sps,
        pps,
    })
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn u8(&mut self) -> Result<u8, String> {
        let b = *self.data.get(self.pos).ok_or("avcC truncated")?;
        self.pos += 1;
        Ok(b)
    }

    fn nal(&mut self) -> Result<Bytes, String> {
        let len = usize::from(self.u8()?) << 8 | usize::from(self.u8()?);
        let nal = self
            .data
            .get(self.pos..self.pos + len)
            .ok_or("avcC parameter set truncated")?;
        self.pos += len;
        if nal.is_empty() {
            return Err("empty parameter set".into());
        }
        Ok(Bytes::copy_from_slice(nal))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An avcC as x264 + h264parse write it for main profile, level 3.1.
    const AVCC: &[u8] = &[
        0x01, 0x4d, 0x40, 0x1f, 0xff, 0xe1, 0x00, 0x05, 0x67, 0x4d, 0x40, 0x1f, 0xe8, 0x01, 0x00, 0x04, 0x68,
        0xeb, 0xef, 0x20,
    ];

    #[test]
    fn parses_parameter_sets() {
        let c = parse_avcc(AVCC).expect("valid record");
        assert_eq!((c.profile, c.level), (0x4d, 0x1f));
        assert_eq!(c.sps, vec![Bytes::from_static(&[0x67, 0x4d, 0x40, 0x1f, 0xe8])]);
        assert_eq!(c.pps, vec![Bytes::from_static(&[0x68, 0xeb, 0xef, 0x20])]);
    }

    #[test]
    fn rejects_truncated_and_short_length_records() {
        assert!(parse_avcc(&AVCC[..10]).is_err());
        assert!(parse_avcc(&[]).is_err());
        let mut two_byte_lengths = AVCC.to_vec();
        two_byte_lengths[4] = 0xfd;
        assert!(parse_avcc(&two_byte_lengths).is_err());
    }
}
