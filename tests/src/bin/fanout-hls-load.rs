//! `fanout-hls-load`: simulated low-latency HLS players against an origin or an edge, and the
//! origin benchmarks (held blocking requests, parts per second). Loopback only.
//!
//! ```text
//! fanout-hls-load --base http://127.0.0.1:8080 --stream test --players 200 --seconds 20
//! fanout-hls-load --mode held --players 10000 --server-pid PID
//! fanout-hls-load --mode parts --players 64 --seconds 10 --json
//! ```

use std::time::Duration;

use clap::Parser;
use fanout_tests::hls_load::{Config, Mode, run};

/// LL-HLS load generator.
#[derive(Debug, Parser)]
#[command(name = "fanout-hls-load", version)]
struct Args {
    /// Origin or edge base URL (loopback only).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    base: String,
    /// Stream id.
    #[arg(long, default_value = "test")]
    stream: String,
    /// players: hls.js-like players; held: blocking requests held at once; parts: parts back to back.
    #[arg(long, value_enum, default_value = "players")]
    mode: Mode,
    /// Players (or connections).
    #[arg(long, default_value_t = 100)]
    players: usize,
    /// Seconds to play (players, parts).
    #[arg(long, default_value_t = 20.0)]
    seconds: f64,
    /// Only this rendition (720p, 480p, 360p, audio); by default spread over all.
    #[arg(long)]
    rendition: Option<String>,
    /// held: ask for the part this many parts past the next one (at most 15).
    #[arg(long, default_value_t = 10)]
    ahead: u32,
    /// Server PID, to report its CPU time.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut config = Config::new(
        &args.base,
        &args.stream,
        args.mode,
        args.players,
        Duration::from_secs_f64(args.seconds),
    );
    config.rendition = args.rendition;
    config.ahead = args.ahead;
    config.server_pid = args.server_pid;
    let runtime = tokio::runtime::Runtime::new()?;
    let report = runtime.block_on(run(&config))?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{report}");
    }
    Ok(())
}
