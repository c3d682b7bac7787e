//! Part throughput: N keep-alive connections each fetching published parts back to back,
//! round robin over the parts every rendition's playlist lists (refreshed twice a second).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::watch;

use super::conn::Conn;
use super::playlist::{parse_media, parse_multivariant, resolve};
use super::{LoadError, Target, percentile_ms};

/// What a part-throughput run measured.
#[derive(Debug, Clone, Serialize)]
pub struct PartsReport {
    /// Connections fetching.
    pub connections: usize,
    /// Measured seconds.
    pub seconds: f64,
    /// 200 answers.
    pub parts: u64,
    /// Parts per second.
    pub parts_per_sec: f64,
    /// Body megabytes per second.
    pub mbytes_per_sec: f64,
    /// Failures by status or transport error.
    pub errors: BTreeMap<String, u64>,
    /// Request to last byte, p50, milliseconds.
    pub latency_p50_ms: Option<f64>,
    /// p99 of the same.
    pub latency_p99_ms: Option<f64>,
}

/// Fetches parts on `connections` connections for `duration`.
pub async fn parts(
    target: &Target,
    connections: usize,
    duration: Duration,
) -> Result<PartsReport, LoadError> {
    let timeout = Duration::from_secs(10);
    let mut probe = Conn::lazy(target.addr, &target.host, timeout);
    let master = target.master_path();
    let reply = probe.get(&master).await?;
    let lives: Vec<String> = parse_multivariant(&String::from_utf8_lossy(&reply.body))
        .iter()
        .filter(|u| {
            target
                .rendition
                .as_ref()
                .is_none_or(|r| u.split('/').next() == Some(r))
        })
        .map(|u| resolve(&master, u))
        .collect();
    if lives.is_empty() {
        return Err(LoadError::NoStream);
    }
    let (tx, rx) = watch::channel(Arc::new(listed_parts(&mut probe, &lives).await?));
    let deadline = Instant::now() + duration;
    let refresher = tokio::spawn(async move {
        while Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if let Ok(parts) = listed_parts(&mut probe, &lives).await {
                tx.send_replace(Arc::new(parts));
            }
        }
    });

    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..connections {
        let rx = rx.clone();
        let mut conn = Conn::lazy(target.addr, &target.host, timeout);
        workers.spawn(async move {
            let mut latencies = Vec::new();
            let mut bytes = 0u64;
            let mut errors: BTreeMap<String, u64> = BTreeMap::new();
            let mut turn = worker;
            while Instant::now() < deadline {
                let path = {
                    let parts = rx.borrow();
                    turn += 1;
                    parts[turn % parts.len()].clone()
                };
                match conn.get(&path).await {
                    Ok(r) if r.status == 200 => {
                        latencies.push(r.elapsed);
                        bytes += r.body.len() as u64;
                    }
                    Ok(r) => *errors.entry(r.status.to_string()).or_default() += 1,
                    Err(e) => *errors.entry(e.kind().to_owned()).or_default() += 1,
                }
            }
            (latencies, bytes, errors)
        });
    }
    let mut latencies = Vec::new();
    let mut bytes = 0u64;
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    while let Some(done) = workers.join_next().await {
        if let Ok((l, b, e)) = done {
            latencies.extend(l);
            bytes += b;
            for (k, v) in e {
                *errors.entry(k).or_default() += v;
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    refresher.abort();
    let parts = latencies.len() as u64;
    Ok(PartsReport {
        connections,
        seconds,
        parts,
        parts_per_sec: parts as f64 / seconds,
        mbytes_per_sec: bytes as f64 / seconds / 1e6,
        errors,
        latency_p50_ms: percentile_ms(&latencies, 50.0),
        latency_p99_ms: percentile_ms(&latencies, 99.0),
    })
}

/// The absolute paths of every part listed in the given playlists (never empty).
async fn listed_parts(conn: &mut Conn, lives: &[String]) -> Result<Vec<String>, LoadError> {
    let mut all = Vec::new();
    for live in lives {
        let reply = conn.get(live).await?;
        if let Some(playlist) = parse_media(&String::from_utf8_lossy(&reply.body)) {
            all.extend(playlist.parts.iter().map(|p| resolve(live, &p.uri)));
        }
    }
    if all.is_empty() {
        return Err(LoadError::NoStream);
    }
    Ok(all)
}
