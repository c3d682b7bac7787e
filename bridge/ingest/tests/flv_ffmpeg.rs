//! The FLV demuxer reads what ffmpeg's FLV muxer writes, the tags an RTMP publisher sends.
//!
//! ffmpeg encodes two seconds of x264 video with B-frames (so composition time offsets are
//! not zero) and AAC audio into an FLV file; the test walks its tags (FLV 10.1 E.3: an
//! 11-byte header, the body, the previous tag's size) and hands each body to
//! [`FlvDemuxer`] as an RTMP message. Skipped, with a note, where ffmpeg is missing.

use std::process::Command;

use bytes::Bytes;
use ingest::flv::FlvDemuxer;
use ingest::{AudioCodec, Frame, h264};

#[test]
fn demuxes_ffmpeg_flv_with_b_frames_and_aac() {
    if !Command::new("ffmpeg")
        .arg("-version")
        .output()
        .is_ok_and(|out| out.status.success())
    {
        eprintln!("note: ffmpeg missing; skipping the FLV demux test");
        return;
    }
    let file = std::env::temp_dir().join(format!("ingest-flv-{}.flv", std::process::id()));
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"])
        .args([
            "-t", "2", "-pix_fmt", "yuv420p", "-c:v", "libx264", "-bf", "2", "-g", "30",
        ])
        .args(["-c:a", "aac", "-f", "flv"])
        .arg(&file)
        .status()
        .expect("run ffmpeg");
    assert!(status.success(), "ffmpeg failed: {status}");
    let data = Bytes::from(std::fs::read(&file).expect("read the FLV file"));
    let _ = std::fs::remove_file(&file);
    assert_eq!(&data[..3], b"FLV");

    let mut demuxer = FlvDemuxer::new();
    let mut frames = Vec::new();
    // The 9-byte file header, then PreviousTagSize0.
    let mut pos = 13;
    while pos + 11 <= data.len() {
        let kind = data[pos];
        let size =
            usize::from(data[pos + 1]) << 16 | usize::from(data[pos + 2]) << 8 | usize::from(data[pos + 3]);
        let timestamp = u32::from_be_bytes([data[pos + 7], data[pos + 4], data[pos + 5], data[pos + 6]]);
        let body = data.slice(pos + 11..pos + 11 + size);
        let frame = match kind {
            8 => demuxer.audio(timestamp, &body),
            9 => demuxer.video(timestamp, &body),
            _ => Ok(None), // script data (onMetaData)
        };
        if let Some(frame) = frame.expect("ffmpeg's tags demux") {
            frames.push(frame);
        }
        pos += 11 + size + 4;
    }

    let Some(Frame::VideoConfig(config)) = frames.iter().find(|f| matches!(f, Frame::VideoConfig(_))) else {
        panic!("no AVC sequence header");
    };
    let sps = h264::parse_sps(&config.sps[0]).expect("x264's SPS parses");
    assert_eq!((sps.profile_idc, sps.width, sps.height), (100, 320, 240));
    assert!(
        sps.may_reorder() && sps.max_num_reorder_frames.is_some_and(|n| n >= 1),
        "{sps:?}"
    );

    let video: Vec<_> = frames
        .iter()
        .filter_map(|f| if let Frame::Video(v) = f { Some(v) } else { None })
        .collect();
    assert_eq!(video.len(), 60);
    assert_eq!(
        video.iter().filter(|v| v.keyframe).count(),
        2,
        "an IDR every 30 frames"
    );
    assert!(video[0].keyframe);
    assert!(
        video.windows(2).all(|w| w[1].dts > w[0].dts),
        "decode times increase"
    );
    assert!(
        video.iter().all(|v| v.pts >= v.dts),
        "presentation never precedes decode"
    );
    assert!(
        video.iter().filter(|v| v.pts != v.dts).count() >= 30,
        "B-frames reorder most frames"
    );
    let mut pts: Vec<_> = video.iter().map(|v| v.pts).collect();
    pts.sort_unstable();
    // Presentation times are one frame (33 or 34 ms) apart once sorted.
    assert!(
        pts.windows(2).all(|w| (2970..=3060).contains(&(w[1] - w[0]))),
        "{pts:?}"
    );

    let audio_config = frames.iter().find_map(|f| {
        if let Frame::AudioConfig(c) = f {
            Some(c)
        } else {
            None
        }
    });
    assert!(matches!(audio_config, Some(AudioCodec::Aac { config }) if config.len() >= 2));
    let audio = frames.iter().filter(|f| matches!(f, Frame::Audio(_))).count();
    // 2 s of 1024-sample frames at 44.1 kHz.
    assert!((85..=88).contains(&audio), "{audio} AAC frames");
}
