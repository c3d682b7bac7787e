//! A stream as stored: its id, key hash, status and what its owner describes.

use crate::lifecycle::Status;

/// Who may watch a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Visibility {
    /// Anyone with the URL; listed in the browse API while live.
    #[default]
    Public,
    /// WHEP needs a viewer token, HLS a signed URL; never listed.
    Private,
}

impl Visibility {
    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Private => "private",
        }
    }

    /// Read back what [`Visibility::as_str`] wrote; `None` for anything else.
    pub fn parse(s: &str) -> Option<Visibility> {
        match s {
            "public" => Some(Visibility::Public),
            "private" => Some(Visibility::Private),
            _ => None,
        }
    }
}

/// What a stream's owner describes and chooses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamMeta {
    /// Title.
    pub title: String,
    /// Free-form category (e.g. "gaming"), for browsing.
    pub category: Option<String>,
    /// Language tag (e.g. "en", "pt-BR").
    pub language: Option<String>,
    /// Tags, for browsing.
    pub tags: Vec<String>,
    /// Keep a DVR window and a VOD recording of the HLS output.
    pub enable_dvr: bool,
    /// Serve LL-HLS parts (otherwise plain 2 s segments).
    pub low_latency: bool,
    /// Public or private.
    pub visibility: Visibility,
    /// The stream's own LL-HLS ladder (heights, top first); `None` for the server's.
    pub hls_ladder: Option<Vec<u32>>,
    /// An RTSP camera the server pulls into the stream (`rtsp://` or `rtsps://`, credentials
    /// allowed), `None` for a pushed stream.
    pub pull_url: Option<String>,
}

impl Default for StreamMeta {
    fn default() -> Self {
        StreamMeta {
            title: "Untitled stream".into(),
            category: None,
            language: None,
            tags: Vec::new(),
            enable_dvr: true,
            low_latency: true,
            visibility: Visibility::Public,
            hls_ladder: None,
            pull_url: None,
        }
    }
}

/// A stream as stored.
#[derive(Debug, Clone)]
pub struct StreamRow {
    /// Public id (also the room name).
    pub id: String,
    /// SHA-256 of the stream key.
    pub key_hash: String,
    /// Lifecycle status.
    pub status: Status,
    /// Creation time, ms since the epoch.
    pub created_at: i64,
    /// Last change of the metadata or key, ms since the epoch.
    pub updated_at: i64,
    /// Title, category, visibility and the rest.
    pub meta: StreamMeta,
}

/// The `streams` columns in the order [`row_from`] reads them.
pub(super) const COLUMNS: &str = "id, title, key_hash, status, created_at, updated_at, category, language, tags, enable_dvr, low_latency, visibility, hls_ladder, pull_url";

/// A `SELECT {COLUMNS}` row.
pub(super) fn row_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<StreamRow> {
    let tags: String = r.get(8)?;
    Ok(StreamRow {
        id: r.get(0)?,
        key_hash: r.get(2)?,
        status: Status::parse(&r.get::<_, String>(3)?),
        created_at: r.get(4)?,
        updated_at: r.get(5)?,
        meta: StreamMeta {
            title: r.get(1)?,
            category: r.get(6)?,
            language: r.get(7)?,
            tags: serde_json::from_str(&tags).unwrap_or_default(),
            enable_dvr: r.get(9)?,
            low_latency: r.get(10)?,
            visibility: Visibility::parse(&r.get::<_, String>(11)?).unwrap_or_default(),
            hls_ladder: r.get::<_, Option<String>>(12)?.and_then(|s| ladder_from(&s)),
            pull_url: r.get(13)?,
        },
    })
}

/// A ladder as stored: heights joined by commas (`720,480,360`).
pub(super) fn ladder_text(ladder: &Option<Vec<u32>>) -> Option<String> {
    ladder
        .as_ref()
        .map(|l| l.iter().map(u32::to_string).collect::<Vec<_>>().join(","))
}

fn ladder_from(text: &str) -> Option<Vec<u32>> {
    text.split(',').map(|h| h.trim().parse().ok()).collect()
}

/// Tags as stored: a JSON array.
pub(super) fn tags_json(tags: &[String]) -> String {
    serde_json::to_string(tags).unwrap_or_else(|_| "[]".into())
}
