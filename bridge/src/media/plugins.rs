//! Which GStreamer elements a pipeline needs and which Debian package brings each: checked
//! before anything is built, so a missing plugin is one clear error instead of a failed link.

use gstreamer as gst;

use crate::Error;

/// An element factory name with the Debian package that provides it.
pub(crate) type Needed = (&'static str, &'static str);

/// What every ladder needs (the encoders are checked by [`crate::encoder`]).
pub(crate) const LADDER: &[Needed] = &[
    ("videoscale", "gstreamer1.0-plugins-base"),
    ("appsink", "gstreamer1.0-plugins-base"),
    ("capsfilter", "libgstreamer1.0-0"),
    ("tee", "libgstreamer1.0-0"),
    ("queue", "libgstreamer1.0-0"),
    ("h264parse", "gstreamer1.0-plugins-bad"),
];

/// The audio tail, less its encoder (see [`super::aac::encoder`]).
pub(crate) const AUDIO: &[Needed] = &[
    ("audioconvert", "gstreamer1.0-plugins-base"),
    ("audioresample", "gstreamer1.0-plugins-base"),
    ("aacparse", "gstreamer1.0-plugins-good"),
];

/// Fails with the first element of `needed` that is not installed.
pub(crate) fn require(needed: &[Needed]) -> Result<(), Error> {
    for &(element, package) in needed {
        if gst::ElementFactory::find(element).is_none() {
            return Err(Error::MissingElement { element, package });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_machine_has_the_ladder_and_the_audio_tail() {
        gst::init().expect("GStreamer initialises");
        require(LADDER).expect("the ladder's elements");
        require(AUDIO).expect("the audio tail's elements");
        super::super::aac::encoder().expect("an AAC encoder");
    }

    #[test]
    fn a_missing_element_names_its_package() {
        gst::init().expect("GStreamer initialises");
        let err = require(&[("no-such-element", "gstreamer1.0-imaginary")]).expect_err("missing");
        assert_eq!(
            err.to_string(),
            "GStreamer element no-such-element not found: install gstreamer1.0-imaginary"
        );
    }
}
