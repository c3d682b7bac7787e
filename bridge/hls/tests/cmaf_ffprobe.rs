//! Real-tool check of the CMAF output: ffmpeg encodes H.264 (Annex B) and AAC (ADTS), the test
//! turns them into access units, the packager cuts them, and ffprobe decodes init + segments.
//! The fragments' own boxes are walked too: `mfhd` sequence numbers rise and each `tfdt` equals
//! the previous one plus the previous fragment's sample durations.
//!
//! ffmpeg and ffprobe must be installed; the test fails (it does not skip) without them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use hls::packager::{Event, Packager, PackagerConfig};
use hls::{AccessUnit, TrackConfig};

const FPS: u64 = 30;
const SECONDS: u64 = 6;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hls-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

fn run(cmd: &mut Command) -> String {
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
fn encode(dir: &Path) {
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

struct Video {
    config: TrackConfig,
    units: Vec<AccessUnit>,
}

fn parse_h264(data: &[u8]) -> Video {
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

fn parse_adts(data: &[u8]) -> (TrackConfig, Vec<AccessUnit>) {
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

/// One moof: (sequence number, tfdt, sum of sample durations, sample count).
fn walk_fragments(data: &[u8]) -> Vec<(u32, u64, u64, usize)> {
    fn boxes(data: &[u8]) -> Vec<(&[u8], &[u8])> {
        let mut out = Vec::new();
        let mut i = 0;
        while i + 8 <= data.len() {
            let size = u32::from_be_bytes(data[i..i + 4].try_into().expect("4 bytes")) as usize;
            let (kind, body) = if size == 1 {
                let large = u64::from_be_bytes(data[i + 8..i + 16].try_into().expect("8 bytes")) as usize;
                (&data[i + 4..i + 8], &data[i + 16..i + large])
            } else {
                (&data[i + 4..i + 8], &data[i + 8..i + size])
            };
            out.push((kind, body));
            i += if size == 1 { body.len() + 16 } else { size };
        }
        out
    }
    let u32_at = |b: &[u8], at: usize| u32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"));
    let mut out = Vec::new();
    for (kind, moof) in boxes(data) {
        if kind != b"moof" {
            continue;
        }
        let (mut seq, mut tfdt, mut total, mut count) = (0, 0, 0, 0);
        for (kind, body) in boxes(moof) {
            if kind == b"mfhd" {
                seq = u32_at(body, 4);
            }
            if kind != b"traf" {
                continue;
            }
            for (kind, body) in boxes(body) {
                match kind {
                    b"tfdt" if body[0] == 1 => {
                        tfdt = u64::from_be_bytes(body[4..12].try_into().expect("8 bytes"))
                    }
                    b"tfdt" => tfdt = u64::from(u32_at(body, 4)),
                    b"trun" => {
                        let flags = u32_at(body, 0) & 0xff_ffff;
                        count = u32_at(body, 4) as usize;
                        let mut at =
                            8 + if flags & 1 != 0 { 4 } else { 0 } + if flags & 4 != 0 { 4 } else { 0 };
                        let per_sample = [0x100, 0x200, 0x400, 0x800]
                            .iter()
                            .filter(|&&f| flags & f != 0)
                            .count()
                            * 4;
                        assert!(flags & 0x100 != 0, "durations are in the trun");
                        for _ in 0..count {
                            total += u64::from(u32_at(body, at));
                            at += per_sample;
                        }
                    }
                    _ => {}
                }
            }
        }
        out.push((seq, tfdt, total, count));
    }
    out
}

fn ffprobe_frames(path: &Path) -> (String, u64) {
    let out = run(Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-show_entries",
            "stream=codec_name,nb_read_frames",
            "-of",
            "csv=p=0",
        ])
        .arg(path));
    let line = out.lines().next().unwrap_or_default().to_owned();
    let mut fields = line.split(',');
    let codec = fields.next().unwrap_or_default().to_owned();
    let frames = fields.next().and_then(|f| f.trim().parse().ok()).unwrap_or(0);
    (codec, frames)
}

#[test]
fn ffprobe_decodes_packaged_h264_and_aac() {
    let dir = temp_dir("cmaf");
    encode(&dir);
    let video = parse_h264(&std::fs::read(dir.join("video.h264")).expect("read video"));
    let (audio_config, audio) = parse_adts(&std::fs::read(dir.join("audio.aac")).expect("read audio"));
    assert_eq!(video.units.len() as u64, FPS * SECONDS);

    let mut packager = Packager::new(PackagerConfig::default());
    packager.start(&[video.config.clone(), audio_config], SystemTime::now());
    let (mut v, mut a) = (0, 0);
    while v < video.units.len() || a < audio.len() {
        let video_next = video.units.get(v).map(|u| u.dts);
        let audio_next = audio.get(a).map(|u| u.dts);
        if audio_next.is_some_and(|at| video_next.is_none_or(|vt| at <= vt)) {
            packager.push(1, audio[a].clone());
            a += 1;
        } else {
            packager.push(0, video.units[v].clone());
            v += 1;
        }
    }
    packager.finish();

    // Assemble segments from parts, per rendition, as the origin does.
    let mut names = Vec::new();
    let mut inits = Vec::new();
    let mut open: Vec<Vec<u8>> = Vec::new();
    let mut segments: Vec<Vec<Vec<u8>>> = Vec::new();
    while let Some(event) = packager.poll() {
        match event {
            Event::Rendition(r) => {
                names.push(r.name);
                inits.push(r.init);
                open.push(Vec::new());
                segments.push(Vec::new());
            }
            Event::Part(p) => open[p.rendition].extend_from_slice(&p.data),
            Event::SegmentEnd { rendition, msn } => {
                assert_eq!(segments[rendition].len() as u64, msn);
                segments[rendition].push(std::mem::take(&mut open[rendition]));
            }
            _ => {}
        }
    }
    assert_eq!(names, ["360p", "audio"]);

    for (r, name) in names.iter().enumerate() {
        // Audio may run a few frames past the video's end: a short last segment then.
        let count = segments[r].len();
        assert!(
            count == 3 || (r == 1 && count == 4),
            "{name}: three 2 s segments, got {count}"
        );
        let mut whole = inits[r].to_vec();
        for (msn, segment) in segments[r].iter().enumerate() {
            whole.extend_from_slice(segment);
            // Every segment decodes on its own after the init segment.
            let path = dir.join(format!("{name}-s{msn}.mp4"));
            std::fs::write(&path, [inits[r].as_ref(), segment].concat()).expect("write segment");
            let (codec, frames) = ffprobe_frames(&path);
            let expected = if r == 0 { "h264" } else { "aac" };
            assert_eq!(codec, expected, "{name} segment {msn}");
            assert!(frames > 0, "{name} segment {msn} decodes no frames");
        }
        let path = dir.join(format!("{name}.mp4"));
        std::fs::write(&path, &whole).expect("write whole");
        let (_, frames) = ffprobe_frames(&path);
        let pushed = if r == 0 { video.units.len() } else { audio.len() } as u64;
        assert_eq!(frames, pushed, "{name}: every access unit decodes");

        let fragments = walk_fragments(&whole[inits[r].len()..]);
        assert!(
            fragments.len() >= 28,
            "{name}: about 30 parts of 200 ms, got {}",
            fragments.len()
        );
        for pair in fragments.windows(2) {
            let ((seq_a, tfdt_a, dur_a, _), (seq_b, tfdt_b, _, _)) = (pair[0], pair[1]);
            assert!(seq_b > seq_a, "{name}: sequence numbers rise");
            assert_eq!(tfdt_b, tfdt_a + dur_a, "{name}: tfdt is continuous");
        }
        let samples: usize = fragments.iter().map(|f| f.3).sum();
        assert_eq!(samples as u64, pushed);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
