//! An RTSP camera pulled into a room (issue 17): a stream created with a `pullUrl` goes live
//! from GStreamer's RTSP server, a webrtc-rs WHEP viewer decodes its H.264 and gets its audio
//! (AAC converted to Opus), and when the camera stops and comes back within the reconnect
//! grace the same viewer session plays again and the stream never ends.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Server, http, in_netns, runtime, terminate, webrtc_rs_viewer, workspace};
use serde_json::{Value, json};

const CAMERA_PORT: u16 = 18554;

/// GStreamer's RTSP server (the ingest crate's test camera) with Basic authentication.
fn camera() -> Child {
    let script: PathBuf = workspace().join("bridge/ingest/tests/rtsp_server.py");
    let mut child = Command::new("/usr/bin/python3")
        .arg(script)
        .args([
            "--port",
            &CAMERA_PORT.to_string(),
            "--user",
            "cam",
            "--password",
            "s3cret",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3 runs the RTSP camera (python3-gi, gir1.2-gst-rtsp-server-1.0)");
    let mut out = std::io::BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).expect("the camera prints a line");
    assert!(line.contains("ready"), "the RTSP camera did not start: {line:?}");
    child
}

fn stream(server: &Server, id: &str) -> Value {
    let admin = format!("Bearer {}", server.admin);
    let r = http(
        "GET",
        &format!("{}/api/v1/streams/{id}", server.base),
        &[("Authorization", &admin)],
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    serde_json::from_str(&r.body).expect("stream JSON")
}

fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < until, "{what} within {within:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_pulled_camera_plays_and_survives_a_restart_within_the_grace() {
    if !in_netns("a_pulled_camera_plays_and_survives_a_restart_within_the_grace") {
        return;
    }
    let mut cam = camera();
    let server = Server::start(&["--reconnect-grace", "15"]);
    let admin = format!("Bearer {}", server.admin);
    let url = format!("rtsp://cam:s3cret@127.0.0.1:{CAMERA_PORT}/cam");
    let body = json!({ "title": "camera", "pullUrl": url }).to_string();
    let r = http(
        "POST",
        &format!("{}/api/v1/streams", server.base),
        &[("Authorization", &admin)],
        Some(body.as_bytes()),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let created: Value = serde_json::from_str(&r.body).expect("JSON");
    let id = created["id"].as_str().expect("id").to_string();
    assert_eq!(
        created["pullUrl"],
        format!("rtsp://***@127.0.0.1:{CAMERA_PORT}/cam"),
        "the admin sees the camera without its credentials"
    );
    wait_until("the pulled stream goes live", Duration::from_secs(30), || {
        stream(&server, &id)["status"] == "live"
    });
    assert_eq!(
        stream(&server, &id)["ingest"]["reencoding"],
        false,
        "x264 without B-frames passes through"
    );

    let rt = runtime();
    rt.block_on(async {
        let viewer = webrtc_rs_viewer(&server, &id).await;
        let first = viewer
            .wait_for(Duration::from_secs(30), |s| {
                s.video.frames > 60 && s.audio.packets > 50
            })
            .await
            .unwrap_or_else(|s| panic!("the viewer got no camera media: {s:?}"));
        assert_eq!(first.video.codec.as_deref(), Some("video/H264"), "{first:?}");
        assert!(first.video.keyframes > 0, "{first:?}");

        // The camera goes away: the stream waits for it (reconnecting), still live.
        terminate(&mut cam);
        let server_ref = &server;
        let id_ref = &id;
        wait_until(
            "the stream reports its camera reconnecting",
            Duration::from_secs(20),
            || {
                let s = stream(server_ref, id_ref);
                assert_eq!(
                    s["status"], "live",
                    "the stream ended while the camera was away: {s}"
                );
                s["reconnecting"] == true
            },
        );
        let away = viewer.stats();

        // It comes back on the same address: the pull reconnects and the same session plays.
        cam = camera();
        let resumed = viewer
            .wait_for(Duration::from_secs(45), |s| {
                s.video.frames > away.video.frames + 60 && s.audio.packets > away.audio.packets + 50
            })
            .await
            .unwrap_or_else(|s| panic!("the viewer did not play again after the camera returned: {s:?}"));
        assert!(resumed.video.keyframes > away.video.keyframes, "{resumed:?}");
    });
    let s = stream(&server, &id);
    assert_eq!(s["status"], "live", "{s}");
    assert_eq!(s["reconnecting"], false, "{s}");
    assert_eq!(s["pull"]["state"], "playing", "{s}");
    assert!(
        !server.log().contains("s3cret"),
        "the camera's password reached the log"
    );
    terminate(&mut cam);
}
