//! A pipeline with its bus watcher and pusher, from PLAYING to a drained stop: what the test
//! source and a room's transcoder both are while they run.

use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;

use super::bus::{BusWatcher, PipelineEvent};
use super::pusher::Pusher;
use crate::Error;

/// How long a stop waits for the encoders to drain after end-of-stream.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(3);

/// A playing (or stopped) pipeline.
pub(crate) struct Running {
    pub(crate) pipeline: gst::Pipeline,
    bus: BusWatcher,
    pusher: Pusher,
    stopped: bool,
}

impl Running {
    /// Watches `pipeline`'s bus; `pusher` owns the sink its appsinks feed.
    pub(crate) fn new(pipeline: gst::Pipeline, pusher: Pusher) -> Result<Running, Error> {
        let bus = BusWatcher::spawn(&pipeline).map_err(|e| Error::Build(e.to_string()))?;
        Ok(Running {
            pipeline,
            bus,
            pusher,
            stopped: false,
        })
    }

    /// Sets the pipeline playing; on failure, stops it and returns the element's error.
    pub(crate) fn play(&mut self) -> Result<(), Error> {
        if self.pipeline.set_state(gst::State::Playing).is_ok() {
            return Ok(());
        }
        // The bus says why; give it a moment to arrive.
        let event = self
            .bus
            .wait_for(Duration::from_secs(1), |e| matches!(e, PipelineEvent::Error(_)));
        let error = match event {
            Some(PipelineEvent::Error(e)) => e,
            _ => Error::Pipeline {
                element: self.pipeline.name().to_string(),
                message: "failed to start playing".into(),
                debug: None,
            },
        };
        self.stop(None);
        Err(error)
    }

    /// `Err` with the first error an element reported: the pipeline is broken then.
    pub(crate) fn health(&self) -> Result<(), Error> {
        match self.bus.first_error() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Stops the pipeline. With `end_of_stream` (which sends it), a healthy playing pipeline
    /// first drains: everything encoded reaches the sink. Then the sink's `finish` is called.
    pub(crate) fn stop(&mut self, end_of_stream: Option<&dyn Fn(&gst::Pipeline)>) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        let name = self.pipeline.name();
        if let Some(eos) = end_of_stream
            && self.pipeline.current_state() == gst::State::Playing
            && self.bus.first_error().is_none()
        {
            self.bus.discard_backlog();
            eos(&self.pipeline);
            let drained = self.bus.wait_for(DRAIN_TIMEOUT, |e| {
                matches!(e, PipelineEvent::Eos | PipelineEvent::Error(_))
            });
            if drained.is_none() {
                tracing::warn!(pipeline = %name, "did not drain within {DRAIN_TIMEOUT:?}, stopping anyway");
            }
        }
        if let Err(e) = self.pipeline.set_state(gst::State::Null) {
            tracing::error!(pipeline = %name, error = %e, "pipeline did not stop cleanly");
        }
        self.bus.stop();
        // The streaming threads are gone: whatever they sent is queued before Finish.
        self.pusher.finish();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop(None);
    }
}
