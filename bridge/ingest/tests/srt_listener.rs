//! The SRT listener against real callers: ffmpeg (libsrt, libx264, AAC) pushing MPEG-TS,
//! and srt-tokio callers for the cases ffmpeg cannot make (idle, refused modes, a connection
//! cap, encryption mismatches). Every wait has a deadline; nothing is asserted on a sleep.
//! The ffmpeg tests are skipped, with a note, where ffmpeg is missing.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use ingest::gate::BoxFuture;
use ingest::srt::SrtError;
use ingest::{
    AudioCodec, Frame, Gate, Protocol, PublishRequest, Refusal, Sink, SinkClosed, SrtConfig, SrtListener,
};
use srt_tokio::SrtSocket;
use srt_tokio::access::{RejectReason, ServerRejectReason};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout};

/// Generous: the machine may be busy with other builds and tests.
const DEADLINE: Duration = Duration::from_secs(20);

const KEY: &str = "live-key-1";
const OTHER_KEY: &str = "live-key-2";
const PASSPHRASE: &str = "correct horse battery";

/// What the test gate and its sinks saw.
#[derive(Debug)]
enum Event {
    /// The gate refused a key.
    Refused,
    /// A publication started (its stream is its key, in this test).
    Opened(String),
    /// A frame of a publication.
    Frame(String, Frame),
    /// A publication's sink was dropped.
    Ended(String),
}

struct TestGate {
    keys: HashSet<String>,
    events: mpsc::UnboundedSender<Event>,
}

impl Gate for TestGate {
    fn open(&self, request: PublishRequest) -> BoxFuture<'_, Result<Box<dyn Sink>, Refusal>> {
        let result = match request {
            PublishRequest::Key {
                protocol: Protocol::Srt,
                key,
                ..
            } if self.keys.contains(&key) => {
                let _ = self.events.send(Event::Opened(key.clone()));
                Ok(Box::new(TestSink {
                    stream: key,
                    events: self.events.clone(),
                }) as Box<dyn Sink>)
            }
            _ => {
                let _ = self.events.send(Event::Refused);
                Err(Refusal::BadKey)
            }
        };
        Box::pin(async move { result })
    }

    fn check(&self, request: &PublishRequest) -> BoxFuture<'_, Result<(), Refusal>> {
        let known = matches!(request, PublishRequest::Key { key, .. } if self.keys.contains(key));
        Box::pin(async move { if known { Ok(()) } else { Err(Refusal::BadKey) } })
    }
}

struct TestSink {
    stream: String,
    events: mpsc::UnboundedSender<Event>,
}

impl Sink for TestSink {
    fn push(&mut self, frame: Frame) -> Result<(), SinkClosed> {
        self.events
            .send(Event::Frame(self.stream.clone(), frame))
            .map_err(|_| SinkClosed)
    }

    fn stream(&self) -> &str {
        &self.stream
    }
}

impl Drop for TestSink {
    fn drop(&mut self) {
        let _ = self.events.send(Event::Ended(self.stream.clone()));
    }
}

/// A running listener and what its gate sees.
struct Harness {
    addr: SocketAddr,
    events: mpsc::UnboundedReceiver<Event>,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), SrtError>>,
}

impl Harness {
    async fn start(configure: impl FnOnce(&mut SrtConfig)) -> Self {
        // The listener's log (refusals, ends of publications) in a failing test's output.
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter("ingest=debug")
            .try_init();
        let mut config = SrtConfig::new("127.0.0.1:0".parse().expect("address"));
        configure(&mut config);
        let listener = SrtListener::bind(config).await.expect("bind");
        let addr = listener.local_addr();
        assert_ne!(addr.port(), 0);
        let (tx, events) = mpsc::unbounded_channel();
        let gate = Arc::new(TestGate {
            keys: [KEY, OTHER_KEY].map(String::from).into(),
            events: tx,
        });
        let (shutdown, stop) = oneshot::channel::<()>();
        let task = tokio::spawn(listener.run(gate, async move {
            let _ = stop.await;
        }));
        Harness {
            addr,
            events,
            shutdown: Some(shutdown),
            task,
        }
    }

    /// Events until `done` says so (given all so far), or the deadline.
    async fn collect_until(&mut self, mut done: impl FnMut(&[Event]) -> bool) -> Vec<Event> {
        let deadline = Instant::now() + DEADLINE;
        let mut seen = Vec::new();
        while !done(&seen) {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(event)) => seen.push(event),
                Ok(None) => panic!("the gate was dropped"),
                Err(_) => panic!("deadline passed; saw {}", summary(&seen)),
            }
        }
        seen
    }

    /// Whatever has arrived by now.
    fn drain(&mut self) -> Vec<Event> {
        let mut seen = Vec::new();
        while let Ok(event) = self.events.try_recv() {
            seen.push(event);
        }
        seen
    }

    async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let result = timeout(DEADLINE, &mut self.task)
            .await
            .expect("listener stops")
            .expect("no panic");
        assert!(result.is_ok(), "{result:?}");
    }

    fn url(&self, stream_id: &str, extra: &str) -> String {
        format!("srt://{}?streamid={stream_id}&pkt_size=1316{extra}", self.addr)
    }
}

fn summary(events: &[Event]) -> String {
    let frames = events.iter().filter(|e| matches!(e, Event::Frame(..))).count();
    let others: Vec<String> = events
        .iter()
        .filter(|e| !matches!(e, Event::Frame(..)))
        .map(|e| format!("{e:?}"))
        .collect();
    format!("{frames} frames and {others:?}")
}

fn frames_of<'a>(events: &'a [Event], stream: &str) -> Vec<&'a Frame> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Frame(s, f) if s == stream => Some(f),
            _ => None,
        })
        .collect()
}

fn ended(events: &[Event], stream: &str) -> bool {
    events.iter().any(|e| matches!(e, Event::Ended(s) if s == stream))
}

fn count_video(events: &[Event], stream: &str) -> usize {
    frames_of(events, stream)
        .iter()
        .filter(|f| matches!(f, Frame::Video(_)))
        .count()
}

fn ffmpeg_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        let found = std::process::Command::new("ffmpeg")
            .arg("-version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            eprintln!("ffmpeg not found: skipping the SRT tests that push with ffmpeg");
        }
        found
    })
}

/// ffmpeg pushing `seconds` of 30 fps H.264 (a keyframe each second) and AAC, in real time.
fn push_av(url: &str, seconds: u32, extra: &[&str]) -> Child {
    Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin"])
        .args(["-re", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30"])
        .args(["-re", "-f", "lavfi", "-i", "sine"])
        .args(["-t", &seconds.to_string()])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-bf",
            "0",
            "-g",
            "30",
            "-c:a",
            "aac",
        ])
        .args(extra)
        .args(["-f", "mpegts", url])
        .kill_on_drop(true)
        .spawn()
        .expect("spawn ffmpeg")
}

async fn exit_status(child: &mut Child) -> ExitStatus {
    timeout(DEADLINE, child.wait())
        .await
        .expect("ffmpeg exits in time")
        .expect("wait")
}

/// The stream's frames are a real publication: parameter sets before the first picture, a
/// keyframe first and one a second after, decode times rising 3000 ticks a picture, AAC
/// (44.1 kHz mono, as ffmpeg's sine source) with its config first.
fn assert_good_publication(events: &[Event], stream: &str, min_video: usize) {
    let frames = frames_of(events, stream);
    let videos: Vec<_> = frames
        .iter()
        .filter_map(|f| match f {
            Frame::Video(v) => Some(v),
            _ => None,
        })
        .collect();
    assert!(
        videos.len() >= min_video,
        "{} pictures: {}",
        videos.len(),
        summary(events)
    );
    let first_video = frames
        .iter()
        .position(|f| matches!(f, Frame::Video(_)))
        .expect("video");
    assert!(
        frames[..first_video]
            .iter()
            .any(|f| matches!(f, Frame::VideoConfig(_)))
    );
    assert!(videos[0].keyframe, "the first picture is a keyframe");
    assert!(videos.iter().filter(|v| v.keyframe).count() >= min_video / 30);
    for pair in videos.windows(2) {
        assert!(pair[1].dts > pair[0].dts, "decode times rise");
    }
    let first_audio = frames
        .iter()
        .position(|f| matches!(f, Frame::Audio(_)))
        .expect("audio");
    assert_eq!(
        frames[..first_audio]
            .iter()
            .find(|f| matches!(f, Frame::AudioConfig(_))),
        Some(&&Frame::AudioConfig(AudioCodec::Aac {
            config: Bytes::from_static(&[0x12, 0x08])
        }))
    );
    let audio = frames.iter().filter(|f| matches!(f, Frame::Audio(_))).count();
    // 43 AAC frames a second.
    assert!(audio >= min_video, "{audio} audio frames");
}

#[tokio::test]
async fn ffmpeg_publishes_video_and_aac() {
    if !ffmpeg_available() {
        return;
    }
    let mut h = Harness::start(|_| {}).await;
    let mut ffmpeg = push_av(&h.url(&format!("publish:{KEY}"), ""), 3, &[]);
    // 90 pictures sent; the very end may be cut by the caller's close.
    let mut events = h.collect_until(|e| count_video(e, KEY) >= 75).await;
    assert!(matches!(&events[0], Event::Opened(k) if k == KEY));
    // The caller's close ends the publication.
    assert!(exit_status(&mut ffmpeg).await.success());
    events.extend(h.collect_until(|e| ended(e, KEY)).await);
    assert_good_publication(&events, KEY, 75);
    h.stop().await;
}

#[tokio::test]
async fn ffmpeg_publishes_with_the_access_control_stream_id() {
    if !ffmpeg_available() {
        return;
    }
    let mut h = Harness::start(|_| {}).await;
    // Raw in the URL: ffmpeg's libsrt protocol takes the query value up to the next '&' as
    // it is (it does not percent-decode, and '#' does not start a fragment there). Its
    // -streamid option cannot be used: that name is taken by the muxer's stream id map.
    let stream_id = format!("#!::u=someone,r={KEY},m=publish");
    let mut ffmpeg = push_av(&h.url(&stream_id, ""), 2, &[]);
    let events = h.collect_until(|e| count_video(e, KEY) >= 35).await;
    assert_good_publication(&events, KEY, 35);
    let _ = ffmpeg.kill().await;
    h.stop().await;
}

#[tokio::test]
async fn a_wrong_key_is_refused_and_the_right_key_works_right_after() {
    if !ffmpeg_available() {
        return;
    }
    let mut h = Harness::start(|_| {}).await;
    let mut wrong = push_av(&h.url("publish:not-a-key", ""), 2, &[]);
    assert!(!exit_status(&mut wrong).await.success(), "ffmpeg cannot connect");
    let events = h.drain();
    assert!(matches!(events[..], [Event::Refused]), "{}", summary(&events));

    let mut right = push_av(&h.url(&format!("publish:{KEY}"), ""), 2, &[]);
    let events = h.collect_until(|e| count_video(e, KEY) >= 35).await;
    assert_good_publication(&events, KEY, 35);
    let _ = right.kill().await;
    h.stop().await;
}

#[tokio::test]
async fn only_the_passphrase_gets_through() {
    if !ffmpeg_available() {
        return;
    }
    let mut h = Harness::start(|c| c.passphrase = Some(PASSPHRASE.into())).await;
    // No passphrase: refused before the gate is asked.
    let mut clear = push_av(&h.url(&format!("publish:{KEY}"), ""), 2, &[]);
    assert!(!exit_status(&mut clear).await.success());
    let events = h.drain();
    assert!(events.is_empty(), "{}", summary(&events));

    // A wrong one fails in the key exchange, before the gate is asked: no publication
    // opens (opening one would replace the stream's live publisher).
    let mut wrong = push_av(
        &h.url(
            &format!("publish:{KEY}"),
            "&passphrase=wrong-passphrase&pbkeylen=16",
        ),
        2,
        &[],
    );
    assert!(!exit_status(&mut wrong).await.success());
    let events = h.drain();
    assert!(events.is_empty(), "{}", summary(&events));

    // The passphrase with a wrong key: refused in the handshake by the key check, with
    // 2401 (unauthorized), nothing opened.
    let mut wrong_key = push_av(
        &h.url(
            "publish:not-a-key",
            &format!("&passphrase={PASSPHRASE}&pbkeylen=16"),
        ),
        2,
        &[],
    );
    assert!(!exit_status(&mut wrong_key).await.success());
    let refused = SrtSocket::builder()
        .encryption(16, PASSPHRASE)
        .call(h.addr, Some("publish:not-a-key"))
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    // srt-tokio shows the code as its description.
    let unauthorized = RejectReason::Server(ServerRejectReason::Unauthorized).to_string();
    assert!(
        refused.ends_with(&unauthorized),
        "not refused as unauthorized: {refused:?}"
    );
    let events = h.drain();
    assert!(events.is_empty(), "{}", summary(&events));

    let mut right = push_av(
        &h.url(
            &format!("publish:{KEY}"),
            &format!("&passphrase={PASSPHRASE}&pbkeylen=16"),
        ),
        2,
        &[],
    );
    let events = h.collect_until(|e| count_video(e, KEY) >= 35).await;
    assert_good_publication(&events, KEY, 35);
    let _ = right.kill().await;
    h.stop().await;
}

/// A tiny xorshift generator: the garbage needs no better randomness.
fn garbage(seed: &mut u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|_| {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            *seed as u8
        })
        .collect()
}

#[tokio::test]
async fn garbage_does_not_disturb_a_good_stream() {
    if !ffmpeg_available() {
        return;
    }
    let mut h = Harness::start(|_| {}).await;
    let mut good = push_av(&h.url(&format!("publish:{KEY}"), ""), 4, &[]);
    // A second publisher whose payload is not MPEG-TS at all.
    let mut noise = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-nostdin",
            "-re",
            "-f",
            "lavfi",
            "-i",
            "anoisesrc=r=48000",
        ])
        .args([
            "-t",
            "4",
            "-f",
            "s16le",
            &h.url(&format!("publish:{OTHER_KEY}"), ""),
        ])
        .kill_on_drop(true)
        .spawn()
        .expect("spawn ffmpeg");
    h.collect_until(|e| count_video(e, KEY) >= 5).await;

    // UDP garbage at the listener's port: random datagrams, and ones that look like SRT
    // control packets (handshakes, shutdowns) and data packets for made-up sockets.
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let mut seed = 0x9E37_79B9_7F4A_7C15;
    for i in 0..300u32 {
        let mut datagram = garbage(&mut seed, 16 + (i as usize * 37) % 1400);
        match i % 3 {
            0 => datagram[..2].copy_from_slice(&[0x80, 0x00]),
            1 => datagram[..4].copy_from_slice(&[0x80, 0x05, 0x00, 0x00]),
            _ => {}
        }
        udp.send_to(&datagram, h.addr).await.expect("send");
        if i % 10 == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    // Pictures keep coming after the garbage (a second's worth, counting only new events),
    // and the noise publisher gets no frame, until both publishers end.
    let mut events = h.collect_until(|e| count_video(e, KEY) >= 30).await;
    assert!(exit_status(&mut good).await.success());
    assert!(exit_status(&mut noise).await.success());
    events.extend(h.collect_until(|e| ended(e, KEY) && ended(e, OTHER_KEY)).await);
    assert!(frames_of(&events, OTHER_KEY).is_empty(), "noise makes no frames");

    // The listener still admits callers.
    let caller = SrtSocket::builder()
        .call(h.addr, Some(&format!("publish:{KEY}")))
        .await;
    assert!(caller.is_ok(), "{caller:?}");
    h.collect_until(|e| e.iter().any(|e| matches!(e, Event::Opened(_))))
        .await;
    h.stop().await;
}

#[tokio::test]
async fn an_idle_publisher_is_closed() {
    let mut h = Harness::start(|c| c.idle_timeout = Duration::from_secs(1)).await;
    let mut caller = SrtSocket::builder()
        .call(h.addr, Some(&format!("publish:{KEY}")))
        .await
        .expect("connect");
    let events = h.collect_until(|e| ended(e, KEY)).await;
    assert!(matches!(&events[0], Event::Opened(k) if k == KEY));
    // The caller sees the close too.
    let closed = timeout(DEADLINE, caller.next())
        .await
        .expect("the caller sees the close");
    assert!(closed.is_none_or(|r| r.is_err()));
    h.stop().await;
}

#[tokio::test]
async fn a_publisher_that_vanishes_ends_its_publication() {
    if !ffmpeg_available() {
        return;
    }
    let mut h = Harness::start(|_| {}).await;
    let mut ffmpeg = push_av(&h.url(&format!("publish:{KEY}"), ""), 30, &[]);
    h.collect_until(|e| count_video(e, KEY) >= 10).await;
    // SIGKILL: no SRT shutdown reaches the listener, only silence (ended by SRT's peer
    // idle timeout, 5 s, or the listener's own, 10 s).
    ffmpeg.kill().await.expect("kill ffmpeg");
    h.collect_until(|e| ended(e, KEY)).await;
    h.stop().await;
}

#[tokio::test]
async fn reading_and_malformed_stream_ids_are_refused_before_the_gate() {
    let mut h = Harness::start(|_| {}).await;
    for id in [
        format!("read:{KEY}"),
        format!("#!::r={KEY}"),
        format!("#!::r={KEY},m=request"),
        "nonsense".into(),
    ] {
        let caller = SrtSocket::builder().call(h.addr, Some(&id)).await;
        assert!(caller.is_err(), "{id} is refused");
    }
    let caller = SrtSocket::builder().call(h.addr, None).await;
    assert!(caller.is_err(), "no stream id is refused");
    let events = h.drain();
    assert!(events.is_empty(), "{}", summary(&events));
    h.stop().await;
}

#[tokio::test]
async fn the_connection_cap_refuses_the_next_caller() {
    let mut h = Harness::start(|c| c.max_connections = 1).await;
    let _first = SrtSocket::builder()
        .call(h.addr, Some(&format!("publish:{KEY}")))
        .await
        .expect("connect");
    h.collect_until(|e| e.iter().any(|e| matches!(e, Event::Opened(_))))
        .await;
    let second = SrtSocket::builder()
        .call(h.addr, Some(&format!("publish:{OTHER_KEY}")))
        .await;
    assert!(second.is_err());
    assert!(h.drain().is_empty(), "the gate is not asked over the cap");
    // Shutting down ends the open publication.
    let Harness {
        mut events,
        shutdown,
        task,
        ..
    } = h;
    let _ = shutdown.map(|s| s.send(()));
    timeout(DEADLINE, task)
        .await
        .expect("stops")
        .expect("no panic")
        .expect("clean");
    let mut rest = Vec::new();
    while let Some(e) = events.recv().await {
        rest.push(e);
    }
    assert!(ended(&rest, KEY), "{}", summary(&rest));
}

#[tokio::test]
async fn encryption_mismatches_are_refused_without_harming_the_listener() {
    // A caller that encrypts, to a listener without a passphrase (srt-tokio would panic in
    // its listener task if asked to accept it).
    let mut h = Harness::start(|_| {}).await;
    let caller = SrtSocket::builder()
        .encryption(16, PASSPHRASE)
        .call(h.addr, Some(&format!("publish:{KEY}")))
        .await;
    assert!(caller.is_err());
    let _ok = SrtSocket::builder()
        .call(h.addr, Some(&format!("publish:{KEY}")))
        .await
        .expect("still listening");
    h.collect_until(|e| e.iter().any(|e| matches!(e, Event::Opened(_))))
        .await;
    h.stop().await;

    // Any AES key size works with the passphrase (srt-tokio would panic on a size other
    // than its listener's).
    let mut h = Harness::start(|c| c.passphrase = Some(PASSPHRASE.into())).await;
    for size in [32, 24, 16] {
        let caller = SrtSocket::builder()
            .encryption(size, PASSPHRASE)
            .call(h.addr, Some(&format!("publish:{KEY}")))
            .await;
        assert!(caller.is_ok(), "AES-{} : {caller:?}", size * 8);
        drop(caller);
        h.collect_until(|e| ended(e, KEY)).await;
    }
    h.stop().await;
}
