//! RTSP pull against GStreamer's RTSP server: frames flow into a publication, the publication
//! ends when the camera goes away, and a new one starts when it comes back.
//!
//! The camera is `tests/rtsp_server.py` (gst-rtsp-server from Python, x264 video and AAC
//! audio, Basic authentication), started and killed by the test. The gate is a test double
//! that records every publication's frames and the moment its sink is dropped. Skipped, with a
//! note, where Python's GStreamer bindings or the RTSP server typelib
//! (gir1.2-gst-rtsp-server-1.0) are missing.

use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ingest::gate::BoxFuture;
use ingest::rtsp::{PullConfig, PullState, PullStatus, RtspPull};
use ingest::{AudioCodec, Frame, Gate, PublishRequest, Refusal, Sink, SinkClosed};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, watch};

const STREAM: &str = "cam-1";
const USER: &str = "operator7";
/// Percent-encoded in the URL as `pa%3Ass%40rd`.
const PASSWORD: &str = "pa:ss@rd";
/// Generous: a busy two-core machine encodes, packetizes and decodes in debug builds.
const DEADLINE: Duration = Duration::from_secs(60);

#[derive(Debug)]
enum Event {
    Opened(usize),
    Frame(usize, Frame),
    Closed(usize),
}

/// Opens a numbered sink per publication; every sink reports its frames and its drop.
struct TestGate {
    events: mpsc::UnboundedSender<Event>,
    opened: AtomicUsize,
}

impl Gate for TestGate {
    fn open(&self, request: PublishRequest) -> BoxFuture<'_, Result<Box<dyn Sink>, Refusal>> {
        Box::pin(async move {
            assert!(
                matches!(&request, PublishRequest::Pull { stream } if stream == STREAM),
                "{request:?}"
            );
            let n = self.opened.fetch_add(1, Ordering::SeqCst) + 1;
            let _ = self.events.send(Event::Opened(n));
            Ok(Box::new(TestSink {
                n,
                events: self.events.clone(),
            }) as Box<dyn Sink>)
        })
    }
}

struct TestSink {
    n: usize,
    events: mpsc::UnboundedSender<Event>,
}

impl Sink for TestSink {
    fn push(&mut self, frame: Frame) -> Result<(), SinkClosed> {
        let _ = self.events.send(Event::Frame(self.n, frame));
        Ok(())
    }

    fn stream(&self) -> &str {
        STREAM
    }
}

impl Drop for TestSink {
    fn drop(&mut self) {
        let _ = self.events.send(Event::Closed(self.n));
    }
}

/// A Python that can import the RTSP server bindings: the system's first, since a
/// version manager's `python3` on the PATH often lacks the distribution's `gi`.
async fn python_with_rtsp_server() -> Option<&'static str> {
    let probe =
        "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer";
    for python in ["/usr/bin/python3", "python3"] {
        let ok = Command::new(python)
            .args(["-c", probe])
            .output()
            .await
            .is_ok_and(|out| out.status.success());
        if ok {
            return Some(python);
        }
    }
    None
}

async fn elements_present() -> bool {
    for element in ["x264enc", "avenc_aac"] {
        let status = Command::new("gst-inspect-1.0")
            .args(["--exists", element])
            .status()
            .await;
        if !status.is_ok_and(|s| s.success()) {
            return false;
        }
    }
    true
}

/// The camera: `rtsp_server.py` on `port`, killed (SIGKILL, as a power cut) on drop.
struct Camera(Child);

impl Camera {
    async fn start(python: &str, port: u16) -> Camera {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rtsp_server.py");
        let mut child = Command::new(python)
            .arg(script)
            .args([
                "--port",
                &port.to_string(),
                "--path",
                "/cam",
                "--user",
                USER,
                "--password",
                PASSWORD,
            ])
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start rtsp_server.py");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(DEADLINE, lines.next_line()).await;
        assert!(
            matches!(ready, Ok(Ok(Some(ref line))) if line == "ready"),
            "rtsp_server.py did not get ready: {ready:?}"
        );
        Camera(child)
    }

    async fn kill(mut self) {
        self.0.kill().await.expect("kill rtsp_server.py");
    }

    /// Freeze (SIGSTOP) or thaw (SIGCONT) the camera: its connections stay open, silent.
    async fn signal(&self, signal: &str) {
        let pid = self.0.id().expect("rtsp_server.py is running");
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .await;
        assert!(status.is_ok_and(|s| s.success()), "kill {signal} {pid}");
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("bound address").port()
}

async fn next_event(events: &mut mpsc::UnboundedReceiver<Event>, waiting_for: &str) -> Event {
    match tokio::time::timeout(DEADLINE, events.recv()).await {
        Ok(Some(event)) => event,
        Ok(None) => panic!("the gate is gone while waiting for {waiting_for}"),
        Err(_) => panic!("no {waiting_for} within {DEADLINE:?}"),
    }
}

/// What one publication delivered until enough video and audio arrived, checked in order.
async fn expect_frames(events: &mut mpsc::UnboundedReceiver<Event>, publication: usize, video_wanted: usize) {
    let (mut video, mut audio, mut keyframes) = (0, 0, 0);
    let (mut video_config, mut audio_config) = (false, false);
    let (mut last_dts, mut last_audio_pts) = (None, None);
    while video < video_wanted || audio < 20 {
        let frame = match next_event(events, &format!("frames of publication {publication}")).await {
            Event::Frame(n, frame) if n == publication => frame,
            other => panic!("expected frames of publication {publication}, got {other:?}"),
        };
        match frame {
            Frame::VideoConfig(config) => {
                assert!(!config.sps.is_empty() && !config.pps.is_empty(), "{config:?}");
                video_config = true;
            }
            Frame::Video(frame) => {
                assert!(video_config, "video before its configuration");
                assert!(
                    last_dts.is_none_or(|last| frame.dts > last),
                    "dts {} after {last_dts:?}",
                    frame.dts
                );
                assert_eq!(frame.dts, frame.pts);
                last_dts = Some(frame.dts);
                keyframes += usize::from(frame.keyframe);
                video += 1;
            }
            Frame::AudioConfig(AudioCodec::Aac { config }) => {
                assert!(config.len() >= 2);
                audio_config = true;
            }
            Frame::AudioConfig(other) => panic!("the camera sends AAC, got {other:?}"),
            Frame::Audio(frame) => {
                assert!(audio_config, "audio before its configuration");
                assert!(!frame.data.is_empty());
                assert!(last_audio_pts.is_none_or(|last| frame.pts > last));
                last_audio_pts = Some(frame.pts);
                audio += 1;
            }
        }
    }
    assert!(keyframes >= 1, "no keyframe in {video} frames");
}

async fn wait_status(
    status: &mut watch::Receiver<PullStatus>,
    what: &str,
    f: impl FnMut(&PullStatus) -> bool,
) -> PullStatus {
    let reached = match tokio::time::timeout(DEADLINE, status.wait_for(f)).await {
        Ok(Ok(reached)) => Some(reached.clone()),
        Ok(Err(_)) => panic!("the pull is gone while waiting for {what}"),
        Err(_) => None,
    };
    reached.unwrap_or_else(|| {
        panic!(
            "the pull did not reach {what} within {DEADLINE:?}: {:?}",
            *status.borrow()
        )
    })
}

/// Log lines written while a test runs, to check what reaches them.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log buffer")).into_owned()
    }
}

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() -> (Logs, tracing::subscriber::DefaultGuard) {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // A current-thread runtime runs the pull's task on this thread, under this subscriber.
    // Every test sets one: a test thread without a subscriber running alongside can leave
    // tracing's per-callsite cache saying that nobody listens.
    (logs, tracing::subscriber::set_default(subscriber))
}

fn url(port: u16, password: &str) -> String {
    let escaped = password.replace(':', "%3A").replace('@', "%40");
    format!("rtsp://{USER}:{escaped}@127.0.0.1:{port}/cam")
}

fn fast_retries() -> PullConfig {
    PullConfig {
        backoff_min: Duration::from_millis(200),
        backoff_max: Duration::from_secs(2),
        connect_timeout: Duration::from_secs(20),
        idle_timeout: Duration::from_secs(5),
        ..PullConfig::default()
    }
}

#[tokio::test]
async fn frames_flow_stop_with_the_camera_and_resume_when_it_returns() {
    let Some(python) = python_with_rtsp_server().await else {
        eprintln!("note: no python3 with the GstRtspServer typelib (gir1.2-gst-rtsp-server-1.0); skipping");
        return;
    };
    if !elements_present().await {
        eprintln!("note: GStreamer's x264enc or avenc_aac missing; skipping");
        return;
    }
    let (logs, _guard) = capture_logs();
    let port = free_port();
    let camera = Camera::start(python, port).await;
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let gate = Arc::new(TestGate {
        events: events_tx,
        opened: AtomicUsize::new(0),
    });
    let pull = RtspPull::start(url(port, PASSWORD), STREAM.into(), gate, fast_retries());
    let mut status = pull.subscribe();

    assert!(matches!(
        next_event(&mut events, "the first publication").await,
        Event::Opened(1)
    ));
    expect_frames(&mut events, 1, 60).await;
    assert!(
        matches!(pull.status().state, PullState::Playing { .. }),
        "{:?}",
        pull.status()
    );

    // The camera dies: the publication ends, and the pull backs off.
    camera.kill().await;
    loop {
        match next_event(&mut events, "the first publication's end").await {
            Event::Frame(1, _) => {}
            Event::Closed(1) => break,
            other => panic!("expected the first publication to end, got {other:?}"),
        }
    }
    // Two failures in a row: the first attempt after the camera's end, and a retry against
    // the closed port.
    let backoff = wait_status(
        &mut status,
        "a second backoff",
        |s| matches!(s.state, PullState::Backoff { attempt, .. } if attempt >= 2),
    )
    .await;
    let error = backoff.last_error.expect("a backoff says why");
    assert!(!error.contains("pa:ss") && !error.contains("pa%3Ass"), "{error}");

    // It comes back on the same address: a new publication, from a keyframe.
    let camera = Camera::start(python, port).await;
    assert!(matches!(
        next_event(&mut events, "the second publication").await,
        Event::Opened(2)
    ));
    expect_frames(&mut events, 2, 30).await;

    pull.stop().await;
    loop {
        match next_event(&mut events, "the second publication's end").await {
            Event::Frame(2, _) => {}
            Event::Closed(2) => break,
            other => panic!("expected the second publication to end, got {other:?}"),
        }
    }
    camera.kill().await;

    let logs = logs.text();
    assert!(
        logs.contains("RTSP pull playing") && logs.contains("RTSP pull interrupted"),
        "{logs}"
    );
    assert!(logs.contains(&format!("127.0.0.1:{port}/cam")), "{logs}");
    assert!(
        !logs.contains("pa:ss") && !logs.contains("pa%3Ass") && !logs.contains(USER),
        "{logs}"
    );
}

#[tokio::test]
async fn wrong_credentials_back_off_without_publishing() {
    let Some(python) = python_with_rtsp_server().await else {
        eprintln!("note: no python3 with the GstRtspServer typelib (gir1.2-gst-rtsp-server-1.0); skipping");
        return;
    };
    let (logs, _guard) = capture_logs();
    let port = free_port();
    let camera = Camera::start(python, port).await;
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let gate = Arc::new(TestGate {
        events: events_tx,
        opened: AtomicUsize::new(0),
    });
    let pull = RtspPull::start(url(port, "not-the-password"), STREAM.into(), gate, fast_retries());
    let mut status = pull.subscribe();

    let second = wait_status(
        &mut status,
        "a second failed attempt",
        |s| matches!(s.state, PullState::Backoff { attempt, .. } if attempt >= 2),
    )
    .await;
    let error = second.last_error.expect("a backoff says why");
    assert!(error.contains("401") || error.contains("Unauthorized"), "{error}");
    assert!(!error.contains("not-the-password"), "{error}");
    assert!(events.try_recv().is_err(), "nothing may be published");

    pull.stop().await;
    assert_eq!(status.borrow().state, PullState::Stopped);
    camera.kill().await;

    let logs = logs.text();
    assert!(logs.contains("RTSP pull interrupted"), "{logs}");
    assert!(
        !logs.contains("not-the-password") && !logs.contains(USER),
        "{logs}"
    );
}

#[tokio::test]
async fn a_silent_camera_is_dropped_after_the_idle_timeout() {
    let Some(python) = python_with_rtsp_server().await else {
        eprintln!("note: no python3 with the GstRtspServer typelib (gir1.2-gst-rtsp-server-1.0); skipping");
        return;
    };
    if !elements_present().await {
        eprintln!("note: GStreamer's x264enc or avenc_aac missing; skipping");
        return;
    }
    let (_logs, _guard) = capture_logs();
    let port = free_port();
    let camera = Camera::start(python, port).await;
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let gate = Arc::new(TestGate {
        events: events_tx,
        opened: AtomicUsize::new(0),
    });
    let config = PullConfig {
        idle_timeout: Duration::from_secs(3),
        ..fast_retries()
    };
    let pull = RtspPull::start(url(port, PASSWORD), STREAM.into(), gate, config);
    let mut status = pull.subscribe();
    assert!(matches!(
        next_event(&mut events, "the first publication").await,
        Event::Opened(1)
    ));
    expect_frames(&mut events, 1, 30).await;

    // A camera that hangs keeps its TCP connection open: only the idle timeout notices.
    camera.signal("-STOP").await;
    loop {
        match next_event(&mut events, "the end of the silent publication").await {
            Event::Frame(1, _) => {}
            Event::Closed(1) => break,
            other => panic!("expected the first publication to end, got {other:?}"),
        }
    }
    let backoff = wait_status(&mut status, "backoff", |s| {
        matches!(s.state, PullState::Backoff { .. })
    })
    .await;
    let error = backoff.last_error.expect("a backoff says why");
    assert!(error.contains("nothing received"), "{error}");

    // Thawed, it answers the reconnection that waited in its listen queue.
    camera.signal("-CONT").await;
    assert!(matches!(
        next_event(&mut events, "the second publication").await,
        Event::Opened(2)
    ));
    expect_frames(&mut events, 2, 30).await;
    pull.stop().await;
    camera.kill().await;
}
