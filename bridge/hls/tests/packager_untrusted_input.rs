//! Property tests: whatever a producer pushes (gaps, reordering, missing keyframes, huge or
//! zero timestamps, empty data, unknown tracks, restarts), the packager never panics, and the
//! parts it announces stay numbered consistently.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use hls::packager::{Event, Packager, PackagerConfig};
use hls::{AccessUnit, TrackConfig};
use proptest::prelude::*;

fn sps_pps() -> (Bytes, Bytes) {
    (
        Bytes::from_static(&[
            0x67, 0x64, 0x00, 0x1e, 0xac, 0xb2, 0x01, 0x40, 0x5f, 0xf2, 0xe0, 0x22, 0x00, 0x00, 0x03, 0x00,
            0x02, 0x00, 0x00, 0x03, 0x00, 0x78, 0x1e, 0x2c, 0x5c, 0x90,
        ]),
        Bytes::from_static(&[0x68, 0xeb, 0xc3, 0xcb, 0x22, 0xc0]),
    )
}

fn tracks(frame_rate: (u32, u32)) -> Vec<TrackConfig> {
    let (sps, pps) = sps_pps();
    vec![
        TrackConfig::H264 {
            width: 640,
            height: 360,
            frame_rate,
            bitrate: 1,
            sps: vec![sps],
            pps: vec![pps],
        },
        TrackConfig::Aac {
            sample_rate: 48_000,
            channels: 2,
            bitrate: 1,
            audio_specific_config: Bytes::from_static(&[0x11, 0x90]),
        },
    ]
}

#[derive(Debug, Clone)]
enum Call {
    Push {
        track: usize,
        dts_ns: u64,
        cto_ns: u64,
        keyframe: bool,
        len: usize,
    },
    Start {
        fps: u32,
    },
}

fn timestamp() -> impl Strategy<Value = u64> {
    prop_oneof![
        0u64..10_000_000_000,
        Just(0u64),
        Just(u64::MAX),
        (u64::MAX - 1_000_000_000)..u64::MAX,
        any::<u64>(),
    ]
}

fn call() -> impl Strategy<Value = Call> {
    prop_oneof![
        20 => (0usize..4, timestamp(), 0u64..100_000_000, any::<bool>(), 0usize..64)
            .prop_map(|(track, dts_ns, cto_ns, keyframe, len)| Call::Push { track, dts_ns, cto_ns, keyframe, len }),
        1 => (0u32..121).prop_map(|fps| Call::Start { fps }),
    ]
}

/// A mostly well-formed stream with random defects, so that cutting logic is exercised too.
fn stream() -> impl Strategy<Value = Vec<Call>> {
    prop::collection::vec((call(), 0u8..4), 1..400).prop_map(|calls| {
        let mut clock = [0u64; 2];
        calls
            .into_iter()
            .map(|(call, mode)| match call {
                // Mode 0: keep the arbitrary call; otherwise make the timestamp plausible.
                Call::Push {
                    track,
                    keyframe,
                    len,
                    cto_ns,
                    ..
                } if mode != 0 && track < 2 => {
                    let step = if track == 0 { 33_333_333 } else { 21_333_333 };
                    clock[track] += step;
                    Call::Push {
                        track,
                        dts_ns: clock[track],
                        cto_ns,
                        keyframe: keyframe || mode == 1,
                        len,
                    }
                }
                other => other,
            })
            .collect()
    })
}

fn check_numbering(events: &[Event]) {
    // Per rendition: parts within a segment count 0, 1, 2...; a segment ends only after parts.
    let mut next: Vec<(u64, u32)> = Vec::new();
    for event in events {
        match event {
            Event::Part(p) => {
                if next.len() <= p.rendition {
                    next.resize(p.rendition + 1, (0, 0));
                }
                assert_eq!((p.msn, p.part), next[p.rendition], "part numbering");
                assert!(!p.data.is_empty());
                assert_eq!(&p.data[4..8], b"moof");
                next[p.rendition].1 += 1;
            }
            Event::SegmentEnd { rendition, msn } => {
                let n = next.get_mut(*rendition).expect("segment end after a part");
                assert_eq!(n.0, *msn);
                assert!(n.1 > 0, "segment end without parts");
                *n = (msn + 1, 0);
            }
            _ => {}
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn packager_never_panics_and_numbers_parts_consistently(calls in stream(), fps in 0u32..100) {
        let mut packager = Packager::new(PackagerConfig::default());
        let mut events = Vec::new();
        packager.start(&tracks((fps, 1)), SystemTime::UNIX_EPOCH);
        for call in calls {
            match call {
                Call::Push { track, dts_ns, cto_ns, keyframe, len } => {
                    // The largest timestamps a Duration can hold, too.
                    let dts = if dts_ns == u64::MAX { Duration::MAX } else { Duration::from_nanos(dts_ns) };
                    let au = AccessUnit {
                        pts: dts.saturating_add(Duration::from_nanos(cto_ns)),
                        dts,
                        keyframe,
                        data: Bytes::from(vec![0u8; len]),
                    };
                    packager.push(track, au);
                }
                Call::Start { fps } => packager.start(&tracks((fps, 1)), SystemTime::UNIX_EPOCH),
            }
            events.extend(std::iter::from_fn(|| packager.poll()));
        }
        packager.finish();
        events.extend(std::iter::from_fn(|| packager.poll()));
        prop_assert_eq!(events.last(), Some(&Event::Finished));
        check_numbering(&events);
    }

    #[test]
    fn odd_configurations_never_panic(
        part_ms in 0u64..5000,
        segment_ms in 0u64..20000,
        fps in (0u32..1000, 0u32..1002),
        sample_rate in 0u32..200_000,
    ) {
        let config = PackagerConfig {
            part_target: Duration::from_millis(part_ms),
            segment_target: Duration::from_millis(segment_ms),
        };
        let mut packager = Packager::new(config);
        let mut configs = tracks(fps);
        configs.push(TrackConfig::Aac {
            sample_rate,
            channels: 0,
            bitrate: 0,
            audio_specific_config: Bytes::from_static(&[0xff]),
        });
        packager.start(&configs, SystemTime::UNIX_EPOCH);
        for n in 0..200u64 {
            let t = Duration::from_millis(n * 17);
            let au = AccessUnit { pts: t, dts: t, keyframe: n.is_multiple_of(50), data: Bytes::from_static(&[1]) };
            packager.push((n % 3) as usize, au);
        }
        packager.finish();
        let events: Vec<Event> = std::iter::from_fn(|| packager.poll()).collect();
        check_numbering(&events);
    }
}
