//! GStreamer's RTP H.264 depayloader and libav's decoder accept the payloader's packets.
//!
//! ffmpeg encodes two seconds of test video (x264, 60 frames, an IDR every 30); the test
//! splits the Annex B stream into access units, takes the parameter sets out of them (so the
//! payloader has to put them back in front of each keyframe from the configuration), wraps the
//! payloads in RTP headers and writes them with RFC 4571 framing (a 16-bit length before each
//! packet) to a file that `rtpstreamdepay ! rtph264depay ! avdec_h264` reads back. Skipped,
//! with a note, where ffmpeg or GStreamer is missing.

use std::path::{Path, PathBuf};
use std::process::Command;

use bytes::{BufMut, Bytes, BytesMut};
use ingest::h264::{self, NAL_AUD, NAL_PPS, NAL_SPS};
use ingest::rtp_h264::H264Payloader;
use ingest::{VideoConfig, VideoFrame};

const FRAMES: usize = 60;

fn tool_runs(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .output()
        .is_ok_and(|out| out.status.success())
}

/// A directory of this test's own, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create a temporary directory");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Group a stream's NAL units into access units (H.264 7.4.1.2.3): a new one starts at an
/// access unit delimiter, parameter set or SEI after a slice, or at a slice whose
/// `first_mb_in_slice` is 0 (its first bit is 1, the exp-Golomb code of 0) after a slice.
fn access_units(nalus: Vec<Bytes>) -> Vec<Vec<Bytes>> {
    let mut units: Vec<Vec<Bytes>> = Vec::new();
    let mut current: Vec<Bytes> = Vec::new();
    let mut after_slice = false;
    for nal in nalus {
        let kind = h264::nal_unit_type(&nal).unwrap_or(0);
        let slice = matches!(kind, 1..=5);
        let first_mb_zero = nal.get(1).is_some_and(|b| b & 0x80 != 0);
        let starts = after_slice && ((6..=9).contains(&kind) || (slice && first_mb_zero));
        if (starts || kind == NAL_AUD) && !current.is_empty() {
            units.push(std::mem::take(&mut current));
        }
        after_slice = slice;
        current.push(nal);
    }
    if !current.is_empty() {
        units.push(current);
    }
    units
}

fn rtp_packet(seq: u16, timestamp: u32, marker: bool, payload: &[u8]) -> Bytes {
    let mut packet = BytesMut::with_capacity(12 + payload.len());
    packet.put_u8(0x80); // version 2, no padding, extension or CSRCs
    packet.put_u8(if marker { 0x80 } else { 0 } | 102);
    packet.put_u16(seq);
    packet.put_u32(timestamp);
    packet.put_u32(0x1234_5678);
    packet.put_slice(payload);
    packet.freeze()
}

fn encode(dir: &Path) -> Bytes {
    let file = dir.join("testsrc2.h264");
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi"])
        .args([
            "-i",
            "testsrc2=size=320x240:rate=30",
            "-t",
            "2",
            "-pix_fmt",
            "yuv420p",
        ])
        .args(["-c:v", "libx264", "-bf", "0", "-g", "30", "-f", "h264"])
        .arg(&file)
        .status()
        .expect("run ffmpeg");
    assert!(status.success(), "ffmpeg failed: {status}");
    Bytes::from(std::fs::read(&file).expect("read the encoded file"))
}

#[test]
fn gstreamer_decodes_the_payloaded_stream() {
    if !tool_runs("ffmpeg", "-version") || !tool_runs("gst-launch-1.0", "--version") {
        eprintln!("note: ffmpeg or gst-launch-1.0 missing; skipping the GStreamer decode test");
        return;
    }
    let dir = TempDir::new("ingest-rtp-h264");
    let stream = encode(&dir.0);

    let mut config = VideoConfig::default();
    let mut frames = Vec::new();
    for (i, unit) in access_units(h264::split_annex_b(&stream)).into_iter().enumerate() {
        let (params, nalus): (Vec<Bytes>, Vec<Bytes>) = unit
            .into_iter()
            .partition(|nal| matches!(h264::nal_unit_type(nal), Some(NAL_SPS | NAL_PPS)));
        for nal in params {
            match h264::nal_unit_type(&nal) {
                Some(NAL_SPS) => config.sps = vec![nal],
                _ => config.pps = vec![nal],
            }
        }
        let dts = i as i64 * 3000;
        frames.push(VideoFrame {
            dts,
            pts: dts,
            keyframe: h264::contains_idr(&nalus),
            nalus,
        });
    }
    assert_eq!(
        frames.len(),
        FRAMES,
        "ffmpeg's stream splits into one access unit per frame"
    );
    assert_eq!(frames.iter().filter(|f| f.keyframe).count(), 2);
    let sps = h264::parse_sps(config.sps.first().expect("x264 writes an SPS")).expect("x264's SPS parses");
    assert_eq!(
        (sps.width, sps.height, sps.max_num_reorder_frames),
        (320, 240, Some(0))
    );

    let mut payloader = H264Payloader::new(1200);
    let mut framed = BytesMut::new();
    let mut seq = 0u16;
    let mut kinds = [0usize; 32];
    for frame in &frames {
        for (payload, marker) in payloader.payload(Some(&config), frame) {
            assert!(payload.len() <= 1200);
            kinds[usize::from(payload[0] & 0x1f)] += 1;
            let packet = rtp_packet(seq, 10_000 + frame.dts as u32, marker, &payload);
            framed.put_u16(packet.len() as u16);
            framed.put_slice(&packet);
            seq = seq.wrapping_add(1);
        }
    }
    // x264's keyframes at this size span several packets, and their parameter sets and SEI
    // share one: all three packet kinds are exercised.
    assert!(
        kinds[24] >= 2 && kinds[28] >= 4 && kinds[1] >= 30,
        "packet kinds: {kinds:?}"
    );
    let rtp_file = dir.0.join("stream.rtp");
    std::fs::write(&rtp_file, &framed).expect("write the RTP stream");

    let caps = "media=video,clock-rate=90000,encoding-name=H264,payload=102";
    let output = Command::new("gst-launch-1.0")
        .arg("-v")
        .args(["filesrc", &format!("location={}", rtp_file.display()), "!"])
        .args([
            &format!("application/x-rtp-stream,{caps}"),
            "!",
            "rtpstreamdepay",
            "!",
        ])
        .args([
            &format!("application/x-rtp,{caps}"),
            "!",
            "rtph264depay",
            "!",
            "avdec_h264",
            "!",
        ])
        .args(["fakesink", "silent=false", "sync=false"])
        .output()
        .expect("run gst-launch-1.0");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "gst-launch-1.0 failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    // With -v, fakesink reports each buffer it receives: one decoded picture each.
    let decoded = stdout
        .lines()
        .filter(|line| line.contains("GstFakeSink") && line.contains("chain"))
        .count();
    assert!(
        decoded >= FRAMES - 5,
        "GStreamer decoded {decoded} of {FRAMES} frames:\n{stdout}"
    );
}
