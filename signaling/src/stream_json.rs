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
    let ingest = &state.config.ingest;
    m.insert(
        "rtmpUrl".into(),
        json!(ingest.rtmp.as_ref().map(|u| format!("{u}/{id}"))),
    );
    m.insert(
        "srtUrl".into(),
        json!(ingest.srt.as_ref().map(|u| format!("{u}?streamid={id}"))),
    );
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
    let base = state.config.base_url(headers);
    if let Some(obj) = v.as_object_mut() {
        obj.extend(urls(state, &base, &row.id));
    }
    v
}
