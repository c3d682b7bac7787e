//! A room's bridge end to end, with GStreamer encoders as the publisher: it goes live on the
//! ladder, the slate covers the publisher's absence and the live source comes back, a decoder
//! fault restarts the transcoder while the stream goes on, lost packets (VP8, and AV1 through
//! our depacketizer) cost a keyframe request and no restart, garbage payloads crash nothing,
//! and stopping finalises the stream once.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bridge::encoder::{EncoderChoice, VideoEncoder};
use bridge::live::{BridgeConfig, BridgeState, BridgeStats, PacketSource, RoomBridge, StreamSettings};
use common::recording::{Recording, RecordingSink};
use common::rtp_source::{Publish, RtpSource};
use hls::{MediaSink, TrackConfig};
use sfu::{MediaKind, TapPacket};
use str0m::format::Codec;

/// The fixture publisher as a room's tap, with a switch that silences it (a publisher drop)
/// and one that corrupts its video (a broken encoder).
struct Fixture {
    source: RtpSource,
    paused: Arc<AtomicBool>,
    /// Video packets still to corrupt.
    corrupt: Arc<AtomicU32>,
    /// Video packets still to lose.
    lose: Arc<AtomicU32>,
    /// Keyframe requests the bridge made.
    requests: Arc<AtomicU32>,
}

impl PacketSource for Fixture {
    fn recv_timeout(&self, timeout: Duration) -> Result<TapPacket, RecvTimeoutError> {
        let mut p = self.source.packets.recv_timeout(timeout)?;
        if self.paused.load(Ordering::Relaxed) {
            return Err(RecvTimeoutError::Timeout);
        }
        if p.kind == MediaKind::Video
            && self
                .lose
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok()
        {
            return Err(RecvTimeoutError::Timeout);
        }
        if p.kind == MediaKind::Video
            && self
                .corrupt
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok()
        {
            // The descriptor and frame header intact, the data cut short: VP8 decoders
            // refuse a truncated first partition.
            let mut bytes = p.payload.to_vec();
            bytes.truncate(20);
            p.payload = Arc::from(bytes);
        }
        Ok(p)
    }

    fn request_keyframe(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.source.request_keyframe();
    }
}

struct Rig {
    bridge: RoomBridge,
    sink: RecordingSink,
    paused: Arc<AtomicBool>,
    corrupt: Arc<AtomicU32>,
    lose: Arc<AtomicU32>,
    requests: Arc<AtomicU32>,
    stats: Arc<BridgeStats>,
}

fn rig() -> Rig {
    rig_with(Codec::Vp8)
}

fn rig_with(video: Codec) -> Rig {
    let source = RtpSource::start(Publish {
        video: Some(video),
        width: 640,
        height: 360,
        audio: true,
        capture_times: true,
    });
    let paused = Arc::new(AtomicBool::new(false));
    let corrupt = Arc::new(AtomicU32::new(0));
    let lose = Arc::new(AtomicU32::new(0));
    let requests = Arc::new(AtomicU32::new(0));
    let sink = RecordingSink::default();
    let opened = sink.clone();
    let mut config = BridgeConfig::new(EncoderChoice {
        encoder: VideoEncoder::X264,
        gpu_decode: false,
    });
    config.ladder = vec![360];
    config.keyframe_interval = Duration::from_secs(1);
    let stats = Arc::new(BridgeStats::default());
    let bridge = RoomBridge::start(
        "room",
        Fixture {
            source,
            paused: paused.clone(),
            corrupt: corrupt.clone(),
            lose: lose.clone(),
            requests: requests.clone(),
        },
        Box::new(move || Ok(Box::new(opened) as Box<dyn MediaSink>)),
        config,
        StreamSettings::default(),
        stats.clone(),
    )
    .expect("the bridge starts");
    Rig {
        bridge,
        sink,
        paused,
        corrupt,
        lose,
        requests,
        stats,
    }
}

fn recording<T>(sink: &RecordingSink, f: impl FnOnce(&Recording) -> T) -> T {
    f(&sink.0.lock().expect("recording lock"))
}

/// Wait up to `limit` for `done`.
fn wait_for(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    done()
}

/// Access units of the current source's video track.
fn video_units(sink: &RecordingSink) -> usize {
    recording(sink, |r| r.units.first().map_or(0, Vec::len))
}

#[test]
fn a_room_goes_live_the_slate_covers_a_drop_and_the_live_source_comes_back() {
    let rig = rig();
    assert!(
        wait_for(Duration::from_secs(10), || video_units(&rig.sink) > 30),
        "no live media within 10 s: {:?}",
        rig.bridge.health()
    );
    let health = rig.bridge.health();
    assert_eq!(health.state, BridgeState::Live);
    assert_eq!(health.renditions, ["640x360"]);
    assert_eq!((health.video_codec.as_deref(), health.audio), (Some("Vp8"), true));
    assert_eq!(health.clock, Some("capture"));
    let (tracks, _) = recording(&rig.sink, |r| r.starts[0].clone());
    assert!(matches!(
        tracks[..],
        [
            TrackConfig::H264 {
                width: 640,
                height: 360,
                ..
            },
            TrackConfig::Aac { .. }
        ]
    ));

    // The publisher goes quiet: the slate takes over, on the same renditions.
    rig.paused.store(true, Ordering::Relaxed);
    assert!(
        wait_for(Duration::from_secs(6), || rig.bridge.health().state
            == BridgeState::Slate),
        "no slate: {:?}",
        rig.bridge.health()
    );
    assert!(wait_for(Duration::from_secs(5), || recording(&rig.sink, |r| r
        .starts
        .len())
        >= 2));
    let (slate_tracks, _) = recording(&rig.sink, |r| r.starts[1].clone());
    assert_eq!(
        slate_tracks.len(),
        tracks.len(),
        "the slate has the stream's tracks"
    );
    std::thread::sleep(Duration::from_secs(1));

    // Back: a new run, announced again, and media flowing.
    rig.paused.store(false, Ordering::Relaxed);
    assert!(
        wait_for(Duration::from_secs(8), || {
            rig.bridge.health().state == BridgeState::Live
                && recording(&rig.sink, |r| r.starts.len()) >= 3
                && video_units(&rig.sink) > 30
        }),
        "the live source did not come back: {:?}, {} starts",
        rig.bridge.health(),
        recording(&rig.sink, |r| r.starts.len())
    );
    assert_eq!(rig.stats.slates.load(Ordering::Relaxed), 1);
    assert!(rig.stats.resumes.load(Ordering::Relaxed) >= 1);
    rig.bridge.stop();
    assert_eq!(recording(&rig.sink, |r| r.finished), 1, "the stream ends once");
}

#[test]
fn a_decoder_fault_restarts_the_transcoder_and_garbage_crashes_nothing() {
    let rig = rig();
    assert!(wait_for(Duration::from_secs(10), || video_units(&rig.sink) > 30));
    let starts_before = recording(&rig.sink, |r| r.starts.len());

    // Two seconds of truncated VP8: the decoder gives up and the pipeline errors.
    rig.corrupt.store(120, Ordering::Relaxed);
    let restarted = Arc::new(Mutex::new(None));
    let seen = restarted.clone();
    assert!(
        wait_for(Duration::from_secs(15), || {
            let h = rig.bridge.health();
            if h.restarts >= 1 {
                *seen.lock().expect("lock") = Some(h);
                return true;
            }
            false
        }),
        "no restart after broken video: {:?}",
        rig.bridge.health()
    );
    let at_restart = restarted.lock().expect("lock").clone().expect("set above");
    assert!(
        at_restart.last_error.is_some(),
        "the fault is reported: {at_restart:?}"
    );
    assert!(rig.stats.faults.load(Ordering::Relaxed) >= 1);

    // The stream goes on from a new run.
    assert!(
        wait_for(Duration::from_secs(10), || {
            rig.bridge.health().state == BridgeState::Live
                && recording(&rig.sink, |r| r.starts.len()) > starts_before
                && video_units(&rig.sink) > 30
        }),
        "the stream did not recover: {:?}",
        rig.bridge.health()
    );
    rig.bridge.stop();
    assert_eq!(recording(&rig.sink, |r| r.finished), 1);
}

/// Five video packets lost once the stream runs: the bridge asks the publisher for a
/// keyframe, and the stream goes on without a restart.
fn assert_recovers_from_lost_packets(rig: &Rig) {
    assert!(wait_for(Duration::from_secs(10), || video_units(&rig.sink) > 30));
    let before = rig.requests.load(Ordering::Relaxed);
    rig.lose.store(5, Ordering::Relaxed);
    assert!(
        wait_for(Duration::from_secs(5), || rig.requests.load(Ordering::Relaxed)
            > before),
        "no keyframe request after lost packets"
    );
    let frames = video_units(&rig.sink);
    assert!(wait_for(Duration::from_secs(5), || video_units(&rig.sink) > frames + 30));
    assert_eq!(rig.bridge.health().restarts, 0);
}

#[test]
fn lost_packets_make_the_bridge_ask_the_publisher_for_a_keyframe() {
    let rig = rig();
    // The depayloader waits for a keyframe and asks for one upstream.
    assert_recovers_from_lost_packets(&rig);
    rig.bridge.stop();
}

#[test]
fn lost_av1_packets_are_recovered_at_a_keyframe_the_bridge_asked_for() {
    let rig = rig_with(Codec::Av1);
    // Our depacketizer drops to the next keyframe and asks for it.
    assert_recovers_from_lost_packets(&rig);
    assert_eq!(rig.bridge.health().video_codec.as_deref(), Some("Av1"));
    rig.bridge.stop();
}
