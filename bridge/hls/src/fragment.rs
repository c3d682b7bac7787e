//! One CMAF fragment: `moof` (`mfhd`, `traf` with `tfhd`, `tfdt`, `trun`) followed by its `mdat`.
//!
//! A part is one fragment; a segment is the concatenation of its parts' fragments.

use bytes::{BufMut, Bytes, BytesMut};
use shiguredo_mp4::{
    Encode, SampleFlags,
    boxes::{MfhdBox, MoofBox, TfdtBox, TfhdBox, TrafBox, TrunBox, TrunSample},
};

use crate::init_segment::TRACK_ID;

/// Why a fragment could not be written.
#[derive(Debug, thiserror::Error)]
pub enum FragmentError {
    /// A fragment needs at least one sample.
    #[error("no samples")]
    Empty,
    /// A sample or the whole fragment is larger than the box fields can say.
    #[error("fragment too large")]
    TooLarge,
    /// The MP4 encoder refused a box.
    #[error("cannot encode fragment: {0}")]
    Encode(String),
}

/// One sample going into a fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// Duration in timescale ticks (the next sample's decode time minus this one's).
    pub duration: u32,
    /// Presentation time minus decode time, in ticks (0 without B-frames).
    pub composition_offset: i32,
    /// A sync sample (IDR for video; every audio frame).
    pub keyframe: bool,
    /// The sample bytes.
    pub data: Bytes,
}

/// Sample flags for sync samples: depends on no other sample.
const SYNC_FLAGS: SampleFlags = SampleFlags::from_fields(0, 2, 0, 0, 0, false, 0);
/// Sample flags for other samples: depends on others, not a sync sample.
const NON_SYNC_FLAGS: SampleFlags = SampleFlags::from_fields(0, 1, 0, 0, 0, true, 0);

/// Writes a fragment with sequence number `sequence` whose first sample decodes at
/// `base_decode_time` ticks.
pub fn write_fragment(
    sequence: u32,
    base_decode_time: u64,
    samples: &[Sample],
) -> Result<Bytes, FragmentError> {
    if samples.is_empty() {
        return Err(FragmentError::Empty);
    }
    let payload: usize = samples.iter().map(|s| s.data.len()).sum();
    let has_offsets = samples.iter().any(|s| s.composition_offset != 0);
    let trun_samples = samples
        .iter()
        .map(|s| {
            Ok(TrunSample {
                duration: Some(s.duration),
                size: Some(u32::try_from(s.data.len()).map_err(|_| FragmentError::TooLarge)?),
                flags: Some(if s.keyframe { SYNC_FLAGS } else { NON_SYNC_FLAGS }),
                composition_time_offset: has_offsets.then_some(i64::from(s.composition_offset)),
            })
        })
        .collect::<Result<Vec<_>, FragmentError>>()?;
    let moof = |data_offset: i32| MoofBox {
        mfhd_box: MfhdBox {
            sequence_number: sequence,
        },
        traf_boxes: vec![TrafBox {
            tfhd_box: TfhdBox {
                track_id: TRACK_ID,
                base_data_offset: None,
                sample_description_index: None,
                default_sample_duration: None,
                default_sample_size: None,
                default_sample_flags: None,
                duration_is_empty: false,
                default_base_is_moof: true,
            },
            tfdt_box: Some(TfdtBox {
                version: if base_decode_time > u64::from(u32::MAX) {
                    1
                } else {
                    0
                },
                base_media_decode_time: base_decode_time,
            }),
            trun_boxes: vec![TrunBox {
                data_offset: Some(data_offset),
                first_sample_flags: None,
                samples: trun_samples.clone(),
            }],
            unknown_boxes: Vec::new(),
        }],
        unknown_boxes: Vec::new(),
    };
    let encode = |m: MoofBox| m.encode_to_vec().map_err(|e| FragmentError::Encode(e.reason));
    // The data offset field has a fixed width, so a first pass gives the moof's size.
    let moof_len = encode(moof(0))?.len();
    let mdat_payload = u64::try_from(payload).map_err(|_| FragmentError::TooLarge)?;
    let mdat_size = mdat_payload.checked_add(8).ok_or(FragmentError::TooLarge)?;
    // mdat header: 32-bit size, or size 1 and a 64-bit largesize when it does not fit.
    let mut mdat_header = BytesMut::with_capacity(16);
    match u32::try_from(mdat_size) {
        Ok(size) => {
            mdat_header.put_u32(size);
            mdat_header.put_slice(b"mdat");
        }
        Err(_) => {
            mdat_header.put_u32(1);
            mdat_header.put_slice(b"mdat");
            mdat_header.put_u64(mdat_size.checked_add(8).ok_or(FragmentError::TooLarge)?);
        }
    }
    let data_offset = i32::try_from(moof_len + mdat_header.len()).map_err(|_| FragmentError::TooLarge)?;
    let moof_bytes = encode(moof(data_offset))?;
    let mut out = BytesMut::with_capacity(moof_bytes.len() + mdat_header.len() + payload);
    out.put_slice(&moof_bytes);
    out.put_slice(&mdat_header);
    for sample in samples {
        out.put_slice(&sample.data);
    }
    Ok(out.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{init_segment::init_segment, track::TrackInfo, track::tests::video_config};
    use shiguredo_mp4::{Decode, demux::Fmp4SegmentDemuxer};

    fn sample(keyframe: bool, len: usize) -> Sample {
        Sample {
            duration: 3000,
            composition_offset: 0,
            keyframe,
            data: Bytes::from(vec![0xab; len]),
        }
    }

    #[test]
    fn fragment_boxes_carry_sequence_decode_time_durations_sizes_and_flags() {
        let bytes = write_fragment(7, 123_456, &[sample(true, 10), sample(false, 20)]).expect("writes");
        let (moof, moof_len) = MoofBox::decode(&bytes).expect("moof parses");
        assert_eq!(moof.mfhd_box.sequence_number, 7);
        let traf = &moof.traf_boxes[0];
        assert_eq!(
            traf.tfdt_box.as_ref().map(|t| t.base_media_decode_time),
            Some(123_456)
        );
        let trun = &traf.trun_boxes[0];
        assert_eq!(trun.samples.len(), 2);
        assert_eq!(trun.samples[0].size, Some(10));
        assert_eq!(trun.samples[1].duration, Some(3000));
        assert!(!trun.samples[0].flags.expect("flags").sample_is_non_sync_sample());
        assert!(trun.samples[1].flags.expect("flags").sample_is_non_sync_sample());
        // data_offset points just past the mdat header, relative to the moof.
        assert_eq!(
            trun.data_offset,
            Some(i32::try_from(moof_len + 8).expect("small"))
        );
        assert_eq!(&bytes[moof_len + 4..moof_len + 8], b"mdat");
        assert_eq!(bytes.len(), moof_len + 8 + 30);
    }

    #[test]
    fn large_decode_times_use_64_bit_tfdt() {
        let bytes = write_fragment(1, u64::MAX / 2, &[sample(true, 1)]).expect("writes");
        let (moof, _) = MoofBox::decode(&bytes).expect("moof parses");
        assert_eq!(
            moof.traf_boxes[0]
                .tfdt_box
                .as_ref()
                .map(|t| t.base_media_decode_time),
            Some(u64::MAX / 2)
        );
    }

    #[test]
    fn empty_fragments_are_refused() {
        assert!(matches!(write_fragment(1, 0, &[]), Err(FragmentError::Empty)));
    }

    #[test]
    fn demuxer_reads_samples_after_the_init_segment() {
        let track = TrackInfo::from_config(&video_config(360)).expect("valid");
        let mut demuxer = Fmp4SegmentDemuxer::new();
        demuxer
            .handle_init_segment(&init_segment(&track).expect("init"))
            .expect("init parses");
        let bytes = write_fragment(1, 9000, &[sample(true, 5), sample(false, 6)]).expect("writes");
        let samples = demuxer.handle_media_segment(&bytes).expect("media parses");
        assert_eq!(samples.len(), 2);
    }
}
