//! NAT traversal through a real coturn: Chromium with `iceTransportPolicy: "relay"` can only
//! reach the SFU through TURN, with credentials signaling mints from the secret it shares with
//! coturn (`turn-config/run-coturn.sh`). A wrong secret is refused by coturn and fails cleanly.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{NodeProc, Server, create_stream, http, in_netns, start_publisher, workspace};
use serde_json::Value;

const PORT: &str = "3478";

/// coturn from the repository's dev script; killed on drop.
struct Coturn {
    child: Child,
    dir: PathBuf,
}

impl Coturn {
    fn start(secret: &str) -> Coturn {
        let dir = std::env::temp_dir().join(format!("fanout-coturn-{}-{}", std::process::id(), secret.len()));
        let _ = std::fs::remove_dir_all(&dir);
        let child = Command::new("bash")
            .arg(workspace().join("turn-config/run-coturn.sh"))
            .env("FANOUT_TURN_SECRET", secret)
            .env("TURN_PORT", PORT)
            .env("TURN_ALLOW_LOOPBACK", "1")
            .env("TURN_DIR", &dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("coturn's run script starts (apt-get install coturn)");
        let c = Coturn { child, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !c.log().contains("Total General servers") {
            assert!(
                Instant::now() < deadline,
                "coturn did not start; log:\n{}",
                c.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        c
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("turnserver.log")).unwrap_or_default()
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The publish page sending media only through TURN (`--relay`).
fn relay_publisher(server: &Server, id: &str, key: &str, extra: &[&str]) -> NodeProc {
    let mut args = vec!["--base", &server.base, "--stream", id, "--key", key, "--relay"];
    args.extend_from_slice(extra);
    NodeProc::spawn(None, "publish.mjs", &args)
}

fn turn_flags(secret: &str) -> Vec<String> {
    vec![
        "--turn-url".into(),
        format!("turn:127.0.0.1:{PORT}?transport=udp"),
        "--turn-secret".into(),
        secret.into(),
    ]
}

#[test]
fn chromium_publishes_and_watches_through_turn_only() {
    if !in_netns("chromium_publishes_and_watches_through_turn_only") {
        return;
    }
    let secret = "turn-test-secret";
    let _coturn = Coturn::start(secret);
    let flags = turn_flags(secret);
    let server = Server::start(&flags.iter().map(String::as_str).collect::<Vec<_>>());

    // The credentials: in the API, and as RFC 9725 Link headers on WHIP/WHEP responses.
    let r = http("GET", &format!("{}/api/v1/ice-servers", server.base), &[], None);
    assert_eq!(r.status, 200, "{}", r.body);
    let v: Value = serde_json::from_str(&r.body).expect("JSON");
    let ice = &v["iceServers"][0];
    assert_eq!(ice["urls"][0], "turn:127.0.0.1:3478?transport=udp", "{v}");
    let expiry: u64 = ice["username"]
        .as_str()
        .and_then(|u| u.split(':').next())
        .and_then(|e| e.parse().ok())
        .expect("username is <expiry>:<tag>");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    assert!(
        expiry > now + 3_600,
        "credentials valid for the configured day: {expiry} vs {now}"
    );
    let (id, key) = create_stream(&server, "turn");
    let options = http("OPTIONS", &format!("{}/whep/{id}", server.base), &[], None);
    assert_eq!(options.header("accept-post"), Some("application/sdp"));
    let link = options.header("link").unwrap_or_default().to_string();
    assert!(
        link.contains("rel=\"ice-server\"") && link.contains("credential="),
        "OPTIONS offers the TURN server: {link:?}"
    );

    let publisher = relay_publisher(&server, &id, &key, &["--seconds", "60"]);
    let live = publisher
        .wait_for(Duration::from_secs(30), |v| {
            v["event"] == "live" || v["ok"] == false
        })
        .expect("the publisher reports");
    assert_eq!(live["event"], "live", "publisher through TURN: {live}");
    assert_eq!(
        live["candidateType"], "relay",
        "the publisher's media goes through TURN: {live}"
    );

    let viewer = NodeProc::spawn(
        None,
        "watch_timeline.mjs",
        &[
            "--base",
            &server.base,
            "--stream",
            &id,
            "--seconds",
            "30",
            "--relay",
        ],
    );
    let playing = viewer.wait_for(Duration::from_secs(30), |v| {
        v["framesDecoded"].as_u64().unwrap_or(0) > 60 && v["fps"].as_f64().unwrap_or(0.0) > 10.0
    });
    let playing = playing.expect("the viewer decodes video through TURN");
    assert_eq!(
        playing["candidateType"], "relay",
        "the viewer's media goes through TURN: {playing}"
    );
}

#[test]
fn wrong_turn_secret_is_refused_and_the_server_keeps_serving() {
    if !in_netns("wrong_turn_secret_is_refused_and_the_server_keeps_serving") {
        return;
    }
    let coturn = Coturn::start("the-real-secret");
    let flags = turn_flags("a-stale-secret");
    let server = Server::start(&flags.iter().map(String::as_str).collect::<Vec<_>>());
    let (id, key) = create_stream(&server, "turn-refused");

    let relayed = relay_publisher(&server, &id, &key, &["--seconds", "5", "--timeout", "8"]);
    let end = relayed
        .wait_for(Duration::from_secs(40), |v| {
            v.get("ok").is_some() || v["event"] == "live"
        })
        .expect("the relay-only publisher reports");
    assert_eq!(
        end["ok"], false,
        "no media path without valid TURN credentials: {end}"
    );
    let log = coturn.log();
    assert!(
        log.contains("Cannot find credentials") || log.contains("401"),
        "coturn refused the credentials rather than the publish failing some other way; log:\n{log}"
    );

    // Everyone who does not need TURN is unaffected.
    let _publisher = start_publisher(&server, &id, &key, 60);
    let viewer = NodeProc::spawn(
        None,
        "watch_timeline.mjs",
        &["--base", &server.base, "--stream", &id, "--seconds", "20"],
    );
    assert!(
        viewer
            .wait_for(Duration::from_secs(30), |v| v["framesDecoded"]
                .as_u64()
                .unwrap_or(0)
                > 30)
            .is_some(),
        "a direct viewer plays while TURN credentials are wrong"
    );
}
