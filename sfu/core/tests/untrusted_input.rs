//! Property tests: everything the core parses comes from the network or a client, and no
//! input may panic it. Arbitrary RTP payloads, ICE fragments and SDP offers must come back
//! as values or errors.

use std::time::Instant;

use proptest::prelude::*;
use sfu_core::{CodecKind, IceFragment, SessionConfig, SessionKind, build_session, is_keyframe};

fn config() -> SessionConfig {
    SessionConfig {
        candidates: vec!["127.0.0.1:40000".parse().expect("valid address")],
        video_codec: None,
        estimate_bandwidth: true,
        initial_bwe_bps: 1_000_000,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn keyframe_detection_never_panics(payload in proptest::collection::vec(any::<u8>(), 0..64)) {
        for codec in [CodecKind::Vp8, CodecKind::Vp9, CodecKind::H264, CodecKind::Av1, CodecKind::Audio, CodecKind::Other] {
            let _ = is_keyframe(codec, &payload);
        }
    }

    #[test]
    fn ice_fragments_parse_or_fail(body in "(a=[a-z-]{0,16}:?[ -~]{0,40}\r?\n){0,6}") {
        let _ = IceFragment::parse(&body);
    }

    #[test]
    fn arbitrary_text_offers_are_refused_cleanly(offer in "v=0\r\n[ -~\r\n]{0,300}") {
        prop_assert!(build_session(&config(), SessionKind::Publisher, &offer, Instant::now()).is_err());
    }
}

/// Mutations of a real offer: every line dropped in turn, and every line garbled.
#[test]
fn mutated_real_offers_never_panic() {
    let offer = include_str!("../../../tests/fixtures/whep-offer.sdp");
    let lines: Vec<&str> = offer.split("\r\n").collect();
    for i in 0..lines.len() {
        let dropped: Vec<&str> = lines
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, l)| *l)
            .collect();
        let _ = build_session(
            &config(),
            SessionKind::Subscriber,
            &dropped.join("\r\n"),
            Instant::now(),
        );
        let mut garbled = lines.clone();
        let bad = format!("{}\u{0}\u{ffff}:::", &lines[i][..lines[i].len().min(3)]);
        garbled[i] = &bad;
        let _ = build_session(
            &config(),
            SessionKind::Subscriber,
            &garbled.join("\r\n"),
            Instant::now(),
        );
    }
    // The unmodified offer is accepted.
    build_session(&config(), SessionKind::Subscriber, offer, Instant::now())
        .expect("the real offer is answered");
}
