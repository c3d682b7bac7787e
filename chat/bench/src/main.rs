//! `chat-bench`: one room, N WebSocket sockets, a steady message rate in, delivery latency out.
//!
//! ```text
//! cargo build --release --workspace --bin chat-bench
//! $CARGO_TARGET_DIR/release/chat-bench [--sockets 10000] [--rate 100] [--seconds 10]
//!     [--batch-ms 10] [--max-batch-ms 100] [--writes-per-sec 100000] [--skip-redis]
//!     [--readers 1]
//! ```
//!
//! The server runs as a child process (this binary with `serve`), so its RSS and CPU are
//! measured apart from the load generator's. Phase 1: one embedded node. Phase 2: two nodes
//! through a private `redis-server` on a free loopback port, senders on node A, receivers split
//! over A and B. Only loopback addresses are used. The 100 senders are tokio-tungstenite
//! clients; the receivers are plain sockets on epoll loops ([`receivers`]), so the load
//! generator leaves as much of the machine as it can to the server.

mod receivers;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

const SECRET: &[u8] = b"chat-bench-secret";
const SENDERS: usize = 100;

struct Args {
    sockets: usize,
    rate: u32,
    seconds: u64,
    batch: Batching,
    skip_redis: bool,
    /// Threads reading the receiving sockets.
    readers: usize,
}

/// The room's fan-out gap settings (`ChatConfig::batch_window` and friends).
#[derive(Clone, Copy)]
struct Batching {
    min_ms: u64,
    max_ms: u64,
    writes_per_sec: u32,
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut a = Args {
        sockets: 10_000,
        rate: 100,
        seconds: 10,
        batch: Batching {
            min_ms: 10,
            max_ms: 100,
            writes_per_sec: 100_000,
        },
        skip_redis: false,
        readers: 1,
    };
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--sockets" => a.sockets = val()?.parse().map_err(|e| format!("--sockets: {e}"))?,
            "--rate" => a.rate = val()?.parse().map_err(|e| format!("--rate: {e}"))?,
            "--seconds" => a.seconds = val()?.parse().map_err(|e| format!("--seconds: {e}"))?,
            "--batch-ms" => a.batch.min_ms = val()?.parse().map_err(|e| format!("{flag}: {e}"))?,
            "--max-batch-ms" => a.batch.max_ms = val()?.parse().map_err(|e| format!("{flag}: {e}"))?,
            "--writes-per-sec" => {
                a.batch.writes_per_sec = val()?.parse().map_err(|e| format!("{flag}: {e}"))?
            }
            "--skip-redis" => a.skip_redis = true,
            "--readers" => a.readers = val()?.parse().map_err(|e| format!("{flag}: {e}"))?,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if a.sockets < SENDERS {
        return Err(format!("--sockets must be at least {SENDERS}"));
    }
    Ok(a)
}

fn main() {
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().map(String::as_str) == Some("serve") {
        args.next();
        return serve_child(args.collect());
    }
    let args = match parse_args(args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("chat-bench: {e}");
            std::process::exit(2);
        }
    };
    raise_nofile();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(bench(args));
}

fn raise_nofile() {
    match rlimit::increase_nofile_limit(1_048_576) {
        Ok(n) => {
            if n < 12_000 {
                eprintln!("warning: RLIMIT_NOFILE is {n}; raise it (ulimit -n) for 10,000 sockets");
            }
        }
        Err(e) => eprintln!("warning: cannot raise RLIMIT_NOFILE: {e}"),
    }
}

/// `chat-bench serve <batch_ms> <max_batch_ms> <writes_per_sec> [redis_url]`: a chat node that
/// prints its address.
fn serve_child(args: Vec<String>) {
    raise_nofile();
    let num = |i: usize, default: u64| -> u64 { args.get(i).and_then(|s| s.parse().ok()).unwrap_or(default) };
    let (batch_ms, max_batch_ms, writes) = (num(0, 10), num(1, 100), num(2, 100_000));
    let redis_url = args.get(3).cloned();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async move {
        let dir = data_dir(std::process::id());
        let config = chat::ChatConfig {
            addr: "127.0.0.1:0".parse().expect("addr"),
            redis_url,
            jwt: chat::JwtConfig::hs256(SECRET.to_vec()),
            data_dir: dir.clone(),
            batch_window: Duration::from_millis(batch_ms),
            max_batch_window: Duration::from_millis(max_batch_ms),
            room_writes_per_sec: u32::try_from(writes).unwrap_or(u32::MAX),
            ..Default::default()
        };
        let handle = chat::serve(config, std::future::pending())
            .await
            .expect("chat node starts");
        println!("LISTENING {}", handle.local_addr());
        let _ = handle.wait().await;
        let _ = std::fs::remove_dir_all(dir);
    });
}

struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn spawn(batch: Batching, redis_url: Option<&str>) -> Server {
        let exe = std::env::current_exe().expect("own path");
        let mut cmd = Command::new(exe);
        cmd.arg("serve")
            .arg(batch.min_ms.to_string())
            .arg(batch.max_ms.to_string())
            .arg(batch.writes_per_sec.to_string());
        if let Some(u) = redis_url {
            cmd.arg(u);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()
            .expect("server child spawns");
        let out = child.stdout.take().expect("stdout piped");
        let mut line = String::new();
        BufReader::new(out)
            .read_line(&mut line)
            .expect("server prints its address");
        let addr = line
            .trim()
            .strip_prefix("LISTENING ")
            .expect("LISTENING line")
            .to_string();
        Server { child, addr }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Killed, the node cannot remove its own data dir.
        let _ = std::fs::remove_dir_all(data_dir(self.child.id()));
    }
}

/// The data dir of the node with process id `pid`.
fn data_dir(pid: u32) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("chat-bench-{pid}"))
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// CPU seconds (user + system) of a process.
fn cpu_secs(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Latency histogram: 100 µs buckets up to 10 s.
struct Hist {
    buckets: Vec<u64>,
    count: u64,
}

impl Hist {
    fn new() -> Self {
        Hist {
            buckets: vec![0; 100_001],
            count: 0,
        }
    }

    fn record(&mut self, us: u64) {
        let i = ((us / 100) as usize).min(self.buckets.len() - 1);
        self.buckets[i] += 1;
        self.count += 1;
    }

    fn merge(&mut self, other: &Hist) {
        for (b, o) in self.buckets.iter_mut().zip(&other.buckets) {
            *b += o;
        }
        self.count += other.count;
    }

    fn percentile_ms(&self, p: f64) -> f64 {
        let total = self.count;
        if total == 0 {
            return f64::NAN;
        }
        let target = ((total as f64) * p).ceil() as u64;
        let mut seen = 0;
        for (i, b) in self.buckets.iter().enumerate() {
            seen += b;
            if seen >= target {
                return (i as f64 + 1.0) * 0.1;
            }
        }
        f64::INFINITY
    }
}

/// What the sockets of one node saw. Reader threads keep their own histograms and merge them
/// into `hist` when they stop; `delivered` counts as they go.
struct Counters {
    hist: Mutex<Hist>,
    delivered: AtomicU64,
    dropped: AtomicU64,
    errors: AtomicU64,
}

impl Counters {
    fn new() -> Self {
        Counters {
            hist: Mutex::new(Hist::new()),
            delivered: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        }
    }
}

fn token(i: usize) -> String {
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
        + 3600;
    chat::mint_token(
        SECRET,
        &chat::auth::Claims {
            sub: format!("bench-{i}"),
            name: Some(format!("bench{i}")),
            role: chat::Role::Viewer,
            badges: vec![],
            color: None,
            exp,
            stream: Some(chat::auth::ALL_ROOMS.into()),
            aud: None,
        },
    )
}

type Sink = futures_util::stream::SplitSink<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    Message,
>;

/// Connect the `SENDERS` signed-in sockets to node `sender_node` and return their sinks. They
/// are in the room too: each one's reader records latencies into its node's counters.
async fn connect_senders(addr: &str, counters: &Arc<Counters>, running: &Arc<AtomicBool>) -> Vec<Sink> {
    let mut joins = Vec::with_capacity(SENDERS);
    for i in 0..SENDERS {
        let url = format!("ws://{addr}/v1/chat/bench?token={}", token(i));
        let (counters, running) = (counters.clone(), running.clone());
        joins.push(tokio::spawn(async move {
            let config = WebSocketConfig::default()
                .read_buffer_size(4096)
                .write_buffer_size(0);
            let (ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), false)
                .await
                .expect("connect");
            let (sink, mut stream) = ws.split();
            // Wait for hello + history so the socket is in the room before we start.
            let mut seen = 0;
            while seen < 2 {
                match stream.next().await {
                    Some(Ok(Message::Text(_))) => seen += 1,
                    Some(Ok(_)) => {}
                    _ => panic!("socket closed during setup"),
                }
            }
            tokio::spawn(read_loop(stream, counters, running));
            sink
        }));
    }
    let mut sinks = Vec::with_capacity(SENDERS);
    for j in joins {
        sinks.push(j.await.expect("connect task"));
    }
    sinks
}

async fn read_loop(
    mut stream: futures_util::stream::SplitStream<
        tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    >,
    counters: Arc<Counters>,
    running: Arc<AtomicBool>,
) {
    while let Some(msg) = stream.next().await {
        let text = match msg {
            Ok(Message::Text(t)) => t,
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => continue,
        };
        let now = now_us();
        let mut delivered = 0;
        {
            let mut hist = counters.hist.lock().expect("hist");
            receivers::send_times(text.as_bytes(), |sent| {
                hist.record(now.saturating_sub(sent));
                delivered += 1;
            });
        }
        counters.delivered.fetch_add(delivered, Ordering::Relaxed);
        if text.contains("\"type\":\"error\"") {
            counters.errors.fetch_add(1, Ordering::Relaxed);
        }
    }
    if running.load(Ordering::Relaxed) {
        counters.dropped.fetch_add(1, Ordering::Relaxed);
    }
}

struct Outcome {
    label: String,
    sockets: usize,
    sent: u64,
    counters: Vec<Arc<Counters>>,
    seconds: f64,
    rss_per_socket_kib: f64,
    server_cpu: f64,
    loadgen_cpu: f64,
    redis_cpu: Option<f64>,
}

async fn run_phase(
    label: &str,
    addrs: Vec<String>,
    pids: Vec<u32>,
    redis_pid: Option<u32>,
    args: &Args,
) -> Outcome {
    let counters: Vec<Arc<Counters>> = addrs.iter().map(|_| Arc::new(Counters::new())).collect();
    let running = Arc::new(AtomicBool::new(true));
    let rss_before: u64 = pids.iter().map(|&p| rss_kib(p)).sum();
    let t0 = Instant::now();
    // Senders all go to node A; receivers spread over the nodes.
    let mut sinks = connect_senders(&addrs[0], &counters[0], &running).await;
    let receivers: Vec<(usize, String)> = (SENDERS..args.sockets)
        .map(|i| (i % addrs.len(), addrs[i % addrs.len()].clone()))
        .collect();
    let readers = {
        let (counters, running, threads) = (counters.clone(), running.clone(), args.readers);
        tokio::task::spawn_blocking(move || receivers::start(receivers, threads, counters, running))
            .await
            .expect("receivers start")
    };
    eprintln!(
        "{label}: {} sockets connected in {:.1?}",
        args.sockets,
        t0.elapsed()
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let rss_after: u64 = pids.iter().map(|&p| rss_kib(p)).sum();
    // Warm-up messages are not measured: start the histograms after them.
    let cpu0: f64 = pids.iter().map(|p| cpu_secs(&p.to_string())).sum();
    let self0 = cpu_secs("self");
    let redis0 = redis_pid.map(|p| cpu_secs(&p.to_string()));
    let interval = Duration::from_secs_f64(1.0 / f64::from(args.rate.max(1)));
    let total = u64::from(args.rate) * args.seconds;
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let start = Instant::now();
    let mut sent = 0u64;
    while sent < total {
        tick.tick().await;
        let sink = &mut sinks[(sent as usize) % SENDERS];
        let text = format!(r#"{{"type":"send","text":"b {}"}}"#, now_us());
        if sink.send(Message::Text(text.into())).await.is_ok() {
            sent += 1;
        } else {
            break;
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    // Let the last deliveries land.
    let expected = sent * args.sockets as u64;
    let drain = Instant::now();
    while drain.elapsed() < Duration::from_secs(5) {
        let got: u64 = counters.iter().map(|c| c.delivered.load(Ordering::Relaxed)).sum();
        if got >= expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let server_cpu = pids.iter().map(|p| cpu_secs(&p.to_string())).sum::<f64>() - cpu0;
    let loadgen_cpu = cpu_secs("self") - self0;
    let redis_cpu = redis_pid.map(|p| cpu_secs(&p.to_string()) - redis0.unwrap_or(0.0));
    running.store(false, Ordering::Relaxed);
    tokio::task::spawn_blocking(move || {
        for r in readers {
            r.join().expect("a receiver thread panicked");
        }
    })
    .await
    .expect("receivers stop");
    drop(sinks);
    Outcome {
        label: label.to_string(),
        sockets: args.sockets,
        sent,
        counters,
        seconds,
        rss_per_socket_kib: rss_after.saturating_sub(rss_before) as f64 / args.sockets as f64,
        server_cpu,
        loadgen_cpu,
        redis_cpu,
    }
}

fn merged(counters: &[Arc<Counters>]) -> Hist {
    let mut h = Hist::new();
    for c in counters {
        h.merge(&c.hist.lock().expect("hist"));
    }
    h
}

fn print_row(o: &Outcome, which: &str, h: &Hist, dropped: u64, errors: u64) {
    let delivered = h.count;
    println!(
        "| {} {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.0} | {} | {} | {:.2} | {:.2} s ({:.0}%) | {:.2} s ({:.0}%){} |",
        o.label,
        which,
        o.sockets,
        o.sent,
        h.percentile_ms(0.50),
        h.percentile_ms(0.95),
        h.percentile_ms(0.99),
        delivered as f64 / o.seconds,
        delivered,
        dropped,
        o.rss_per_socket_kib,
        o.server_cpu,
        100.0 * o.server_cpu / o.seconds,
        o.loadgen_cpu,
        100.0 * o.loadgen_cpu / o.seconds,
        o.redis_cpu
            .map(|r| format!(", redis {r:.2} s"))
            .unwrap_or_default(),
    );
    if errors > 0 {
        println!("|  (error frames received: {errors}) |");
    }
}

fn summary(o: &Outcome) -> f64 {
    let h = merged(&o.counters);
    let dropped: u64 = o.counters.iter().map(|c| c.dropped.load(Ordering::Relaxed)).sum();
    let errors: u64 = o.counters.iter().map(|c| c.errors.load(Ordering::Relaxed)).sum();
    print_row(o, "(all)", &h, dropped, errors);
    if o.counters.len() > 1 {
        for (i, c) in o.counters.iter().enumerate() {
            let d = c.dropped.load(Ordering::Relaxed);
            let hist = c.hist.lock().expect("hist");
            print_row(o, &format!("(node {})", ["A", "B"][i.min(1)]), &hist, d, 0);
        }
    }
    h.percentile_ms(0.95)
}

fn start_redis() -> Option<(Child, u16)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .ok()?
        .port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Some((child, port))
}

async fn bench(args: Args) {
    println!(
        "chat-bench: {} sockets, {} msg/s in ({} senders), {} s, fan-out gap {}-{} ms at {} writes/s",
        args.sockets,
        args.rate,
        SENDERS,
        args.seconds,
        args.batch.min_ms,
        args.batch.max_ms,
        args.batch.writes_per_sec
    );
    let header = "| run | sockets | sent | p50 ms | p95 ms | p99 ms | deliveries/s | delivered | dropped | server RSS KiB/socket | server CPU | load-gen CPU |\n|---|---|---|---|---|---|---|---|---|---|---|---|";
    let one = {
        let server = Server::spawn(args.batch, None);
        let o = run_phase(
            "1 node",
            vec![server.addr.clone()],
            vec![server.pid()],
            None,
            &args,
        )
        .await;
        drop(server);
        o
    };
    println!("{header}");
    let p95_one = summary(&one);
    if args.skip_redis {
        return;
    }
    let Some((mut redis, port)) = start_redis() else {
        println!("redis-server not available: two-node phase skipped");
        return;
    };
    let url = format!("redis://127.0.0.1:{port}/");
    let a = Server::spawn(args.batch, Some(&url));
    let b = Server::spawn(args.batch, Some(&url));
    let two = run_phase(
        "2 nodes+redis",
        vec![a.addr.clone(), b.addr.clone()],
        vec![a.pid(), b.pid()],
        Some(redis.id()),
        &args,
    )
    .await;
    drop((a, b));
    let _ = redis.kill();
    let _ = redis.wait();
    let p95_two = summary(&two);
    println!();
    println!(
        "Redis extra latency at p95: {:.1} ms (2 nodes {:.1} ms vs 1 node {:.1} ms)",
        p95_two - p95_one,
        p95_two,
        p95_one
    );
}
