//! Held blocking requests: N connections, opened first, each then asking for the same future
//! part (`_HLS_msn`/`_HLS_part` a few parts past the live edge). All are sent before the part
//! exists, so the server holds every one until it is published; the spread of the answers
//! after the first one shows how fast the server releases them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::Semaphore;

use super::conn::Conn;
use super::playlist::{parse_media, parse_multivariant, resolve};
use super::{LoadError, Target, percentile_ms};

/// What a held-requests round measured.
#[derive(Debug, Clone, Serialize)]
pub struct HeldReport {
    /// Connections asked for.
    pub connections: usize,
    /// Connections opened.
    pub connected: usize,
    /// The rendition playlist asked for.
    pub playlist: String,
    /// `_HLS_msn`, `_HLS_part` asked for.
    pub target: (u64, u32),
    /// Milliseconds from the first request sent to the last.
    pub send_spread_ms: f64,
    /// Requests sent before the first answer came: held by the server.
    pub held: usize,
    /// 200 answers that list the part asked for.
    pub answered: usize,
    /// Failures by status or transport error; `"stale"` for a 200 without the part.
    pub errors: BTreeMap<String, u64>,
    /// Milliseconds from the last request sent to the first answer (the part's publication,
    /// as seen by the client).
    pub wait_ms: f64,
    /// Answer times after the first answer, milliseconds.
    pub spread_p50_ms: Option<f64>,
    /// p99 of the same.
    pub spread_p99_ms: Option<f64>,
    /// The last answer after the first.
    pub spread_max_ms: Option<f64>,
}

/// Opens `connections` connections, then sends every one a blocking request for the part
/// `ahead` parts past the next one.
pub async fn held(target: &Target, connections: usize, ahead: u32) -> Result<HeldReport, LoadError> {
    let timeout = Duration::from_secs(15);
    // Connect first, a few hundred at a time, so that sending is quick.
    let gate = Arc::new(Semaphore::new(256));
    let mut opening = tokio::task::JoinSet::new();
    for _ in 0..connections {
        let gate = gate.clone();
        let mut conn = Conn::lazy(target.addr, &target.host, timeout);
        opening.spawn(async move {
            let _permit = gate.acquire().await;
            conn.open().await.map(|()| conn)
        });
    }
    let mut conns = Vec::with_capacity(connections);
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    while let Some(opened) = opening.join_next().await {
        match opened {
            Ok(Ok(conn)) => conns.push(conn),
            Ok(Err(e)) => *errors.entry(e.kind().to_owned()).or_default() += 1,
            Err(_) => *errors.entry("panic".to_owned()).or_default() += 1,
        }
    }
    let connected = conns.len();

    // The live edge, read just before sending.
    let mut probe = Conn::lazy(target.addr, &target.host, timeout);
    let master = target.master_path();
    let reply = probe.get(&master).await?;
    let uris = parse_multivariant(&String::from_utf8_lossy(&reply.body));
    let uri = match &target.rendition {
        Some(name) => uris.iter().find(|u| u.split('/').next() == Some(name.as_str())),
        None => uris.first(),
    }
    .ok_or(LoadError::NoStream)?;
    let live = resolve(&master, uri);
    let reply = probe.get(&live).await?;
    let playlist = parse_media(&String::from_utf8_lossy(&reply.body)).ok_or(LoadError::NoStream)?;
    let wanted = playlist.ahead(ahead);
    let path = format!("{live}?_HLS_msn={}&_HLS_part={}", wanted.0, wanted.1);

    let mut asking = tokio::task::JoinSet::new();
    for mut conn in conns {
        let path = path.clone();
        asking.spawn(async move {
            let sent = Instant::now();
            let reply = conn.get(&path).await;
            (sent, Instant::now(), reply)
        });
    }
    let mut outcomes = Vec::with_capacity(connected);
    while let Some(done) = asking.join_next().await {
        if let Ok(outcome) = done {
            outcomes.push(outcome);
        }
    }

    let mut answers = Vec::new();
    for (sent, done, reply) in &outcomes {
        match reply {
            Ok(r) if r.status == 200 => {
                let listed = parse_media(&String::from_utf8_lossy(&r.body))
                    .is_some_and(|p| p.parts.iter().any(|q| (q.msn, q.index) >= wanted));
                if listed {
                    answers.push((*sent, *done));
                } else {
                    *errors.entry("stale".to_owned()).or_default() += 1;
                }
            }
            Ok(r) => *errors.entry(r.status.to_string()).or_default() += 1,
            Err(e) => *errors.entry(e.kind().to_owned()).or_default() += 1,
        }
    }
    let first_sent = outcomes.iter().map(|o| o.0).min();
    let last_sent = outcomes.iter().map(|o| o.0).max();
    let first_answer = answers.iter().map(|a| a.1).min();
    let held = match first_answer {
        Some(first) => outcomes.iter().filter(|o| o.0 < first).count(),
        None => 0,
    };
    let spread: Vec<Duration> = match first_answer {
        Some(first) => answers.iter().map(|a| a.1 - first).collect(),
        None => Vec::new(),
    };
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    Ok(HeldReport {
        connections,
        connected,
        playlist: live,
        target: wanted,
        send_spread_ms: match (first_sent, last_sent) {
            (Some(a), Some(b)) => ms(b - a),
            _ => 0.0,
        },
        held,
        answered: answers.len(),
        errors,
        wait_ms: match (last_sent, first_answer) {
            (Some(sent), Some(first)) => ms(first.saturating_duration_since(sent)),
            _ => 0.0,
        },
        spread_p50_ms: percentile_ms(&spread, 50.0),
        spread_p99_ms: percentile_ms(&spread, 99.0),
        spread_max_ms: spread.iter().max().map(|d| ms(*d)),
    })
}
