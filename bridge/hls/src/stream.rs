//! One stream: the [`StreamSink`] producers push into, and the [`StreamView`]s it publishes for
//! the origin.
//!
//! The sink owns the packager and the renditions' records and mutates them on the producer's
//! thread; after each call it publishes an immutable snapshot through a `watch` channel, which
//! is all the HTTP side ever reads (no lock is shared with the media path). Disk work goes to
//! the writer thread through a bounded queue.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use bytes::Bytes;
use tokio::sync::watch;

use crate::config::StreamConfig;
use crate::disk::{DiskJob, DiskWriter};
use crate::media::{AccessUnit, MediaSink, TrackConfig};
use crate::multivariant::MultivariantPlaylist;
use crate::packager::{Event, Packager};
use crate::playlist::RenditionReport;
use crate::rendition::{Rendition, RenditionView, Storage};
use crate::resource::{PlaylistKind, Resource};

/// An immutable snapshot of a stream.
#[derive(Debug, Clone, Default)]
pub struct StreamView {
    /// Every rendition the stream has had, in the order they appeared.
    pub renditions: Vec<Arc<RenditionView>>,
    /// The stream ended.
    pub ended: bool,
    /// Live playlists list parts (LL-HLS).
    pub low_latency: bool,
    /// Each rendition's live playlist (full, delta) rendered from this snapshot on first ask:
    /// the blocking requests that one publication releases (thousands, without an edge) share
    /// one rendering instead of making one each.
    live_texts: Vec<[OnceLock<Bytes>; 2]>,
}

impl StreamView {
    fn new(renditions: Vec<Arc<RenditionView>>, ended: bool, low_latency: bool) -> Self {
        let live_texts = renditions.iter().map(|_| Default::default()).collect();
        StreamView {
            renditions,
            ended,
            low_latency,
            live_texts,
        }
    }

    /// A rendition by name.
    pub fn rendition(&self, name: &str) -> Option<&Arc<RenditionView>> {
        self.renditions.iter().find(|r| r.name == name)
    }

    /// The live playlist of `name` (`skip`: the delta update), with its sibling renditions'
    /// reports, rendered once per snapshot.
    pub fn live_playlist(&self, name: &str, skip: bool) -> Option<Bytes> {
        let i = self.renditions.iter().position(|r| r.name == name)?;
        let render = || {
            let reports = self.reports_for(name);
            Bytes::from(self.renditions[i].live_playlist(skip, &reports, self.low_latency))
        };
        Some(match self.live_texts.get(i) {
            Some(slots) => slots[usize::from(skip)].get_or_init(render).clone(),
            None => render(),
        })
    }

    /// Rendition reports for the playlist of `name`: its active siblings.
    pub fn reports_for(&self, name: &str) -> Vec<RenditionReport> {
        self.renditions
            .iter()
            .filter(|r| r.name != name && r.active)
            .filter_map(|r| r.report())
            .collect()
    }

    /// The multivariant playlist pointing at `kind` playlists, or `None` while no rendition is
    /// listed: the current source's renditions, or after the end those with segments.
    pub fn multivariant(&self, kind: PlaylistKind) -> Option<String> {
        let listed: Vec<_> = self
            .renditions
            .iter()
            .filter(|r| if self.ended { !r.dvr.is_empty() } else { r.active })
            .map(|r| r.variant())
            .collect();
        if listed.is_empty() {
            return None;
        }
        Some(
            MultivariantPlaylist {
                renditions: &listed,
                kind,
            }
            .to_text(),
        )
    }
}

/// What the sink and the origin share about one stream.
#[derive(Debug)]
pub(crate) struct StreamShared {
    pub(crate) id: String,
    pub(crate) config: StreamConfig,
    pub(crate) tx: watch::Sender<Arc<StreamView>>,
}

/// A handle on a stream for the serving side (cheap to clone).
#[derive(Debug, Clone)]
pub struct StreamHandle {
    pub(crate) shared: Arc<StreamShared>,
}

impl StreamHandle {
    /// The stream id.
    pub fn id(&self) -> &str {
        &self.shared.id
    }

    /// The stream's settings.
    pub fn config(&self) -> &StreamConfig {
        &self.shared.config
    }

    /// The latest snapshot.
    pub fn view(&self) -> Arc<StreamView> {
        self.shared.tx.borrow().clone()
    }

    /// A receiver that sees every later snapshot (for blocking requests).
    pub fn subscribe(&self) -> watch::Receiver<Arc<StreamView>> {
        self.shared.tx.subscribe()
    }

    /// True once the producer called `finish` (or dropped the sink).
    pub fn is_ended(&self) -> bool {
        self.view().ended
    }
}

/// Where a stream's files go.
#[derive(Debug, Clone)]
pub(crate) struct StreamDisk {
    pub(crate) writer: DiskWriter,
    pub(crate) dir: PathBuf,
}

/// The [`MediaSink`] of one stream, from [`crate::Origin::create_stream`]. Dropping it
/// finishes the stream.
#[derive(Debug)]
pub struct StreamSink {
    shared: Arc<StreamShared>,
    packager: Packager,
    renditions: Vec<Rendition>,
    disk: Option<StreamDisk>,
    finished: bool,
}

impl StreamSink {
    pub(crate) fn new(shared: Arc<StreamShared>, disk: Option<StreamDisk>) -> Self {
        let packager = Packager::new(shared.config.packager());
        Self {
            shared,
            packager,
            renditions: Vec::new(),
            disk,
            finished: false,
        }
    }

    /// A handle on this sink's stream.
    pub fn handle(&self) -> StreamHandle {
        StreamHandle {
            shared: self.shared.clone(),
        }
    }

    fn store(&mut self, index: usize, storage: Vec<Storage>) {
        let Some(disk) = &self.disk else { return };
        let dir = disk.dir.join(self.renditions[index].name());
        for job in storage {
            match job {
                Storage::Store(resource, data) => {
                    let stored = disk
                        .writer
                        .try_send(DiskJob::Write(dir.join(resource.to_string()), data));
                    if let (false, Resource::Segment(msn)) = (stored, resource) {
                        self.renditions[index].mark_gap(msn);
                    }
                }
                Storage::Delete(resource) => {
                    disk.writer
                        .try_send(DiskJob::Remove(dir.join(resource.to_string())));
                }
            }
        }
    }

    /// Applies the packager's events to the renditions and publishes a new snapshot.
    fn drain(&mut self) {
        let config = self.shared.config;
        let mut ended = false;
        let mut changed = false;
        while let Some(event) = self.packager.poll() {
            changed = true;
            match event {
                Event::Rendition(start) => {
                    let storage = if let Some(rendition) = self.renditions.get_mut(start.rendition) {
                        rendition.restart(&start)
                    } else {
                        let (rendition, storage) =
                            Rendition::new(&start, config.live_window, config.dvr_window);
                        self.renditions.push(rendition);
                        storage
                    };
                    self.store(start.rendition, storage);
                }
                Event::Part(part) => {
                    if let Some(rendition) = self.renditions.get_mut(part.rendition) {
                        rendition.part(part);
                    }
                }
                Event::SegmentEnd { rendition, msn } => {
                    if let Some(r) = self.renditions.get_mut(rendition) {
                        let storage = r.segment_end(msn);
                        self.store(rendition, storage);
                    }
                }
                Event::Inactive { rendition } => {
                    if let Some(r) = self.renditions.get_mut(rendition) {
                        r.deactivate();
                    }
                }
                Event::Finished => {
                    for r in &mut self.renditions {
                        r.end();
                    }
                    ended = true;
                }
            }
        }
        if !changed {
            return;
        }
        let view = StreamView::new(
            self.renditions.iter_mut().map(Rendition::view).collect(),
            ended,
            self.shared.config.low_latency,
        );
        if ended {
            self.write_vod(&view);
        }
        self.shared.tx.send_replace(Arc::new(view));
    }

    /// The VOD playlists: one per rendition and the multivariant one, after every segment.
    fn write_vod(&self, view: &StreamView) {
        let Some(disk) = &self.disk else { return };
        for rendition in &self.renditions {
            let path = disk
                .dir
                .join(rendition.name())
                .join(Resource::Media(PlaylistKind::Vod).to_string());
            disk.writer
                .send(DiskJob::Write(path, Bytes::from(rendition.vod_playlist())));
        }
        if let Some(master) = view.multivariant(PlaylistKind::Vod) {
            let path = disk
                .dir
                .join(Resource::Multivariant(PlaylistKind::Vod).to_string());
            disk.writer.send(DiskJob::Write(path, Bytes::from(master)));
        }
    }
}

impl MediaSink for StreamSink {
    fn start(&mut self, tracks: Vec<TrackConfig>, anchor: SystemTime) {
        if self.finished {
            return;
        }
        self.packager.start(&tracks, anchor);
        self.drain();
    }

    fn push(&mut self, track: usize, au: AccessUnit) {
        if self.finished {
            return;
        }
        self.packager.push(track, au);
        self.drain();
    }

    fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.packager.finish();
        self.drain();
    }
}

impl Drop for StreamSink {
    fn drop(&mut self) {
        self.finish();
    }
}
