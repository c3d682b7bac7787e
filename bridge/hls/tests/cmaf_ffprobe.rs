//! Real-tool check of the CMAF output: ffmpeg encodes H.264 (Annex B) and AAC (ADTS), the test
//! turns them into access units, the packager cuts them, and ffprobe decodes init + segments.
//! The fragments' own boxes are walked too: `mfhd` sequence numbers rise and each `tfdt` equals
//! the previous one plus the previous fragment's sample durations.
//!
//! ffmpeg and ffprobe must be installed; the test fails (it does not skip) without them.

mod common;

use std::process::Command;
use std::time::{Duration, SystemTime};

use common::ffmpeg::{FPS, SECONDS, ffprobe_frames, push_interleaved, temp_dir, test_media};
use hls::packager::{Event, Packager, PackagerConfig};
use hls::{AccessUnit, MediaSink, TrackConfig};

/// A bare packager fed through the producers' interface ([`push_interleaved`] takes one).
struct Sink<'a>(&'a mut Packager);

impl MediaSink for Sink<'_> {
    fn start(&mut self, tracks: Vec<TrackConfig>, anchor: SystemTime) {
        self.0.start(&tracks, anchor);
    }
    fn push(&mut self, track: usize, au: AccessUnit) {
        self.0.push(track, au);
    }
    fn finish(&mut self) {
        self.0.finish();
    }
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

#[test]
fn ffprobe_decodes_packaged_h264_and_aac() {
    let dir = temp_dir("cmaf");
    let (video, audio_config, audio) = test_media(&dir);
    assert_eq!(video.units.len() as u64, FPS * SECONDS);

    let mut packager = Packager::new(PackagerConfig::default());
    packager.start(&[video.config.clone(), audio_config], SystemTime::now());
    push_interleaved(&mut Sink(&mut packager), &video.units, &audio);
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
            let (codec, frames) = ffprobe_frames(&path.to_string_lossy())[0].clone();
            let expected = if r == 0 { "h264" } else { "aac" };
            assert_eq!(codec, expected, "{name} segment {msn}");
            assert!(frames > 0, "{name} segment {msn} decodes no frames");
        }
        let path = dir.join(format!("{name}.mp4"));
        std::fs::write(&path, &whole).expect("write whole");
        let (_, frames) = ffprobe_frames(&path.to_string_lossy())[0].clone();
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

/// At a source change the packager fills the audio up to the picture with silent AAC frames:
/// the first source's audio stops 200 ms before its video ends, the second's starts 150 ms
/// after its video. ffmpeg decodes both sources' audio without a complaint, each covers its
/// picture from first frame to last, and what was filled is digital silence while the rest
/// is the 440 Hz tone.
#[test]
fn audio_is_filled_with_decodable_silence_up_to_the_picture_at_a_source_change() {
    let dir = temp_dir("silence");
    let (video, audio_config, audio) = test_media(&dir);
    let units = &video.units[..(FPS * 3) as usize];
    let video_end = Duration::from_secs(3);
    let frame = Duration::from_nanos(1024 * 1_000_000_000 / 48_000);
    let early_end: Vec<AccessUnit> = audio
        .iter()
        .filter(|u| u.dts + frame <= video_end - Duration::from_millis(200))
        .cloned()
        .collect();
    let late_start: Vec<AccessUnit> = audio
        .iter()
        .filter(|u| u.dts >= Duration::from_millis(150) && u.dts < video_end)
        .cloned()
        .collect();

    let tracks = [video.config.clone(), audio_config];
    let mut packager = Packager::new(PackagerConfig::default());
    let anchor = SystemTime::now();
    for (source, audio) in [&early_end, &late_start].into_iter().enumerate() {
        packager.start(&tracks, anchor + Duration::from_secs(10 * source as u64));
        push_interleaved(&mut Sink(&mut packager), units, audio);
    }
    packager.finish();

    // The audio rendition of each source: its init segment and its parts, in order.
    let mut audio_rendition = None;
    let mut files: Vec<(usize, Vec<u8>)> = Vec::new();
    while let Some(event) = packager.poll() {
        match event {
            Event::Rendition(r) if r.name == "audio" => {
                audio_rendition = Some(r.rendition);
                files.push((r.init.len(), r.init.to_vec()));
            }
            Event::Part(p) if Some(p.rendition) == audio_rendition => files
                .last_mut()
                .expect("an init first")
                .1
                .extend_from_slice(&p.data),
            _ => {}
        }
    }
    assert_eq!(files.len(), 2, "one audio init segment per source");

    let volume = |path: &str, from: f64, seconds: f64| -> f64 {
        let out = Command::new("ffmpeg")
            .args(["-hide_banner", "-nostats", "-v", "info", "-i", path, "-af"])
            .arg(format!("atrim=start={from}:duration={seconds},volumedetect"))
            .args(["-f", "null", "-"])
            .output()
            .expect("ffmpeg runs");
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{log}");
        log.lines()
            .find_map(|l| l.split("max_volume: ").nth(1))
            .and_then(|v| v.trim_end_matches(" dB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no volume in {log}"))
    };
    for (source, ((init_len, file), pushed)) in
        files.iter().zip([early_end.len(), late_start.len()]).enumerate()
    {
        let path = dir.join(format!("audio-{source}.mp4"));
        std::fs::write(&path, file).expect("write audio");
        let path = path.to_string_lossy().into_owned();
        let errors = Command::new("ffmpeg")
            .args(["-v", "error", "-i", &path, "-f", "null", "-"])
            .output()
            .expect("ffmpeg runs");
        assert!(
            errors.status.success() && errors.stderr.is_empty(),
            "source {source}: {}",
            String::from_utf8_lossy(&errors.stderr)
        );
        // From the picture's first frame (0; the audio 1 ms after it) to its last (3 s),
        // within one AAC frame.
        let fragments = walk_fragments(&file[*init_len..]);
        let (_, first_tfdt, _, _) = fragments[0];
        let (_, last_tfdt, last_duration, _) = fragments[fragments.len() - 1];
        assert_eq!(
            first_tfdt, 48,
            "source {source}: the audio starts with the picture"
        );
        let end = last_tfdt + last_duration;
        assert!(
            (144_000..144_000 + 1024).contains(&end),
            "source {source}: the audio ends with the picture (3 s = 144,000 ticks), at {end}"
        );
        let samples: usize = fragments.iter().map(|f| f.3).sum();
        let filled = samples - pushed;
        let (silent_from, silent_for, tone_from) = if source == 0 {
            (2.85, 0.12, 1.0)
        } else {
            (0.0, 0.13, 0.3)
        };
        assert!(
            (6..=10).contains(&filled),
            "source {source}: about 200 / 150 ms of silent frames, got {filled}"
        );
        // (The decoder's overlap carries the tone into the first silent frame.)
        let silent = volume(&path, silent_from, silent_for);
        let tone = volume(&path, tone_from, 0.5);
        assert!(
            silent <= -80.0,
            "source {source}: the fill is silent ({silent} dB)"
        );
        assert!(tone >= -30.0, "source {source}: the tone plays ({tone} dB)");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
