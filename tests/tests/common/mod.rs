//! Shared by the end-to-end tests: a private network namespace per test, a real `fanout`
//! server process, and the browser harness in `web/test/`.
//!
//! WebRTC between processes on one machine only works inside a fresh network namespace
//! whose only interface is `lo`. Each test calls [`in_netns`] first: outside a namespace it
//! re-runs exactly itself under `unshare -n` and reports that run's result, so plain
//! `cargo test` works (as root) and tests never touch the machine's real interfaces.

#![allow(dead_code)]

pub mod ingest;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const NETNS_ENV: &str = "FANOUT_TEST_IN_NETNS";

/// Run the calling test inside its own network namespace. Returns `true` when the caller is
/// already inside and should do the work; `false` after the re-run passed (the caller
/// returns). Panics when the re-run failed.
pub fn in_netns(test_name: &str) -> bool {
    if std::env::var_os(NETNS_ENV).is_some() {
        return true;
    }
    let exe = std::env::current_exe().expect("the test binary knows its path");
    let status = Command::new("unshare")
        .args(["-n", "sh", "-c", "ip link set lo up && exec \"$0\" \"$@\""])
        .arg(&exe)
        .args(["--exact", test_name, "--nocapture", "--test-threads=1"])
        .env(NETNS_ENV, "1")
        .status()
        .expect("unshare runs (util-linux, as root)");
    assert!(
        status.success(),
        "{test_name} failed inside its network namespace"
    );
    false
}

/// The workspace root. Read when the test runs (cargo sets it then too): clones in other
/// directories share one target directory, and a binary cargo did not rebuild would otherwise
/// point at the clone that built it.
pub fn workspace() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
        .parent()
        .expect("tests/ sits in the workspace")
        .to_path_buf()
}

/// The `fanout` binary built beside this test binary (or `FANOUT_BIN`).
pub fn fanout_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("FANOUT_BIN") {
        return p.into();
    }
    let exe = std::env::current_exe().expect("the test binary knows its path");
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target/<profile>/deps/<test>");
    let bin = dir.join("fanout");
    assert!(bin.exists(), "{} missing: run `cargo build` first", bin.display());
    bin
}

/// The server's log filter: `FANOUT_TEST_LOG` (`RUST_LOG` syntax) or `info,str0m=warn`.
fn default_log_filter() -> String {
    std::env::var("FANOUT_TEST_LOG").unwrap_or_else(|_| "info,str0m=warn".into())
}

/// A running server; killed on drop. The data dir it was started in with [`Server::start`],
/// [`Server::start_logging`] or [`Server::start_in`] is deleted then too, unless the test is
/// failing (its log is printed then, and the dir is kept to look at) or
/// [`Server::keep_data_dir`] was called.
pub struct Server {
    child: Child,
    pub base: String,
    pub admin: String,
    pub data_dir: PathBuf,
    log: PathBuf,
    /// Delete `data_dir` on drop (when the test passed).
    owns_data_dir: bool,
}

pub const ADMIN: &str = "test-admin-token";

/// The ports a server listens on.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub http: u16,
    /// First media port.
    pub udp: u16,
    /// Chat; the server's default (8081) when None.
    pub chat: Option<u16>,
}

impl Default for Ports {
    fn default() -> Self {
        Ports {
            http: 18080,
            udp: 18189,
            chat: None,
        }
    }
}

/// A new, empty data dir under the system's temp dir.
fn fresh_data_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fanout-test-{}-{}", std::process::id(), rand_suffix()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

impl Server {
    /// Start `fanout serve` with fixed ports on every address of the private namespace.
    pub fn start(extra: &[&str]) -> Server {
        Self::start_in(fresh_data_dir(), extra)
    }

    /// Start with the LL-HLS bridge on, as `fanout serve` runs by default. Other tests run
    /// without it (`--no-hls-bridge`): a transcoder per published room would take the CPU the
    /// SFU's timing tests measure on two cores.
    pub fn start_bridged(extra: &[&str]) -> Server {
        Self::launch(
            fresh_data_dir(),
            true,
            Ports::default(),
            extra,
            &default_log_filter(),
            true,
        )
    }

    /// Start on an existing data dir (restart tests); this server deletes it on drop.
    pub fn start_in(data_dir: PathBuf, extra: &[&str]) -> Server {
        Self::launch(
            data_dir,
            true,
            Ports::default(),
            extra,
            &default_log_filter(),
            false,
        )
    }

    /// Start on an existing data dir with other ports (a second node beside the first); the
    /// dir stays on drop (the first node owns it).
    pub fn start_on(data_dir: PathBuf, ports: Ports, extra: &[&str]) -> Server {
        Self::launch(data_dir, false, ports, extra, &default_log_filter(), false)
    }

    /// Start with its own log filter (`RUST_LOG` syntax), e.g. `debug` for the secrets test.
    pub fn start_logging(filter: &str, extra: &[&str]) -> Server {
        Self::launch(fresh_data_dir(), true, Ports::default(), extra, filter, false)
    }

    /// Keep the data dir when this server is dropped (another server starts on it next).
    pub fn keep_data_dir(&mut self) {
        self.owns_data_dir = false;
    }

    /// `bridged`: the LL-HLS bridge stays on (else `--no-hls-bridge`).
    fn launch(
        data_dir: PathBuf,
        owns_data_dir: bool,
        ports: Ports,
        extra: &[&str],
        filter: &str,
        bridged: bool,
    ) -> Server {
        let log = data_dir.join(format!("server-{}.log", ports.http));
        let log_file = std::fs::File::create(&log).expect("log file");
        let mut cmd = Command::new(fanout_bin());
        cmd.arg("serve")
            .arg("--http-addr")
            .arg(format!("0.0.0.0:{}", ports.http))
            .arg("--udp-port")
            .arg(ports.udp.to_string())
            .arg("--ice-loopback");
        if let Some(chat) = ports.chat {
            cmd.arg("--chat-addr").arg(format!("0.0.0.0:{chat}"));
        }
        if !bridged {
            cmd.arg("--no-hls-bridge");
        }
        let child = cmd
            .arg("--data-dir")
            .arg(&data_dir)
            .args(["--admin-token", ADMIN, "--web-dir"])
            .arg(workspace().join("web"))
            .args(extra)
            .env("RUST_LOG", filter)
            // The start-up banner, beside the log: the secrets test reads both.
            .stdout(std::fs::File::create(log.with_extension("stdout")).expect("stdout file"))
            .stderr(log_file)
            .spawn()
            .expect("fanout starts");
        let server = Server {
            child,
            base: format!("http://127.0.0.1:{}", ports.http),
            admin: ADMIN.into(),
            data_dir,
            log,
            owns_data_dir,
        };
        server.wait_ready();
        server
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let ok = Command::new("curl")
                .args(["-sf", &format!("{}/healthz", self.base)])
                .output()
                .is_ok_and(|out| out.status.success());
            if ok {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("server did not become ready; log:\n{}", self.log());
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// What the server printed on stdout (its start-up banner).
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(self.log.with_extension("stdout")).unwrap_or_default()
    }

    /// Waits (up to `timeout`) until a line of the log satisfies `found`.
    pub fn wait_for_log(&self, timeout: Duration, what: &str, found: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + timeout;
        while !self.log().lines().any(&found) {
            assert!(Instant::now() < deadline, "no {what} in the server log");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Send SIGTERM (the way an operator or an orchestrator stops the server).
    pub fn terminate(&self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .is_ok_and(|s| s.success());
        assert!(sent, "kill -TERM {pid}");
    }

    /// Wait up to `timeout` for the process to exit; `None` if it is still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait on the server") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stop the server (SIGKILL) and wait for it.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!("---- server log ----\n{}", self.log());
        } else if self.owns_data_dir {
            let _ = std::fs::remove_dir_all(&self.data_dir);
        }
    }
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0)
}

/// Run a browser harness script from `web/test/` and parse its JSON result line.
/// Returns the exit success and the JSON.
pub fn node_script(script: &str, args: &[&str]) -> (bool, Value) {
    let mut child = Command::new("node")
        .arg(workspace().join("web/test").join(script))
        .args(args)
        .current_dir(workspace().join("web"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node runs");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut last_json = Value::Null;
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        println!("{script}: {line}");
        if let Ok(v) = serde_json::from_str::<Value>(&line)
            && v.is_object()
        {
            last_json = v;
        }
    }
    let status = child.wait().expect("node exits");
    (status.success(), last_json)
}

/// An HTTP response as the tests see it.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP request through curl (a real client, nothing of ours in between).
pub fn http(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Reply {
    http_from(None, method, url, headers, body)
}

/// [`http`] from the local address `source` (another client, to the server's per-client
/// limits).
pub fn http_from(
    source: Option<&str>,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Reply {
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "-i", "-X", method, url, "--max-time", "20"]);
    if let Some(source) = source {
        cmd.args(["--interface", source]);
    }
    for (k, v) in headers {
        cmd.args(["-H", &format!("{k}: {v}")]);
    }
    if body.is_some() {
        cmd.args(["--data-binary", "@-"]);
        cmd.stdin(Stdio::piped());
    }
    cmd.stdout(Stdio::piped());
    let mut child = cmd.spawn().expect("curl runs");
    if let Some(b) = body {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("piped stdin");
        stdin.write_all(b).expect("request body written");
    }
    let out = child.wait_with_output().expect("curl finishes");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Reply {
        status,
        headers,
        body: body.to_string(),
    }
}

/// Create a stream through the API; the whole creation response.
pub fn create_stream_json(server: &Server, title: &str) -> Value {
    let r = http(
        "POST",
        &format!("{}/api/v1/streams", server.base),
        &[("Authorization", &format!("Bearer {}", server.admin))],
        Some(format!(r#"{{"title":"{title}"}}"#).as_bytes()),
    );
    assert_eq!(r.status, 201, "create stream: {}", r.body);
    serde_json::from_str(&r.body).expect("stream JSON")
}

/// Create a stream through the API; returns (id, key).
pub fn create_stream(server: &Server, title: &str) -> (String, String) {
    let v = create_stream_json(server, title);
    (
        v["id"].as_str().expect("id").to_string(),
        v["streamKey"].as_str().expect("key").to_string(),
    )
}

/// A canned WHEP offer (recvonly Opus + VP8) for HTTP-level checks.
pub fn whep_offer() -> String {
    std::fs::read_to_string(workspace().join("tests/fixtures/whep-offer.sdp")).expect("fixture offer")
}

/// A browser harness script running in the background, its JSON lines arriving on a channel.
pub struct NodeProc {
    child: Child,
    pub lines: std::sync::mpsc::Receiver<Value>,
}

impl NodeProc {
    /// Start `web/test/<script>`, optionally inside the named network namespace.
    pub fn spawn(netns: Option<&str>, script: &str, args: &[&str]) -> NodeProc {
        let mut cmd = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "node"]);
                c
            }
            None => Command::new("node"),
        };
        let mut child = cmd
            .arg(workspace().join("web/test").join(script))
            .args(args)
            .current_dir(workspace().join("web"))
            .stdout(Stdio::piped())
            .stderr(match std::env::var_os("FANOUT_NODE_STDERR") {
                Some(path) => std::fs::File::create(path).map_or(Stdio::null(), Stdio::from),
                None => Stdio::null(),
            })
            .spawn()
            .expect("node runs");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        let name = script.to_string();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                println!("{name}: {line}");
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && tx.send(v).is_err()
                {
                    break;
                }
            }
        });
        NodeProc { child, lines: rx }
    }

    /// Wait for a line matching `pred`, up to `timeout`.
    pub fn wait_for(&self, timeout: Duration, mut pred: impl FnMut(&Value) -> bool) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(v) if pred(&v) => return Some(v),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }
}

impl Drop for NodeProc {
    /// SIGTERM first, so the script closes its browser and removes the profile directory;
    /// SIGKILL if it has not exited within 3 s.
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}

/// Stop a child process: SIGTERM, then SIGKILL if it has not exited within 3 s.
pub fn terminate(child: &mut std::process::Child) {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Run a command, panicking with its output if it fails.
pub fn sh(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("command runs");
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A second network namespace joined to the test's own by a veth pair:
/// `10.99.0.1` on our side, `10.99.0.2` on the peer's.
pub struct PeerNetns {
    pub name: String,
}

impl PeerNetns {
    pub fn create() -> PeerNetns {
        let name = format!("fanout-peer-{}", std::process::id());
        sh(&["ip", "netns", "add", &name]);
        sh(&[
            "ip", "link", "add", "name", "fo-srv", "type", "veth", "peer", "name", "fo-peer",
        ]);
        sh(&["ip", "link", "set", "fo-peer", "netns", &name]);
        sh(&["ip", "addr", "add", "10.99.0.1/24", "dev", "fo-srv"]);
        sh(&["ip", "link", "set", "fo-srv", "up"]);
        sh(&["ip", "netns", "exec", &name, "ip", "link", "set", "lo", "up"]);
        sh(&[
            "ip",
            "netns",
            "exec",
            &name,
            "ip",
            "addr",
            "add",
            "10.99.0.2/24",
            "dev",
            "fo-peer",
        ]);
        sh(&["ip", "netns", "exec", &name, "ip", "link", "set", "fo-peer", "up"]);
        PeerNetns { name }
    }
}

impl Drop for PeerNetns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

/// Publish from the publish page (fake camera, 3-layer simulcast) in the background for
/// `seconds`, and wait until it is live.
pub fn start_publisher(server: &Server, id: &str, key: &str, seconds: u32) -> NodeProc {
    let seconds = seconds.to_string();
    let p = NodeProc::spawn(
        None,
        "publish.mjs",
        &[
            "--base",
            &server.base,
            "--stream",
            id,
            "--key",
            key,
            "--seconds",
            &seconds,
        ],
    );
    p.wait_for(Duration::from_secs(30), |v| v["event"] == "live")
        .expect("publisher goes live");
    p
}

/// Read `hls_play.mjs`'s per-second samples until its summary line (within `within`), calling
/// `each` with the samples so far after every new one. Returns the samples and the summary.
pub fn hls_play_samples(
    player: &NodeProc,
    within: Duration,
    mut each: impl FnMut(&[Value]),
) -> (Vec<Value>, Value) {
    let deadline = Instant::now() + within;
    let mut samples: Vec<Value> = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = player
            .lines
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("hls_play.mjs gave no summary; samples: {samples:?}"));
        if line["event"] != "sample" {
            return (samples, line);
        }
        samples.push(line);
        each(&samples);
    }
}

/// Waits (up to 30 s) until the live playlist of the stream's `rendition` lists parts and at
/// least `segments` complete segments.
pub fn wait_for_hls(base: &str, stream: &str, rendition: &str, segments: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = http(
            "GET",
            &format!("{base}/hls/{stream}/{rendition}/live.m3u8"),
            &[],
            None,
        );
        if r.status == 200
            && r.body.contains("#EXT-X-PART:")
            && r.body.matches("#EXTINF:").count() >= segments
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no LL-HLS parts ({segments} segments) for {stream}/{rendition}: {} {}",
            r.status,
            r.body
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A multi-threaded tokio runtime for tests that drive async clients.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// An OBS-shaped publisher (webrtc-rs: H.264 constrained baseline + Opus) live over WHIP.
pub async fn obs_h264_publisher(server: &Server, id: &str, key: &str) -> fanout_tests::whip::Publisher {
    let opts = fanout_tests::whip::PublishOptions {
        video: fanout_tests::codec::VideoCodec::H264,
        ..fanout_tests::whip::PublishOptions::obs()
    };
    fanout_tests::whip::Publisher::publish(&format!("{}/whip/{id}", server.base), key, opts)
        .await
        .expect("OBS-shaped publisher goes live")
}

/// The errors hls.js called fatal in a `hls_play.mjs` summary.
pub fn fatal_hls_errors(summary: &Value) -> Vec<&Value> {
    summary["hlsErrors"]
        .as_array()
        .map(|e| e.iter().filter(|e| e["fatal"] == true).collect())
        .unwrap_or_default()
}

/// hls.js (`web/test/hls_play.mjs`) plays the stream for `seconds`; its summary.
pub fn play_hls(base: &str, stream: &str, seconds: u32) -> (bool, Value) {
    let seconds = seconds.to_string();
    node_script(
        "hls_play.mjs",
        &[
            "--base",
            base,
            "--stream",
            stream,
            "--seconds",
            &seconds,
            "--timeout",
            "20",
        ],
    )
}

/// A webrtc-rs publisher (VP8 + Opus) live on the stream over WHIP.
pub async fn webrtc_rs_publisher(server: &Server, id: &str, key: &str) -> fanout_tests::whip::Publisher {
    fanout_tests::whip::Publisher::publish(
        &format!("{}/whip/{id}", server.base),
        key,
        fanout_tests::whip::PublishOptions::default(),
    )
    .await
    .expect("webrtc-rs publishes over WHIP")
}

/// A webrtc-rs viewer of the stream over WHEP.
pub async fn webrtc_rs_viewer(server: &Server, id: &str) -> fanout_tests::whep::Viewer {
    fanout_tests::whep::Viewer::subscribe(
        &format!("{}/whep/{id}", server.base),
        fanout_tests::whep::ViewOptions::default(),
    )
    .await
    .expect("webrtc-rs subscribes over WHEP")
}

pub type ChatSocket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A chat guest token for the stream's room from the server's guest-token endpoint (asked as
/// admin, so a private stream's works too).
pub fn guest_token(server: &Server, id: &str) -> String {
    let r = http(
        "POST",
        &format!("{}/api/v1/chat/guest-token", server.base),
        &[("Authorization", &format!("Bearer {}", server.admin))],
        Some(format!(r#"{{"stream":"{id}","name":"tester"}}"#).as_bytes()),
    );
    assert_eq!(r.status, 200, "guest token: {}", r.body);
    let token: Value = serde_json::from_str(&r.body).expect("token JSON");
    token["token"].as_str().expect("token").to_string()
}

/// A signed-in chat socket on the stream's room (guest token, `chatUrl`).
pub async fn chat_socket(server: &Server, id: &str) -> ChatSocket {
    chat_socket_as(server, id, &guest_token(server, id)).await
}

/// A chat socket on the stream's room (`chatUrl`, read as admin so private streams work too)
/// signed in with `token`.
pub async fn chat_socket_as(server: &Server, id: &str, token: &str) -> ChatSocket {
    let admin = format!("Bearer {}", server.admin);
    let r = http(
        "GET",
        &format!("{}/api/v1/streams/{id}", server.base),
        &[("Authorization", &admin)],
        None,
    );
    let stream: Value = serde_json::from_str(&r.body).expect("stream JSON");
    let url = format!("{}?token={token}", stream["chatUrl"].as_str().expect("chatUrl"));
    tokio_tungstenite::connect_async(url)
        .await
        .expect("chat socket")
        .0
}
