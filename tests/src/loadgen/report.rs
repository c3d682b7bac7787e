//! The load generator's results: per-subscriber outcomes folded into one report, printed as an
//! aligned table or as one JSON line.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use super::server_metrics::DelayPercentiles;

/// What one subscriber ended with.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SubscriberOutcome {
    /// The WHEP POST succeeded and the answer was applied.
    pub signaled: bool,
    /// The str0m session reached `Connected` (ICE + DTLS).
    pub connected: bool,
    /// Lost ICE/DTLS after connecting, or failed.
    pub failed: bool,
    /// Media RTP packets received (retransmissions that filled a hole included).
    pub packets: u64,
    /// RTP payload bytes received.
    pub bytes: u64,
    /// Packets missing for longer than the NACK recovery window.
    pub lost: u64,
    /// Distinct video packets received.
    pub video_packets: u64,
    /// Video packets lost (after the recovery window).
    pub video_lost: u64,
    /// Distinct audio packets received.
    pub audio_packets: u64,
    /// Audio packets lost (audio is usually not retransmitted).
    pub audio_lost: u64,
    /// Video frames (distinct RTP timestamps).
    pub video_frames: u64,
    /// Video frames that never got their marker packet.
    pub incomplete_frames: u64,
    /// Video delivery lag of the newest frame at the end of the run, ms (see [`crate::lag`]).
    pub video_lag_ms: Option<f64>,
    /// The largest video delivery lag seen during the run, ms.
    pub video_max_lag_ms: f64,
    /// Sequence jumps too large to be loss.
    pub discontinuities: u64,
    /// POST to `Connected`.
    pub connect_time: Option<Duration>,
    /// POST to the first RTP packet.
    pub first_packet: Option<Duration>,
}

impl SubscriberOutcome {
    /// Fraction of packets lost, 0.0 when nothing was expected.
    pub fn loss_ratio(&self) -> f64 {
        ratio(self.lost, self.packets)
    }

    /// Fraction of video packets lost.
    pub fn video_loss_ratio(&self) -> f64 {
        ratio(self.video_lost, self.video_packets)
    }

    /// Fraction of audio packets lost.
    pub fn audio_loss_ratio(&self) -> f64 {
        ratio(self.audio_lost, self.audio_packets)
    }
}

fn ratio(lost: u64, received: u64) -> f64 {
    let expected = received + lost;
    if expected == 0 {
        0.0
    } else {
        lost as f64 / expected as f64
    }
}

/// Resource use sampled at the start and end of a measurement window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Window {
    /// Window length, seconds.
    pub seconds: f64,
    /// Packets received by all subscribers in the window.
    pub packets: u64,
    /// Payload bytes received by all subscribers in the window.
    pub bytes: u64,
    /// CPU seconds of the load generator in the window.
    pub loadgen_cpu_s: f64,
    /// CPU seconds of the server in the window (with `--server-pid`).
    pub server_cpu_s: Option<f64>,
}

impl Window {
    /// Packets per second.
    pub fn packets_per_sec(&self) -> f64 {
        rate(self.packets as f64, self.seconds)
    }

    /// Server CPU microseconds per packet delivered to a subscriber.
    pub fn server_us_per_packet(&self) -> Option<f64> {
        let cpu = self.server_cpu_s?;
        (self.packets > 0).then(|| cpu * 1e6 / self.packets as f64)
    }

    /// Load generator CPU microseconds per packet received.
    pub fn loadgen_us_per_packet(&self) -> Option<f64> {
        (self.packets > 0).then(|| self.loadgen_cpu_s * 1e6 / self.packets as f64)
    }
}

fn rate(amount: f64, seconds: f64) -> f64 {
    if seconds > 0.0 { amount / seconds } else { 0.0 }
}

/// The whole run, summarised.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadReport {
    /// What was watched: the WHEP endpoint, or the Janus API and mountpoint.
    pub endpoint: String,
    /// Subscribers asked for.
    pub requested: usize,
    /// Subscribers whose WHEP exchange succeeded.
    pub signaled: usize,
    /// Subscribers that reached `Connected`.
    pub connected: usize,
    /// Subscribers that failed (signalling error, or ICE/DTLS failure).
    pub failed: usize,
    /// Subscribers whose WHEP exchange had not finished when the run ended.
    pub signal_pending: usize,
    /// Subscribers that received at least one packet.
    pub receiving: usize,
    /// Packets received by all subscribers, whole run.
    pub packets: u64,
    /// Payload bytes received by all subscribers, whole run.
    pub bytes: u64,
    /// Loss percentage across connected subscribers: median.
    pub loss_pct_p50: f64,
    /// Loss percentage: 95th percentile.
    pub loss_pct_p95: f64,
    /// Loss percentage: worst subscriber.
    pub loss_pct_max: f64,
    /// Video loss percentage: median.
    pub video_loss_pct_p50: f64,
    /// Video loss percentage: worst subscriber.
    pub video_loss_pct_max: f64,
    /// Audio loss percentage: median.
    pub audio_loss_pct_p50: f64,
    /// Audio loss percentage: worst subscriber.
    pub audio_loss_pct_max: f64,
    /// Subscribers with any loss.
    pub subscribers_with_loss: usize,
    /// Sequence discontinuities seen, all subscribers.
    pub discontinuities: u64,
    /// Video frames received, all subscribers.
    pub video_frames: u64,
    /// Video frames without their marker packet, all subscribers.
    pub incomplete_frames: u64,
    /// Video delivery lag at the end, median over subscribers, ms.
    pub video_lag_ms_p50: Option<f64>,
    /// Video delivery lag at the end, worst subscriber, ms.
    pub video_lag_ms_max: Option<f64>,
    /// The largest video delivery lag any subscriber saw during the run, ms.
    pub video_max_lag_ms: f64,
    /// POST to connected, median, milliseconds.
    pub connect_ms_p50: Option<f64>,
    /// POST to connected, worst, milliseconds.
    pub connect_ms_max: Option<f64>,
    /// POST to first packet, median, milliseconds.
    pub first_packet_ms_p50: Option<f64>,
    /// POST to first packet, worst, milliseconds.
    pub first_packet_ms_max: Option<f64>,
    /// The whole run.
    pub run: Window,
    /// From the moment every subscriber had signalled (plus settling time) to the end; absent
    /// when the run ended before that.
    pub steady: Option<Window>,
    /// Packets per second over the steady window (whole run if there is none).
    pub packets_per_sec: f64,
    /// Server CPU µs per forwarded packet over the steady window (whole run if none).
    pub server_us_per_packet: Option<f64>,
    /// The server's receive -> send delay over the steady window, from its `/metrics`.
    pub server_forward_delay: Option<DelayPercentiles>,
    /// When the last media packet reached any subscriber, milliseconds since the Unix epoch
    /// (to compare with when a script stopped the publisher).
    pub last_media_unix_ms: Option<f64>,
    /// Socket send errors (packets the load generator could not send).
    pub send_errors: u64,
    /// First signalling errors, for the operator.
    pub errors: Vec<String>,
}

/// The `p`-th percentile (0..=100) by nearest rank of unsorted `values`; `None` when empty.
pub fn percentile(values: &[f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

impl LoadReport {
    /// Folds per-subscriber outcomes and the measurement windows into a report.
    pub fn build(
        endpoint: &str,
        requested: usize,
        outcomes: &[SubscriberOutcome],
        run: Window,
        steady: Option<Window>,
        send_errors: u64,
        errors: Vec<String>,
    ) -> Self {
        let connected: Vec<&SubscriberOutcome> = outcomes.iter().filter(|o| o.connected).collect();
        let pct = |f: fn(&SubscriberOutcome) -> f64| -> Vec<f64> {
            connected.iter().map(|o| f(o) * 100.0).collect()
        };
        let losses = pct(SubscriberOutcome::loss_ratio);
        let video_losses = pct(SubscriberOutcome::video_loss_ratio);
        let audio_losses = pct(SubscriberOutcome::audio_loss_ratio);
        let connect: Vec<f64> = outcomes
            .iter()
            .filter_map(|o| o.connect_time.map(millis))
            .collect();
        let first: Vec<f64> = outcomes
            .iter()
            .filter_map(|o| o.first_packet.map(millis))
            .collect();
        let lags: Vec<f64> = connected.iter().filter_map(|o| o.video_lag_ms).collect();
        let headline = steady.unwrap_or(run);
        let dropped_after_connect = connected.iter().filter(|o| o.failed).count();
        Self {
            endpoint: endpoint.to_owned(),
            requested,
            signaled: outcomes.iter().filter(|o| o.signaled).count(),
            connected: connected.len(),
            failed: requested.saturating_sub(connected.len()) + dropped_after_connect,
            signal_pending: requested.saturating_sub(outcomes.len()),
            receiving: outcomes.iter().filter(|o| o.packets > 0).count(),
            packets: outcomes.iter().map(|o| o.packets).sum(),
            bytes: outcomes.iter().map(|o| o.bytes).sum(),
            loss_pct_p50: percentile(&losses, 50.0).unwrap_or(0.0),
            loss_pct_p95: percentile(&losses, 95.0).unwrap_or(0.0),
            loss_pct_max: percentile(&losses, 100.0).unwrap_or(0.0),
            video_loss_pct_p50: percentile(&video_losses, 50.0).unwrap_or(0.0),
            video_loss_pct_max: percentile(&video_losses, 100.0).unwrap_or(0.0),
            audio_loss_pct_p50: percentile(&audio_losses, 50.0).unwrap_or(0.0),
            audio_loss_pct_max: percentile(&audio_losses, 100.0).unwrap_or(0.0),
            subscribers_with_loss: connected.iter().filter(|o| o.lost > 0).count(),
            discontinuities: outcomes.iter().map(|o| o.discontinuities).sum(),
            video_frames: outcomes.iter().map(|o| o.video_frames).sum(),
            incomplete_frames: outcomes.iter().map(|o| o.incomplete_frames).sum(),
            video_lag_ms_p50: percentile(&lags, 50.0),
            video_lag_ms_max: percentile(&lags, 100.0),
            video_max_lag_ms: connected.iter().map(|o| o.video_max_lag_ms).fold(0.0, f64::max),
            connect_ms_p50: percentile(&connect, 50.0),
            connect_ms_max: percentile(&connect, 100.0),
            first_packet_ms_p50: percentile(&first, 50.0),
            first_packet_ms_max: percentile(&first, 100.0),
            run,
            steady,
            packets_per_sec: headline.packets_per_sec(),
            server_us_per_packet: headline.server_us_per_packet(),
            server_forward_delay: None,
            last_media_unix_ms: None,
            send_errors,
            errors,
        }
    }

    /// One line of JSON.
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).expect("a report of numbers and strings always serialises")
    }

    /// An aligned two-column table.
    pub fn to_table(&self) -> String {
        let opt = |v: Option<f64>, digits: usize| match v {
            Some(v) => format!("{v:.digits$}"),
            None => "-".to_owned(),
        };
        let mut rows: Vec<(String, String)> = vec![
            ("endpoint".into(), self.endpoint.clone()),
            ("subscribers requested".into(), self.requested.to_string()),
            ("subscribers signaled".into(), self.signaled.to_string()),
            ("subscribers connected".into(), self.connected.to_string()),
            ("subscribers failed".into(), self.failed.to_string()),
            ("signalling unfinished".into(), self.signal_pending.to_string()),
            ("subscribers receiving".into(), self.receiving.to_string()),
            ("packets received (run)".into(), self.packets.to_string()),
            (
                "packets/s (steady)".into(),
                format!("{:.1}", self.packets_per_sec),
            ),
            (
                "loss % p50 / p95 / max".into(),
                format!(
                    "{:.3} / {:.3} / {:.3}",
                    self.loss_pct_p50, self.loss_pct_p95, self.loss_pct_max
                ),
            ),
            (
                "video loss % p50 / max".into(),
                format!("{:.3} / {:.3}", self.video_loss_pct_p50, self.video_loss_pct_max),
            ),
            (
                "audio loss % p50 / max".into(),
                format!("{:.3} / {:.3}", self.audio_loss_pct_p50, self.audio_loss_pct_max),
            ),
            (
                "subscribers with loss".into(),
                self.subscribers_with_loss.to_string(),
            ),
            (
                "video frames / incomplete".into(),
                format!("{} / {}", self.video_frames, self.incomplete_frames),
            ),
            ("seq discontinuities".into(), self.discontinuities.to_string()),
            (
                "video lag ms p50 / max / peak".into(),
                format!(
                    "{} / {} / {:.1}",
                    opt(self.video_lag_ms_p50, 1),
                    opt(self.video_lag_ms_max, 1),
                    self.video_max_lag_ms
                ),
            ),
            (
                "connect ms p50 / max".into(),
                format!(
                    "{} / {}",
                    opt(self.connect_ms_p50, 1),
                    opt(self.connect_ms_max, 1)
                ),
            ),
            (
                "first packet ms p50 / max".into(),
                format!(
                    "{} / {}",
                    opt(self.first_packet_ms_p50, 1),
                    opt(self.first_packet_ms_max, 1)
                ),
            ),
            ("run seconds".into(), format!("{:.1}", self.run.seconds)),
            (
                "loadgen cpu s (run)".into(),
                format!("{:.2}", self.run.loadgen_cpu_s),
            ),
            ("server cpu s (run)".into(), opt(self.run.server_cpu_s, 2)),
        ];
        if let Some(steady) = &self.steady {
            rows.extend([
                ("steady seconds".into(), format!("{:.1}", steady.seconds)),
                ("packets (steady)".into(), steady.packets.to_string()),
                (
                    "loadgen cpu s (steady)".into(),
                    format!("{:.2}", steady.loadgen_cpu_s),
                ),
                ("server cpu s (steady)".into(), opt(steady.server_cpu_s, 2)),
            ]);
        }
        rows.push(("server cpu us/packet".into(), opt(self.server_us_per_packet, 2)));
        let delay = self.server_forward_delay;
        rows.push((
            "server fwd delay ms p50 / p99".into(),
            format!(
                "{} / {}",
                opt(delay.map(|d| d.p50_ms), 3),
                opt(delay.map(|d| d.p99_ms), 3)
            ),
        ));
        rows.push((
            "loadgen cpu us/packet".into(),
            opt(self.steady.unwrap_or(self.run).loadgen_us_per_packet(), 2),
        ));
        rows.push(("send errors".into(), self.send_errors.to_string()));
        let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        let mut out = String::new();
        for (key, value) in &rows {
            let _ = writeln!(out, "{key:<width$}  {value}");
        }
        for error in &self.errors {
            let _ = writeln!(out, "error: {error}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_nearest_rank() {
        let v = [5.0, 1.0, 4.0, 2.0, 3.0];
        assert_eq!(percentile(&v, 50.0), Some(3.0));
        assert_eq!(percentile(&v, 100.0), Some(5.0));
        assert_eq!(percentile(&v, 0.0), Some(1.0));
        assert_eq!(percentile(&v, 95.0), Some(5.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    fn outcome(packets: u64, lost: u64) -> SubscriberOutcome {
        SubscriberOutcome {
            signaled: true,
            connected: true,
            packets,
            bytes: packets * 1000,
            lost,
            video_packets: packets,
            video_lost: lost,
            connect_time: Some(Duration::from_millis(20)),
            first_packet: Some(Duration::from_millis(30)),
            ..Default::default()
        }
    }

    #[test]
    fn report_folds_outcomes() {
        let outcomes = vec![
            outcome(1000, 0),
            outcome(990, 10),
            outcome(1000, 0),
            SubscriberOutcome::default(),
        ];
        let steady = Window {
            seconds: 10.0,
            packets: 2000,
            bytes: 2_000_000,
            loadgen_cpu_s: 0.5,
            server_cpu_s: Some(0.2),
        };
        let run = Window {
            seconds: 15.0,
            packets: 2990,
            ..steady
        };
        let r = LoadReport::build(
            "http://127.0.0.1/whep/x",
            4,
            &outcomes,
            run,
            Some(steady),
            0,
            vec![],
        );
        assert_eq!(r.connected, 3);
        assert_eq!(r.signaled, 3);
        assert_eq!(r.failed, 1);
        assert_eq!(r.packets, 2990);
        assert_eq!(r.loss_pct_p50, 0.0);
        assert!((r.loss_pct_max - 1.0).abs() < 1e-9);
        assert_eq!(r.subscribers_with_loss, 1);
        assert!((r.video_loss_pct_max - 1.0).abs() < 1e-9);
        assert_eq!(r.audio_loss_pct_max, 0.0);
        assert!((r.packets_per_sec - 200.0).abs() < 1e-9);
        let us = r.server_us_per_packet.expect("server cpu given");
        assert!((us - 100.0).abs() < 1e-9, "{us}");
        let table = r.to_table();
        let connected_row = table
            .lines()
            .find(|l| l.starts_with("subscribers connected"))
            .expect("row");
        assert_eq!(connected_row.split_whitespace().last(), Some("3"));
        // Values start in one column.
        let value_start = |line: &str| {
            let sep = line.find("  ").expect("key/value separator");
            line.len() - line[sep..].trim_start().len()
        };
        let value_columns: std::collections::HashSet<usize> = table.lines().map(value_start).collect();
        assert_eq!(value_columns.len(), 1, "{table}");
        let json: serde_json::Value = serde_json::from_str(&r.to_json_line()).expect("json");
        assert_eq!(json["connected"], 3);
        assert_eq!(json["steady"]["packets"], 2000);
    }

    #[test]
    fn no_server_pid_means_no_ratio() {
        let w = Window {
            seconds: 1.0,
            packets: 10,
            ..Default::default()
        };
        assert_eq!(w.server_us_per_packet(), None);
        assert_eq!(Window::default().loadgen_us_per_packet(), None);
    }
}
