//! Protocol bridges around the SFU and the LL-HLS packager.
//!
//! Today: the built-in test source, a GStreamer pipeline that feeds the packager a
//! multi-rendition ladder with the wall clock burnt into the picture.
