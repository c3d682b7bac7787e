//! The multivariant (master) playlist writer: one variant per video rendition, the audio
//! renditions as one EXT-X-MEDIA group that every variant refers to.

use std::io::{self, Write};

use crate::resource::{PlaylistKind, Resource};
use crate::track::TrackKind;

/// The group id of the audio renditions.
pub const AUDIO_GROUP: &str = "audio";

/// One rendition as the multivariant playlist lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct VariantInfo {
    /// Rendition name (its playlists live under `{name}/`).
    pub name: String,
    /// Video or audio, with its shape.
    pub kind: TrackKind,
    /// RFC 6381 codec string.
    pub codec: String,
    /// Peak bit rate in bit/s (the largest segment's, or the configured one before any).
    pub peak_bitrate: u64,
    /// Average bit rate in bit/s.
    pub average_bitrate: u64,
}

/// The multivariant playlist of a stream.
#[derive(Debug, Clone)]
pub struct MultivariantPlaylist<'a> {
    /// Renditions in the order the source announced them.
    pub renditions: &'a [VariantInfo],
    /// Which media playlists the variants point at.
    pub kind: PlaylistKind,
}

impl MultivariantPlaylist<'_> {
    /// Writes the playlist.
    pub fn write_to<W: Write>(&self, w: &mut W) -> io::Result<()> {
        let playlist = Resource::Media(self.kind);
        writeln!(w, "#EXTM3U")?;
        let audio: Vec<&VariantInfo> = self
            .renditions
            .iter()
            .filter(|r| matches!(r.kind, TrackKind::Audio { .. }))
            .collect();
        let video: Vec<&VariantInfo> = self
            .renditions
            .iter()
            .filter(|r| matches!(r.kind, TrackKind::Video { .. }))
            .collect();
        if video.is_empty() {
            // Audio-only: each audio rendition is a variant of its own.
            for a in &audio {
                writeln!(
                    w,
                    "#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={},CODECS=\"{}\"",
                    a.peak_bitrate, a.average_bitrate, a.codec
                )?;
                writeln!(w, "{}/{playlist}", a.name)?;
            }
            return Ok(());
        }
        for (i, a) in audio.iter().enumerate() {
            let channels = match a.kind {
                TrackKind::Audio { channels, .. } => channels,
                TrackKind::Video { .. } => 0,
            };
            let default = if i == 0 { "YES" } else { "NO" };
            writeln!(
                w,
                "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"{AUDIO_GROUP}\",NAME=\"{}\",DEFAULT={default},AUTOSELECT=YES,CHANNELS=\"{channels}\",URI=\"{}/{playlist}\"",
                a.name, a.name
            )?;
        }
        let main_audio = audio.first();
        for v in &video {
            let peak = v.peak_bitrate + main_audio.map_or(0, |a| a.peak_bitrate);
            let average = v.average_bitrate + main_audio.map_or(0, |a| a.average_bitrate);
            write!(
                w,
                "#EXT-X-STREAM-INF:BANDWIDTH={peak},AVERAGE-BANDWIDTH={average},CODECS=\"{}",
                v.codec
            )?;
            if let Some(a) = main_audio {
                write!(w, ",{}", a.codec)?;
            }
            write!(w, "\"")?;
            if let TrackKind::Video {
                width,
                height,
                frame_rate: (num, den),
            } = v.kind
            {
                write!(w, ",RESOLUTION={width}x{height}")?;
                if num > 0 && den > 0 {
                    write!(w, ",FRAME-RATE={:.3}", f64::from(num) / f64::from(den))?;
                }
            }
            if main_audio.is_some() {
                write!(w, ",AUDIO=\"{AUDIO_GROUP}\"")?;
            }
            writeln!(w)?;
            writeln!(w, "{}/{playlist}", v.name)?;
        }
        Ok(())
    }

    /// The playlist as a string.
    pub fn to_text(&self) -> String {
        let mut out = Vec::new();
        self.write_to(&mut out).expect("writing to a Vec cannot fail");
        String::from_utf8(out).expect("playlists are written as UTF-8")
    }
}
