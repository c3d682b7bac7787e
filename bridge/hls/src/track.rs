//! What the packager knows about one track once its [`TrackConfig`] is checked: the MP4 sample
//! entry, the media timescale, the RFC 6381 codec string and what the multivariant playlist says
//! about it.

use std::time::Duration;

use bytes::Bytes;
use shiguredo_mp4::{
    FixedPointNumber, Uint,
    bitstream::h264::{H264SampleEntryConfig, LengthSize, build_avc1_box},
    boxes::{AudioSampleEntryFields, EsdsBox, Mp4aBox, SampleEntry},
    codec_string,
    descriptors::{DecoderConfigDescriptor, DecoderSpecificInfo, EsDescriptor, SlConfigDescriptor},
};

use crate::media::TrackConfig;

/// Video media timescale: 90 kHz, the usual clock for video, exact for 24/25/30/50/60 and the
/// NTSC rates.
pub const VIDEO_TIMESCALE: u32 = 90_000;

/// Samples in one AAC frame: the duration of an audio frame when timestamps cannot tell.
pub const AAC_FRAME_SAMPLES: u32 = 1024;

/// Why a [`TrackConfig`] cannot be packaged.
#[derive(Debug, thiserror::Error)]
pub enum TrackError {
    /// The SPS or PPS list is empty or the first SPS does not parse.
    #[error("invalid H.264 parameter sets: {0}")]
    ParameterSets(String),
    /// The AudioSpecificConfig is empty.
    #[error("empty AudioSpecificConfig")]
    EmptyAudioSpecificConfig,
    /// The sample rate is zero.
    #[error("audio sample rate is zero")]
    ZeroSampleRate,
    /// The codec string could not be derived.
    #[error("no codec string: {0}")]
    CodecString(String),
}

/// Whether a track is video or audio, with what playlists say about it.
#[derive(Debug, Clone, PartialEq)]
pub enum TrackKind {
    /// H.264 video.
    Video {
        /// Width in pixels, as configured.
        width: u32,
        /// Height in pixels, as configured.
        height: u32,
        /// Frame rate as (numerator, denominator); (0, _) when unknown.
        frame_rate: (u32, u32),
    },
    /// AAC audio.
    Audio {
        /// Samples per second.
        sample_rate: u32,
        /// Channel count.
        channels: u8,
    },
}

/// A checked track: everything the CMAF writer and the playlists need.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackInfo {
    /// Video or audio, with its shape.
    pub kind: TrackKind,
    /// Ticks per second of the media timeline (tfdt, sample durations).
    pub timescale: u32,
    /// RFC 6381 codec string, e.g. `avc1.64001f` or `mp4a.40.2`.
    pub codec: String,
    /// Configured bit rate in bit/s.
    pub bitrate: u32,
    pub(crate) sample_entry: SampleEntry,
}

impl TrackInfo {
    /// Checks a track configuration and derives its sample entry and codec string.
    pub fn from_config(config: &TrackConfig) -> Result<Self, TrackError> {
        match config {
            TrackConfig::H264 {
                width,
                height,
                frame_rate,
                bitrate,
                sps,
                pps,
            } => {
                let sps: Vec<Vec<u8>> = sps.iter().map(|b| b.to_vec()).collect();
                let pps: Vec<Vec<u8>> = pps.iter().map(|b| b.to_vec()).collect();
                let avc1 = build_avc1_box(
                    &sps,
                    &pps,
                    &H264SampleEntryConfig {
                        length_size: LengthSize::FourBytes,
                    },
                )
                .map_err(|e| TrackError::ParameterSets(e.reason))?;
                let entry = SampleEntry::Avc1(avc1);
                let codec =
                    codec_string::from_sample_entry(&entry).map_err(|e| TrackError::CodecString(e.reason))?;
                Ok(Self {
                    kind: TrackKind::Video {
                        width: *width,
                        height: *height,
                        frame_rate: *frame_rate,
                    },
                    timescale: VIDEO_TIMESCALE,
                    codec,
                    bitrate: *bitrate,
                    sample_entry: entry,
                })
            }
            TrackConfig::Aac {
                sample_rate,
                channels,
                bitrate,
                audio_specific_config,
            } => {
                if *sample_rate == 0 {
                    return Err(TrackError::ZeroSampleRate);
                }
                if audio_specific_config.is_empty() {
                    return Err(TrackError::EmptyAudioSpecificConfig);
                }
                let entry =
                    SampleEntry::Mp4a(mp4a_box(*sample_rate, *channels, *bitrate, audio_specific_config));
                let codec =
                    codec_string::from_sample_entry(&entry).map_err(|e| TrackError::CodecString(e.reason))?;
                Ok(Self {
                    kind: TrackKind::Audio {
                        sample_rate: *sample_rate,
                        channels: *channels,
                    },
                    timescale: *sample_rate,
                    codec,
                    bitrate: *bitrate,
                    sample_entry: entry,
                })
            }
        }
    }

    /// True for a video track.
    pub fn is_video(&self) -> bool {
        matches!(self.kind, TrackKind::Video { .. })
    }

    /// The nominal duration of one sample in timescale ticks: one frame at the configured frame
    /// rate, one AAC frame for audio. Used for the last sample of a stream, whose duration no
    /// later timestamp tells.
    pub fn nominal_sample_ticks(&self) -> u64 {
        match self.kind {
            TrackKind::Video {
                frame_rate: (num, den),
                ..
            } if num > 0 && den > 0 => (u64::from(VIDEO_TIMESCALE) * u64::from(den) / u64::from(num)).max(1),
            TrackKind::Video { .. } => u64::from(VIDEO_TIMESCALE / 30),
            TrackKind::Audio { .. } => u64::from(AAC_FRAME_SAMPLES),
        }
    }

    /// One frame of digital silence in this track's codec, where the packager can write one:
    /// AAC-LC, mono or stereo. It fills the audio up to the picture at a source change (see
    /// `Segmenter`), so the buffer a player builds has no hole there.
    pub(crate) fn silent_frame(&self) -> Option<Bytes> {
        match self.kind {
            TrackKind::Audio { channels: 1, .. } if self.codec == "mp4a.40.2" => {
                Some(Bytes::from_static(&AAC_LC_SILENT_MONO))
            }
            TrackKind::Audio { channels: 2, .. } if self.codec == "mp4a.40.2" => {
                Some(Bytes::from_static(&AAC_LC_SILENT_STEREO))
            }
            _ => None,
        }
    }
}

/// An AAC-LC raw data block that decodes to silence, one channel: a single channel element
/// (id 0, tag 0) whose only window is long with no scale factor bands (`max_sfb` 0, so no
/// spectral data; global gain 0), no pulse, TNS or gain control data, then the END element and
/// byte alignment. 32 bits.
const AAC_LC_SILENT_MONO: [u8; 4] = [0x00, 0x00, 0x00, 0x07];

/// The same for two channels: a channel pair element (id 1, tag 0) with a common window (long,
/// `max_sfb` 0), no mid/side mask and two empty channel streams (global gain 0), then END.
/// 46 bits, padded to 6 bytes.
const AAC_LC_SILENT_STEREO: [u8; 6] = [0x21, 0x00, 0x00, 0x00, 0x00, 0x1c];

/// `d` in ticks of `timescale`, rounded to the nearest tick, saturating at `u64::MAX`.
pub(crate) fn to_ticks(d: Duration, timescale: u32) -> u64 {
    u64::try_from((d.as_nanos() * u128::from(timescale) + 500_000_000) / 1_000_000_000).unwrap_or(u64::MAX)
}

/// `ticks` of `timescale` as a duration (zero for a zero timescale).
pub(crate) fn to_duration(ticks: u64, timescale: u32) -> Duration {
    if timescale == 0 {
        return Duration::ZERO;
    }
    let nanos = u128::from(ticks) * 1_000_000_000 / u128::from(timescale);
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// The `mp4a` sample entry, carrying the producer's AudioSpecificConfig verbatim (it may
/// describe HE-AAC, which a re-encoded canonical AAC-LC config would lose).
fn mp4a_box(sample_rate: u32, channels: u8, bitrate: u32, asc: &Bytes) -> Mp4aBox {
    Mp4aBox {
        audio: AudioSampleEntryFields {
            data_reference_index: AudioSampleEntryFields::DEFAULT_DATA_REFERENCE_INDEX,
            channelcount: u16::from(channels),
            samplesize: AudioSampleEntryFields::DEFAULT_SAMPLESIZE,
            // Rates above 65535 Hz do not fit the 16.16 field; the ASC carries the true rate.
            samplerate: FixedPointNumber::new(u16::try_from(sample_rate).unwrap_or(0), 0),
        },
        esds_box: EsdsBox {
            es: EsDescriptor {
                es_id: EsDescriptor::MIN_ES_ID,
                stream_priority: EsDescriptor::LOWEST_STREAM_PRIORITY,
                depends_on_es_id: None,
                url_string: None,
                ocr_es_id: None,
                dec_config_descr: DecoderConfigDescriptor {
                    object_type_indication:
                        DecoderConfigDescriptor::OBJECT_TYPE_INDICATION_AUDIO_ISO_IEC_14496_3,
                    stream_type: DecoderConfigDescriptor::STREAM_TYPE_AUDIO,
                    up_stream: DecoderConfigDescriptor::UP_STREAM_FALSE,
                    buffer_size_db: Uint::new(0),
                    max_bitrate: bitrate,
                    avg_bitrate: bitrate,
                    dec_specific_info: Some(DecoderSpecificInfo {
                        payload: asc.to_vec(),
                    }),
                },
                sl_config_descr: SlConfigDescriptor,
            },
        },
        unknown_boxes: Vec::new(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A real 640x360 High profile level 3.0 SPS and its PPS (from x264).
    pub(crate) fn sps_pps() -> (Bytes, Bytes) {
        (
            Bytes::from_static(&[
                0x67, 0x64, 0x00, 0x1e, 0xac, 0xb2, 0x01, 0x40, 0x5f, 0xf2, 0xe0, 0x22, 0x00, 0x00, 0x03,
                0x00, 0x02, 0x00, 0x00, 0x03, 0x00, 0x78, 0x1e, 0x2c, 0x5c, 0x90,
            ]),
            Bytes::from_static(&[0x68, 0xeb, 0xc3, 0xcb, 0x22, 0xc0]),
        )
    }

    pub(crate) fn video_config(height: u32) -> TrackConfig {
        let (sps, pps) = sps_pps();
        TrackConfig::H264 {
            width: height * 16 / 9,
            height,
            frame_rate: (30, 1),
            bitrate: 1_000_000,
            sps: vec![sps],
            pps: vec![pps],
        }
    }

    pub(crate) fn audio_config() -> TrackConfig {
        TrackConfig::Aac {
            sample_rate: 48_000,
            channels: 2,
            bitrate: 128_000,
            audio_specific_config: Bytes::from_static(&[0x11, 0x90]),
        }
    }

    #[test]
    fn codec_strings_come_from_sps_and_asc() {
        let video = TrackInfo::from_config(&video_config(360)).expect("valid video");
        assert_eq!(video.codec, "avc1.64001e");
        assert_eq!(video.timescale, 90_000);
        assert_eq!(video.nominal_sample_ticks(), 3000);
        let audio = TrackInfo::from_config(&audio_config()).expect("valid audio");
        assert_eq!(audio.codec, "mp4a.40.2");
        assert_eq!(audio.timescale, 48_000);
    }

    #[test]
    fn bad_configs_are_errors() {
        let bad_sps = TrackConfig::H264 {
            width: 1,
            height: 1,
            frame_rate: (30, 1),
            bitrate: 1,
            sps: vec![Bytes::from_static(&[0x67])],
            pps: vec![Bytes::from_static(&[0x68])],
        };
        assert!(matches!(
            TrackInfo::from_config(&bad_sps),
            Err(TrackError::ParameterSets(_))
        ));
        let no_sps = TrackConfig::H264 {
            width: 1,
            height: 1,
            frame_rate: (30, 1),
            bitrate: 1,
            sps: vec![],
            pps: vec![],
        };
        assert!(TrackInfo::from_config(&no_sps).is_err());
        let no_asc = TrackConfig::Aac {
            sample_rate: 48_000,
            channels: 2,
            bitrate: 1,
            audio_specific_config: Bytes::new(),
        };
        assert!(matches!(
            TrackInfo::from_config(&no_asc),
            Err(TrackError::EmptyAudioSpecificConfig)
        ));
    }
}
