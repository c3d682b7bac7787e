//! A stream as the API shows it: stored fields, runtime status and every URL.

use axum::http::HeaderMap;
use serde_json::{Map, Value, json};

use crate::db::StreamRow;
use crate::state::AppState;

/// Every URL of a stream. Ingest protocols not running on this server are `null`.
fn urls(state: &AppState, base: &str, id: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("whipUrl".into(), json!(format!("{base}/whip/{id}")));
    m.insert("whepUrl".into(), json!(format!("{base}/whep/{id}")));
    m.insert("hlsUrl".into(), json!(format!("{base}/hls/{id}/master.m3u8")));
    let (rtmp, srt) = ingest_servers(state, base);
    m.insert("rtmpServer".into(), json!(rtmp));
    m.insert("srtServer".into(), json!(srt));
    m.insert(
        "chatUrl".into(),
        json!(
            state
                .config
                .chat
                .as_ref()
                .map(|link| crate::chat_link::chat_url(link.port, base, id))
        ),
    );
    m.insert("watchUrl".into(), json!(format!("{base}/watch.html?stream={id}")));
    m.insert(
        "hlsWatchUrl".into(),
        json!(format!("{base}/hls.html?stream={id}")),
    );
    m.insert(
        "publishUrl".into(),
        json!(format!("{base}/publish.html?stream={id}")),
    );
    m
}

/// The RTMP server URL (`rtmp://host:1935/live`, OBS's "Server") and the SRT address
/// (`srt://host:8890`), on the host of `base`; `None` where that listener is off.
fn ingest_servers(state: &AppState, base: &str) -> (Option<String>, Option<String>) {
    let ingest = &state.config.ingest;
    let host = host_of(base);
    (
        ingest.rtmp_port.map(|p| format!("rtmp://{host}:{p}/live")),
        ingest.srt_port.map(|p| format!("srt://{host}:{p}")),
    )
}

/// The host part of a base URL (`http://example.com:8080` -> `example.com`, IPv6 kept in
/// brackets).
fn host_of(base: &str) -> &str {
    let rest = base.split_once("://").map_or(base, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if authority.starts_with('[') {
        return authority
            .split_once(']')
            .map_or(authority, |(h, _)| &authority[..=h.len()]);
    }
    authority.split(':').next().unwrap_or(authority)
}

/// The complete publishing URLs, where the response shows the stream key (creation and key
/// rotation: the key is stored hashed and shown once).
pub(crate) fn add_keyed_urls(state: &AppState, headers: &HeaderMap, v: &mut Value, key: &str) {
    let base = state.config.base_url(headers);
    let (rtmp, srt) = ingest_servers(state, &base);
    v["rtmpUrl"] = json!(rtmp.map(|r| format!("{r}/{key}")));
    v["srtUrl"] = json!(srt.map(|s| format!("{s}?streamid=publish:{key}")));
}

pub(crate) fn body(state: &AppState, headers: &HeaderMap, row: &StreamRow) -> Value {
    let runtime = state.streams.runtime(&row.id, row.status);
    let m = &row.meta;
    let mut v = json!({
        "id": row.id,
        "title": m.title,
        "category": m.category,
        "language": m.language,
        "tags": m.tags,
        "enableDvr": m.enable_dvr,
        "lowLatencyMode": m.low_latency,
        "hlsLadder": m.hls_ladder,
        "visibility": m.visibility.as_str(),
        "status": runtime.status.as_str(),
        "reconnecting": runtime.reconnecting,
        "viewers": runtime.viewers,
        "createdAt": row.created_at,
        "updatedAt": row.updated_at,
    });
    if crate::auth::is_admin(headers, &state.config.admin_token) {
        // The camera's address is the admin's business; its credentials nobody's.
        v["pullUrl"] = json!(m.pull_url.as_deref().map(crate::pulls::redact));
    }
    let base = state.config.base_url(headers);
    if let Some(obj) = v.as_object_mut() {
        obj.extend(urls(state, &base, &row.id));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::host_of;

    #[test]
    fn the_host_of_a_base_url() {
        assert_eq!(host_of("http://example.com:8080"), "example.com");
        assert_eq!(host_of("https://example.com/fanout"), "example.com");
        assert_eq!(host_of("http://127.0.0.1:8080"), "127.0.0.1");
        assert_eq!(host_of("http://[::1]:8080"), "[::1]");
        assert_eq!(host_of("localhost"), "localhost");
    }
}
