//! The CMAF init segment of one single-track rendition: `ftyp` + `moov` with the sample entry
//! and `mvex/trex`, no samples (they come in fragments).

use std::num::NonZeroU32;

use bytes::Bytes;
use shiguredo_mp4::{
    Either, Encode, FixedPointNumber, LanguageCode, Mp4FileTime,
    boxes::{
        Brand, DinfBox, FtypBox, HdlrBox, MdhdBox, MdiaBox, MediaHeader, MinfBox, MoovBox, MvexBox, MvhdBox,
        SmhdBox, StblBox, StcoBox, StscBox, StsdBox, StszBox, SttsBox, TkhdBox, TrakBox, TrexBox, VmhdBox,
    },
};

use crate::track::{TrackInfo, TrackKind};

/// The one track of every rendition's init segment and fragments.
pub const TRACK_ID: u32 = 1;

/// Why an init segment could not be written.
#[derive(Debug, thiserror::Error)]
pub enum InitSegmentError {
    /// The MP4 encoder refused a box (a value out of its range).
    #[error("cannot encode init segment: {0}")]
    Encode(String),
    /// The timescale is zero.
    #[error("zero timescale")]
    ZeroTimescale,
}

/// Writes the init segment (`ftyp` + `moov`) for `track`.
pub fn init_segment(track: &TrackInfo) -> Result<Bytes, InitSegmentError> {
    let timescale = NonZeroU32::new(track.timescale).ok_or(InitSegmentError::ZeroTimescale)?;
    let epoch = Mp4FileTime::from_secs(0);
    let (handler_type, media_header, volume, width, height) = match track.kind {
        TrackKind::Video { width, height, .. } => (
            HdlrBox::HANDLER_TYPE_VIDE,
            MediaHeader::Vmhd(VmhdBox::default()),
            TkhdBox::DEFAULT_VIDEO_VOLUME,
            FixedPointNumber::new(i16::try_from(width).unwrap_or(i16::MAX), 0),
            FixedPointNumber::new(i16::try_from(height).unwrap_or(i16::MAX), 0),
        ),
        TrackKind::Audio { .. } => (
            HdlrBox::HANDLER_TYPE_SOUN,
            MediaHeader::Smhd(SmhdBox::default()),
            TkhdBox::DEFAULT_AUDIO_VOLUME,
            FixedPointNumber::default(),
            FixedPointNumber::default(),
        ),
    };
    let mut compatible_brands = vec![Brand::ISO6, Brand::new(*b"cmfc"), Brand::ISOM];
    if track.is_video() {
        compatible_brands.push(Brand::AVC1);
    }
    let ftyp = FtypBox {
        major_brand: Brand::ISO6,
        minor_version: 0,
        compatible_brands,
    };
    let trak = TrakBox {
        tkhd_box: TkhdBox {
            flag_track_enabled: true,
            flag_track_in_movie: true,
            flag_track_in_preview: false,
            flag_track_size_is_aspect_ratio: false,
            creation_time: epoch,
            modification_time: epoch,
            track_id: TRACK_ID,
            duration: 0,
            layer: TkhdBox::DEFAULT_LAYER,
            alternate_group: TkhdBox::DEFAULT_ALTERNATE_GROUP,
            volume,
            matrix: TkhdBox::DEFAULT_MATRIX,
            width,
            height,
        },
        edts_box: None,
        mdia_box: MdiaBox {
            mdhd_box: MdhdBox {
                creation_time: epoch,
                modification_time: epoch,
                timescale,
                duration: 0,
                language: LanguageCode::UNDEFINED,
            },
            hdlr_box: HdlrBox {
                handler_type,
                name: b"fanout\0".to_vec(),
            },
            minf_box: MinfBox {
                media_header: Some(media_header),
                dinf_box: DinfBox::LOCAL_FILE,
                stbl_box: StblBox {
                    stsd_box: StsdBox {
                        entries: vec![track.sample_entry.clone()],
                    },
                    stts_box: SttsBox { entries: Vec::new() },
                    ctts_box: None,
                    cslg_box: None,
                    stsc_box: StscBox { entries: Vec::new() },
                    stsz_box: StszBox::Variable {
                        entry_sizes: Vec::new(),
                    },
                    stco_or_co64_box: Either::A(StcoBox {
                        chunk_offsets: Vec::new(),
                    }),
                    stss_box: None,
                    sdtp_box: None,
                    unknown_boxes: Vec::new(),
                },
                unknown_boxes: Vec::new(),
            },
            unknown_boxes: Vec::new(),
        },
        unknown_boxes: Vec::new(),
    };
    let moov = MoovBox {
        mvhd_box: MvhdBox {
            creation_time: epoch,
            modification_time: epoch,
            timescale: NonZeroU32::new(1000).expect("1000 is not zero"),
            duration: 0,
            rate: MvhdBox::DEFAULT_RATE,
            volume: MvhdBox::DEFAULT_VOLUME,
            matrix: MvhdBox::DEFAULT_MATRIX,
            next_track_id: TRACK_ID + 1,
        },
        trak_boxes: vec![trak],
        mvex_box: Some(MvexBox {
            // No mehd: a live presentation has no known fragment duration.
            mehd_box: None,
            trex_boxes: vec![TrexBox {
                track_id: TRACK_ID,
                default_sample_description_index: 1,
                default_sample_duration: 0,
                default_sample_size: 0,
                default_sample_flags: shiguredo_mp4::SampleFlags::new(0),
            }],
            unknown_boxes: Vec::new(),
        }),
        unknown_boxes: Vec::new(),
    };
    let mut out = ftyp
        .encode_to_vec()
        .map_err(|e| InitSegmentError::Encode(e.reason))?;
    out.extend_from_slice(
        &moov
            .encode_to_vec()
            .map_err(|e| InitSegmentError::Encode(e.reason))?,
    );
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::track::tests::{audio_config, video_config};
    use shiguredo_mp4::demux::Fmp4SegmentDemuxer;

    #[test]
    fn init_segments_parse_back_with_their_sample_entry() {
        for config in [video_config(360), audio_config()] {
            let track = TrackInfo::from_config(&config).expect("valid config");
            let bytes = init_segment(&track).expect("encodes");
            assert_eq!(&bytes[4..8], b"ftyp");
            let mut demuxer = Fmp4SegmentDemuxer::new();
            demuxer.handle_init_segment(&bytes).expect("parses back");
            let tracks = demuxer.tracks().expect("has tracks");
            assert_eq!(tracks.len(), 1);
            assert_eq!(tracks[0].track_id, TRACK_ID);
            assert_eq!(tracks[0].timescale.get(), track.timescale);
        }
    }
}
