//! A stream's fields as a client sends them: a JSON object, checked field by field.

use serde_json::{Map, Value};

use crate::db::{StreamMeta, Visibility};
use crate::error::ApiError;

/// Longest title, category, tag; most tags.
const MAX_TITLE: usize = 200;
const MAX_CATEGORY: usize = 64;
const MAX_TAG: usize = 32;
const MAX_TAGS: usize = 10;
pub(crate) fn invalid(field: &str, why: &str) -> ApiError {
    ApiError::Unprocessable(format!("{field}: {why}"))
}

/// A JSON object body (empty means `{}`); 400 when it is not JSON or not an object.
pub(crate) fn object(raw: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(raw) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::BadRequest("the body must be a JSON object".into())),
        Err(e) => Err(ApiError::BadRequest(format!("invalid JSON: {e}"))),
    }
}

pub(crate) fn text(field: &str, v: &Value, max: usize) -> Result<String, ApiError> {
    let s = v
        .as_str()
        .ok_or_else(|| invalid(field, "must be a string"))?
        .trim();
    if s.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if s.chars().count() > max {
        return Err(invalid(field, &format!("longer than {max} characters")));
    }
    if s.chars().any(char::is_control) {
        return Err(invalid(field, "contains control characters"));
    }
    Ok(s.to_owned())
}

fn optional_text(field: &str, v: &Value, max: usize) -> Result<Option<String>, ApiError> {
    if v.is_null() {
        return Ok(None);
    }
    text(field, v, max).map(Some)
}

fn language(v: &Value) -> Result<Option<String>, ApiError> {
    let Some(s) = optional_text("language", v, 35)? else {
        return Ok(None);
    };
    // BCP 47 in its common shape: a 2-3 letter language, then alphanumeric subtags.
    let mut parts = s.split('-');
    let primary = parts.next().unwrap_or("");
    let ok = (2..=3).contains(&primary.len())
        && primary.chars().all(|c| c.is_ascii_alphabetic())
        && parts.all(|p| (1..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()));
    if !ok {
        return Err(invalid(
            "language",
            "must be a language tag such as \"en\" or \"pt-BR\"",
        ));
    }
    Ok(Some(s))
}

fn tags(v: &Value) -> Result<Vec<String>, ApiError> {
    let list = v
        .as_array()
        .ok_or_else(|| invalid("tags", "must be an array of strings"))?;
    if list.len() > MAX_TAGS {
        return Err(invalid("tags", &format!("at most {MAX_TAGS}")));
    }
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for t in list {
        let t = text("tags", t, MAX_TAG)?.to_lowercase();
        if !out.contains(&t) {
            out.push(t);
        }
    }
    Ok(out)
}

/// `hlsLadder`: heights top first, e.g. `[720, 480, 360]`, or `null` for the server's.
fn ladder(v: &Value) -> Result<Option<Vec<u32>>, ApiError> {
    if v.is_null() {
        return Ok(None);
    }
    let why = "must be null or an array of 1-4 distinct even heights from 90 to 2160, e.g. [720, 360]";
    let list = v
        .as_array()
        .filter(|l| (1..=4).contains(&l.len()))
        .ok_or_else(|| invalid("hlsLadder", why))?;
    let mut heights = Vec::with_capacity(list.len());
    for h in list {
        let h = h
            .as_u64()
            .filter(|h| (90..=2160).contains(h) && h % 2 == 0)
            .ok_or_else(|| invalid("hlsLadder", why))? as u32;
        if heights.contains(&h) {
            return Err(invalid("hlsLadder", why));
        }
        heights.push(h);
    }
    heights.sort_unstable_by(|a, b| b.cmp(a));
    Ok(Some(heights))
}

/// Longest pull URL accepted.
const MAX_PULL_URL: usize = 2048;

/// An RTSP URL the server can pull, or `null` to stop pulling.
fn pull_url(v: &Value) -> Result<Option<String>, ApiError> {
    let why = "must be an rtsp:// or rtsps:// URL with a host, or null";
    if v.is_null() {
        return Ok(None);
    }
    let s = v.as_str().map(str::trim).ok_or_else(|| invalid("pullUrl", why))?;
    let lower = s.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("rtsp://")
        .or_else(|| lower.strip_prefix("rtsps://"))
        .ok_or_else(|| invalid("pullUrl", why))?;
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() || s.len() > MAX_PULL_URL || s.chars().any(char::is_control) {
        return Err(invalid("pullUrl", why));
    }
    Ok(Some(s.to_string()))
}

fn flag(field: &str, v: &Value) -> Result<bool, ApiError> {
    v.as_bool().ok_or_else(|| invalid(field, "must be true or false"))
}

/// Applies the fields present in `body` to `meta`; unknown fields are refused (a typo must
/// not pass silently).
pub(crate) fn apply(meta: &mut StreamMeta, body: &Map<String, Value>) -> Result<(), ApiError> {
    for (key, v) in body {
        match key.as_str() {
            "title" => meta.title = text("title", v, MAX_TITLE)?,
            "category" => {
                meta.category = optional_text("category", v, MAX_CATEGORY)?.map(|c| c.to_lowercase())
            }
            "language" => meta.language = language(v)?,
            "tags" => meta.tags = tags(v)?,
            "enableDvr" => meta.enable_dvr = flag("enableDvr", v)?,
            "lowLatencyMode" => meta.low_latency = flag("lowLatencyMode", v)?,
            "hlsLadder" => meta.hls_ladder = ladder(v)?,
            "pullUrl" => meta.pull_url = pull_url(v)?,
            "visibility" => {
                meta.visibility = v
                    .as_str()
                    .and_then(Visibility::parse)
                    .ok_or_else(|| invalid("visibility", "must be \"public\" or \"private\""))?;
            }
            other => return Err(invalid(other, "unknown field")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn metadata_is_validated_field_by_field() {
        let mut m = StreamMeta::default();
        let ok = json!({"title": " Speedrun ", "category": "Gaming", "language": "pt-BR",
            "tags": ["Any%", "any%", "pb"], "enableDvr": false, "lowLatencyMode": false,
            "visibility": "private", "hlsLadder": [360, 720]});
        apply(&mut m, ok.as_object().expect("object")).expect("valid");
        assert_eq!(m.title, "Speedrun");
        assert_eq!(m.category.as_deref(), Some("gaming"));
        assert_eq!(m.tags, ["any%", "pb"]);
        assert!(!m.enable_dvr && !m.low_latency);
        assert_eq!(m.visibility, Visibility::Private);
        assert_eq!(m.hls_ladder, Some(vec![720, 360]), "top first");
        for (bad, field) in [
            (json!({"hlsLadder": []}), "hlsLadder"),
            (json!({"hlsLadder": [720, 721]}), "hlsLadder"),
            (json!({"hlsLadder": [720, 720]}), "hlsLadder"),
            (json!({"hlsLadder": "720,360"}), "hlsLadder"),
            (json!({"hlsLadder": [4320]}), "hlsLadder"),
            (json!({"title": ""}), "title"),
            (json!({"title": "x".repeat(201)}), "title"),
            (json!({"title": 5}), "title"),
            (json!({"language": "english!"}), "language"),
            (json!({"tags": "a,b"}), "tags"),
            (json!({"tags": vec!["t"; 11]}), "tags"),
            (json!({"enableDvr": "yes"}), "enableDvr"),
            (json!({"visibility": "secret"}), "visibility"),
            (json!({"titel": "typo"}), "titel"),
        ] {
            match apply(&mut m, bad.as_object().expect("object")) {
                Err(ApiError::Unprocessable(why)) => assert!(why.starts_with(field), "{why}"),
                other => panic!("{bad} gave {other:?}"),
            }
        }
        apply(&mut m, json!({"category": null}).as_object().expect("object")).expect("null clears");
        assert_eq!(m.category, None);
    }

    #[test]
    fn bodies_must_be_objects() {
        assert!(object(b"").expect("empty is {}").is_empty());
        assert!(matches!(object(b"[1]"), Err(ApiError::BadRequest(_))));
        assert!(matches!(object(b"{"), Err(ApiError::BadRequest(_))));
    }
}
