//! A room's transcoder against real encoders: RTP from GStreamer's VP8, VP9, H.264 and AV1
//! (libaom, packetised by the fixture) encoders and Opus (as a browser or OBS sends them)
//! through the preroll and the transcoder into a recording sink. Checks the tracks announced, GOPs aligned on every rung, timestamps
//! that follow the sender's clock, and a clean drain.

mod common;

use std::time::{Duration, Instant, SystemTime};

use bridge::encoder::{EncoderChoice, VideoEncoder};
use bridge::ladder::{self, SpeedPreset};
use bridge::transcode::{Plan, Preroll, TranscodeConfig, Transcoder, VideoCodec};
use common::recording::{Recording, RecordingSink};
use common::rtp_source::{Publish, RtpSource};
use hls::TrackConfig;
use str0m::format::Codec;

struct Outcome {
    plan_video: Option<bridge::transcode::VideoInput>,
    plan_audio: bool,
    recording: Recording,
    /// When the transcoder was started and stopped.
    started: SystemTime,
}

/// Publish `publish` for about `seconds` through the preroll and a transcoder with `ladder`.
fn run(publish: Publish, ladder_heights: &[u32], seconds: u64) -> Outcome {
    let source = RtpSource::start(publish);
    let mut preroll = Preroll::default();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !preroll.ready(Instant::now()) {
        assert!(Instant::now() < deadline, "the preroll never became ready");
        if let Ok(p) = source.packets.recv_timeout(Duration::from_millis(50)) {
            preroll.push(p);
        }
    }
    let Plan {
        video,
        audio,
        packets,
    } = preroll.take();
    let (w, h) = video.and_then(|v| v.size).unwrap_or((1280, 720));
    let config = TranscodeConfig {
        video,
        audio,
        renditions: ladder::for_source(w, h, ladder_heights),
        frame_rate: 30,
        keyframe_interval: Duration::from_secs(1),
        encoder: EncoderChoice {
            encoder: VideoEncoder::X264,
            gpu_decode: false,
        },
        speed_preset: SpeedPreset::Ultrafast,
        audio_bitrate: 96_000,
        copy_top: None,
        audio_copy: None,
    };
    let sink = RecordingSink::default();
    let started = SystemTime::now();
    let mut transcoder = Transcoder::start("transcode-test", &config, packets, Box::new(sink.clone()))
        .unwrap_or_else(|e| panic!("the transcoder did not start: {e}"));
    let until = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < until {
        if let Ok(p) = source.packets.recv_timeout(Duration::from_millis(50)) {
            transcoder.push(&p);
        }
        transcoder.health().unwrap_or_else(|e| panic!("{e}"));
    }
    drop(source);
    transcoder.stop().unwrap_or_else(|e| panic!("{e}"));
    Outcome {
        plan_video: video,
        plan_audio: audio.is_some(),
        recording: sink.take(),
        started,
    }
}

fn video_sizes(tracks: &[TrackConfig]) -> Vec<(u32, u32)> {
    tracks
        .iter()
        .filter_map(|t| match t {
            TrackConfig::H264 { width, height, .. } => Some((*width, *height)),
            TrackConfig::Aac { .. } => None,
        })
        .collect()
}

/// Keyframe pts of every video track, which must be the same list on every rung.
fn assert_aligned_gops(r: &Recording, rungs: usize) -> Vec<Duration> {
    let keyframes: Vec<Vec<Duration>> = (0..rungs)
        .map(|t| {
            r.units[t]
                .iter()
                .filter(|(au, _)| au.keyframe)
                .map(|(au, _)| au.pts)
                .collect()
        })
        .collect();
    for (t, units) in r.units.iter().take(rungs).enumerate() {
        assert!(units.len() > 30, "rung {t} has {} access units", units.len());
        assert!(units[0].0.keyframe, "rung {t} starts without a keyframe");
    }
    for t in 1..rungs {
        assert_eq!(
            keyframes[t], keyframes[0],
            "rung {t}'s keyframes differ from the top rung's"
        );
    }
    assert!(keyframes[0].len() >= 2, "keyframes: {:?}", keyframes[0]);
    keyframes[0].clone()
}

/// Every frame of the top rung is placed at its capture time (`anchor` + pts): never after
/// it reached the sink, and not long before (the transcoder's own delay).
fn assert_placed_at_capture_time(r: &Recording, anchor: SystemTime) {
    for (au, reached) in &r.units[0] {
        let at = anchor + au.pts;
        assert!(at <= *reached, "a frame placed after it was encoded");
        let delay = reached.duration_since(at).expect("checked above");
        assert!(
            delay < Duration::from_secs(2),
            "a frame reached the sink {delay:?} after capture"
        );
    }
}

#[test]
fn vp8_with_opus_becomes_an_aligned_three_rung_ladder_and_aac() {
    let out = run(
        Publish {
            video: Some(Codec::Vp8),
            width: 1280,
            height: 720,
            audio: true,
            capture_times: true,
        },
        &[720, 480, 360],
        4,
    );
    let video = out.plan_video.expect("the plan has video");
    assert_eq!((video.codec, video.size), (VideoCodec::Vp8, Some((1280, 720))));
    assert!(out.plan_audio);
    let r = &out.recording;
    assert_eq!(r.starts.len(), 1, "one source");
    let (tracks, anchor) = &r.starts[0];
    assert_eq!(video_sizes(tracks), [(1280, 720), (854, 480), (640, 360)]);
    assert!(matches!(
        tracks[3],
        TrackConfig::Aac {
            sample_rate: 48_000,
            channels: 2,
            ..
        }
    ));
    let keyframes = assert_aligned_gops(r, 3);
    for pair in keyframes.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            (Duration::from_millis(950)..Duration::from_millis(1050)).contains(&gap),
            "keyframes {gap:?} apart"
        );
    }
    assert_placed_at_capture_time(r, *anchor);
    assert!(*anchor >= out.started - Duration::from_secs(3) && *anchor <= out.started);
    assert!(r.units[3].len() > 100, "{} AAC frames", r.units[3].len());
    assert_eq!(r.finished, 1, "stop finishes the sink once");
}

#[test]
fn h264_without_b_frames_and_video_only() {
    let out = run(
        Publish {
            video: Some(Codec::H264),
            width: 640,
            height: 360,
            audio: false,
            capture_times: false,
        },
        &[720, 480, 360],
        3,
    );
    let video = out.plan_video.expect("the plan has video");
    assert_eq!((video.codec, video.size), (VideoCodec::H264, Some((640, 360))));
    assert!(!out.plan_audio);
    let (tracks, _) = &out.recording.starts[0];
    assert_eq!(video_sizes(tracks), [(640, 360)], "nothing above the source");
    assert_eq!(tracks.len(), 1, "no audio track");
    assert_aligned_gops(&out.recording, 1);
}

#[test]
fn vp9_between_rungs_gets_its_own_size_on_top() {
    let out = run(
        Publish {
            video: Some(Codec::Vp9),
            width: 960,
            height: 540,
            audio: false,
            capture_times: true,
        },
        &[720, 360],
        3,
    );
    let video = out.plan_video.expect("the plan has video");
    assert_eq!((video.codec, video.size), (VideoCodec::Vp9, Some((960, 540))));
    assert_eq!(video_sizes(&out.recording.starts[0].0), [(960, 540), (640, 360)]);
    assert_aligned_gops(&out.recording, 2);
}

#[test]
fn av1_is_depacketized_by_the_bridge_into_a_ladder_with_aac() {
    let out = run(
        Publish {
            video: Some(Codec::Av1),
            width: 640,
            height: 360,
            audio: true,
            capture_times: true,
        },
        &[720, 360, 240],
        4,
    );
    let video = out.plan_video.expect("the plan has video");
    assert_eq!((video.codec, video.size), (VideoCodec::Av1, Some((640, 360))));
    assert!(out.plan_audio);
    let r = &out.recording;
    assert_eq!(r.starts.len(), 1, "one source");
    let (tracks, anchor) = &r.starts[0];
    assert_eq!(
        video_sizes(tracks),
        [(640, 360), (426, 240)],
        "nothing above the source"
    );
    assert!(matches!(tracks[2], TrackConfig::Aac { .. }));
    assert_aligned_gops(r, 2);
    assert_placed_at_capture_time(r, *anchor);
    assert!(r.units[2].len() > 100, "{} AAC frames", r.units[2].len());
    assert_eq!(r.finished, 1);
}

#[test]
fn audio_only_rooms_get_an_aac_rendition() {
    let out = run(
        Publish {
            video: None,
            width: 0,
            height: 0,
            audio: true,
            capture_times: true,
        },
        &[720],
        3,
    );
    assert!(out.plan_video.is_none() && out.plan_audio);
    let (tracks, _) = &out.recording.starts[0];
    assert_eq!(tracks.len(), 1);
    assert!(matches!(tracks[0], TrackConfig::Aac { .. }));
    assert!(
        out.recording.units[0].len() > 80,
        "{} AAC frames",
        out.recording.units[0].len()
    );
}
