//! One simulated low-latency HLS player, shaped like hls.js in low-latency mode.
//!
//! It joins (multivariant playlist, its rendition's plain playlist, the init segment, the
//! last listed part), then loops: a blocking reload for the next part (`_HLS_msn`/`_HLS_part`
//! taken from the playlist's structure, `_HLS_skip=YES` on every reload after the first, as hls.js does) on its playlist
//! connection while the preload-hinted part is requested on its media connection; then any
//! listed part it has not fetched. Two connections per player, as a browser over HTTP/1.1.
//! After an error it waits one part and joins again.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::conn::{Conn, Reply};
use super::playlist::{parse_media, parse_multivariant, resolve};
use super::{LoadError, Target};

/// What one player saw.
#[derive(Debug, Default, Clone)]
pub struct PlayerStats {
    /// Multivariant, plain and blocking playlist requests answered (any status).
    pub playlist_requests: u64,
    /// Part requests answered (any status).
    pub part_requests: u64,
    /// Init segment requests.
    pub other_requests: u64,
    /// Bytes of response bodies.
    pub bytes: u64,
    /// Failed requests by status (`"404"`) or by transport error (`"timeout"`, `"io"`).
    pub errors: BTreeMap<String, u64>,
    /// Preload-hinted part requests: from the request to the last body byte, microseconds.
    pub hint_latency_us: Vec<u64>,
    /// At each blocking reload answer: how old the end of its newest part is (now minus
    /// PROGRAM-DATE-TIME plus durations), milliseconds. Server and player share one clock.
    pub edge_age_ms: Vec<f64>,
    /// At each blocking reload answer: how many parts its newest part is behind the newest
    /// part any player of the same rendition has been given so far (the live edge as the
    /// players see it; unlike the age, it does not count the encoder's own delay).
    pub behind: Vec<u32>,
    /// Times the player had to join again after an error.
    pub rejoins: u64,
}

impl PlayerStats {
    fn error(&mut self, what: String) {
        *self.errors.entry(what).or_default() += 1;
    }

    /// Counts a reply; returns it if it was a 200.
    fn count(&mut self, kind: Kind, reply: Result<Reply, LoadError>) -> Option<Reply> {
        match reply {
            Ok(reply) => {
                match kind {
                    Kind::Playlist => self.playlist_requests += 1,
                    Kind::Part => self.part_requests += 1,
                    Kind::Other => self.other_requests += 1,
                }
                self.bytes += reply.body.len() as u64;
                if reply.status == 200 {
                    Some(reply)
                } else {
                    self.error(reply.status.to_string());
                    None
                }
            }
            Err(e) => {
                self.error(e.kind().to_owned());
                None
            }
        }
    }

    /// Adds another player's counts.
    pub fn merge(&mut self, other: PlayerStats) {
        self.playlist_requests += other.playlist_requests;
        self.part_requests += other.part_requests;
        self.other_requests += other.other_requests;
        self.bytes += other.bytes;
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
        self.hint_latency_us.extend(other.hint_latency_us);
        self.edge_age_ms.extend(other.edge_age_ms);
        self.behind.extend(other.behind);
        self.rejoins += other.rejoins;
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Playlist,
    Part,
    Other,
}

/// Plays until `deadline`, counting into `stats` as it goes (so a cancelled player has
/// counted everything it finished).
pub async fn play(
    target: &Target,
    player: usize,
    deadline: Instant,
    edge: &LiveEdge,
    stats: &mut PlayerStats,
) {
    let timeout = Duration::from_secs(10);
    let mut playlists = Conn::lazy(target.addr, &target.host, timeout);
    let mut media = Conn::lazy(target.addr, &target.host, timeout);
    let mut first = true;
    while Instant::now() < deadline {
        if !first {
            stats.rejoins += 1;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        first = false;
        let Some(live) = choose_rendition(target, player, &mut playlists, stats).await else {
            continue;
        };
        follow(&live, &mut playlists, &mut media, edge, stats).await;
    }
}

/// The absolute path of this player's rendition playlist.
async fn choose_rendition(
    target: &Target,
    player: usize,
    conn: &mut Conn,
    stats: &mut PlayerStats,
) -> Option<String> {
    let master = target.master_path();
    let reply = stats.count(Kind::Playlist, conn.get(&master).await)?;
    let uris = parse_multivariant(&String::from_utf8_lossy(&reply.body));
    let uri = match &target.rendition {
        Some(name) => uris.iter().find(|u| u.split('/').next() == Some(name.as_str()))?,
        None => uris.get(player % uris.len().max(1))?,
    };
    Some(resolve(&master, uri))
}

/// Joins at the live edge and follows it; returns after an error or at the end of the stream.
async fn follow(
    live: &str,
    playlists: &mut Conn,
    media: &mut Conn,
    edge: &LiveEdge,
    stats: &mut PlayerStats,
) {
    let Some(reply) = stats.count(Kind::Playlist, playlists.get(live).await) else {
        return;
    };
    let Some(mut playlist) = parse_media(&String::from_utf8_lossy(&reply.body)) else {
        stats.error("bad playlist".into());
        return;
    };
    if let Some(map) = &playlist.map {
        let init = resolve(live, map);
        if stats.count(Kind::Other, media.get(&init).await).is_none() {
            return;
        }
    }
    // Start from the newest listed part, as a low-latency player does at the live edge.
    let mut fetched = match playlist.parts.last() {
        Some(part) => {
            let path = resolve(live, &part.uri);
            if stats.count(Kind::Part, media.get(&path).await).is_none() {
                return;
            }
            (part.msn, part.index)
        }
        None => (0, 0),
    };
    let mut reloads = 0u64;
    while !playlist.ended {
        let (msn, part) = playlist.next;
        // Like hls.js: a delta update on every reload after the first full one.
        let skip = if reloads > 0 { "&_HLS_skip=YES" } else { "" };
        reloads += 1;
        let reload = format!("{live}?_HLS_msn={msn}&_HLS_part={part}{skip}");
        let hint = playlist.preload_hint.as_ref().map(|uri| resolve(live, uri));
        let hint_fetch = async {
            match &hint {
                Some(path) => Some(media.get(path).await),
                None => None,
            }
        };
        let (reloaded, hinted) = tokio::join!(playlists.get(&reload), hint_fetch);
        let mut hint_done = false;
        if let Some(reply) = hinted
            && let Some(reply) = stats.count(Kind::Part, reply)
        {
            stats
                .hint_latency_us
                .push(u64::try_from(reply.elapsed.as_micros()).unwrap_or(u64::MAX));
            hint_done = true;
        }
        let Some(reply) = stats.count(Kind::Playlist, reloaded) else {
            return;
        };
        let Some(next) = parse_media(&String::from_utf8_lossy(&reply.body)) else {
            stats.error("bad playlist".into());
            return;
        };
        if let Some(end) = next.parts.last().and_then(|p| p.end_ms) {
            stats.edge_age_ms.push(now_unix_ms() - end);
        }
        if let (Some(last), Some(per_segment)) = (next.parts.last(), next.parts_per_segment) {
            let position = last.msn * u64::from(per_segment) + u64::from(last.index);
            let newest = edge.observe(live, position);
            stats
                .behind
                .push(u32::try_from(newest - position).unwrap_or(u32::MAX));
        }
        // Parts listed since the last one fetched, but the hinted one just fetched.
        let missing: Vec<String> = next
            .parts
            .iter()
            .filter(|p| (p.msn, p.index) > fetched)
            .filter(|p| !(hint_done && (p.msn, p.index) == (msn, part)))
            .map(|p| resolve(live, &p.uri))
            .collect();
        for path in missing {
            if stats.count(Kind::Part, media.get(&path).await).is_none() {
                return;
            }
        }
        if let Some(last) = next.parts.last() {
            fetched = fetched.max((last.msn, last.index));
        }
        playlist = next;
    }
}

/// The newest part any player has been given, per rendition playlist: the live edge as the
/// players see it. Shared by all players of a run.
#[derive(Debug, Default)]
pub struct LiveEdge {
    newest: Mutex<HashMap<String, u64>>,
}

impl LiveEdge {
    /// Records a part position (msn × parts per segment + index) seen in `playlist`; returns
    /// the newest position seen there so far.
    pub fn observe(&self, playlist: &str, position: u64) -> u64 {
        let mut newest = self.newest.lock().unwrap_or_else(|e| e.into_inner());
        let entry = newest.entry(playlist.to_owned()).or_insert(position);
        *entry = (*entry).max(position);
        *entry
    }
}

/// Now, in milliseconds since the Unix epoch.
pub fn now_unix_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1e3)
}
