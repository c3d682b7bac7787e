//! The one bus watcher of a pipeline: a thread that turns its bus messages into typed events,
//! logs them, and keeps the first error (for `health()` of the test source and the transcoder).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError, sync_channel};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;

use crate::Error;

/// What the pipeline reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PipelineEvent {
    /// An element failed; the pipeline is broken.
    Error(Error),
    /// An element reported a recoverable problem.
    Warning { element: String, message: String },
    /// Every sink received end-of-stream.
    Eos,
    /// An element's latency changed; the pipeline must redistribute it.
    Latency,
    /// The pipeline reached PLAYING.
    Playing,
}

impl PipelineEvent {
    /// The typed event for a bus message, `None` for messages nobody acts on.
    pub(crate) fn from_message(msg: &gst::Message, pipeline: &gst::Object) -> Option<Self> {
        use gst::MessageView;
        let element = || {
            msg.src()
                .map(|s| s.name().to_string())
                .unwrap_or_else(|| "pipeline".into())
        };
        match msg.view() {
            MessageView::Error(e) => Some(PipelineEvent::Error(Error::Pipeline {
                element: element(),
                message: e.error().to_string(),
                debug: e.debug().map(|d| d.to_string()),
            })),
            MessageView::Warning(w) => Some(PipelineEvent::Warning {
                element: element(),
                message: w.error().to_string(),
            }),
            MessageView::Eos(_) => Some(PipelineEvent::Eos),
            MessageView::Latency(_) => Some(PipelineEvent::Latency),
            MessageView::StateChanged(s)
                if msg.src() == Some(pipeline) && s.current() == gst::State::Playing =>
            {
                Some(PipelineEvent::Playing)
            }
            _ => None,
        }
    }
}

pub(crate) struct BusWatcher {
    quit: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    events: Receiver<PipelineEvent>,
    first_error: Arc<OnceLock<Error>>,
}

/// Events kept for [`BusWatcher::wait_for`]; when nobody waits, older ones are dropped (the first
/// error is kept apart), so a long run's warnings do not pile up.
const BACKLOG: usize = 64;

/// How often the watcher looks at its quit flag when the bus is quiet.
const POLL: Duration = Duration::from_millis(100);

impl BusWatcher {
    pub(crate) fn spawn(pipeline: &gst::Pipeline) -> std::io::Result<BusWatcher> {
        let bus = pipeline.bus().expect("a pipeline always has a bus");
        let quit = Arc::new(AtomicBool::new(false));
        let first_error = Arc::new(OnceLock::new());
        let (tx, events) = sync_channel(BACKLOG);
        let weak = pipeline.downgrade();
        let (q, fe) = (quit.clone(), first_error.clone());
        let label = pipeline.name().to_string();
        let thread = std::thread::Builder::new()
            .name(format!("{label}-bus"))
            .spawn(move || watch(bus, weak, label, q, fe, tx))?;
        Ok(BusWatcher {
            quit,
            thread: Some(thread),
            events,
            first_error,
        })
    }

    /// The first error any element reported, if one did.
    pub(crate) fn first_error(&self) -> Option<Error> {
        self.first_error.get().cloned()
    }

    /// Forgets the events nobody waited for, so the next `wait_for` sees only new ones.
    pub(crate) fn discard_backlog(&self) {
        while !matches!(
            self.events.try_recv(),
            Err(TryRecvError::Empty | TryRecvError::Disconnected)
        ) {}
    }

    /// Waits up to `timeout` for an event `wanted` accepts, discarding others; `None` on timeout.
    pub(crate) fn wait_for(
        &self,
        timeout: Duration,
        wanted: impl Fn(&PipelineEvent) -> bool,
    ) -> Option<PipelineEvent> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(event) if wanted(&event) => return Some(event),
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    pub(crate) fn stop(&mut self) {
        self.quit.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("a pipeline's bus watcher panicked");
        }
    }
}

fn watch(
    bus: gst::Bus,
    pipeline: gst::glib::WeakRef<gst::Pipeline>,
    label: String,
    quit: Arc<AtomicBool>,
    first_error: Arc<OnceLock<Error>>,
    events: SyncSender<PipelineEvent>,
) {
    while !quit.load(Ordering::Relaxed) {
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_nseconds(POLL.as_nanos() as u64)) else {
            continue;
        };
        let Some(p) = pipeline.upgrade() else { return };
        let Some(event) = PipelineEvent::from_message(&msg, p.upcast_ref()) else {
            continue;
        };
        match &event {
            PipelineEvent::Error(e) => {
                tracing::error!(pipeline = %label, error = %e, "pipeline error");
                let _ = first_error.set(e.clone());
            }
            PipelineEvent::Warning { element, message } => {
                tracing::warn!(pipeline = %label, %element, %message, "pipeline warning");
            }
            PipelineEvent::Eos => tracing::debug!(pipeline = %label, "pipeline drained"),
            PipelineEvent::Latency => {
                if let Err(e) = p.recalculate_latency() {
                    tracing::warn!(pipeline = %label, error = %e, "latency recalculation failed");
                }
            }
            PipelineEvent::Playing => tracing::debug!(pipeline = %label, "pipeline playing"),
        }
        drop(p);
        // Full: nobody is waiting, the event was logged above. Gone: the source is stopping.
        let _ = events.try_send(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bus_messages_become_typed_events() {
        gst::init().expect("GStreamer initialises");
        let pipeline = gst::Pipeline::with_name("p");
        let src = gst::ElementFactory::make("fakesrc")
            .name("src")
            .build()
            .expect("fakesrc is in core");
        pipeline.add(&src).expect("add");
        let owner: &gst::Object = pipeline.upcast_ref();

        let error = gst::message::Error::builder(gst::CoreError::Failed, "it broke")
            .src(&src)
            .build();
        let Some(PipelineEvent::Error(Error::Pipeline { element, message, .. })) =
            PipelineEvent::from_message(&error, owner)
        else {
            panic!("an error message is an error event");
        };
        assert_eq!((element.as_str(), message.as_str()), ("src", "it broke"));

        assert_eq!(
            PipelineEvent::from_message(&gst::message::Eos::new(), owner),
            Some(PipelineEvent::Eos)
        );
        let playing = || {
            gst::message::StateChanged::builder(
                gst::State::Paused,
                gst::State::Playing,
                gst::State::VoidPending,
            )
        };
        assert_eq!(
            PipelineEvent::from_message(&playing().src(&pipeline).build(), owner),
            Some(PipelineEvent::Playing)
        );
        assert_eq!(
            PipelineEvent::from_message(&playing().src(&src).build(), owner),
            None,
            "only the pipeline's"
        );
    }
}
