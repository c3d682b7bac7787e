//! nginx as a caching edge in front of the LL-HLS origin: 200 low-latency players through
//! it cost the origin about one request per part and per blocking playlist URL, get no 5xx,
//! and stay near the live edge.
//!
//! The edge honours the origin's Cache-Control (media immutable, blocking playlists for the
//! wait limit, plain playlists 1 s), keys the cache on the full request URI (so every
//! `_HLS_msn`/`_HLS_part` pair is its own object) and collapses concurrent misses with
//! `proxy_cache_lock`. What reached the origin is read from nginx's access log:
//! `$upstream_addr` is set exactly when nginx sent the request upstream.
//!
//! `FANOUT_EDGE_CACHE_LOCK=off` runs the same test without the lock (it then fails: every
//! waiting player's request goes upstream); `FANOUT_EDGE_PLAYERS` and
//! `FANOUT_EDGE_SECONDS` change the load.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Server, http, in_netns};
use fanout_tests::hls_load::{Config, Mode, Results, run};

const EDGE: &str = "http://127.0.0.1:18088";

#[test]
fn nginx_edge_collapses_players_into_one_origin_request_per_part() {
    if !in_netns("nginx_edge_collapses_players_into_one_origin_request_per_part") {
        return;
    }
    let lock = std::env::var("FANOUT_EDGE_CACHE_LOCK").unwrap_or_else(|_| "on".into());
    let players: usize = env_number("FANOUT_EDGE_PLAYERS", 200);
    let seconds: u64 = env_number("FANOUT_EDGE_SECONDS", 20);

    let server = Server::start(&["--test-pattern"]);
    wait_for_parts(&server.base);
    let edge = Nginx::start(&server.data_dir.join("edge"), &lock);

    // One part through the edge: a miss, then a hit, with the origin's Cache-Control.
    let live = http("GET", &format!("{EDGE}/hls/test/720p/live.m3u8"), &[], None);
    assert_eq!(live.status, 200, "playlist through the edge: {}", live.body);
    let part = live
        .body
        .lines()
        .filter_map(|l| l.split("URI=\"").nth(1))
        .filter_map(|l| l.split('"').next())
        .rfind(|uri| uri.starts_with('p'))
        .expect("the playlist lists parts")
        .to_owned();
    let url = format!("{EDGE}/hls/test/720p/{part}");
    let first = http("GET", &url, &[], None);
    let second = http("GET", &url, &[], None);
    assert_eq!(first.status, 200);
    assert_eq!(second.header("x-cache-status"), Some("HIT"), "{second:?}");
    assert_eq!(
        second.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );

    let config = Config::new(EDGE, "test", Mode::Players, players, Duration::from_secs(seconds));
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let report = runtime.block_on(run(&config)).expect("load runs");
    print!("{report}");
    let log = edge.stop();
    let classes = origin_requests(&log);
    print_classes(&lock, &classes);

    let Results::Players(players_report) = &report.results else {
        panic!("players mode reports players");
    };
    assert_eq!(players_report.server_errors, 0, "5xx at the players: {report}");
    let requests = players_report.playlist_requests + players_report.part_requests;
    let failed: u64 = players_report.errors.values().sum();
    assert!(
        failed * 100 <= requests,
        "more than 1 % of requests failed: {:?}",
        players_report.errors
    );
    // Players got (nearly) every part published while they played: each follows one
    // rendition, and every published part reached the origin once.
    let parts = &classes["part"];
    let per_rendition = parts.urls as f64 / parts.renditions.max(1) as f64;
    assert!(
        parts.client as f64 >= 0.8 * players as f64 * per_rendition,
        "{} part requests for {players} players and {per_rendition:.0} parts per rendition",
        parts.client
    );
    let behind = players_report.behind_p95.expect("reloads were answered");
    assert!(behind <= 5, "p95 {behind} parts behind live");

    for class in ["part", "blocking playlist"] {
        let c = &classes[class];
        assert!(c.urls > 0, "no {class} requests");
        assert!(
            c.per_url() <= 1.5,
            "{class}: {:.2} origin requests per URL ({} for {} URLs)",
            c.per_url(),
            c.origin,
            c.urls
        );
    }
    // The edge answered most requests itself.
    assert!(
        parts.client >= 20 * parts.origin,
        "parts: {} client requests, {} to the origin",
        parts.client,
        parts.origin
    );
}

fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Waits until the test pattern has published a few parts.
fn wait_for_parts(base: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let r = http("GET", &format!("{base}/hls/test/720p/live.m3u8"), &[], None);
        if r.status == 200 && r.body.matches("#EXT-X-PART:").count() >= 3 {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("the test pattern published no parts in 30 s");
}

/// An nginx caching edge on 127.0.0.1:18088 in front of the origin on 127.0.0.1:18080,
/// everything it writes in its own directory.
struct Nginx {
    child: Option<Child>,
    dir: PathBuf,
}

impl Nginx {
    fn start(dir: &Path, lock: &str) -> Nginx {
        std::fs::create_dir_all(dir).expect("edge dir");
        let d = dir.display();
        // The test runs as root in its own network namespace; workers run as root so that
        // they can write the cache in the test's directory.
        let conf = format!(
            r#"worker_processes 1;
user root;
error_log {d}/error.log info;
pid {d}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
    log_format edge '$request_uri $status $upstream_cache_status $upstream_addr';
    access_log {d}/access.log edge;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy_temp;
    fastcgi_temp_path {d}/fastcgi_temp;
    uwsgi_temp_path {d}/uwsgi_temp;
    scgi_temp_path {d}/scgi_temp;
    proxy_cache_path {d}/cache levels=1:2 keys_zone=hls:16m max_size=1g inactive=60s use_temp_path=off;
    upstream origin {{
        server 127.0.0.1:18080;
        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:18088;
        location /hls/ {{
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering on;
            proxy_cache hls;
            proxy_cache_key $scheme$proxy_host$request_uri;
            proxy_cache_lock {lock};
            proxy_cache_lock_timeout 5s;
            proxy_cache_lock_age 5s;
            proxy_cache_valid 200 1s;
            proxy_read_timeout 10s;
            add_header X-Cache-Status $upstream_cache_status always;
        }}
    }}
}}
"#
        );
        let conf_path = dir.join("nginx.conf");
        std::fs::write(&conf_path, conf).expect("nginx.conf written");
        let child = Command::new("nginx")
            .arg("-c")
            .arg(&conf_path)
            .arg("-p")
            .arg(dir)
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("nginx runs (Debian nginx-light)");
        let edge = Nginx {
            child: Some(child),
            dir: dir.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if http("GET", &format!("{EDGE}/hls/test/master.m3u8"), &[], None).status == 200 {
                return edge;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("nginx did not answer; error log:\n{}", edge.error_log());
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }

    /// Stops nginx (SIGTERM: the master takes its workers down) and returns the access log.
    /// The cached media (tens of MB) is deleted; the logs stay for a look after a failure.
    fn stop(mut self) -> String {
        self.terminate();
        let _ = std::fs::remove_dir_all(self.dir.join("cache"));
        std::fs::read_to_string(self.dir.join("access.log")).expect("nginx access log")
    }

    fn terminate(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// Requests of one kind: from the players to the edge, from the edge to the origin.
#[derive(Debug, Default)]
struct Class {
    client: u64,
    origin: u64,
    urls: u64,
    max_per_url: u64,
    renditions: usize,
    statuses: BTreeMap<String, u64>,
}

impl Class {
    fn per_url(&self) -> f64 {
        self.origin as f64 / self.urls.max(1) as f64
    }
}

fn class_of(uri: &str) -> &'static str {
    let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
    let name = path.rsplit('/').next().unwrap_or(path);
    if name.ends_with(".m4s") && name.starts_with('p') {
        "part"
    } else if name.ends_with(".m4s") {
        "segment"
    } else if name.ends_with(".mp4") {
        "init"
    } else if name == "live.m3u8" && query.contains("_HLS_msn") {
        "blocking playlist"
    } else if name == "live.m3u8" {
        "plain playlist"
    } else {
        "multivariant"
    }
}

/// Client and origin requests by class, from the access log (`uri status cache upstream`).
fn origin_requests(log: &str) -> BTreeMap<&'static str, Class> {
    let mut per_url: HashMap<&str, (u64, u64)> = HashMap::new();
    let mut classes: BTreeMap<&'static str, Class> = BTreeMap::new();
    for line in log.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let [uri, status, cache, upstream] = fields[..] else {
            continue;
        };
        let class = classes.entry(class_of(uri)).or_default();
        class.client += 1;
        *class.statuses.entry(format!("{status} {cache}")).or_default() += 1;
        let entry = per_url.entry(uri).or_default();
        entry.0 += 1;
        if upstream != "-" {
            class.origin += 1;
            entry.1 += 1;
        }
    }
    let mut renditions: HashMap<&'static str, std::collections::HashSet<&str>> = HashMap::new();
    for (uri, (_, origin)) in per_url {
        let name = class_of(uri);
        let class = classes.entry(name).or_default();
        class.urls += 1;
        class.max_per_url = class.max_per_url.max(origin);
        let dir = uri.rsplit_once('/').map_or(uri, |(dir, _)| dir);
        renditions.entry(name).or_default().insert(dir);
    }
    for (name, dirs) in renditions {
        if let Some(class) = classes.get_mut(name) {
            class.renditions = dirs.len();
        }
    }
    for name in ["part", "blocking playlist"] {
        classes.entry(name).or_default();
    }
    classes
}

fn print_classes(lock: &str, classes: &BTreeMap<&'static str, Class>) {
    println!("nginx edge, proxy_cache_lock {lock}:");
    println!(
        "| requests | from players | to the origin | URLs | origin requests per URL | max per URL | status, cache status |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (name, c) in classes {
        let statuses: Vec<String> = c.statuses.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        println!(
            "| {name} | {} | {} | {} | {:.2} | {} | {} |",
            c.client,
            c.origin,
            c.urls,
            c.per_url(),
            c.max_per_url,
            statuses.join(", ")
        );
    }
}

#[test]
fn requests_are_classified_by_url() {
    assert_eq!(class_of("/hls/test/720p/p12.3.m4s"), "part");
    assert_eq!(class_of("/hls/test/720p/s12.m4s"), "segment");
    assert_eq!(class_of("/hls/test/720p/init0.mp4"), "init");
    assert_eq!(
        class_of("/hls/test/720p/live.m3u8?_HLS_msn=1&_HLS_part=2&_HLS_skip=YES"),
        "blocking playlist"
    );
    assert_eq!(class_of("/hls/test/720p/live.m3u8"), "plain playlist");
    assert_eq!(class_of("/hls/test/master.m3u8"), "multivariant");
    let log = "/hls/t/a/p1.0.m4s 200 MISS 127.0.0.1:18080\n\
               /hls/t/a/p1.0.m4s 200 HIT -\n\
               /hls/t/a/p1.1.m4s 200 MISS 127.0.0.1:18080\n\
               /hls/t/a/p1.1.m4s 200 MISS 127.0.0.1:18080\n";
    let classes = origin_requests(log);
    let parts = &classes["part"];
    assert_eq!(
        (parts.client, parts.origin, parts.urls, parts.max_per_url),
        (4, 3, 2, 2)
    );
    assert_eq!(parts.renditions, 1);
    assert!((parts.per_url() - 1.5).abs() < 1e-9);
}
