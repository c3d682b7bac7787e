//! GStreamer's webrtcbin as WHIP publisher and WHEP viewer (`tests/gst/webrtcbin_peer.py`),
//! with its defaults: an RSA-2048 DTLS certificate, and libnice's ICE, which sends only
//! binding indications once connected.
//!
//! - Both stay connected for a minute and the viewer decodes video and audio in every
//!   10-second window of it (str0m's own DTLS refused the RSA certificate; as an ICE-lite
//!   agent the server dropped libnice's sessions after 15 s).
//! - A viewer that goes silent (SIGSTOP: no packet, no DELETE) is dropped by the server's
//!   consent checks, 27.5 to 30.5 s later, while the publisher goes on.
//!
//! libnice gathers no loopback candidates, so the namespace gets a second interface: a veth
//! pair whose two ends both stay in the namespace, `10.99.1.1` on one of them, which the
//! server advertises (`--public-ip`). Nothing leaves the namespace.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use common::{Server, create_stream, http, in_netns, sh, workspace};
use serde_json::Value;

const LAN: &str = "10.99.1.1";

/// The namespace's second interface, for libnice to gather a candidate on.
fn lan_interface() {
    sh(&[
        "ip",
        "link",
        "add",
        "fo-lan",
        "type",
        "veth",
        "peer",
        "name",
        "fo-lan-peer",
    ]);
    sh(&["ip", "addr", "add", &format!("{LAN}/24"), "dev", "fo-lan"]);
    sh(&["ip", "link", "set", "fo-lan", "up"]);
    sh(&["ip", "link", "set", "fo-lan-peer", "up"]);
}

/// One `webrtcbin_peer.py` process; its JSON lines arrive on `lines`. Stopped with SIGTERM
/// (it sends its DELETE) or, if it does not exit, SIGKILL.
struct GstPeer {
    name: &'static str,
    child: Child,
    lines: Receiver<Value>,
}

impl GstPeer {
    fn spawn(name: &'static str, args: &[&str]) -> GstPeer {
        // Debian's interpreter: python3-gi lives there, whatever python3 comes first on PATH.
        let mut child = Command::new("/usr/bin/python3")
            .arg(workspace().join("tests/gst/webrtcbin_peer.py"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs (python3-gi)");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let Ok(v) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                if v["event"] != "stats" {
                    println!("{name}: {line}");
                }
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        GstPeer { name, child, lines }
    }

    fn publish(server: &Server, id: &str, key: &str) -> GstPeer {
        GstPeer::spawn(
            "publisher",
            &["publish", &format!("{}/whip/{id}", server.base), key],
        )
    }

    fn view(server: &Server, id: &str) -> GstPeer {
        GstPeer::spawn("viewer", &["view", &format!("{}/whep/{id}", server.base)])
    }

    /// The next line matching `pred` within `timeout`.
    fn wait_for(&self, timeout: Duration, mut pred: impl FnMut(&Value) -> bool) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(v) if v["event"] == "error" => panic!("{}: {v}", self.name),
                Ok(v) if pred(&v) => return Some(v),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }

    /// Waits until webrtcbin reports the peer connection connected (ICE and DTLS).
    fn connected(&self) {
        let up = self.wait_for(Duration::from_secs(30), |v| {
            v["what"] == "connection-state" && v["value"] == "connected"
        });
        assert!(up.is_some(), "{}: webrtcbin never connected", self.name);
    }

    /// Asserts that the peer is connected and its counts still grow.
    fn still_sending(&self) {
        let before = self.next_stats().expect("the peer reports");
        let after = self.next_stats().expect("the peer reports");
        assert_eq!(after["connection"], "connected", "{}: {after}", self.name);
        assert!(
            after["video"].as_u64() > before["video"].as_u64(),
            "{} stopped: {before} -> {after}",
            self.name
        );
    }

    /// The next `stats` line after those already queued.
    fn next_stats(&self) -> Option<Value> {
        while self.lines.try_recv().is_ok() {}
        self.wait_for(Duration::from_secs(5), |v| v["event"] == "stats")
    }

    fn signal(&self, signal: nix::sys::signal::Signal) -> nix::Result<()> {
        let pid = i32::try_from(self.child.id()).expect("a pid fits i32");
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal)
    }
}

impl Drop for GstPeer {
    fn drop(&mut self) {
        common::terminate(&mut self.child);
    }
}

/// The stream resource as the API shows it.
fn stream(server: &Server, id: &str) -> Value {
    let r = http("GET", &format!("{}/api/v1/streams/{id}", server.base), &[], None);
    serde_json::from_str(&r.body).unwrap_or_else(|_| panic!("stream JSON: {}", r.body))
}

/// A viewer's cumulative counts, one sample a second: (seconds, video frames, audio buffers).
fn sample(v: &Value) -> Option<(f64, u64, u64)> {
    (v["event"] == "stats").then(|| {
        (
            v["t"].as_f64().unwrap_or(0.0),
            v["video"].as_u64().unwrap_or(0),
            v["audio"].as_u64().unwrap_or(0),
        )
    })
}

/// A server, a stream, and a webrtcbin publisher and viewer of it, both connected.
fn live_room() -> (Server, String, GstPeer, GstPeer) {
    lan_interface();
    let server = Server::start(&["--public-ip", LAN]);
    let (id, key) = create_stream(&server, "webrtcbin");
    let publisher = GstPeer::publish(&server, &id, &key);
    publisher.connected();
    let viewer = GstPeer::view(&server, &id);
    viewer.connected();
    (server, id, publisher, viewer)
}

#[test]
fn webrtcbin_publisher_and_viewer_stay_a_minute() {
    if !in_netns("webrtcbin_publisher_and_viewer_stay_a_minute") {
        return;
    }
    let (server, id, publisher, viewer) = live_room();

    // From the first decoded frame, a minute of samples (deadline: 90 s).
    let mut samples = Vec::new();
    let first = viewer
        .wait_for(Duration::from_secs(20), |v| sample(v).is_some_and(|s| s.1 > 0))
        .and_then(|v| sample(&v))
        .expect("the viewer decodes a first frame");
    samples.push(first);
    let end = first.0 + 60.0;
    let done = viewer.wait_for(Duration::from_secs(90), |v| match sample(v) {
        Some(s) => {
            samples.push(s);
            s.0 >= end
        }
        None => false,
    });
    assert!(done.is_some(), "the viewer stopped reporting: {samples:?}");

    // Every 10-second window has frames and sound: the counts at each boundary (the last
    // sample at or before it) grow by at least 5 frames and 10 audio buffers a second.
    let at = |t: f64| {
        samples
            .iter()
            .rev()
            .find(|s| s.0 <= t)
            .copied()
            .expect("a sample before every boundary")
    };
    for k in 0..6 {
        let from = at(first.0 + 10.0 * f64::from(k));
        let to = at(first.0 + 10.0 * f64::from(k + 1));
        let (frames, audio) = (to.1 - from.1, to.2 - from.2);
        println!("window {k}: {frames} frames, {audio} audio buffers");
        assert!(
            frames >= 50 && audio >= 100,
            "window {k} ({from:?} -> {to:?}): {frames} frames, {audio} audio buffers"
        );
    }

    // Both sessions are still up as the server sees them, and the publisher still sends.
    let s = stream(&server, &id);
    assert_eq!(s["status"], "live", "{s}");
    assert_eq!(s["reconnecting"], false, "the publisher never left: {s}");
    assert_eq!(s["viewers"], 1, "{s}");
    publisher.still_sending();
    assert!(
        !server.log().contains("ICE disconnected"),
        "no session lost its ICE on the way"
    );
}

#[test]
fn a_silent_webrtcbin_viewer_is_dropped_within_the_consent_timeout() {
    if !in_netns("a_silent_webrtcbin_viewer_is_dropped_within_the_consent_timeout") {
        return;
    }
    let (server, id, publisher, viewer) = live_room();
    let decoding = viewer.wait_for(Duration::from_secs(20), |v| sample(v).is_some_and(|s| s.1 > 30));
    assert!(decoding.is_some(), "the viewer decodes");
    assert_eq!(stream(&server, &id)["viewers"], 1);

    // The viewer's process freezes: no packet, no answer to a check, no DELETE.
    viewer
        .signal(nix::sys::signal::Signal::SIGSTOP)
        .expect("SIGSTOP sent");
    let silent = Instant::now();
    let deadline = silent + Duration::from_secs(45);
    loop {
        let s = stream(&server, &id);
        if s["viewers"] == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still counted 45 s after going silent: {s}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let after = silent.elapsed();
    println!("the silent viewer was dropped after {after:?}");
    // Consent is not given up at the first missing answer: the first unanswered check
    // comes at most 3 s after the silence, and str0m retries for 27.5 s.
    assert!(after >= Duration::from_secs(20), "dropped after only {after:?}");
    server.wait_for_log(Duration::from_secs(5), "the viewer's ICE disconnect", |l| {
        l.contains("ICE disconnected")
    });

    // The publisher, which answers, is still there.
    let s = stream(&server, &id);
    assert_eq!(s["status"], "live", "{s}");
    assert_eq!(s["reconnecting"], false, "{s}");
    publisher.still_sending();
    viewer
        .signal(nix::sys::signal::Signal::SIGKILL)
        .expect("SIGKILL sent");
}
