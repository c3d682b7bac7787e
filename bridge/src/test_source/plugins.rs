//! Which GStreamer elements the ladder needs and which Debian package brings each: checked
//! before anything is built, so a missing plugin is one clear error instead of a failed link.

use gstreamer as gst;

use super::Error;

/// Every element the video ladder needs, with its Debian package.
const VIDEO: &[(&str, &str)] = &[
    ("videotestsrc", "gstreamer1.0-plugins-base"),
    ("textoverlay", "gstreamer1.0-x"),
    ("videoscale", "gstreamer1.0-plugins-base"),
    ("appsink", "gstreamer1.0-plugins-base"),
    ("capsfilter", "libgstreamer1.0-0"),
    ("tee", "libgstreamer1.0-0"),
    ("queue", "libgstreamer1.0-0"),
    ("x264enc", "gstreamer1.0-plugins-ugly"),
    ("h264parse", "gstreamer1.0-plugins-bad"),
];

/// The audio branch, less its encoder.
const AUDIO: &[(&str, &str)] = &[
    ("audiotestsrc", "gstreamer1.0-plugins-base"),
    ("audioconvert", "gstreamer1.0-plugins-base"),
    ("audioresample", "gstreamer1.0-plugins-base"),
    ("aacparse", "gstreamer1.0-plugins-good"),
];

/// AAC-LC encoders in order of preference.
const AAC_ENCODERS: &[&str] = &["avenc_aac", "voaacenc", "fdkaacenc"];

/// Checks every element is installed; returns the AAC encoder to use when `audio`.
pub(crate) fn check(audio: bool) -> Result<Option<&'static str>, Error> {
    let required = VIDEO.iter().chain(if audio { AUDIO } else { &[] });
    for &(element, package) in required {
        if gst::ElementFactory::find(element).is_none() {
            return Err(Error::MissingElement { element, package });
        }
    }
    if !audio {
        return Ok(None);
    }
    match AAC_ENCODERS
        .iter()
        .find(|name| gst::ElementFactory::find(name).is_some())
    {
        Some(&name) => Ok(Some(name)),
        None => Err(Error::NoAacEncoder {
            tried: AAC_ENCODERS.join(", "),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_machine_has_the_whole_ladder() {
        gst::init().expect("GStreamer initialises");
        match check(true) {
            Ok(encoder) => assert!(encoder.is_some()),
            Err(e) => panic!("{e}"),
        }
    }
}
