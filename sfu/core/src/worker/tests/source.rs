//! In-process sources (ingest) as room publishers: viewers, events, keyframe requests and
//! replacement work as for a WHIP session.

use std::sync::Arc;
use std::time::Duration;

use str0m::format::{Codec, CodecSpec, FormatParams, PayloadParams};
use str0m::media::{Frequency, MediaKind};

use super::sim::{ONE_LAYER, Sim, vp8_packet};
use super::video_count;
use crate::ids::{RoomId, SessionId};
use crate::session::SessionKind;
use crate::source::{KeyframeSignal, SourcePacket};
use crate::worker::{Command, Input, SfuEvent};

const SOURCE: SessionId = SessionId(9_000);
/// The publisher tag the source writes into its packets (the sim's viewers read it back).
const TAG: u8 = 77;

fn opus_params() -> PayloadParams {
    PayloadParams::new(
        111.into(),
        None,
        CodecSpec {
            codec: Codec::Opus,
            clock_rate: Frequency::FORTY_EIGHT_KHZ,
            channels: Some(2),
            format: FormatParams::default(),
        },
    )
}

fn vp8_params() -> PayloadParams {
    PayloadParams::new(
        96.into(),
        None,
        CodecSpec {
            codec: Codec::Vp8,
            clock_rate: Frequency::NINETY_KHZ,
            channels: None,
            format: FormatParams::default(),
        },
    )
}

/// A source on `room`'s home worker that sends one single-packet VP8 frame per call.
struct TestSource {
    id: SessionId,
    room: &'static str,
    frame: u32,
    keyframes: KeyframeSignal,
}

impl TestSource {
    fn start(sim: &mut Sim, id: SessionId, room: &'static str) -> TestSource {
        let keyframes = KeyframeSignal::default();
        let home = sim.home(room);
        sim.workers[home].handle_input(Input::Command(
            sim.now,
            Command::AddSource {
                id,
                room: RoomId::new(room),
                keyframes: keyframes.clone(),
            },
        ));
        TestSource {
            id,
            room,
            frame: 0,
            keyframes,
        }
    }

    /// Send frames for `d`, a keyframe every second.
    fn run(&mut self, sim: &mut Sim, d: Duration) {
        let until = sim.now + d;
        while sim.now < until {
            let key = self.frame.is_multiple_of(30);
            let payload = vp8_packet(true, key, 0, self.frame, TAG, 300);
            let packet = SourcePacket {
                kind: MediaKind::Video,
                params: vp8_params(),
                seq: u64::from(self.frame) + 1,
                rtp_time: self.frame.wrapping_mul(3_000),
                marker: true,
                capture: None,
                payload: Arc::from(payload),
            };
            let audio = SourcePacket {
                kind: MediaKind::Audio,
                params: opus_params(),
                seq: u64::from(self.frame) + 1,
                rtp_time: self.frame.wrapping_mul(1_600),
                marker: false,
                capture: None,
                payload: Arc::from(&[0xfc, TAG, 0, 0][..]),
            };
            let home = sim.home(self.room);
            sim.workers[home].handle_input(Input::Command(
                sim.now,
                Command::SourceMedia {
                    id: self.id,
                    received: sim.now,
                    packets: vec![packet, audio],
                },
            ));
            self.frame += 1;
            sim.run_for(Duration::from_millis(33));
        }
    }
}

fn publisher_events(sim: &Sim, id: SessionId) -> (usize, usize, usize) {
    let (mut connected, mut video, mut closed) = (0, 0, 0);
    for e in &sim.events {
        match e {
            SfuEvent::Connected {
                session,
                kind: SessionKind::Publisher,
                ..
            } if *session == id => connected += 1,
            SfuEvent::PublisherVideo { session, codec, .. } if *session == id => {
                assert_eq!(*codec, Codec::Vp8);
                video += 1;
            }
            SfuEvent::Closed {
                session,
                kind: SessionKind::Publisher,
                ..
            } if *session == id => closed += 1,
            _ => {}
        }
    }
    (connected, video, closed)
}

#[test]
fn viewers_on_every_worker_get_a_sources_media_and_it_reports_like_a_publisher() {
    let mut sim = Sim::new(2);
    let home = sim.home("room");
    let mut source = TestSource::start(&mut sim, SOURCE, "room");
    source.run(&mut sim, Duration::from_secs(1));
    let local = sim.view("room", home);
    let remote = sim.view("room", 1 - home);
    let tap = sim.tap("room", 100_000);
    source.run(&mut sim, Duration::from_secs(3));
    let tapped = tap.received();
    for kind in [MediaKind::Audio, MediaKind::Video] {
        let n = tapped.iter().filter(|r| r.kind == kind).count();
        assert!(
            n > 45,
            "the LL-HLS tap got {n} {kind:?} packets of the source in 3 s"
        );
    }
    for viewer in [local, remote] {
        let n = video_count(&sim, viewer, Some(TAG));
        assert!(
            n > 45,
            "viewer {viewer} got {n} of the source's video packets in 3 s"
        );
    }
    assert_eq!(publisher_events(&sim, SOURCE), (1, 1, 0));

    // A viewer that connects asks for a keyframe: the source hears it.
    assert!(
        source.keyframes.take(),
        "the viewers' keyframe requests never reached the source"
    );
}

#[test]
fn a_whip_publisher_replaces_a_source_and_a_closed_source_ends() {
    let mut sim = Sim::new(1);
    let mut source = TestSource::start(&mut sim, SOURCE, "room");
    source.run(&mut sim, Duration::from_millis(500));
    let publisher = sim.publish("room", &ONE_LAYER, 1_000);
    assert!(sim.run_until(Duration::from_secs(5), |s| s.clients[publisher].connected));
    assert_eq!(
        publisher_events(&sim, SOURCE),
        (1, 1, 1),
        "the replaced source is not closed"
    );

    // Its packets still in flight are ignored, and a source replaces the session in turn.
    source.run(&mut sim, Duration::from_millis(100));
    let second = SessionId(9_001);
    let mut source = TestSource::start(&mut sim, second, "room");
    source.run(&mut sim, Duration::from_millis(300));
    assert!(
        sim.events.iter().any(
            |e| matches!(e, SfuEvent::Closed { session, .. } if *session == sim.clients[publisher].session)
        ),
        "the WHIP publisher replaced by a source is not closed"
    );
    sim.workers[0].handle_input(Input::Command(sim.now, Command::Close { id: second }));
    sim.run_for(Duration::from_millis(100));
    assert_eq!(publisher_events(&sim, second), (1, 1, 1));
}
