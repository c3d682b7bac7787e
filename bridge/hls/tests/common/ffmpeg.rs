//! Real media from the ffmpeg CLI: x264 (Annex B) and AAC (ADTS) files, turned into access
//! units the way a producer would push them. ffmpeg and ffprobe must be installed: the helpers
//! panic with a clear message when they are missing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use hls::{AccessUnit, MediaSink, TrackConfig};

pub const FPS: u64 = 30;
pub const SECONDS: u64 = 6;

pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hls-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

pub fn run(cmd: &mut Command) -> String {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let output = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run {program}: {e}. This test needs ffmpeg and ffprobe (apt-get install ffmpeg).")
    });
    assert!(
        output.status.success(),
        "{program} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Encodes the test media: `video.h264` (Annex B, AUD before each picture, no B-frames, IDR
/// every 2 s) and `audio.aac` (ADTS, 48 kHz stereo).
pub fn encode(dir: &Path) {
    run(Command::new("ffmpeg").current_dir(dir).args([
        "-v",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=640x360:rate=30",
        "-t",
        "6",
        "-c:v",
        "libx264",
        "-profile:v",
        "high",
        "-pix_fmt",
        "yuv420p",
        "-bf",
        "0",
        "-g",
        "60",
        "-sc_threshold",
        "0",
        "-x264-params",
        "aud=1",
        "-f",
        "h264",
        "video.h264",
    ]));
    run(Command::new("ffmpeg").current_dir(dir).args([
        "-v",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=48000",
        "-t",
        "6",
        "-ac",
        "2",
        "-c:a",
        "aac",
        "-b:a",
        "128k",
        "-f",
        "adts",
        "audio.aac",
    ]));
}

/// Splits Annex B into NAL units (without start codes).
fn nal_units(data: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    starts
        .iter()
        .enumerate()
        .map(|(n, &start)| {
            let mut end = starts.get(n + 1).map_or(data.len(), |&next| next - 3);
            while end > start && data[end - 1] == 0 {
                end -= 1;
            }
            &data[start..end]
        })
        .collect()
}

pub struct Video {
    pub config: TrackConfig,
    pub units: Vec<AccessUnit>,
}

pub fn parse_h264(data: &[u8]) -> Video {
    let (mut sps, mut pps) = (None, None);
    let mut units = Vec::new();
    let mut current: Vec<u8> = Vec::new();
    let mut keyframe = false;
    let flush = |current: &mut Vec<u8>, keyframe: &mut bool, units: &mut Vec<AccessUnit>| {
        if !current.is_empty() {
            let t = Duration::from_nanos(units.len() as u64 * 1_000_000_000 / FPS);
            units.push(AccessUnit {
                pts: t,
                dts: t,
                keyframe: *keyframe,
                data: Bytes::from(std::mem::take(current)),
            });
        }
        *keyframe = false;
    };
    for nal in nal_units(data) {
        let Some(&header) = nal.first() else { continue };
        match header & 0x1f {
            9 => flush(&mut current, &mut keyframe, &mut units),
            7 => sps = Some(Bytes::copy_from_slice(nal)),
            8 => pps = Some(Bytes::copy_from_slice(nal)),
            kind => {
                keyframe |= kind == 5;
                current.extend_from_slice(&(nal.len() as u32).to_be_bytes());
                current.extend_from_slice(nal);
            }
        }
    }
    flush(&mut current, &mut keyframe, &mut units);
    let config = TrackConfig::H264 {
        width: 640,
        height: 360,
        frame_rate: (30, 1),
        bitrate: 1_000_000,
        sps: vec![sps.expect("an SPS")],
        pps: vec![pps.expect("a PPS")],
    };
    Video { config, units }
}

pub fn parse_adts(data: &[u8]) -> (TrackConfig, Vec<AccessUnit>) {
    let mut units = Vec::new();
    let mut asc = None;
    let mut sample_rate = 0;
    let mut i = 0;
    while i + 7 <= data.len() {
        assert_eq!((data[i], data[i + 1] & 0xf0), (0xff, 0xf0), "ADTS sync at {i}");
        let protection_absent = data[i + 1] & 1 == 1;
        let profile = u16::from(data[i + 2] >> 6);
        let freq_index = u16::from((data[i + 2] >> 2) & 0xf);
        let channels = u16::from(((data[i + 2] & 1) << 2) | (data[i + 3] >> 6));
        let len = (usize::from(data[i + 3] & 3) << 11)
            | (usize::from(data[i + 4]) << 3)
            | usize::from(data[i + 5] >> 5);
        let header = if protection_absent { 7 } else { 9 };
        sample_rate = [
            96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000,
        ][usize::from(freq_index)];
        let config = ((profile + 1) << 11) | (freq_index << 7) | (channels << 3);
        asc.get_or_insert(Bytes::copy_from_slice(&config.to_be_bytes()));
        let t = Duration::from_nanos(units.len() as u64 * 1024 * 1_000_000_000 / u64::from(sample_rate));
        units.push(AccessUnit {
            pts: t,
            dts: t,
            keyframe: true,
            data: Bytes::copy_from_slice(&data[i + header..i + len]),
        });
        i += len;
    }
    let config = TrackConfig::Aac {
        sample_rate,
        channels: 2,
        bitrate: 128_000,
        audio_specific_config: asc.expect("an ADTS frame"),
    };
    (config, units)
}

/// Encodes 6 s of test media in `dir` and returns (video, audio config, audio units).
pub fn test_media(dir: &Path) -> (Video, TrackConfig, Vec<AccessUnit>) {
    encode(dir);
    let video = parse_h264(&std::fs::read(dir.join("video.h264")).expect("read video"));
    let (audio_config, audio) = parse_adts(&std::fs::read(dir.join("audio.aac")).expect("read audio"));
    (video, audio_config, audio)
}

/// Pushes video (track 0) and audio (track 1) interleaved in decode-time order.
pub fn push_interleaved(sink: &mut dyn MediaSink, video: &[AccessUnit], audio: &[AccessUnit]) {
    let (mut v, mut a) = (0, 0);
    while v < video.len() || a < audio.len() {
        let video_next = video.get(v).map(|u| u.dts);
        let audio_next = audio.get(a).map(|u| u.dts);
        if audio_next.is_some_and(|at| video_next.is_none_or(|vt| at <= vt)) {
            sink.push(1, audio[a].clone());
            a += 1;
        } else {
            sink.push(0, video[v].clone());
            v += 1;
        }
    }
}

/// ffprobe's (codec name, decoded frame count) of each stream of `input` (a file or URL).
pub fn ffprobe_frames(input: &str) -> Vec<(String, u64)> {
    let out = run(Command::new("ffprobe").args([
        "-v",
        "error",
        "-count_frames",
        "-show_entries",
        "stream=codec_name,nb_read_frames",
        "-of",
        "csv=p=0",
        input,
    ]));
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let mut fields = line.split(',');
            let codec = fields.next().unwrap_or_default().to_owned();
            let frames = fields.next().and_then(|f| f.trim().parse().ok()).unwrap_or(0);
            (codec, frames)
        })
        .collect()
}
