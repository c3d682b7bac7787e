//! The server's own forwarding-delay histogram, scraped from its Prometheus `/metrics` at the
//! edges of the steady window (plain HTTP/1.0 on loopback; no client library needed).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde::Serialize;

/// Histogram name exported by the server.
const HISTOGRAM: &str = "fanout_sfu_forward_delay_seconds_bucket";

/// Cumulative bucket counts: `(upper bound in seconds, count)`, `+Inf` last.
pub type Buckets = Vec<(f64, u64)>;

/// Server-side receive -> send delay over a window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DelayPercentiles {
    /// Packets measured.
    pub count: u64,
    /// Median, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
}

/// GET `url` (an `http://host:port/path` on loopback) and read the histogram; `None` on any
/// failure (the report then leaves the row empty).
pub fn scrape(url: &str) -> Option<Buckets> {
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = rest.split_once('/').map_or((rest, "/"), |(a, p)| (a, p));
    let mut stream = TcpStream::connect(authority).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        stream,
        "GET /{} HTTP/1.0\r\nHost: {authority}\r\n\r\n",
        path.trim_start_matches('/')
    )
    .ok()?;
    let mut body = String::new();
    stream.read_to_string(&mut body).ok()?;
    let buckets = parse(&body);
    (!buckets.is_empty()).then_some(buckets)
}

/// The histogram's cumulative buckets from a Prometheus text exposition.
pub fn parse(text: &str) -> Buckets {
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(HISTOGRAM)?;
            let le = rest.split("le=\"").nth(1)?.split('"').next()?;
            let value = rest.rsplit(' ').next()?.trim();
            let bound = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((bound, value.parse().ok()?))
        })
        .collect()
}

/// Percentiles of the packets counted between two scrapes, interpolated within buckets.
pub fn percentiles(start: &Buckets, end: &Buckets) -> Option<DelayPercentiles> {
    if start.len() != end.len() {
        return None;
    }
    let delta: Vec<(f64, u64)> = start
        .iter()
        .zip(end)
        .map(|((_, a), (le, b))| (*le, b.saturating_sub(*a)))
        .collect();
    let count = delta.last()?.1;
    if count == 0 {
        return None;
    }
    let quantile = |q: f64| -> f64 {
        let rank = q * count as f64;
        let mut lower = (0.0, 0u64);
        for &(le, cum) in &delta {
            if cum as f64 >= rank {
                if le.is_infinite() {
                    return lower.0 * 1e3;
                }
                let within = cum - lower.1;
                let frac = if within == 0 {
                    1.0
                } else {
                    (rank - lower.1 as f64) / within as f64
                };
                return (lower.0 + (le - lower.0) * frac) * 1e3;
            }
            lower = (le, cum);
        }
        lower.0 * 1e3
    };
    Some(DelayPercentiles {
        count,
        p50_ms: quantile(0.5),
        p99_ms: quantile(0.99),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# TYPE fanout_sfu_forward_delay_seconds histogram\n\
        fanout_sfu_forward_delay_seconds_bucket{le=\"0.0001\"} 10\n\
        fanout_sfu_forward_delay_seconds_bucket{le=\"0.001\"} 110\n\
        fanout_sfu_forward_delay_seconds_bucket{le=\"+Inf\"} 120\n\
        fanout_sfu_forward_delay_seconds_count 120\n";

    #[test]
    fn parses_and_interpolates_between_scrapes() {
        let end = parse(TEXT);
        assert_eq!(end.len(), 3);
        let start = vec![(0.0001, 10), (0.001, 10), (f64::INFINITY, 10)];
        // 110 new packets: 100 in (0.1 ms, 1 ms], 10 above 1 ms.
        let p = percentiles(&start, &end).expect("packets counted");
        assert_eq!(p.count, 110);
        // Rank 55 of the 100 in the second bucket: 0.1 + 0.9 * 0.55 ms.
        assert!((p.p50_ms - 0.595).abs() < 1e-9, "{}", p.p50_ms);
        // p99 falls in the open bucket: reported as its lower edge.
        assert!((p.p99_ms - 1.0).abs() < 1e-9, "{}", p.p99_ms);
    }

    #[test]
    fn nothing_counted_is_no_answer() {
        let b = parse(TEXT);
        assert_eq!(percentiles(&b, &b), None);
        assert_eq!(percentiles(&b, &b[..2].to_vec()), None);
    }
}
