//! Reports: printed as tables, or serialised as JSON.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Serialize;

use super::{HeldReport, PartsReport, PlayerStats, percentile_ms};

/// CPU time over the run.
#[derive(Debug, Clone, Serialize)]
pub struct CpuUse {
    /// Wall-clock seconds of the run.
    pub seconds: f64,
    /// CPU seconds of the load generator.
    pub load_generator_cpu_s: f64,
    /// CPU seconds of the server, if its PID was given.
    pub server_cpu_s: Option<f64>,
}

/// A run's report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Base URL.
    pub base: String,
    /// Stream id.
    pub stream: String,
    /// The mode's results.
    pub results: Results,
    /// CPU use.
    pub cpu: CpuUse,
}

/// The results of one mode.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum Results {
    /// Simulated players.
    Players(PlayersReport),
    /// Held blocking requests.
    Held(HeldReport),
    /// Part throughput.
    Parts(PartsReport),
}

/// What the simulated players saw, together.
#[derive(Debug, Clone, Serialize)]
pub struct PlayersReport {
    /// Players.
    pub players: usize,
    /// Seconds played.
    pub seconds: f64,
    /// Playlist requests (multivariant, plain, blocking).
    pub playlist_requests: u64,
    /// Per second.
    pub playlist_per_sec: f64,
    /// Part requests.
    pub part_requests: u64,
    /// Per second.
    pub part_per_sec: f64,
    /// Init segment requests.
    pub other_requests: u64,
    /// Body megabytes per second.
    pub mbytes_per_sec: f64,
    /// Failures by status or transport error.
    pub errors: BTreeMap<String, u64>,
    /// Failures with a 5xx status.
    pub server_errors: u64,
    /// Times players joined again after an error.
    pub rejoins: u64,
    /// Preload-hinted parts fetched.
    pub hinted_parts: usize,
    /// Preload-hinted part, request to last byte: p50 milliseconds.
    pub hint_p50_ms: Option<f64>,
    /// p95 of the same.
    pub hint_p95_ms: Option<f64>,
    /// Maximum of the same.
    pub hint_max_ms: Option<f64>,
    /// Blocking reloads answered.
    pub reloads: usize,
    /// Age of the newest listed part's end when a blocking reload is answered, p50 ms.
    pub edge_age_p50_ms: Option<f64>,
    /// p95 of the same.
    pub edge_age_p95_ms: Option<f64>,
    /// The same age in part targets (rounded down): parts behind live, p50 over all reloads.
    pub behind_p50: Option<u32>,
    /// p95 of the same.
    pub behind_p95: Option<u32>,
    /// Maximum of the same.
    pub behind_max: Option<u32>,
}

impl PlayersReport {
    /// Folds the players' counts.
    pub fn new(players: usize, elapsed: Duration, stats: PlayerStats) -> PlayersReport {
        let seconds = elapsed.as_secs_f64().max(1e-3);
        let hints: Vec<Duration> = stats
            .hint_latency_us
            .iter()
            .map(|&us| Duration::from_micros(us))
            .collect();
        let mut behind = stats.behind.clone();
        behind.sort_unstable();
        let pick = |p: f64| -> Option<u32> {
            if behind.is_empty() {
                return None;
            }
            let rank = ((p / 100.0) * behind.len() as f64).ceil() as usize;
            Some(behind[rank.clamp(1, behind.len()) - 1])
        };
        let server_errors = stats
            .errors
            .iter()
            .filter(|(k, _)| k.starts_with('5'))
            .map(|(_, v)| v)
            .sum();
        PlayersReport {
            players,
            seconds,
            playlist_requests: stats.playlist_requests,
            playlist_per_sec: stats.playlist_requests as f64 / seconds,
            part_requests: stats.part_requests,
            part_per_sec: stats.part_requests as f64 / seconds,
            other_requests: stats.other_requests,
            mbytes_per_sec: stats.bytes as f64 / seconds / 1e6,
            server_errors,
            rejoins: stats.rejoins,
            hinted_parts: hints.len(),
            hint_p50_ms: percentile_ms(&hints, 50.0),
            hint_p95_ms: percentile_ms(&hints, 95.0),
            hint_max_ms: hints.iter().max().map(|d| d.as_secs_f64() * 1e3),
            reloads: behind.len(),
            edge_age_p50_ms: crate::loadgen::percentile(&stats.edge_age_ms, 50.0),
            edge_age_p95_ms: crate::loadgen::percentile(&stats.edge_age_ms, 95.0),
            behind_p50: pick(50.0),
            behind_p95: pick(95.0),
            behind_max: behind.last().copied(),
            errors: stats.errors,
        }
    }
}

fn opt_ms(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}"))
}

fn opt_n(v: Option<u32>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

fn errors(map: &BTreeMap<String, u64>) -> String {
    if map.is_empty() {
        return "none".to_owned();
    }
    map.iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} stream {}", self.base, self.stream)?;
        match &self.results {
            Results::Players(r) => {
                writeln!(
                    f,
                    "| players | seconds | playlist req/s | part req/s | MB/s | errors | hinted part p50 / p95 / max ms | newest part age p50 / p95 ms | parts behind live p50 / p95 / max | rejoins |"
                )?;
                writeln!(f, "|---|---|---|---|---|---|---|---|---|---|")?;
                writeln!(
                    f,
                    "| {} | {:.1} | {:.1} | {:.1} | {:.2} | {} | {} / {} / {} | {} / {} | {} / {} / {} | {} |",
                    r.players,
                    r.seconds,
                    r.playlist_per_sec,
                    r.part_per_sec,
                    r.mbytes_per_sec,
                    errors(&r.errors),
                    opt_ms(r.hint_p50_ms),
                    opt_ms(r.hint_p95_ms),
                    opt_ms(r.hint_max_ms),
                    opt_ms(r.edge_age_p50_ms),
                    opt_ms(r.edge_age_p95_ms),
                    opt_n(r.behind_p50),
                    opt_n(r.behind_p95),
                    opt_n(r.behind_max),
                    r.rejoins,
                )?;
            }
            Results::Held(r) => {
                writeln!(
                    f,
                    "| connections | connected | held | answered | errors | sent within ms | first answer after last send ms | answer spread p50 / p99 / max ms |"
                )?;
                writeln!(f, "|---|---|---|---|---|---|---|---|")?;
                writeln!(
                    f,
                    "| {} | {} | {} | {} | {} | {:.0} | {:.0} | {} / {} / {} |",
                    r.connections,
                    r.connected,
                    r.held,
                    r.answered,
                    errors(&r.errors),
                    r.send_spread_ms,
                    r.wait_ms,
                    opt_ms(r.spread_p50_ms),
                    opt_ms(r.spread_p99_ms),
                    opt_ms(r.spread_max_ms),
                )?;
                writeln!(
                    f,
                    "asked: {}?_HLS_msn={}&_HLS_part={}",
                    r.playlist, r.target.0, r.target.1
                )?;
            }
            Results::Parts(r) => {
                writeln!(
                    f,
                    "| connections | seconds | parts | parts/s | MB/s | errors | latency p50 / p99 ms |"
                )?;
                writeln!(f, "|---|---|---|---|---|---|---|")?;
                writeln!(
                    f,
                    "| {} | {:.1} | {} | {:.0} | {:.1} | {} | {} / {} |",
                    r.connections,
                    r.seconds,
                    r.parts,
                    r.parts_per_sec,
                    r.mbytes_per_sec,
                    errors(&r.errors),
                    opt_ms(r.latency_p50_ms),
                    opt_ms(r.latency_p99_ms),
                )?;
            }
        }
        let pct = |cpu: f64| cpu / self.cpu.seconds.max(1e-3) * 100.0;
        write!(
            f,
            "CPU over {:.1} s: load generator {:.1} s ({:.0} %)",
            self.cpu.seconds,
            self.cpu.load_generator_cpu_s,
            pct(self.cpu.load_generator_cpu_s)
        )?;
        if let Some(server) = self.cpu.server_cpu_s {
            write!(f, ", server {server:.1} s ({:.0} %)", pct(server))?;
        }
        writeln!(f)
    }
}
