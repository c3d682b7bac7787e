//! The real test-source pipeline, run for a few seconds into a recording sink: what the
//! packager receives (tracks, frame rate, GOPs, audio cadence, timestamps) and whether the
//! clock burnt into the frames survives scaling and H.264 and agrees with `anchor + pts`.
//!
//! One run is shared by every test here (a ladder is two cores' worth of work; running it once
//! per test in parallel would starve them all). Needs GStreamer's base/good/bad/ugly/libav
//! plugins and the `ffmpeg` CLI.

use std::io::Write;
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use bridge::test_source::{TestSource, TestSourceConfig, clock_code};
use bytes::Bytes;
use hls::{AccessUnit, MediaSink, TrackConfig};

const RUN_FOR: Duration = Duration::from_secs(5);
const FRAME: Duration = Duration::from_nanos(1_000_000_000 / 30);

#[derive(Default)]
struct Recording {
    starts: Vec<(Vec<TrackConfig>, SystemTime)>,
    /// Per track: the access unit and the wall-clock time it reached the sink.
    units: Vec<Vec<(AccessUnit, SystemTime)>>,
    finished: usize,
}

struct RecordingSink(Arc<Mutex<Recording>>);

impl MediaSink for RecordingSink {
    fn start(&mut self, tracks: Vec<TrackConfig>, anchor: SystemTime) {
        let mut r = self.0.lock().expect("recording lock");
        r.units.resize_with(tracks.len(), Vec::new);
        r.starts.push((tracks, anchor));
    }
    fn push(&mut self, track: usize, au: AccessUnit) {
        self.0.lock().expect("recording lock").units[track].push((au, SystemTime::now()));
    }
    fn finish(&mut self) {
        self.0.lock().expect("recording lock").finished += 1;
    }
}

struct Run {
    /// Wall-clock times just before `TestSource::start` was called and just after it returned.
    start_called: SystemTime,
    start_returned: SystemTime,
    tracks: Vec<TrackConfig>,
    anchor: SystemTime,
    units: Vec<Vec<(AccessUnit, SystemTime)>>,
    starts: usize,
    finished: usize,
}

fn run() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| {
        let recording = Arc::new(Mutex::new(Recording::default()));
        let start_called = SystemTime::now();
        let source = TestSource::start(
            TestSourceConfig::default(),
            Box::new(RecordingSink(recording.clone())),
        )
        .unwrap_or_else(|e| panic!("test source did not start: {e}"));
        let start_returned = SystemTime::now();
        assert!(source.aac_encoder().is_some(), "audio is on by default");
        std::thread::sleep(RUN_FOR);
        source.health().unwrap_or_else(|e| panic!("{e}"));
        let stopping = std::time::Instant::now();
        source.stop().unwrap_or_else(|e| panic!("{e}"));
        // End-of-stream reached every appsink (no drain timeout) and the pusher finished.
        assert!(
            stopping.elapsed() < Duration::from_secs(2),
            "stop took {:?}",
            stopping.elapsed()
        );
        let r = std::mem::take(&mut *recording.lock().expect("recording lock"));
        let (tracks, anchor) = r.starts.first().cloned().expect("the sink was started");
        Run {
            start_called,
            start_returned,
            tracks,
            anchor,
            units: r.units,
            starts: r.starts.len(),
            finished: r.finished,
        }
    })
}

fn video(track: usize) -> Vec<&'static AccessUnit> {
    run().units[track].iter().map(|(au, _)| au).collect()
}

#[test]
fn announces_three_h264_rungs_then_aac_once_and_finishes() {
    let run = run();
    assert_eq!((run.starts, run.finished), (1, 1), "one start, one finish");
    assert_eq!(run.tracks.len(), 4);
    for (track, (w, h, rate)) in [(1280, 720, 2_500_000), (854, 480, 1_200_000), (640, 360, 700_000)]
        .into_iter()
        .enumerate()
    {
        let TrackConfig::H264 {
            width,
            height,
            frame_rate,
            bitrate,
            sps,
            pps,
        } = &run.tracks[track]
        else {
            panic!("track {track} is H.264: {:?}", run.tracks[track]);
        };
        assert_eq!((*width, *height, *frame_rate, *bitrate), (w, h, (30, 1), rate));
        assert_eq!(sps.len(), 1);
        assert_eq!(pps.len(), 1);
        assert_eq!(sps[0][0] & 0x1f, 7, "an SPS NAL unit");
        assert_eq!(sps[0][1], 77, "main profile for every browser");
        assert_eq!(pps[0][0] & 0x1f, 8, "a PPS NAL unit");
    }
    let TrackConfig::Aac {
        sample_rate,
        channels,
        bitrate,
        audio_specific_config: asc,
    } = &run.tracks[3]
    else {
        panic!("track 3 is AAC: {:?}", run.tracks[3]);
    };
    assert_eq!((*sample_rate, *channels, *bitrate), (48_000, 2, 128_000));
    assert_eq!(asc[0] >> 3, 2, "AAC-LC object type");
    assert_eq!((asc[0] & 0x07) << 1 | asc[1] >> 7, 3, "48 kHz frequency index");
    assert_eq!((asc[1] >> 3) & 0x0f, 2, "stereo channel configuration");
}

#[test]
fn the_anchor_is_the_wall_clock_of_the_run() {
    let run = run();
    // The pipeline's base time is taken when it goes to PLAYING, inside start().
    assert!(
        run.anchor >= run.start_called,
        "anchored before start() was called"
    );
    assert!(
        run.anchor <= run.start_returned,
        "anchored after start() returned"
    );
    // Every access unit reaches the sink soon after the wall-clock time of its frame: the time
    // the frame shows is when it was made, not some other clock.
    for track in 0..3 {
        let mut latencies: Vec<Duration> = run.units[track]
            .iter()
            .map(|(au, at)| {
                at.duration_since(run.anchor + au.pts)
                    .expect("pushed after its frame time")
            })
            .collect();
        latencies.sort();
        // About 20 ms on an idle machine; the bound leaves room for a busy one.
        let median = latencies[latencies.len() / 2];
        assert!(
            median < Duration::from_millis(500),
            "track {track}: median encode latency {median:?}"
        );
    }
}

#[test]
fn every_rung_is_30_fps_in_decode_order() {
    for track in 0..3 {
        let units = video(track);
        let expected = RUN_FOR.as_secs_f64() * 30.0;
        let n = units.len() as f64;
        assert!(
            (n - expected).abs() < expected * 0.1,
            "track {track}: {n} frames in {RUN_FOR:?}"
        );
        for pair in units.windows(2) {
            assert!(
                pair[1].dts > pair[0].dts,
                "track {track}: dts goes {:?} -> {:?}",
                pair[0].dts,
                pair[1].dts
            );
            assert_eq!(pair[1].pts, pair[1].dts, "no B-frames");
            let step = pair[1].pts - pair[0].pts;
            assert!(
                step.abs_diff(FRAME) < Duration::from_millis(1),
                "track {track}: frame step {step:?}"
            );
        }
    }
}

#[test]
fn keyframes_every_two_seconds_at_the_same_pts_on_every_rung() {
    let keyframes = |track: usize| -> Vec<Duration> {
        video(track)
            .iter()
            .filter(|au| au.keyframe)
            .map(|au| au.pts)
            .collect()
    };
    let top = keyframes(0);
    assert!(video(0)[0].keyframe, "the first access unit is a keyframe");
    assert!(top.len() >= 3, "keyframes at {top:?}");
    for pair in top.windows(2) {
        let gop = pair[1] - pair[0];
        assert!(
            gop.abs_diff(Duration::from_secs(2)) < Duration::from_millis(1),
            "GOP of {gop:?}"
        );
    }
    let end = (0..3)
        .map(|t| video(t).last().expect("frames").pts)
        .min()
        .expect("three rungs");
    for track in 1..3 {
        assert!(video(track)[0].keyframe, "track {track} starts on a keyframe");
        assert_eq!(
            video(track)[0].pts,
            video(0)[0].pts,
            "track {track} starts with the others"
        );
        let ours: Vec<Duration> = keyframes(track).into_iter().filter(|&t| t <= end).collect();
        let theirs: Vec<Duration> = top.iter().copied().filter(|&t| t <= end).collect();
        assert_eq!(ours, theirs, "track {track} keyframes");
    }
}

#[test]
fn aac_frames_are_1024_samples_apart() {
    let units = &run().units[3];
    let expected = RUN_FOR.as_secs_f64() * 48_000.0 / 1024.0;
    assert!(
        (units.len() as f64 - expected).abs() < expected * 0.1,
        "{} AAC frames",
        units.len()
    );
    let frame = Duration::from_nanos(1024 * 1_000_000_000 / 48_000);
    for pair in units.windows(2) {
        let step = pair[1].0.pts - pair[0].0.pts;
        assert!(
            step.abs_diff(frame) < Duration::from_micros(1),
            "AAC step {step:?}"
        );
        assert!(pair[1].0.keyframe && !pair[1].0.data.is_empty());
        assert!(
            pair[1].0.data[0] != 0xff || pair[1].0.data[1] & 0xf0 != 0xf0,
            "raw AAC, not ADTS"
        );
    }
}

/// The access units of an H.264 track as an Annex B elementary stream, parameter sets before
/// every keyframe.
fn annex_b(track: usize) -> Vec<u8> {
    let TrackConfig::H264 { sps, pps, .. } = &run().tracks[track] else {
        panic!("track {track} is H.264")
    };
    let mut out = Vec::new();
    let mut nal = |n: &[u8]| {
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(n);
    };
    for au in video(track) {
        if au.keyframe {
            sps.iter().chain(pps).for_each(|p: &Bytes| nal(p));
        }
        let mut rest = &au.data[..];
        while rest.len() >= 4 {
            let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
            assert!(rest.len() >= 4 + len, "NAL length {len} past the sample");
            nal(&rest[4..4 + len]);
            rest = &rest[4 + len..];
        }
        assert!(rest.is_empty(), "trailing bytes in an AVC sample");
    }
    out
}

/// Decodes track `track` with the ffmpeg CLI into luma planes, one per access unit.
fn decode_luma(track: usize, width: usize, height: usize) -> Vec<Vec<u8>> {
    // One directory per track: the tests decode their tracks in parallel.
    let dir = std::env::temp_dir().join(format!("fanout-test-source-{}-{track}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let input = dir.join(format!("track{track}.h264"));
    std::fs::File::create(&input)
        .and_then(|mut f| f.write_all(&annex_b(track)))
        .expect("write Annex B");
    let output = Command::new("ffmpeg")
        .args(["-v", "error", "-f", "h264", "-i"])
        .arg(&input)
        .args([
            "-fps_mode",
            "passthrough",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "gray",
            "-",
        ])
        .output()
        .unwrap_or_else(|e| panic!("the ffmpeg CLI is needed to decode the ladder ({e}): install ffmpeg"));
    assert!(
        output.status.success(),
        "ffmpeg: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
    output.stdout.chunks(width * height).map(<[u8]>::to_vec).collect()
}

/// Every decoded frame of `track` carries `anchor + pts` of its access unit.
fn burnt_clock_matches_pts(track: usize) {
    let run = run();
    let TrackConfig::H264 { width, height, .. } = run.tracks[track] else {
        panic!("track {track} is H.264")
    };
    let frames = decode_luma(track, width as usize, height as usize);
    let units = video(track);
    assert_eq!(
        frames.len(),
        units.len(),
        "track {track}: one decoded frame per access unit"
    );
    let mut worst = Duration::ZERO;
    for (i, (frame, au)) in frames.iter().zip(&units).enumerate() {
        let read = clock_code::read_luma(frame, width as usize, width, height)
            .unwrap_or_else(|| panic!("track {track} frame {i}: no clock code"));
        let shown = SystemTime::UNIX_EPOCH + Duration::from_millis(read);
        let expected = run.anchor + au.pts;
        let error = shown.duration_since(expected).unwrap_or_else(|e| e.duration());
        assert!(
            error < FRAME,
            "track {track} frame {i}: shows {shown:?}, anchor + pts is {expected:?}"
        );
        worst = worst.max(error);
    }
    assert!(
        worst <= Duration::from_millis(1),
        "track {track}: clock off by up to {worst:?}"
    );
}

#[test]
fn clock_code_survives_scaling_and_h264_at_360p() {
    burnt_clock_matches_pts(2);
}

#[test]
fn clock_code_survives_h264_at_480p() {
    burnt_clock_matches_pts(1);
}

#[test]
fn clock_code_matches_pts_at_720p() {
    burnt_clock_matches_pts(0);
}
