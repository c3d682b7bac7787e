//! The GStreamer plumbing every bridge pipeline shares (the test source, a room's transcoder):
//! ladder rungs, the AAC tail, keyframes on the same frames everywhere, the appsinks, the one
//! thread that owns the packager's sink, and the bus watcher.

pub(crate) mod aac;
pub(crate) mod bus;
pub(crate) mod codec_data;
pub(crate) mod gate;
pub(crate) mod keyframes;
pub(crate) mod plugins;
pub(crate) mod pusher;
pub(crate) mod rung;
pub(crate) mod running;
pub(crate) mod track_sink;
