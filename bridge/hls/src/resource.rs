//! The file names of everything the origin serves under `/hls/{stream}/`, written by the
//! playlists and parsed back from request paths. Each name is unique for its content: media
//! names carry their sequence numbers, init segments their source generation.

use std::fmt;

/// Which flavour of playlist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PlaylistKind {
    /// The LL-HLS live playlist: recent segments, parts, blocking reload.
    Live,
    /// The sliding DVR playlist: every segment of the DVR window, no parts.
    Dvr,
    /// The VOD playlist, written when the stream ends.
    Vod,
}

/// One resource of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resource {
    /// The stream's multivariant playlist: `master.m3u8`, `dvr.m3u8` or `vod.m3u8`.
    Multivariant(PlaylistKind),
    /// A rendition's media playlist: `live.m3u8`, `dvr.m3u8` or `vod.m3u8`.
    Media(PlaylistKind),
    /// An init segment of a source generation: `init{generation}.mp4`.
    Init(u32),
    /// A complete segment: `s{msn}.m4s`.
    Segment(u64),
    /// A part: `p{msn}.{index}.m4s`.
    Part(u64, u32),
}

impl Resource {
    /// Parses a file name (the last path component); `None` for anything else, including
    /// numbers with leading zeros (so that each resource has exactly one name).
    pub fn parse(name: &str, in_rendition: bool) -> Option<Self> {
        let playlist = |name: &str| match name {
            "dvr.m3u8" => Some(PlaylistKind::Dvr),
            "vod.m3u8" => Some(PlaylistKind::Vod),
            _ => None,
        };
        if !in_rendition {
            if name == "master.m3u8" {
                return Some(Self::Multivariant(PlaylistKind::Live));
            }
            return playlist(name).map(Self::Multivariant);
        }
        if name == "live.m3u8" {
            return Some(Self::Media(PlaylistKind::Live));
        }
        if let Some(kind) = playlist(name) {
            return Some(Self::Media(kind));
        }
        if let Some(generation) = name.strip_prefix("init").and_then(|n| n.strip_suffix(".mp4")) {
            return number(generation).map(Self::Init);
        }
        if let Some(msn) = name.strip_prefix('s').and_then(|n| n.strip_suffix(".m4s")) {
            return number(msn).map(Self::Segment);
        }
        let (msn, index) = name.strip_prefix('p')?.strip_suffix(".m4s")?.split_once('.')?;
        Some(Self::Part(number(msn)?, number(index)?))
    }
}

/// Whether `name` may be a stream id or rendition name: 1 to 128 characters of
/// `A-Z a-z 0-9 _ -` (so it is safe as a path component and needs no escaping in a URL).
pub fn valid_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A canonical decimal number: digits only, no sign, no leading zero (except "0").
pub(crate) fn number<T: std::str::FromStr>(s: &str) -> Option<T> {
    let canonical =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    if canonical { s.parse().ok() } else { None }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let playlist = |kind| match kind {
            PlaylistKind::Live => "live.m3u8",
            PlaylistKind::Dvr => "dvr.m3u8",
            PlaylistKind::Vod => "vod.m3u8",
        };
        match *self {
            Self::Multivariant(PlaylistKind::Live) => f.write_str("master.m3u8"),
            Self::Multivariant(kind) | Self::Media(kind) => f.write_str(playlist(kind)),
            Self::Init(generation) => write!(f, "init{generation}.mp4"),
            Self::Segment(msn) => write!(f, "s{msn}.m4s"),
            Self::Part(msn, index) => write!(f, "p{msn}.{index}.m4s"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let media = [
            Resource::Media(PlaylistKind::Live),
            Resource::Media(PlaylistKind::Dvr),
            Resource::Media(PlaylistKind::Vod),
            Resource::Init(0),
            Resource::Init(12),
            Resource::Segment(0),
            Resource::Segment(u64::MAX),
            Resource::Part(7, 0),
            Resource::Part(123, 45),
        ];
        for r in media {
            assert_eq!(Resource::parse(&r.to_string(), true), Some(r), "{r}");
        }
        for kind in [PlaylistKind::Live, PlaylistKind::Dvr, PlaylistKind::Vod] {
            let r = Resource::Multivariant(kind);
            assert_eq!(Resource::parse(&r.to_string(), false), Some(r));
        }
    }

    #[test]
    fn other_names_are_refused() {
        for name in [
            "s01.m4s",
            "s.m4s",
            "s-1.m4s",
            "s+1.m4s",
            "p1.m4s",
            "p1.2.3.m4s",
            "p1.02.m4s",
            "init.mp4",
            "s18446744073709551616.m4s",
            "master.m3u8x",
            "../live.m3u8",
            "S1.m4s",
            "",
        ] {
            assert_eq!(Resource::parse(name, true), None, "{name}");
        }
        assert_eq!(Resource::parse("live.m3u8", false), None);
        assert_eq!(Resource::parse("master.m3u8", true), None);
    }

    #[test]
    fn names_are_path_safe() {
        assert!(valid_name("720p") && valid_name("a_b-C9"));
        for bad in ["", ".", "..", "a/b", "a b", "a%2F", "é", &"x".repeat(129)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
