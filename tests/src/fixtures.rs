//! Real media made by ffmpeg, generated once and cached on disk.
//!
//! Video is ffmpeg's `testsrc2` at 640x360, 30 fps, 10 s, a keyframe every second and no
//! B-frames: VP8 in IVF and H.264 constrained baseline in Annex B (SPS/PPS repeated before every
//! IDR, so a viewer that joins late can decode). Audio is a 440 Hz sine in Opus, one 20 ms
//! packet per Ogg page, which is what the webrtc-rs Ogg reader hands out as one sample.
//!
//! Files live in `$FANOUT_FIXTURE_DIR`, else `<temp dir>/fanout-fixtures`; the file name carries
//! the encoding parameters, so changing them makes a new file. Generation writes to a unique
//! temporary name and renames, so parallel tests never read a half-written file. `$FFMPEG`
//! overrides the ffmpeg binary.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

/// Frame rate of the video fixtures.
pub const VIDEO_FPS: u32 = 30;
/// Duration of every fixture, in seconds.
pub const DURATION_SECS: u32 = 10;

/// Why a fixture could not be made.
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    /// ffmpeg could not be started (not installed? `apt-get install -y ffmpeg`).
    #[error("cannot run {program} (install it with `apt-get install -y ffmpeg`): {source}")]
    FfmpegMissing {
        /// The program that was tried.
        program: String,
        /// The error from starting it.
        source: io::Error,
    },
    /// ffmpeg ran and failed.
    #[error("ffmpeg failed making {file} ({status}): {stderr}")]
    FfmpegFailed {
        /// The fixture being made.
        file: String,
        /// ffmpeg's exit status.
        status: std::process::ExitStatus,
        /// The tail of ffmpeg's stderr.
        stderr: String,
    },
    /// The cache directory could not be written.
    #[error("fixture cache {path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

/// Paths of all three fixtures.
#[derive(Debug, Clone)]
pub struct Fixtures {
    /// VP8 in IVF.
    pub vp8_ivf: PathBuf,
    /// H.264 Annex B elementary stream.
    pub h264_annexb: PathBuf,
    /// Opus in Ogg.
    pub opus_ogg: PathBuf,
}

/// Makes (or finds) all fixtures.
pub fn all() -> Result<Fixtures, FixtureError> {
    Ok(Fixtures {
        vp8_ivf: vp8_ivf()?,
        h264_annexb: h264_annexb()?,
        opus_ogg: opus_ogg()?,
    })
}

/// The directory fixtures are cached in.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("FANOUT_FIXTURE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("fanout-fixtures"))
}

fn video_source(width: u32, height: u32) -> String {
    format!("testsrc2=size={width}x{height}:rate={VIDEO_FPS}")
}

/// VP8, realtime libvpx, no alt-ref frames (an IVF frame is then always one shown frame).
pub fn vp8_ivf() -> Result<PathBuf, FixtureError> {
    vp8_ivf_sized(640, 360)
}

/// [`vp8_ivf`] at another size (1280x720: 2.5 Mb/s; others 1 Mb/s).
#[rustfmt::skip]
pub fn vp8_ivf_sized(width: u32, height: u32) -> Result<PathBuf, FixtureError> {
    let gop = VIDEO_FPS.to_string();
    let secs = DURATION_SECS.to_string();
    let source = video_source(width, height);
    let name = format!("testsrc2-{width}x{height}-30fps-10s-gop30-v1.ivf");
    let bitrate = if height >= 720 { "2500k" } else { "1M" };
    cached(
        &name,
        &[
            "-f", "lavfi", "-i", &source, "-t", &secs,
            "-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8",
            "-b:v", bitrate, "-g", &gop, "-keyint_min", &gop,
            "-auto-alt-ref", "0", "-lag-in-frames", "0", "-error-resilient", "1",
            "-f", "ivf",
        ],
    )
}

/// H.264 constrained baseline (no B-frames, CAVLC), one slice per frame, SPS/PPS before each
/// IDR, an IDR every second.
#[rustfmt::skip]
pub fn h264_annexb() -> Result<PathBuf, FixtureError> {
    let gop = VIDEO_FPS.to_string();
    let secs = DURATION_SECS.to_string();
    let source = video_source(640, 360);
    let x264 = format!("keyint={VIDEO_FPS}:min-keyint={VIDEO_FPS}:scenecut=0:repeat-headers=1");
    cached(
        "testsrc2-640x360-30fps-10s-gop30-cbp-v1.h264",
        &[
            "-f", "lavfi", "-i", &source, "-t", &secs,
            "-c:v", "libx264", "-profile:v", "baseline", "-level", "3.1",
            "-pix_fmt", "yuv420p", "-bf", "0", "-preset", "veryfast", "-b:v", "1M",
            "-g", &gop, "-x264-params", &x264,
            "-f", "h264",
        ],
    )
}

/// Opus stereo 48 kHz, 20 ms frames, one frame per Ogg page.
#[rustfmt::skip]
pub fn opus_ogg() -> Result<PathBuf, FixtureError> {
    let secs = DURATION_SECS.to_string();
    cached(
        "sine440-opus-48k-20ms-10s-v1.ogg",
        &[
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", &secs,
            "-c:a", "libopus", "-b:a", "64k", "-ac", "2", "-frame_duration", "20",
            "-page_duration", "20000",
            "-f", "ogg",
        ],
    )
}

fn cached(name: &str, args: &[&str]) -> Result<PathBuf, FixtureError> {
    let dir = cache_dir();
    let target = dir.join(name);
    if is_nonempty_file(&target) {
        return Ok(target);
    }
    std::fs::create_dir_all(&dir).map_err(|source| FixtureError::Io {
        path: dir.clone(),
        source,
    })?;
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let partial = dir.join(format!(
        ".{name}.{}.{}.partial",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let program = std::env::var("FFMPEG").unwrap_or_else(|_| "ffmpeg".to_owned());
    let output = Command::new(&program)
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args(args)
        .arg(&partial)
        .output()
        .map_err(|source| FixtureError::FfmpegMissing {
            program: program.clone(),
            source,
        })?;
    if !output.status.success() || !is_nonempty_file(&partial) {
        let _ = std::fs::remove_file(&partial);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: String = stderr
            .chars()
            .rev()
            .take(2000)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        return Err(FixtureError::FfmpegFailed {
            file: name.to_owned(),
            status: output.status,
            stderr: tail,
        });
    }
    std::fs::rename(&partial, &target).map_err(|source| FixtureError::Io {
        path: target.clone(),
        source,
    })?;
    Ok(target)
}

fn is_nonempty_file(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyframe::h264_is_keyframe;
    use rtc::media::io::h26x_reader::H26xSampleReader;
    use rtc::media::io::ivf_reader::IVFReader;
    use rtc::media::io::ogg_reader::OggReader;
    use std::fs::File;
    use std::io::BufReader;

    fn ffmpeg_available() -> bool {
        Command::new(std::env::var("FFMPEG").unwrap_or_else(|_| "ffmpeg".to_owned()))
            .arg("-version")
            .output()
            .is_ok_and(|o| o.status.success())
    }

    // These run ffmpeg; skipped (with a note) where it is not installed.
    #[test]
    fn fixtures_parse_with_webrtc_readers() {
        if !ffmpeg_available() {
            eprintln!("ffmpeg not installed: skipping fixture generation test");
            return;
        }
        let fx = all().expect("fixtures");

        let file = File::open(&fx.vp8_ivf).expect("open ivf");
        let (mut ivf, header) = IVFReader::new(BufReader::new(file)).expect("ivf header");
        assert_eq!((header.width, header.height), (640, 360));
        let mut frames = 0;
        let mut keyframes = 0;
        while let Ok((frame, _)) = ivf.parse_next_frame() {
            frames += 1;
            // VP8 frame tag bit 0 clear = key frame.
            if frame.first().is_some_and(|b| b & 1 == 0) {
                keyframes += 1;
            }
        }
        assert_eq!(frames, VIDEO_FPS * DURATION_SECS);
        assert_eq!(keyframes, DURATION_SECS);

        let file = File::open(&fx.h264_annexb).expect("open h264");
        let mut reader = H26xSampleReader::new(BufReader::new(file), 1 << 20, false);
        let (mut timed, mut idr_or_sps) = (0, 0);
        while let Ok(sample) = reader.next_sample() {
            timed += u32::from(sample.timed);
            // The reader hands out one NAL unit per sample, start code stripped.
            if h264_is_keyframe(&sample.data) {
                idr_or_sps += 1;
            }
        }
        assert_eq!(timed, VIDEO_FPS * DURATION_SECS);
        assert_eq!(idr_or_sps, 2 * DURATION_SECS, "one SPS and one IDR per second");

        let file = File::open(&fx.opus_ogg).expect("open ogg");
        let (mut ogg, header) = OggReader::new(BufReader::new(file), true).expect("ogg header");
        assert_eq!(header.sample_rate, 48_000);
        let mut pages = 0;
        while ogg.parse_next_page().is_ok() {
            pages += 1;
        }
        // 500 audio pages plus the OpusTags page, give or take encoder padding.
        assert!((495..=510).contains(&pages), "{pages} pages");
    }
}
