//! The video codecs the test peers send and recognise.

use std::fmt;
use std::str::FromStr;

/// A video codec a test publisher can send and a test viewer can inspect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VideoCodec {
    /// VP8 (RFC 7741 payload).
    Vp8,
    /// H.264 constrained baseline, packetization-mode 1 (RFC 6184 payload).
    H264,
}

impl VideoCodec {
    /// The codec named by an RTP mime type such as `video/VP8`; `None` for anything else.
    pub fn from_mime(mime: &str) -> Option<Self> {
        let name = mime.rsplit('/').next().unwrap_or(mime);
        if name.eq_ignore_ascii_case("vp8") {
            Some(Self::Vp8)
        } else if name.eq_ignore_ascii_case("h264") {
            Some(Self::H264)
        } else {
            None
        }
    }

    /// The RTP mime type, as webrtc-rs spells it.
    pub fn mime(self) -> &'static str {
        match self {
            Self::Vp8 => "video/VP8",
            Self::H264 => "video/H264",
        }
    }
}

impl fmt::Display for VideoCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Vp8 => "vp8",
            Self::H264 => "h264",
        })
    }
}

/// A codec name that is neither `vp8` nor `h264`.
#[derive(Debug, thiserror::Error)]
#[error("unknown video codec {0:?} (expected vp8 or h264)")]
pub struct UnknownCodec(String);

impl FromStr for VideoCodec {
    type Err = UnknownCodec;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_mime(s).ok_or_else(|| UnknownCodec(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_mimes() {
        assert_eq!(VideoCodec::from_mime("video/VP8"), Some(VideoCodec::Vp8));
        assert_eq!(VideoCodec::from_mime("video/h264"), Some(VideoCodec::H264));
        assert_eq!("vp8".parse::<VideoCodec>().ok(), Some(VideoCodec::Vp8));
        assert_eq!(VideoCodec::from_mime("audio/opus"), None);
        assert!("av1".parse::<VideoCodec>().is_err());
    }
}
