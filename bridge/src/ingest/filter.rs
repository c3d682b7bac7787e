//! A small GStreamer filter: appsrc ─▶ elements ─▶ appsink, fed and drained in process.
//!
//! The ingest conversions (AAC to Opus, a B-frame source re-encoded) are each one of these.
//! Buffers go in with their times; what comes out is handed to a callback on GStreamer's
//! streaming thread as it is produced, so the filter adds only its elements' own latency.

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use crate::Error;
use crate::media::bus::BusWatcher;

/// One coded buffer out of a filter.
#[derive(Debug)]
pub(crate) struct Output {
    /// Presentation time since the filter's first input, nanoseconds.
    pub pts_ns: u64,
    /// Its bytes.
    pub data: Vec<u8>,
    /// Not a delta unit (a keyframe, for video).
    pub keyframe: bool,
}

/// A running filter; stops when dropped.
pub(crate) struct Filter {
    pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
    bus: BusWatcher,
}

impl std::fmt::Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Filter")
            .field("name", &self.pipeline.name())
            .finish()
    }
}

/// Input queued in the appsrc at most (a stalled filter drops new input instead of growing).
const MAX_QUEUED_BYTES: u64 = 8 << 20;

impl Filter {
    /// Build and play `appsrc(caps) ─▶ chain ─▶ appsink`, calling `output` for each buffer.
    pub(crate) fn start(
        name: &str,
        caps: gst::Caps,
        chain: Vec<gst::Element>,
        mut output: impl FnMut(Output) + Send + 'static,
    ) -> Result<Filter, Error> {
        crate::media::plugins::require(&[("appsrc", "gstreamer1.0-plugins-base")])?;
        let pipeline = gst::Pipeline::with_name(name);
        let src = gst_app::AppSrc::builder()
            .caps(&caps)
            .format(gst::Format::Time)
            .is_live(true)
            .max_bytes(MAX_QUEUED_BYTES)
            .leaky_type(gst_app::AppLeakyType::Downstream)
            .build();
        let sink = gst_app::AppSink::builder()
            .sync(false)
            .max_buffers(64)
            .callbacks(
                gst_app::AppSinkCallbacks::builder()
                    .new_sample(move |appsink| {
                        let sample = appsink.pull_sample().map_err(|_| gst::FlowError::Flushing)?;
                        let Some(buffer) = sample.buffer() else {
                            return Ok(gst::FlowSuccess::Ok);
                        };
                        let Ok(map) = buffer.map_readable() else {
                            return Ok(gst::FlowSuccess::Ok);
                        };
                        // Running time, not the buffer's own: x264enc moves its output segment
                        // 1000 hours on (room for negative decode times).
                        let running = sample
                            .segment()
                            .and_then(|s| s.downcast_ref::<gst::ClockTime>())
                            .zip(buffer.pts())
                            .and_then(|(s, pts)| s.to_running_time(pts));
                        output(Output {
                            pts_ns: running.map_or(0, |t| t.nseconds()),
                            data: map.as_slice().to_vec(),
                            keyframe: !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT),
                        });
                        Ok(gst::FlowSuccess::Ok)
                    })
                    .build(),
            )
            .build();
        let mut all: Vec<&gst::Element> = vec![src.upcast_ref()];
        all.extend(chain.iter());
        all.push(sink.upcast_ref());
        pipeline.add_many(all.iter().copied())?;
        gst::Element::link_many(all.iter().copied())?;
        let bus = BusWatcher::spawn(&pipeline).map_err(|e| Error::Build(format!("bus watcher: {e}")))?;
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| Error::Build(format!("{name} would not play: {e}")))?;
        Ok(Filter { pipeline, src, bus })
    }

    /// Feed one buffer.
    pub(crate) fn push(&self, buffer: gst::Buffer) -> Result<(), Error> {
        if let Some(e) = self.bus.first_error() {
            return Err(e);
        }
        self.src
            .push_buffer(buffer)
            .map_err(|e| Error::Build(format!("{}: {e:?}", self.pipeline.name())))?;
        Ok(())
    }

    /// An element of the filter by name.
    pub(crate) fn element(&self, name: &str) -> Option<gst::Element> {
        self.pipeline.by_name(name)
    }
}

impl Drop for Filter {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
        self.bus.stop();
    }
}
