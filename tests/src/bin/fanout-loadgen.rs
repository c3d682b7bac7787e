//! `fanout-loadgen`: WHEP fan-out load on one thread (str0m), with loss and CPU per packet.
//!
//! ```text
//! fanout-loadgen --whep-url http://127.0.0.1:8080/whep/ID --subscribers 500 --seconds 30 \
//!     [--ramp-per-sec 100] [--server-pid PID] [--metrics-url http://127.0.0.1:8080/metrics] [--json]
//! fanout-loadgen --whep-url URL1 --more-whep-url URL2 --more-whep-url URL3 --subscribers 3 ...
//! fanout-loadgen --janus-url http://127.0.0.1:8088/janus --janus-mountpoint 1 --subscribers 500 ...
//! ```

use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use fanout_tests::loadgen::{JanusMountpoint, LoadConfig, run};

/// Fan-out load generator: N str0m WHEP (or Janus) subscribers on one thread, on loopback only.
#[derive(Debug, Parser)]
#[command(name = "fanout-loadgen", version)]
struct Args {
    /// WHEP endpoint of the stream to watch (must be a loopback URL).
    #[arg(long, required_unless_present = "janus_url", conflicts_with = "janus_url")]
    whep_url: Option<String>,
    /// More WHEP endpoints (repeat the flag): subscribers are spread over all the URLs in
    /// turn, so `--subscribers` equal to the number of URLs gives every stream one viewer.
    #[arg(long, requires = "whep_url")]
    more_whep_url: Vec<String>,
    /// Watch a Janus streaming mountpoint instead, through the Janus HTTP API at this URL
    /// (loopback only), e.g. http://127.0.0.1:8088/janus.
    #[arg(long)]
    janus_url: Option<String>,
    /// The Janus streaming mountpoint to watch (with --janus-url).
    #[arg(long, default_value_t = 1, requires = "janus_url")]
    janus_mountpoint: u64,
    /// Loopback address the subscribers bind to (their ICE candidate). Janus only gathers on
    /// an interface other than lo and sends through that interface only, so against Janus this
    /// must be the loopback address given to that interface (scripts/bench.sh uses 127.0.0.2).
    #[arg(long, default_value = "127.0.0.1")]
    bind_ip: std::net::IpAddr,
    /// Number of subscribers.
    #[arg(long, default_value_t = 10)]
    subscribers: usize,
    /// Total run time in seconds, ramp included.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Subscribers created per second.
    #[arg(long, default_value_t = 100.0)]
    ramp_per_sec: f64,
    /// WHEP exchanges in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Seconds after the last subscriber signalled before the steady window starts.
    #[arg(long, default_value_t = 2.0)]
    settle_seconds: f64,
    /// End the run this many seconds after the steady window started (at --seconds at the
    /// latest), so that every run measures the same window.
    #[arg(long)]
    steady_seconds: Option<f64>,
    /// Milliseconds a missing packet may wait for a retransmission before it counts as lost.
    #[arg(long, default_value_t = 1000)]
    loss_window_ms: u64,
    /// Server process id, to report its CPU time and CPU per forwarded packet.
    #[arg(long)]
    server_pid: Option<u32>,
    /// The server's Prometheus endpoint (e.g. http://127.0.0.1:8080/metrics), to report its
    /// own forwarding delay p50/p99 over the steady window.
    #[arg(long)]
    metrics_url: Option<String>,
    /// Bearer token for private streams.
    #[arg(long, env = "FANOUT_WHEP_TOKEN")]
    bearer: Option<String>,
    /// Print one JSON line instead of the table.
    #[arg(long)]
    json: bool,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,rtc_dtls=error")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    anyhow::ensure!(
        args.seconds.is_finite() && args.seconds > 0.0,
        "--seconds must be positive"
    );
    anyhow::ensure!(
        args.ramp_per_sec.is_finite() && args.ramp_per_sec > 0.0,
        "--ramp-per-sec must be positive"
    );
    anyhow::ensure!(
        args.steady_seconds.is_none_or(|s| s.is_finite() && s > 0.0),
        "--steady-seconds must be positive"
    );
    let config = LoadConfig {
        whep_url: args.whep_url.unwrap_or_default(),
        more_whep_urls: args.more_whep_url,
        bearer: args.bearer,
        subscribers: args.subscribers,
        duration: Duration::from_secs_f64(args.seconds),
        ramp_per_sec: args.ramp_per_sec,
        concurrency: args.concurrency,
        settle: Duration::from_secs_f64(args.settle_seconds.max(0.0)),
        steady_window: args.steady_seconds.map(Duration::from_secs_f64),
        loss_window: Duration::from_millis(args.loss_window_ms),
        server_pid: args.server_pid,
        metrics_url: args.metrics_url,
        janus: args.janus_url.map(|api_url| JanusMountpoint {
            api_url,
            id: args.janus_mountpoint,
        }),
        bind_ip: args.bind_ip,
    };
    let report = run(&config).context("load run")?;
    if args.json {
        println!("{}", report.to_json_line());
    } else {
        print!("{}", report.to_table());
    }
    Ok(())
}
