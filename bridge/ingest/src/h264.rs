//! H.264 bitstream reading for the ingest protocols: the three ways NAL units arrive, and the
//! few facts of a sequence parameter set that the rest of the server decides on.
//!
//! NAL units reach us in three framings: the AVCDecoderConfigurationRecord (`avcC`, ISO
//! 14496-15) that RTMP and MP4 carry the parameter sets in; AVCC access units, where each NAL
//! unit is prefixed by its big-endian length (1, 2 or 4 bytes, as the record says); and the
//! Annex B byte stream of MPEG-TS and raw `.h264` files, where `00 00 01` start codes separate
//! them. Every function here returns NAL units as [`Bytes`] slices of the input (no copies),
//! without start codes or length prefixes, and is pure: bad input is an [`H264Error`], never a
//! panic, and the output never holds more NAL units than the input has bytes.
//!
//! [`parse_sps`] reads what a publisher's stream must be checked for (profile, level, size,
//! whether frames are reordered); it is not a decoder and skips what it does not need.

use bytes::Bytes;

use crate::frame::VideoConfig;

/// NAL unit type of a coded slice of a non-IDR picture.
pub const NAL_SLICE: u8 = 1;
/// NAL unit type of a coded slice of an IDR picture: a decoder can start here.
pub const NAL_IDR: u8 = 5;
/// NAL unit type of supplemental enhancement information.
pub const NAL_SEI: u8 = 6;
/// NAL unit type of a sequence parameter set.
pub const NAL_SPS: u8 = 7;
/// NAL unit type of a picture parameter set.
pub const NAL_PPS: u8 = 8;
/// NAL unit type of an access unit delimiter.
pub const NAL_AUD: u8 = 9;
/// NAL unit type of filler data.
pub const NAL_FILLER: u8 = 12;

/// Why H.264 data could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum H264Error {
    /// The data ends before a field it announces.
    #[error("{0} is truncated")]
    Truncated(&'static str),
    /// An AVCDecoderConfigurationRecord of a version other than 1.
    #[error("AVCDecoderConfigurationRecord version {0}, expected 1")]
    BadConfigVersion(u8),
    /// A NAL length prefix size other than 1 to 4 bytes.
    #[error("NAL length prefix of {0} bytes, expected 1 to 4")]
    BadLengthSize(u8),
    /// A length prefix announces more bytes than are left.
    #[error("a NAL unit of {len} bytes runs past the end of the {left} bytes left")]
    NalPastEnd {
        /// The announced length.
        len: usize,
        /// The bytes left after the prefix.
        left: usize,
    },
    /// [`parse_sps`] was given another kind of NAL unit.
    #[error("NAL unit type {0} is not a sequence parameter set")]
    NotSps(u8),
    /// An exp-Golomb code with more than 31 leading zero bits (no field needs one).
    #[error("exp-Golomb code longer than 32 bits")]
    ExpGolombTooLong,
    /// A field outside the range H.264 allows.
    #[error("SPS field {field} out of range: {value}")]
    OutOfRange {
        /// The syntax element's name in H.264.
        field: &'static str,
        /// Its value.
        value: u64,
    },
}

/// The type of a NAL unit (its header's low five bits); `None` for an empty slice.
pub fn nal_unit_type(nal: &[u8]) -> Option<u8> {
    nal.first().map(|header| header & 0x1f)
}

/// True when the access unit holds a slice of an IDR picture.
pub fn contains_idr(nalus: &[Bytes]) -> bool {
    nalus.iter().any(|nal| nal_unit_type(nal) == Some(NAL_IDR))
}

/// A parsed AVCDecoderConfigurationRecord.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvcDecoderConfig {
    /// Its parameter sets.
    pub config: VideoConfig,
    /// The size of the NAL length prefixes of the access units that follow (1 to 4).
    pub nal_length_size: u8,
}

/// Parse an AVCDecoderConfigurationRecord (ISO 14496-15 5.3.3.1). The High-profile extension
/// after the PPS list (chroma format, bit depths) is ignored: the SPS says the same.
pub fn parse_avcc(record: &Bytes) -> Result<AvcDecoderConfig, H264Error> {
    let mut cursor = Cursor::new(record);
    let version = cursor.u8("avcC header")?;
    if version != 1 {
        return Err(H264Error::BadConfigVersion(version));
    }
    // Profile, compatibility and level repeat the first SPS's bytes 1..4.
    cursor.take(3, "avcC header")?;
    // lengthSizeMinusOne is two bits, so the size is always 1 to 4. The standard forbids 3
    // bytes, but a 3-byte prefix splits just as well, so it is accepted like decoders do.
    let nal_length_size = (cursor.u8("avcC header")? & 0x03) + 1;
    let sps_count = cursor.u8("avcC SPS count")? & 0x1f;
    let mut config = VideoConfig::default();
    for _ in 0..sps_count {
        let len = usize::from(cursor.u16("avcC SPS length")?);
        let sps = cursor.take(len, "avcC SPS")?;
        if !sps.is_empty() {
            config.sps.push(sps);
        }
    }
    let pps_count = cursor.u8("avcC PPS count")?;
    for _ in 0..pps_count {
        let len = usize::from(cursor.u16("avcC PPS length")?);
        let pps = cursor.take(len, "avcC PPS")?;
        if !pps.is_empty() {
            config.pps.push(pps);
        }
    }
    Ok(AvcDecoderConfig {
        config,
        nal_length_size,
    })
}

/// Split an AVCC access unit (each NAL unit prefixed by its big-endian length of
/// `length_size` bytes) into its NAL units. Zero-length units are skipped; a length that
/// runs past the end is an error, since the unit it cut off would be decoded as garbage.
pub fn split_avcc(data: &Bytes, length_size: u8) -> Result<Vec<Bytes>, H264Error> {
    if !(1..=4).contains(&length_size) {
        return Err(H264Error::BadLengthSize(length_size));
    }
    let prefix = usize::from(length_size);
    let mut nalus = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let Some(len_bytes) = data.get(pos..pos + prefix) else {
            return Err(H264Error::Truncated("NAL length prefix"));
        };
        let len = len_bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        pos += prefix;
        let left = data.len() - pos;
        if len > left {
            return Err(H264Error::NalPastEnd { len, left });
        }
        if len > 0 {
            nalus.push(data.slice(pos..pos + len));
        }
        pos += len;
    }
    Ok(nalus)
}

/// Split an Annex B byte stream (H.264 Annex B: NAL units after `00 00 01` or `00 00 00 01`
/// start codes) into NAL units. Bytes before the first start code are not a NAL unit and are
/// dropped; so are the zero bytes before each start code (a 4-byte start code's first byte,
/// or `trailing_zero_8bits`), which a NAL unit cannot end with.
pub fn split_annex_b(data: &Bytes) -> Vec<Bytes> {
    let mut nalus = Vec::new();
    let mut start: Option<usize> = None;
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            if let Some(begin) = start {
                push_trimmed(&mut nalus, data, begin, i);
            }
            i += 3;
            start = Some(i);
        } else {
            i += 1;
        }
    }
    if let Some(begin) = start {
        push_trimmed(&mut nalus, data, begin, data.len());
    }
    nalus
}

fn push_trimmed(nalus: &mut Vec<Bytes>, data: &Bytes, begin: usize, mut end: usize) {
    while end > begin && data[end - 1] == 0 {
        end -= 1;
    }
    if end > begin {
        nalus.push(data.slice(begin..end));
    }
}

/// What the server needs to know of a sequence parameter set (H.264 7.3.2.1.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sps {
    /// `profile_idc`: 66 Baseline, 77 Main, 100 High, 110 High 10, 122 High 4:2:2, ...
    pub profile_idc: u8,
    /// The byte of `constraint_set0_flag` to `constraint_set5_flag` and the two reserved bits.
    pub constraint_flags: u8,
    /// `level_idc`: ten times the level (31 is level 3.1).
    pub level_idc: u8,
    /// `seq_parameter_set_id`.
    pub id: u32,
    /// `chroma_format_idc`: 0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4 (1 unless the profile
    /// signals it).
    pub chroma_format_idc: u32,
    /// Displayed width in pixels (after cropping).
    pub width: u32,
    /// Displayed height in pixels (after cropping).
    pub height: u32,
    /// `frame_mbs_only_flag`: false when the stream may hold field pictures (interlaced).
    pub frame_mbs_only: bool,
    /// The VUI's `max_num_reorder_frames` when the SPS carries the bitstream restriction
    /// (`Some(0)`: no frame is ever reordered, decode order is presentation order).
    pub max_num_reorder_frames: Option<u32>,
}

impl Sps {
    /// True unless the stream is known to present frames in decode order: Baseline has no
    /// B slices, and the VUI may promise no reordering. A stream that reorders needs distinct
    /// decode and presentation times downstream (WebRTC, for one, has no notion of them).
    pub fn may_reorder(&self) -> bool {
        self.profile_idc != 66 && self.max_num_reorder_frames != Some(0)
    }

    /// The RFC 6184 `profile-level-id` of this SPS; see [`profile_level_id`].
    pub fn profile_level_id(&self) -> u32 {
        profile_level_id(self)
    }
}

/// The `profile-level-id` of RFC 6184 (8.1): `profile_idc`, the constraint flags byte and
/// `level_idc` as 0xPPCCLL, the form SDP offers name H.264 streams by.
pub fn profile_level_id(sps: &Sps) -> u32 {
    (u32::from(sps.profile_idc) << 16) | (u32::from(sps.constraint_flags) << 8) | u32::from(sps.level_idc)
}

/// Whether browsers' WebRTC and MSE decoders take this profile: Baseline (66, which covers
/// Constrained Baseline, signalled by a constraint flag), Main (77) and High (100). High 10,
/// High 4:2:2, High 4:4:4 and the rest are refused by most hardware decoders browsers use.
pub fn browser_decodable(profile_idc: u8) -> bool {
    matches!(profile_idc, 66 | 77 | 100)
}

/// Profiles whose SPS carries `chroma_format_idc`, bit depths and scaling matrices (the
/// `profile_idc` list of H.264 7.3.2.1.1).
fn has_chroma_format(profile_idc: u8) -> bool {
    matches!(
        profile_idc,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    )
}

/// Parse a sequence parameter set NAL unit (with its one-byte header, without start code).
pub fn parse_sps(nal: &[u8]) -> Result<Sps, H264Error> {
    let header = *nal.first().ok_or(H264Error::Truncated("SPS"))?;
    if header & 0x1f != NAL_SPS {
        return Err(H264Error::NotSps(header & 0x1f));
    }
    let rbsp = unescape(&nal[1..]);
    let mut r = BitReader::new(&rbsp);
    let profile_idc = r.bits(8)? as u8;
    let constraint_flags = r.bits(8)? as u8;
    let level_idc = r.bits(8)? as u8;
    let id = r.ue_max("seq_parameter_set_id", 31)?;

    let mut chroma_format_idc = 1;
    let mut separate_colour_plane = false;
    if has_chroma_format(profile_idc) {
        chroma_format_idc = r.ue_max("chroma_format_idc", 3)?;
        if chroma_format_idc == 3 {
            separate_colour_plane = r.flag()?;
        }
        r.ue_max("bit_depth_luma_minus8", 6)?;
        r.ue_max("bit_depth_chroma_minus8", 6)?;
        r.flag()?; // qpprime_y_zero_transform_bypass_flag
        if r.flag()? {
            // seq_scaling_matrix_present_flag: the lists are skipped, but must be read to
            // find the fields after them.
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.flag()? {
                    skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }

    r.ue_max("log2_max_frame_num_minus4", 12)?;
    match r.ue_max("pic_order_cnt_type", 2)? {
        0 => {
            r.ue_max("log2_max_pic_order_cnt_lsb_minus4", 12)?;
        }
        1 => {
            r.flag()?; // delta_pic_order_always_zero_flag
            r.se()?; // offset_for_non_ref_pic
            r.se()?; // offset_for_top_to_bottom_field
            let cycle = r.ue_max("num_ref_frames_in_pic_order_cnt_cycle", 255)?;
            for _ in 0..cycle {
                r.se()?; // offset_for_ref_frame
            }
        }
        _ => {}
    }
    r.ue()?; // max_num_ref_frames
    r.flag()?; // gaps_in_frame_num_value_allowed_flag
    let width_mbs = u64::from(r.ue()?) + 1;
    let height_map_units = u64::from(r.ue()?) + 1;
    let frame_mbs_only = r.flag()?;
    if !frame_mbs_only {
        r.flag()?; // mb_adaptive_frame_field_flag
    }
    r.flag()?; // direct_8x8_inference_flag
    let (mut crop_left, mut crop_right, mut crop_top, mut crop_bottom) = (0u64, 0u64, 0u64, 0u64);
    if r.flag()? {
        crop_left = u64::from(r.ue()?);
        crop_right = u64::from(r.ue()?);
        crop_top = u64::from(r.ue()?);
        crop_bottom = u64::from(r.ue()?);
    }

    // Cropping is counted in chroma samples (H.264 7.4.2.1.1, frame_crop_*_offset), and in
    // field pairs when the stream may be interlaced.
    let field_factor = if frame_mbs_only { 1 } else { 2 };
    let chroma_array_type = if separate_colour_plane {
        0
    } else {
        chroma_format_idc
    };
    let (sub_width, sub_height) = match chroma_array_type {
        1 => (2, 2),
        2 => (2, 1),
        _ => (1, 1),
    };
    let crop_unit_x = sub_width;
    let crop_unit_y = sub_height * field_factor;
    let coded_width = width_mbs * 16;
    let coded_height = height_map_units * 16 * field_factor;
    let width = coded_width
        .checked_sub((crop_left + crop_right) * crop_unit_x)
        .filter(|w| *w > 0)
        .ok_or(H264Error::OutOfRange {
            field: "frame_crop_left/right_offset",
            value: crop_left + crop_right,
        })?;
    let height = coded_height
        .checked_sub((crop_top + crop_bottom) * crop_unit_y)
        .filter(|h| *h > 0)
        .ok_or(H264Error::OutOfRange {
            field: "frame_crop_top/bottom_offset",
            value: crop_top + crop_bottom,
        })?;
    let width = u32::try_from(width).map_err(|_| H264Error::OutOfRange {
        field: "pic_width_in_mbs_minus1",
        value: width_mbs - 1,
    })?;
    let height = u32::try_from(height).map_err(|_| H264Error::OutOfRange {
        field: "pic_height_in_map_units_minus1",
        value: height_map_units - 1,
    })?;

    // Encoders are known to write VUIs cut short or with wrong HRD parameters; what came
    // before is all a decoder needs, so a VUI that does not parse only leaves the reorder
    // depth unknown.
    let max_num_reorder_frames = if r.flag()? {
        read_vui(&mut r).ok().flatten()
    } else {
        None
    };

    Ok(Sps {
        profile_idc,
        constraint_flags,
        level_idc,
        id,
        chroma_format_idc,
        width,
        height,
        frame_mbs_only,
        max_num_reorder_frames,
    })
}

/// Read `scaling_list()` (H.264 7.3.2.1.1.1) only to move past it.
fn skip_scaling_list(r: &mut BitReader<'_>, size: usize) -> Result<(), H264Error> {
    let mut last_scale: i64 = 8;
    let mut next_scale: i64 = 8;
    for _ in 0..size {
        if next_scale != 0 {
            let delta = r.se()?;
            next_scale = (last_scale + delta).rem_euclid(256);
        }
        if next_scale != 0 {
            last_scale = next_scale;
        }
    }
    Ok(())
}

/// Read `vui_parameters()` (H.264 E.1.1) up to `max_num_reorder_frames`, which comes last.
fn read_vui(r: &mut BitReader<'_>) -> Result<Option<u32>, H264Error> {
    if r.flag()? {
        // aspect_ratio_info_present_flag
        if r.bits(8)? == 255 {
            // Extended_SAR: sar_width, sar_height
            r.bits(16)?;
            r.bits(16)?;
        }
    }
    if r.flag()? {
        r.flag()?; // overscan_appropriate_flag
    }
    if r.flag()? {
        // video_signal_type_present_flag: video_format, video_full_range_flag
        r.bits(4)?;
        if r.flag()? {
            // colour_primaries, transfer_characteristics, matrix_coefficients
            r.bits(24)?;
        }
    }
    if r.flag()? {
        // chroma_loc_info_present_flag
        r.ue()?;
        r.ue()?;
    }
    if r.flag()? {
        // timing_info_present_flag: num_units_in_tick, time_scale, fixed_frame_rate_flag
        r.bits(32)?;
        r.bits(32)?;
        r.flag()?;
    }
    let nal_hrd = r.flag()?;
    if nal_hrd {
        skip_hrd(r)?;
    }
    let vcl_hrd = r.flag()?;
    if vcl_hrd {
        skip_hrd(r)?;
    }
    if nal_hrd || vcl_hrd {
        r.flag()?; // low_delay_hrd_flag
    }
    r.flag()?; // pic_struct_present_flag
    if !r.flag()? {
        // No bitstream restriction: the VUI says nothing about reordering.
        return Ok(None);
    }
    r.flag()?; // motion_vectors_over_pic_boundaries_flag
    r.ue()?; // max_bytes_per_pic_denom
    r.ue()?; // max_bits_per_mb_denom
    r.ue()?; // log2_max_mv_length_horizontal
    r.ue()?; // log2_max_mv_length_vertical
    // The DPB holds at most 16 frames, so a larger reorder depth is a broken VUI.
    let reorder = r.ue_max("max_num_reorder_frames", 16)?;
    Ok(Some(reorder))
}

/// Read `hrd_parameters()` (H.264 E.1.2) only to move past it.
fn skip_hrd(r: &mut BitReader<'_>) -> Result<(), H264Error> {
    let cpb_count = r.ue_max("cpb_cnt_minus1", 31)? + 1;
    r.bits(8)?; // bit_rate_scale, cpb_size_scale
    for _ in 0..cpb_count {
        r.ue()?; // bit_rate_value_minus1
        r.ue()?; // cpb_size_value_minus1
        r.flag()?; // cbr_flag
    }
    // initial_cpb_removal_delay_length_minus1, cpb_removal_delay_length_minus1,
    // dpb_output_delay_length_minus1, time_offset_length
    r.bits(20)?;
    Ok(())
}

/// Remove emulation prevention bytes: in a NAL unit, `00 00 03` stands for `00 00` (so that
/// payload never looks like a start code); fields must be read from the unescaped RBSP.
fn unescape(escaped: &[u8]) -> Vec<u8> {
    let mut rbsp = Vec::with_capacity(escaped.len());
    let mut zeros = 0;
    for &byte in escaped {
        if zeros >= 2 && byte == 3 {
            zeros = 0;
            continue;
        }
        zeros = if byte == 0 { zeros + 1 } else { 0 };
        rbsp.push(byte);
    }
    rbsp
}

/// Reads big-endian bit fields and exp-Golomb codes (H.264 9.1) from an RBSP.
struct BitReader<'a> {
    data: &'a [u8],
    /// Position in bits.
    pos: usize,
}

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8]) -> Self {
        BitReader { data, pos: 0 }
    }

    fn flag(&mut self) -> Result<bool, H264Error> {
        let byte = self.data.get(self.pos / 8).ok_or(H264Error::Truncated("SPS"))?;
        let bit = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Ok(bit == 1)
    }

    /// Up to 32 bits.
    fn bits(&mut self, count: u32) -> Result<u32, H264Error> {
        let mut value = 0u32;
        for _ in 0..count {
            value = (value << 1) | u32::from(self.flag()?);
        }
        Ok(value)
    }

    /// ue(v): unsigned exp-Golomb.
    fn ue(&mut self) -> Result<u32, H264Error> {
        let mut zeros = 0;
        while !self.flag()? {
            zeros += 1;
            if zeros > 31 {
                return Err(H264Error::ExpGolombTooLong);
            }
        }
        let suffix = u64::from(self.bits(zeros)?);
        // At most 2^32 - 2 with 31 leading zeros, which fits.
        let value = (1u64 << zeros) - 1 + suffix;
        u32::try_from(value).map_err(|_| H264Error::ExpGolombTooLong)
    }

    /// ue(v) that H.264 bounds: larger values mean the SPS is not what it claims to be.
    fn ue_max(&mut self, field: &'static str, max: u32) -> Result<u32, H264Error> {
        let value = self.ue()?;
        if value > max {
            return Err(H264Error::OutOfRange {
                field,
                value: u64::from(value),
            });
        }
        Ok(value)
    }

    /// se(v): signed exp-Golomb, mapped 1, -1, 2, -2, ...
    fn se(&mut self) -> Result<i64, H264Error> {
        let code = i64::from(self.ue()?);
        Ok(if code % 2 == 1 {
            (code + 1) / 2
        } else {
            -(code / 2)
        })
    }
}

/// Reads the byte fields of a configuration record, slicing [`Bytes`] without copying.
struct Cursor<'a> {
    data: &'a Bytes,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(data: &'a Bytes) -> Self {
        Cursor { data, pos: 0 }
    }

    fn take(&mut self, len: usize, what: &'static str) -> Result<Bytes, H264Error> {
        if self.data.len() - self.pos < len {
            return Err(H264Error::Truncated(what));
        }
        let slice = self.data.slice(self.pos..self.pos + len);
        self.pos += len;
        Ok(slice)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, H264Error> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, H264Error> {
        let bytes = self.take(2, what)?;
        Ok(u16::from_be_bytes([bytes[0], bytes[1]]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes fields the way an encoder does, to build test SPSs.
    #[derive(Default)]
    struct BitWriter {
        bytes: Vec<u8>,
        bits: usize,
    }

    impl BitWriter {
        fn bit(&mut self, bit: bool) {
            if self.bits.is_multiple_of(8) {
                self.bytes.push(0);
            }
            if bit {
                let last = self.bytes.len() - 1;
                self.bytes[last] |= 0x80 >> (self.bits % 8);
            }
            self.bits += 1;
        }
        fn bits(&mut self, value: u32, count: u32) {
            for i in (0..count).rev() {
                self.bit((value >> i) & 1 == 1);
            }
        }
        fn ue(&mut self, value: u32) {
            let code = u64::from(value) + 1;
            let len = 64 - code.leading_zeros();
            self.bits(0, len - 1);
            for i in (0..len).rev() {
                self.bit((code >> i) & 1 == 1);
            }
        }
        fn se(&mut self, value: i32) {
            let code = if value > 0 {
                2 * value as u32 - 1
            } else {
                2 * value.unsigned_abs()
            };
            self.ue(code);
        }
        /// rbsp_trailing_bits, then emulation prevention, behind an SPS header.
        fn into_sps_nal(mut self) -> Vec<u8> {
            self.bit(true);
            while !self.bits.is_multiple_of(8) {
                self.bit(false);
            }
            let mut nal = vec![0x67];
            let mut zeros = 0;
            for byte in self.bytes {
                if zeros >= 2 && byte <= 3 {
                    nal.push(3);
                    zeros = 0;
                }
                zeros = if byte == 0 { zeros + 1 } else { 0 };
                nal.push(byte);
            }
            nal
        }
    }

    /// An SPS like x264's for 1280x720 High 3.1 with B-frames: no cropping (80x45
    /// macroblocks), a VUI with timing info (whose 32-bit `num_units_in_tick` of 1 needs an
    /// emulation prevention byte) and a bitstream restriction of max_num_reorder_frames = 2.
    fn x264_high_720p() -> Vec<u8> {
        let mut w = BitWriter::default();
        w.bits(100, 8); // profile_idc
        w.bits(0, 8); // constraint flags
        w.bits(31, 8); // level_idc
        w.ue(0); // seq_parameter_set_id
        w.ue(1); // chroma_format_idc
        w.ue(0); // bit_depth_luma_minus8
        w.ue(0); // bit_depth_chroma_minus8
        w.bit(false); // qpprime
        w.bit(false); // seq_scaling_matrix_present_flag
        w.ue(0); // log2_max_frame_num_minus4
        w.ue(0); // pic_order_cnt_type
        w.ue(2); // log2_max_pic_order_cnt_lsb_minus4
        w.ue(4); // max_num_ref_frames
        w.bit(false); // gaps
        w.ue(79); // 80 macroblocks wide
        w.ue(44); // 45 high
        w.bit(true); // frame_mbs_only
        w.bit(true); // direct_8x8
        w.bit(false); // no cropping
        w.bit(true); // vui present
        w.bit(false); // aspect ratio
        w.bit(false); // overscan
        w.bit(false); // video signal type
        w.bit(false); // chroma loc
        w.bit(true); // timing info
        w.bits(1, 32);
        w.bits(60, 32);
        w.bit(false);
        w.bit(false); // nal hrd
        w.bit(false); // vcl hrd
        w.bit(false); // pic_struct_present
        w.bit(true); // bitstream_restriction
        w.bit(true);
        w.ue(0);
        w.ue(0);
        w.ue(11);
        w.ue(11);
        w.ue(2); // max_num_reorder_frames
        w.ue(4); // max_dec_frame_buffering
        w.into_sps_nal()
    }

    #[test]
    fn parses_a_high_profile_sps_with_vui() {
        let sps = parse_sps(&x264_high_720p()).expect("valid SPS");
        assert_eq!(
            (sps.profile_idc, sps.constraint_flags, sps.level_idc),
            (100, 0, 31)
        );
        assert_eq!((sps.width, sps.height), (1280, 720));
        assert_eq!(sps.max_num_reorder_frames, Some(2));
        assert!(sps.may_reorder());
        assert_eq!(profile_level_id(&sps), 0x64001f);
        assert!(browser_decodable(sps.profile_idc));
    }

    #[test]
    fn crops_1080p_from_68_macroblock_rows() {
        // Constrained Baseline 4.0, 1920x1088 coded, cropped by 8 lines (4 crop units of 2).
        let mut w = BitWriter::default();
        w.bits(66, 8);
        w.bits(0xc0, 8);
        w.bits(40, 8);
        w.ue(0);
        w.ue(0); // log2_max_frame_num_minus4
        w.ue(2); // pic_order_cnt_type 2
        w.ue(1);
        w.bit(false);
        w.ue(119);
        w.ue(67);
        w.bit(true);
        w.bit(true);
        w.bit(true); // cropping
        w.ue(0);
        w.ue(0);
        w.ue(0);
        w.ue(4);
        w.bit(false); // no VUI
        let sps = parse_sps(&w.into_sps_nal()).expect("valid SPS");
        assert_eq!((sps.width, sps.height), (1920, 1080));
        assert_eq!(sps.max_num_reorder_frames, None);
        assert!(!sps.may_reorder(), "Baseline has no B slices");
        assert_eq!(sps.profile_level_id(), 0x42c028);
    }

    #[test]
    fn reads_through_scaling_lists_poc_type_1_and_interlace() {
        // High 4:2:2 with scaling matrices, POC type 1, field coding, 4:2:2 cropping.
        let mut w = BitWriter::default();
        w.bits(122, 8);
        w.bits(0, 8);
        w.bits(41, 8);
        w.ue(1);
        w.ue(2); // 4:2:2
        w.ue(2); // 10-bit
        w.ue(2);
        w.bit(false);
        w.bit(true); // scaling matrix present
        for i in 0..8 {
            let present = i % 2 == 0;
            w.bit(present);
            if present {
                // 8 + 3 = 11, then 11 - 11 = 0: a nextScale of 0 ends the list early.
                w.se(3);
                w.se(-11);
            }
        }
        w.ue(0);
        w.ue(1); // POC type 1
        w.bit(false);
        w.se(-2);
        w.se(1);
        w.ue(2);
        w.se(4);
        w.se(-4);
        w.ue(3);
        w.bit(false);
        w.ue(119); // 1920
        w.ue(33); // 34 map units of field pairs: 1088
        w.bit(false); // not frame_mbs_only
        w.bit(true); // mb_adaptive_frame_field
        w.bit(true);
        w.bit(true); // crop bottom by 4 units of 2 lines (4:2:2 SubHeightC 1, times 2 fields)
        w.ue(0);
        w.ue(0);
        w.ue(0);
        w.ue(4);
        w.bit(false);
        let sps = parse_sps(&w.into_sps_nal()).expect("valid SPS");
        assert_eq!(sps.chroma_format_idc, 2);
        assert!(!sps.frame_mbs_only);
        assert_eq!((sps.width, sps.height), (1920, 1080));
        assert!(!browser_decodable(sps.profile_idc));
    }

    #[test]
    fn emulation_prevention_is_removed_before_reading() {
        assert_eq!(
            unescape(&[0, 0, 3, 1, 0, 0, 3, 0, 0, 3]),
            vec![0, 0, 1, 0, 0, 0, 0]
        );
        // The VUI's fields after the escaped timing info are read right only if the escape
        // byte was removed.
        let nal = x264_high_720p();
        assert!(nal.windows(3).any(|w| w == [0, 0, 3]));
        assert_eq!(parse_sps(&nal).map(|s| s.max_num_reorder_frames), Ok(Some(2)));
    }

    #[test]
    fn a_broken_vui_leaves_the_reorder_depth_unknown() {
        let mut nal = x264_high_720p();
        // Cut into the VUI's timing info.
        nal.truncate(12);
        let sps = parse_sps(&nal).expect("fields before the VUI are intact");
        assert_eq!((sps.width, sps.height), (1280, 720));
        assert_eq!(sps.max_num_reorder_frames, None);
    }

    #[test]
    fn rejects_what_is_not_an_sps() {
        assert_eq!(parse_sps(&[0x68, 0xce]), Err(H264Error::NotSps(8)));
        assert_eq!(parse_sps(&[]), Err(H264Error::Truncated("SPS")));
        assert_eq!(parse_sps(&[0x67, 100, 0]), Err(H264Error::Truncated("SPS")));
        // 40 zero bits: an exp-Golomb code that never ends.
        assert_eq!(
            parse_sps(&[0x67, 100, 0, 31, 0, 0, 3, 0, 0, 3, 0, 0]),
            Err(H264Error::ExpGolombTooLong)
        );
    }

    #[test]
    fn browser_profiles() {
        for (profile, ok) in [
            (66, true),
            (77, true),
            (100, true),
            (88, false),
            (110, false),
            (122, false),
            (244, false),
        ] {
            assert_eq!(browser_decodable(profile), ok, "profile {profile}");
        }
    }

    fn avcc_record(length_size_minus_one: u8) -> Bytes {
        let mut r = vec![
            1,
            100,
            0,
            31,
            0xfc | length_size_minus_one,
            0xe1,
            0,
            4,
            0x67,
            100,
            0,
            31,
            1,
            0,
            2,
            0x68,
            0xce,
        ];
        // High-profile extension: ignored.
        r.extend_from_slice(&[0xfd, 0xf8, 0xf8, 0]);
        Bytes::from(r)
    }

    #[test]
    fn parses_an_avcc_record() {
        let parsed = parse_avcc(&avcc_record(3)).expect("valid record");
        assert_eq!(parsed.nal_length_size, 4);
        assert_eq!(parsed.config.sps, vec![Bytes::from_static(&[0x67, 100, 0, 31])]);
        assert_eq!(parsed.config.pps, vec![Bytes::from_static(&[0x68, 0xce])]);
        assert_eq!(parse_avcc(&avcc_record(1)).map(|p| p.nal_length_size), Ok(2));
    }

    #[test]
    fn rejects_broken_avcc_records() {
        assert_eq!(
            parse_avcc(&Bytes::new()),
            Err(H264Error::Truncated("avcC header"))
        );
        assert_eq!(
            parse_avcc(&Bytes::from_static(&[0, 100, 0, 31, 0xff, 0xe1])),
            Err(H264Error::BadConfigVersion(0))
        );
        let record = avcc_record(3);
        assert_eq!(
            parse_avcc(&record.slice(..10)),
            Err(H264Error::Truncated("avcC SPS"))
        );
        assert_eq!(
            parse_avcc(&record.slice(..12)),
            Err(H264Error::Truncated("avcC PPS count"))
        );
    }

    #[test]
    fn splits_avcc_access_units() {
        let au = Bytes::from_static(&[0, 0, 0, 2, 0x09, 0xf0, 0, 0, 0, 0, 0, 0, 0, 3, 0x65, 0x88, 0x84]);
        assert_eq!(
            split_avcc(&au, 4),
            Ok(vec![
                Bytes::from_static(&[0x09, 0xf0]),
                Bytes::from_static(&[0x65, 0x88, 0x84])
            ])
        );
        assert_eq!(
            split_avcc(&Bytes::from_static(&[2, 0x41, 0x9a, 1, 0x41]), 1).map(|n| n.len()),
            Ok(2)
        );
        assert_eq!(
            split_avcc(&au.slice(..16), 4),
            Err(H264Error::NalPastEnd { len: 3, left: 2 })
        );
        assert_eq!(
            split_avcc(&au.slice(..2), 4),
            Err(H264Error::Truncated("NAL length prefix"))
        );
        assert_eq!(split_avcc(&au, 0), Err(H264Error::BadLengthSize(0)));
        assert!(contains_idr(&split_avcc(&au, 4).unwrap_or_default()));
    }

    #[test]
    fn splits_annex_b() {
        let stream = Bytes::from_static(&[
            0xff, 0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 0, 1, 0x65, 0, 0, 3, 1, 9, 0, 0,
        ]);
        assert_eq!(
            split_annex_b(&stream),
            vec![
                Bytes::from_static(&[0x67, 1, 2]),
                Bytes::from_static(&[0x68, 3]),
                Bytes::from_static(&[0x65, 0, 0, 3, 1, 9]),
            ]
        );
        assert!(split_annex_b(&Bytes::from_static(&[1, 2, 3])).is_empty());
        assert!(split_annex_b(&Bytes::from_static(&[0, 0, 1, 0, 0, 1])).is_empty());
    }

    proptest::proptest! {
        /// Arbitrary bytes never panic a parser, and never yield more NAL units than bytes.
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(proptest::num::u8::ANY, 0..400), size in 0u8..6) {
            let data = Bytes::from(data);
            if let Ok(nalus) = split_avcc(&data, size) {
                proptest::prop_assert!(nalus.len() <= data.len());
                proptest::prop_assert!(nalus.iter().map(Bytes::len).sum::<usize>() <= data.len());
            }
            let nalus = split_annex_b(&data);
            proptest::prop_assert!(nalus.len() <= data.len() / 3);
            proptest::prop_assert!(nalus.iter().all(|n| !n.is_empty() && n.len() <= data.len()));
            if let Ok(record) = parse_avcc(&data) {
                proptest::prop_assert!(record.config.sps.len() <= 31 && record.config.pps.len() <= 255);
            }
            let mut sps = data.to_vec();
            if let Some(first) = sps.first_mut() {
                *first = 0x67;
            }
            if let Ok(parsed) = parse_sps(&sps) {
                proptest::prop_assert!(parsed.width > 0 && parsed.height > 0);
            }
        }
    }
}
