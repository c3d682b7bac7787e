//! An LL-HLS load generator: simulated low-latency players against an origin or a cache in
//! front of one, and two origin benchmarks.
//!
//! Three modes, each over plain HTTP/1.1 keep-alive connections (hyper's connection API, one
//! tokio task per player):
//!
//! - [`Mode::Players`]: N players shaped like hls.js in low-latency mode (see [`player`]),
//!   spread over the renditions of the multivariant playlist, started over the first second.
//!   Reports playlist and part requests per second, errors by status, how long a
//!   preload-hinted part takes from its request to its last byte (the server holds it until
//!   the part is complete), how old the newest part of each blocking reload's answer is when
//!   it arrives (PROGRAM-DATE-TIME plus part durations against the clock that server and
//!   players share on one machine: this includes the encoder's and packager's delay), and how
//!   many parts that newest part is behind the newest one any player of the same rendition
//!   has been given ("parts behind live": the delivery path only).
//! - [`Mode::Held`]: N connections opened first, then each asks for the same part a few parts
//!   ahead; the server must hold them all and release them when the part is published
//!   ([`held`]).
//! - [`Mode::Parts`]: N connections fetching published parts back to back: parts served per
//!   second ([`parts`]).
//!
//! Given the server's PID, the report carries its CPU time over the run next to the load
//! generator's own. Only loopback hosts are accepted.
//!
//! ```no_run
//! # async fn t() -> Result<(), fanout_tests::hls_load::LoadError> {
//! use std::time::Duration;
//! use fanout_tests::hls_load::{Config, Mode, run};
//! let config = Config::new("http://127.0.0.1:18088", "test", Mode::Players, 200, Duration::from_secs(20));
//! let report = run(&config).await?;
//! println!("{report}");
//! # Ok(()) }
//! ```

mod conn;
mod held;
mod parts;
pub mod player;
pub mod playlist;
mod report;

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

pub use held::HeldReport;
pub use parts::PartsReport;
pub use player::PlayerStats;
pub use report::{CpuUse, PlayersReport, Report, Results};

use crate::loadgen::{own_cpu, process_cpu};

/// Why a run could not be made.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The base URL is malformed or not loopback.
    #[error("bad base URL: {0}")]
    BadUrl(String),
    /// A connection could not be opened.
    #[error("connect: {0}")]
    Connect(String),
    /// A request failed after it was sent.
    #[error("HTTP: {0}")]
    Http(String),
    /// A request took longer than its limit.
    #[error("timed out")]
    Timeout,
    /// The stream has no playable rendition.
    #[error("no such stream or rendition")]
    NoStream,
}

impl LoadError {
    /// A short name to count errors by.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::BadUrl(_) => "bad url",
            Self::Connect(_) => "connect",
            Self::Http(_) => "io",
            Self::Timeout => "timeout",
            Self::NoStream => "no stream",
        }
    }
}

/// What to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Simulated low-latency players.
    Players,
    /// Blocking requests held at the server, released together.
    Held,
    /// Published parts fetched back to back.
    Parts,
}

/// A run's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// `http://127.0.0.1:PORT[/prefix]`: the origin or a cache in front of it.
    pub base: String,
    /// Stream id (`/hls/{stream}/master.m3u8`).
    pub stream: String,
    /// The mode.
    pub mode: Mode,
    /// Players (or connections).
    pub players: usize,
    /// How long players play or parts are fetched (unused by [`Mode::Held`]).
    pub duration: Duration,
    /// Only this rendition (`720p`, `audio`, …); by default players spread over all.
    pub rendition: Option<String>,
    /// [`Mode::Held`]: how many parts past the next one to ask for.
    pub ahead: u32,
    /// The server's PID, to report its CPU time.
    pub server_pid: Option<u32>,
}

impl Config {
    /// Settings with the defaults for the rest.
    pub fn new(base: &str, stream: &str, mode: Mode, players: usize, duration: Duration) -> Config {
        Config {
            base: base.to_owned(),
            stream: stream.to_owned(),
            mode,
            players,
            duration,
            rendition: None,
            ahead: 10,
            server_pid: None,
        }
    }
}

/// Where requests go.
#[derive(Debug, Clone)]
pub struct Target {
    addr: SocketAddr,
    host: String,
    prefix: String,
    stream: String,
    rendition: Option<String>,
}

impl Target {
    /// Checks the base URL: `http`, a loopback host.
    pub fn new(config: &Config) -> Result<Target, LoadError> {
        let url = crate::signal::parse_url(&config.base).map_err(|e| LoadError::BadUrl(e.to_string()))?;
        if url.scheme() != "http" || !crate::signal::is_loopback_url(&url) {
            return Err(LoadError::BadUrl(format!(
                "{}: only http:// on a loopback host",
                config.base
            )));
        }
        let host = url.host_str().unwrap_or_default();
        let port = url.port_or_known_default().unwrap_or(80);
        let addr = (host.trim_start_matches('[').trim_end_matches(']'), port)
            .to_socket_addrs()
            .map_err(|e| LoadError::BadUrl(e.to_string()))?
            .find(|a| a.ip().is_loopback())
            .ok_or_else(|| LoadError::BadUrl(format!("{host} has no loopback address")))?;
        Ok(Target {
            addr,
            host: format!("{host}:{port}"),
            prefix: url.path().trim_end_matches('/').to_owned(),
            stream: config.stream.clone(),
            rendition: config.rendition.clone(),
        })
    }

    fn master_path(&self) -> String {
        format!("{}/hls/{}/master.m3u8", self.prefix, self.stream)
    }
}

/// Runs the configured mode and reports it.
pub async fn run(config: &Config) -> Result<Report, LoadError> {
    let target = Target::new(config)?;
    let cpu_before = (Instant::now(), own_cpu(), config.server_pid.and_then(process_cpu));
    let results = match config.mode {
        Mode::Players => Results::Players(run_players(&target, config).await),
        Mode::Held => Results::Held(held::held(&target, config.players, config.ahead).await?),
        Mode::Parts => Results::Parts(parts::parts(&target, config.players, config.duration).await?),
    };
    let seconds = cpu_before.0.elapsed().as_secs_f64();
    let server = match (cpu_before.2, config.server_pid.and_then(process_cpu)) {
        (Some(a), Some(b)) => Some((b - a).as_secs_f64()),
        _ => None,
    };
    Ok(Report {
        base: config.base.clone(),
        stream: config.stream.clone(),
        results,
        cpu: CpuUse {
            seconds,
            load_generator_cpu_s: (own_cpu() - cpu_before.1).as_secs_f64(),
            server_cpu_s: server,
        },
    })
}

async fn run_players(target: &Target, config: &Config) -> PlayersReport {
    let started = Instant::now();
    let deadline = started + config.duration;
    let ramp = Duration::from_secs(1);
    let edge = std::sync::Arc::new(player::LiveEdge::default());
    let mut players = tokio::task::JoinSet::new();
    for player in 0..config.players {
        let target = target.clone();
        let edge = edge.clone();
        let delay = ramp.mul_f64(player as f64 / config.players.max(1) as f64);
        players.spawn(async move {
            tokio::time::sleep(delay).await;
            let mut stats = PlayerStats::default();
            let deadline = tokio::time::Instant::from_std(deadline);
            let _ = tokio::time::timeout_at(
                deadline,
                player::play(&target, player, deadline.into_std(), &edge, &mut stats),
            )
            .await;
            stats
        });
    }
    let mut total = PlayerStats::default();
    while let Some(done) = players.join_next().await {
        if let Ok(stats) = done {
            total.merge(stats);
        }
    }
    PlayersReport::new(config.players, started.elapsed(), total)
}

/// `p`-th percentile of durations, in milliseconds.
pub fn percentile_ms(values: &[Duration], p: f64) -> Option<f64> {
    let ms: Vec<f64> = values.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    crate::loadgen::percentile(&ms, p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(base: &str) -> Result<Target, LoadError> {
        Target::new(&Config::new(
            base,
            "test",
            Mode::Players,
            1,
            Duration::from_secs(1),
        ))
    }

    #[test]
    fn only_loopback_http_is_accepted() {
        assert!(matches!(
            target("http://192.0.2.1:8080"),
            Err(LoadError::BadUrl(_))
        ));
        assert!(matches!(target("http://example.com"), Err(LoadError::BadUrl(_))));
        assert!(matches!(
            target("https://127.0.0.1:8443"),
            Err(LoadError::BadUrl(_))
        ));
        let t = target("http://127.0.0.1:18088/edge/").expect("loopback");
        assert_eq!(t.master_path(), "/edge/hls/test/master.m3u8");
        assert_eq!(t.host, "127.0.0.1:18088");
        assert!(target("http://[::1]:8080").is_ok());
    }
}
