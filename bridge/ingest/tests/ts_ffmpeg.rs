//! The MPEG-TS demuxer on transport streams that ffmpeg (libx264, its AAC encoder, libopus)
//! writes at test time: frame counts, keyframes, timestamps and codec configs come out as
//! ffmpeg put them in, whatever the chunking. Skipped, with a note, where ffmpeg is missing.

use std::path::PathBuf;
use std::process::Command;

use bytes::Bytes;
use ingest::{AudioCodec, Frame, TsDemuxer, TsStats, VideoFrame};

/// Runs ffmpeg on a 2-second test pattern and a sine tone; `None` when ffmpeg is missing.
fn ffmpeg_ts(name: &str, args: &[&str]) -> Option<Vec<u8>> {
    let path: PathBuf = std::env::temp_dir().join(format!("ingest-ts-{}-{name}.ts", std::process::id()));
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args([
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=30",
            "-f",
            "lavfi",
            "-i",
            "sine",
            "-t",
            "2",
        ])
        .args(args)
        .args(["-f", "mpegts"])
        .arg(&path)
        .status();
    match status {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("ffmpeg not found: skipping the test on ffmpeg's MPEG-TS");
            None
        }
        Err(e) => panic!("running ffmpeg: {e}"),
        Ok(status) => {
            assert!(status.success(), "ffmpeg failed: {status}");
            let ts = std::fs::read(&path).expect("ffmpeg wrote the file");
            let _ = std::fs::remove_file(&path);
            Some(ts)
        }
    }
}

/// Demuxes in `chunk`-byte pushes, then flushes.
fn demux(ts: &[u8], chunk: usize) -> (Vec<Frame>, TsStats) {
    let mut demuxer = TsDemuxer::new();
    let mut out = Vec::new();
    for c in ts.chunks(chunk) {
        demuxer.push(c, &mut out);
    }
    demuxer.flush(&mut out);
    assert!(
        demuxer.buffered_bytes() < 188,
        "flushed: {}",
        demuxer.buffered_bytes()
    );
    (out, demuxer.stats())
}

fn videos(frames: &[Frame]) -> Vec<&VideoFrame> {
    frames
        .iter()
        .filter_map(|f| match f {
            Frame::Video(v) => Some(v),
            _ => None,
        })
        .collect()
}

fn audio_pts(frames: &[Frame]) -> Vec<i64> {
    frames
        .iter()
        .filter_map(|f| match f {
            Frame::Audio(a) => Some(a.pts),
            _ => None,
        })
        .collect()
}

fn assert_clean(stats: TsStats) {
    assert!(stats.packets > 0);
    assert_eq!(
        (
            stats.resyncs,
            stats.transport_errors,
            stats.cc_errors,
            stats.dropped_pes,
            stats.malformed
        ),
        (0, 0, 0, 0, 0),
        "{stats:?}"
    );
}

/// The checks every stream here passes: config before the first picture, a keyframe first,
/// 60 pictures 3000 ticks apart in decode order, SPS and PPS in band at the keyframe.
fn check_video(frames: &[Frame]) -> Vec<&VideoFrame> {
    let first_video = frames
        .iter()
        .position(|f| matches!(f, Frame::Video(_)))
        .expect("video");
    let Some(Frame::VideoConfig(config)) = frames[..first_video]
        .iter()
        .find(|f| matches!(f, Frame::VideoConfig(_)))
    else {
        panic!("no VideoConfig before the first picture");
    };
    assert_eq!(config.sps.len(), 1);
    assert_eq!(config.pps.len(), 1);
    // High profile (libx264's default for yuv420p), as ffprobe reports.
    assert_eq!(config.sps[0][..2], [0x67, 100]);
    let video = videos(frames);
    assert_eq!(video.len(), 60);
    assert!(video[0].keyframe);
    assert!(video[0].nalus.contains(&config.sps[0]) && video[0].nalus.contains(&config.pps[0]));
    for v in &video {
        assert!(
            v.nalus.iter().all(|n| !n.is_empty() && n[0] & 0x1F != 9),
            "no AUD, no empty NAL"
        );
        assert!(v.pts >= v.dts);
    }
    for pair in video.windows(2) {
        assert_eq!(pair[1].dts - pair[0].dts, 3000, "30 fps");
    }
    video
}

#[test]
fn h264_and_aac_without_b_frames() {
    let Some(ts) = ffmpeg_ts("aac", &["-c:v", "libx264", "-bf", "0", "-c:a", "aac"]) else {
        return;
    };
    let (frames, stats) = demux(&ts, 1316);
    assert_clean(stats);
    let video = check_video(&frames);
    assert!(
        video.iter().all(|v| v.pts == v.dts),
        "no reordering without B-frames"
    );

    // The sine source is 44.1 kHz mono: AAC-LC (2), rate index 4, 1 channel.
    let configs: Vec<_> = frames
        .iter()
        .filter(|f| matches!(f, Frame::AudioConfig(_)))
        .collect();
    assert_eq!(
        configs,
        vec![&Frame::AudioConfig(AudioCodec::Aac {
            config: Bytes::from_static(&[0x12, 0x08])
        })]
    );
    let first_audio = frames
        .iter()
        .position(|f| matches!(f, Frame::Audio(_)))
        .expect("audio");
    assert!(
        matches!(frames[first_audio - 1], Frame::AudioConfig(_))
            || frames[..first_audio].contains(configs[0])
    );
    let pts = audio_pts(&frames);
    // ffprobe counts 88 (2 s at 1024 samples per frame is 86.1, plus the encoder's priming).
    assert!((86..=90).contains(&pts.len()), "{} AAC frames", pts.len());
    for pair in pts.windows(2) {
        let step = pair[1] - pair[0];
        assert!(
            (2088..=2091).contains(&step),
            "1024 samples at 44.1 kHz, got {step}"
        );
    }

    // The chunking makes no difference.
    for chunk in [1, 100, 188, 7 * 188 + 5, ts.len()] {
        assert_eq!(demux(&ts, chunk).0, frames, "chunk {chunk}");
    }
}

#[test]
fn h264_with_b_frames_reorders() {
    let Some(ts) = ffmpeg_ts("bframes", &["-c:v", "libx264", "-bf", "2", "-c:a", "aac"]) else {
        return;
    };
    let (frames, stats) = demux(&ts, 1316);
    assert_clean(stats);
    let video = check_video(&frames);
    let reordered = video.iter().filter(|v| v.pts != v.dts).count();
    assert!(reordered > 30, "only {reordered} of 60 pictures have pts != dts");
    let mut pts: Vec<_> = video.iter().map(|v| v.pts).collect();
    pts.sort_unstable();
    assert!(
        pts.windows(2).all(|p| p[1] - p[0] == 3000),
        "presentation times are a 30 fps grid"
    );
}

#[test]
fn h264_and_opus() {
    let Some(ts) = ffmpeg_ts("opus", &["-c:v", "libx264", "-bf", "0", "-c:a", "libopus"]) else {
        return;
    };
    let (frames, stats) = demux(&ts, 1316);
    assert_clean(stats);
    check_video(&frames);
    let configs: Vec<_> = frames
        .iter()
        .filter(|f| matches!(f, Frame::AudioConfig(_)))
        .collect();
    // Mono in, and ffmpeg's PMT descriptor says so.
    assert_eq!(
        configs,
        vec![&Frame::AudioConfig(AudioCodec::Opus { channels: 1 })]
    );
    let pts = audio_pts(&frames);
    // ffprobe counts 101 packets of 20 ms.
    assert!((100..=102).contains(&pts.len()), "{} Opus packets", pts.len());
    for pair in pts.windows(2) {
        assert_eq!(pair[1] - pair[0], 1800, "20 ms");
    }
}
