//! RTMP and SRT publishers for the ingest tests: ffmpeg pushing a test pattern with a tone,
//! and the stream resource as the API shows it while they push.

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{Server, http, terminate};

/// The RTMP listener the ingest tests start the server with (TCP).
pub const RTMP_PORT: u16 = 19350;
const RTMP_ADDR: &str = "127.0.0.1:19350";
/// The SRT listener (UDP), away from the WebRTC media ports (18189 and up).
pub const SRT_PORT: u16 = 19890;
const SRT_ADDR: &str = "127.0.0.1:19890";

/// `fanout serve` arguments that put both listeners on the ports above, on loopback.
pub const LISTENERS: [&str; 4] = ["--rtmp-addr", RTMP_ADDR, "--srt-addr", SRT_ADDR];

/// A stream as its creation answered: the only time the API shows the key.
pub struct Created {
    pub id: String,
    pub key: String,
    pub body: Value,
}

impl Created {
    /// The complete RTMP URL (`rtmpUrl`), which names the key.
    pub fn rtmp_url(&self) -> String {
        self.body["rtmpUrl"].as_str().expect("rtmpUrl").to_string()
    }

    /// The complete SRT URL (`srtUrl`), which names the key.
    pub fn srt_url(&self) -> String {
        self.body["srtUrl"].as_str().expect("srtUrl").to_string()
    }
}

/// Create a stream through the API; the whole creation response.
pub fn create(server: &Server, title: &str) -> Created {
    let body = super::create_stream_json(server, title);
    Created {
        id: body["id"].as_str().expect("id").to_string(),
        key: body["streamKey"].as_str().expect("streamKey").to_string(),
        body,
    }
}

/// The stream resource (with `status`, `ingest` and `health`), read as admin.
pub fn stream(server: &Server, id: &str) -> Value {
    let r = http(
        "GET",
        &format!("{}/api/v1/streams/{id}", server.base),
        &[("Authorization", &format!("Bearer {}", server.admin))],
        None,
    );
    assert_eq!(r.status, 200, "GET stream {id}: {}", r.body);
    serde_json::from_str(&r.body).expect("stream JSON")
}

/// Polls the stream resource until `done` holds; panics with the last one after `within`.
pub fn wait_stream(
    server: &Server,
    id: &str,
    within: Duration,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let v = stream(server, id);
        if done(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "{what} not within {within:?}: {v}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits until the stream is live; returns the resource.
pub fn wait_live(server: &Server, id: &str) -> Value {
    wait_stream(server, id, Duration::from_secs(30), "live", |v| {
        v["status"] == "live"
    })
}

/// Asserts `holds` of the stream resource throughout `during`: what a refused publisher must
/// not change, even for a moment the API could show.
pub fn assert_throughout(
    server: &Server,
    id: &str,
    during: Duration,
    what: &str,
    holds: impl Fn(&Value) -> bool,
) {
    let until = Instant::now() + during;
    while Instant::now() < until {
        let v = stream(server, id);
        assert!(holds(&v), "not {what}: {v}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Asserts the stream stays out of `live` for `during`.
pub fn assert_never_live(server: &Server, id: &str, during: Duration) {
    assert_throughout(server, id, during, "out of live", |v| v["status"] != "live");
}

/// How ffmpeg encodes the test pattern's video.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Video {
    /// What a low-latency encoder sends (zerolatency: no B-frames): passed through.
    NoBFrames,
    /// Two B-frames between references, as OBS's and x264's quality presets send.
    BFrames,
}

/// Where ffmpeg pushes.
pub enum Push {
    /// FLV over RTMP to this URL.
    Rtmp(String),
    /// MPEG-TS over SRT to this URL (`srt://...?streamid=...`); `passphrase` adds AES-128.
    Srt { url: String, passphrase: Option<String> },
}

/// The picture ffmpeg sends: its size and its keyframe interval in frames (at 30 fps).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub width: u32,
    pub height: u32,
    pub gop: u32,
}

impl Default for Shape {
    /// 640x360, a keyframe every two seconds (as OBS and streaming services recommend).
    fn default() -> Self {
        Shape {
            width: 640,
            height: 360,
            gop: 60,
        }
    }
}

/// An ffmpeg publisher: a 30 fps test pattern (640x360 unless shaped) and a 440 Hz tone
/// (AAC), in real time. Killed on drop; its log is printed when the test fails.
pub struct Ffmpeg {
    child: Child,
    log: PathBuf,
    exited: Option<ExitStatus>,
}

impl Ffmpeg {
    /// Start pushing the default shape for `seconds`.
    pub fn push(video: Video, to: Push, seconds: u32) -> Ffmpeg {
        Ffmpeg::push_shaped(video, to, seconds, Shape::default())
    }

    /// Start pushing a picture of `shape` for `seconds`.
    pub fn push_shaped(video: Video, to: Push, seconds: u32, shape: Shape) -> Ffmpeg {
        let log = std::env::temp_dir().join(format!(
            "fanout-ffmpeg-{}-{}.log",
            std::process::id(),
            super::rand_suffix()
        ));
        let mut cmd = Command::new("ffmpeg");
        cmd.args(["-nostdin", "-hide_banner", "-nostats", "-loglevel", "info"]);
        // Real time on both inputs: ffmpeg would otherwise read the tone as fast as it can.
        let pattern = format!("testsrc2=size={}x{}:rate=30", shape.width, shape.height);
        cmd.args(["-re", "-f", "lavfi", "-i", &pattern]);
        cmd.args(["-re", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]);
        cmd.args(["-t", &seconds.to_string()]);
        cmd.args(["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p"]);
        // A fixed GOP (no scene cuts), as a streaming encoder is set up.
        cmd.args(["-g", &shape.gop.to_string(), "-sc_threshold", "0"]);
        match video {
            Video::NoBFrames => cmd.args(["-tune", "zerolatency", "-bf", "0"]),
            Video::BFrames => cmd.args(["-bf", "2"]),
        };
        cmd.args(["-c:a", "aac", "-b:a", "96k"]);
        match to {
            Push::Rtmp(url) => cmd.args(["-f", "flv"]).arg(url),
            Push::Srt { url, passphrase } => {
                let mut url = format!("{url}&pkt_size=1316");
                if let Some(p) = passphrase {
                    url.push_str(&format!("&passphrase={p}&pbkeylen=16"));
                }
                cmd.args(["-f", "mpegts"]).arg(url)
            }
        };
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("ffmpeg log file"))
            .spawn()
            .expect("ffmpeg runs");
        Ffmpeg {
            child,
            log,
            exited: None,
        }
    }

    /// Waits up to `within` for ffmpeg to exit; its status, or `None` while it still runs.
    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if self.exited.is_none() {
                self.exited = self.child.try_wait().expect("wait on ffmpeg");
            }
            if self.exited.is_some() || Instant::now() >= deadline {
                return self.exited;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Asserts ffmpeg gives up with an error within 30 s (a refused publisher).
    pub fn assert_refused(&mut self, what: &str) {
        match self.wait_exit(Duration::from_secs(30)) {
            Some(status) => assert!(!status.success(), "{what}: ffmpeg succeeded:\n{}", self.log()),
            None => panic!("{what}: ffmpeg still runs after 30 s:\n{}", self.log()),
        }
    }

    /// Whether ffmpeg still runs.
    pub fn running(&mut self) -> bool {
        self.wait_exit(Duration::ZERO).is_none()
    }

    /// What ffmpeg logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Ffmpeg {
    fn drop(&mut self) {
        if self.exited.is_none() {
            terminate(&mut self.child);
        }
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("---- ffmpeg log (last lines) ----");
            tail.iter().rev().for_each(|l| eprintln!("{l}"));
        }
        let _ = std::fs::remove_file(&self.log);
    }
}
