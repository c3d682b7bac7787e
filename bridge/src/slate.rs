//! The slate: a stream's renditions keep going while its publisher is away.
//!
//! A live producer (the transcoder of a room) pushes a stream's media through
//! [`Slated::live_input`]. When it has pushed nothing for [`SlateConfig::after`], the slate
//! (the built-in [`TestSource`], on the stream's ladder) starts and its access units go to the
//! packager instead, announced as a new source: the packager writes a DISCONTINUITY and new
//! init segments, and players keep playing the slate. When the live producer pushes again, the
//! stream switches back on its next video keyframe (a clean start for the packager, with the
//! slate filling in until then), announced as a source again, and the slate is stopped.
//!
//! ```text
//!   live producer ──► LiveInput ─┐
//!                                ├──► the stream's MediaSink (packager)
//!   slate (TestSource) ─► Slate ─┘      one of the two at a time
//!          ▲
//!   watchdog thread: nothing live for `after` ─► start the slate
//! ```
//!
//! The slate appears only after the live source has started once; `finish` from the live
//! producer ends the stream (and the slate with it). Stopping a slate drains its encoders for
//! up to a few seconds, so it happens on a thread of its own, never on the producer's.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use hls::{AccessUnit, MediaSink, TrackConfig};

use crate::test_source::{TestSource, TestSourceConfig};

/// How often the watchdog looks at the live source.
const WATCH_EVERY: Duration = Duration::from_millis(50);

/// When the slate comes and what it shows.
#[derive(Debug, Clone)]
pub struct SlateConfig {
    /// Silence from the live source after which the slate starts.
    pub after: Duration,
    /// The slate's pipeline: give it the stream's ladder, so that its renditions continue the
    /// live ones (same names, same variants in the multivariant playlist).
    pub source: TestSourceConfig,
}

impl Default for SlateConfig {
    fn default() -> Self {
        SlateConfig {
            after: Duration::from_secs(1),
            source: TestSourceConfig::default(),
        }
    }
}

/// Which source the stream's sink hears.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum On {
    /// Nothing yet: the live source has not started.
    Nothing,
    /// The live source.
    Live,
    /// The slate started as this generation (a slate of an older one is being stopped).
    Slate(u64),
    /// The live source finished: the stream has ended.
    Finished,
}

struct State {
    sink: Box<dyn MediaSink>,
    on: On,
    /// The live source's last announcement, repeated when it takes over from the slate.
    live_tracks: Option<(Vec<TrackConfig>, SystemTime)>,
    last_live: Instant,
    slate: Option<TestSource>,
    generation: u64,
    slates_shown: u64,
    closing: bool,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    config: SlateConfig,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A stream's sink with a slate in front of it. Dropping it stops the watchdog and the slate
/// (it does not finish the stream: the live producer does).
pub struct Slated {
    shared: Arc<Shared>,
    watchdog: Option<JoinHandle<()>>,
}

impl Slated {
    /// Put the slate in front of `sink` (the stream's packager input).
    pub fn new(sink: Box<dyn MediaSink>, config: SlateConfig) -> Slated {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                sink,
                on: On::Nothing,
                live_tracks: None,
                last_live: Instant::now(),
                slate: None,
                generation: 0,
                slates_shown: 0,
                closing: false,
            }),
            wake: Condvar::new(),
            config,
        });
        let watched = shared.clone();
        let watchdog = std::thread::Builder::new()
            .name("slate-watchdog".into())
            .spawn(move || watch(&watched))
            .ok();
        if watchdog.is_none() {
            tracing::warn!("no slate: its watchdog thread did not start");
        }
        Slated { shared, watchdog }
    }

    /// The sink the live producer pushes into.
    pub fn live_input(&self) -> LiveInput {
        LiveInput {
            shared: self.shared.clone(),
        }
    }

    /// Whether the slate is what the stream shows now.
    pub fn showing_slate(&self) -> bool {
        matches!(self.shared.lock().on, On::Slate(_))
    }

    /// How many times the slate has taken over so far.
    pub fn slates_shown(&self) -> u64 {
        self.shared.lock().slates_shown
    }
}

impl Drop for Slated {
    fn drop(&mut self) {
        let slate = {
            let mut st = self.shared.lock();
            st.closing = true;
            st.slate.take()
        };
        self.shared.wake.notify_all();
        if let Some(w) = self.watchdog.take() {
            let _ = w.join();
        }
        stop_later(slate);
    }
}

/// What the live producer pushes into (see [`MediaSink`] for the call order).
pub struct LiveInput {
    shared: Arc<Shared>,
}

impl MediaSink for LiveInput {
    fn start(&mut self, tracks: Vec<TrackConfig>, anchor: SystemTime) {
        let mut st = self.shared.lock();
        if st.on == On::Finished {
            return;
        }
        st.last_live = Instant::now();
        st.live_tracks = Some((tracks.clone(), anchor));
        st.on = On::Live;
        let slate = st.slate.take();
        st.sink.start(tracks, anchor);
        drop(st);
        stop_later(slate);
    }

    fn push(&mut self, track: usize, au: AccessUnit) {
        let mut st = self.shared.lock();
        match st.on {
            On::Live => {
                st.last_live = Instant::now();
                st.sink.push(track, au);
            }
            On::Slate(_) => {
                st.last_live = Instant::now();
                // Back on a video keyframe: the packager starts the live source cleanly there,
                // and the slate fills in until then.
                let video = st
                    .live_tracks
                    .as_ref()
                    .and_then(|(t, _)| t.get(track))
                    .is_some_and(|t| matches!(t, TrackConfig::H264 { .. }));
                if !(video && au.keyframe) {
                    return;
                }
                let Some((tracks, anchor)) = st.live_tracks.clone() else {
                    return;
                };
                tracing::info!("live source back: slate off");
                st.on = On::Live;
                let slate = st.slate.take();
                st.sink.start(tracks, anchor);
                st.sink.push(track, au);
                drop(st);
                stop_later(slate);
            }
            On::Nothing | On::Finished => {}
        }
    }

    fn finish(&mut self) {
        let mut st = self.shared.lock();
        if st.on == On::Finished {
            return;
        }
        st.on = On::Finished;
        let slate = st.slate.take();
        st.sink.finish();
        drop(st);
        self.shared.wake.notify_all();
        stop_later(slate);
    }
}

/// What one slate pipeline pushes into: heard only while its generation is on.
struct SlateInput {
    shared: Arc<Shared>,
    generation: u64,
}

impl MediaSink for SlateInput {
    fn start(&mut self, tracks: Vec<TrackConfig>, anchor: SystemTime) {
        let mut st = self.shared.lock();
        if st.on == On::Slate(self.generation) {
            st.sink.start(tracks, anchor);
        }
    }

    fn push(&mut self, track: usize, au: AccessUnit) {
        let mut st = self.shared.lock();
        if st.on == On::Slate(self.generation) {
            st.sink.push(track, au);
        }
    }

    /// A slate stopping never ends the stream.
    fn finish(&mut self) {}
}

/// The watchdog: starts the slate when the live source has been quiet for `after`.
fn watch(shared: &Arc<Shared>) {
    let mut st = shared.lock();
    loop {
        if st.closing || st.on == On::Finished {
            return;
        }
        if st.on == On::Live && st.last_live.elapsed() >= shared.config.after {
            st.generation += 1;
            let generation = st.generation;
            st.on = On::Slate(generation);
            st.slates_shown += 1;
            let quiet = st.last_live.elapsed();
            drop(st);
            tracing::info!(quiet_ms = quiet.as_millis() as u64, "live source quiet: slate on");
            let input = SlateInput {
                shared: shared.clone(),
                generation,
            };
            let started = TestSource::start(shared.config.source.clone(), Box::new(input));
            st = shared.lock();
            match started {
                Ok(source) if st.on == On::Slate(generation) && !st.closing => st.slate = Some(source),
                Ok(source) => stop_later(Some(source)),
                // The stream stays on this (empty) slate generation until live media switches
                // back; a pipeline that cannot start is not retried within one quiet spell.
                Err(e) => tracing::error!(error = %e, "the slate did not start"),
            }
            continue;
        }
        st = shared
            .wake
            .wait_timeout(st, WATCH_EVERY)
            .map(|(g, _)| g)
            .unwrap_or_else(|e| e.into_inner().0);
    }
}

/// Stop a slate pipeline without blocking the caller (its encoders drain for a moment).
fn stop_later(slate: Option<TestSource>) {
    let Some(slate) = slate else { return };
    let spawned = std::thread::Builder::new()
        .name("slate-stop".into())
        .spawn(move || {
            if let Err(e) = slate.stop() {
                tracing::warn!(error = %e, "the slate stopped with an error");
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "no thread to stop the slate on");
    }
}
