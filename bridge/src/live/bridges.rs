//! Every live stream's bridge: started when a stream goes live, stopped when it ends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use hls::MediaSink;
use sfu::SfuHandle;

use super::exposition::BridgeMetrics;
use super::health::{BridgeHealth, BridgeStats};
use super::room_bridge::RoomBridge;
use super::settings::{BridgeConfig, StreamSettings};
use crate::ingest::RoomIngest;

/// The bridges of this process. Cheap to clone.
#[derive(Clone)]
pub struct Bridges {
    inner: Arc<Inner>,
}

struct Inner {
    sfu: SfuHandle,
    origin: hls::Origin,
    config: BridgeConfig,
    /// Ingest sources, whose H.264 a bridge copies as its top rung.
    ingest: Option<RoomIngest>,
    running: Mutex<HashMap<String, RoomBridge>>,
    stats: Arc<BridgeStats>,
}

impl std::fmt::Debug for Bridges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bridges({} live, {})", self.count(), self.inner.config.encoder)
    }
}

impl Bridges {
    /// Bridges from `sfu`'s rooms into `origin`'s streams; the rooms `ingest` publishes have
    /// their source's H.264 as the top rung where it fits.
    pub fn new(
        sfu: SfuHandle,
        origin: hls::Origin,
        config: BridgeConfig,
        ingest: Option<RoomIngest>,
    ) -> Bridges {
        tracing::info!(
            encoder = %config.encoder,
            ladder = ?config.ladder,
            preset = config.speed_preset.nick(),
            "LL-HLS bridge ready"
        );
        Bridges {
            inner: Arc::new(Inner {
                sfu,
                origin,
                config,
                ingest,
                running: Mutex::new(HashMap::new()),
                stats: Arc::default(),
            }),
        }
    }

    fn running(&self) -> MutexGuard<'_, HashMap<String, RoomBridge>> {
        self.inner.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The server's bridge settings.
    pub fn config(&self) -> &BridgeConfig {
        &self.inner.config
    }

    /// Counters over every bridge.
    pub fn stats(&self) -> &BridgeStats {
        &self.inner.stats
    }

    /// How many streams are bridged now.
    pub fn count(&self) -> usize {
        self.running().len()
    }

    /// Stream `stream` is live (its publisher connected, or came back): bridge it, unless it
    /// is bridged already.
    pub fn stream_live(&self, stream: &str, settings: StreamSettings) -> Result<(), String> {
        let mut running = self.running();
        if running.contains_key(stream) {
            return Ok(());
        }
        let tap = self
            .inner
            .sfu
            .tap(stream, self.inner.config.tap_capacity)
            .map_err(|e| format!("cannot tap the room: {e}"))?;
        let origin = self.inner.origin.clone();
        let id = stream.to_string();
        let hls = settings.hls();
        let open = Box::new(move || {
            origin
                .create_stream(&id, hls)
                .map(|sink| Box::new(sink) as Box<dyn MediaSink>)
                .map_err(|e| e.to_string())
        });
        let config = self.inner.config.clone();
        let stats = self.inner.stats.clone();
        let bridge = match &self.inner.ingest {
            Some(ingest) => RoomBridge::start(stream, (tap, ingest.clone()), open, config, settings, stats),
            None => RoomBridge::start(stream, tap, open, config, settings, stats),
        }
        .map_err(|e| format!("no thread for the bridge: {e}"))?;
        tracing::info!(%stream, "bridging to LL-HLS");
        running.insert(stream.to_string(), bridge);
        Ok(())
    }

    /// Stream `stream` ended: its bridge drains and its VOD is finalised, on a thread of its
    /// own (the caller does not wait).
    pub fn stream_ended(&self, stream: &str) {
        let Some(bridge) = self.running().remove(stream) else {
            return;
        };
        let spawned = std::thread::Builder::new()
            .name(format!("bridge-stop-{stream}"))
            .spawn(move || bridge.stop());
        if let Err(e) = spawned {
            tracing::error!(%stream, "no thread to stop the bridge on: {e}");
        }
    }

    /// The counters for `/metrics`.
    pub fn metrics(&self) -> BridgeMetrics {
        let stats = &self.inner.stats;
        let read = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
        let encoder = self.inner.config.encoder;
        BridgeMetrics {
            encoder: encoder.encoder.name(),
            decode: if encoder.gpu_decode { "gpu" } else { "cpu" },
            streams: self.count() as u64,
            starts: read(&stats.starts),
            faults: read(&stats.faults),
            resumes: read(&stats.resumes),
            slates: read(&stats.slates),
        }
    }

    /// How stream `stream`'s bridge is doing, if it has one.
    pub fn health(&self, stream: &str) -> Option<BridgeHealth> {
        self.running().get(stream).map(RoomBridge::health)
    }

    /// Stop every bridge and wait for them (shutdown): each stream's VOD is finalised.
    pub fn stop_all(&self) {
        let bridges: Vec<RoomBridge> = self.running().drain().map(|(_, b)| b).collect();
        for bridge in bridges {
            bridge.stop();
        }
    }
}
