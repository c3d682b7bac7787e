//! The WebSocket opening handshake (RFC 6455 section 4.2): which upgrade requests the chat
//! accepts, and the `Sec-WebSocket-Accept` that proves to the client that its key was read.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use base64::Engine;
use sha1::{Digest, Sha1};

/// Appended to the client's key before hashing (RFC 6455 section 1.3).
const KEY_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Check a WebSocket opening handshake (RFC 6455 section 4.2.1) and compute its
/// `Sec-WebSocket-Accept`, or the status and reason that refuse it.
pub(crate) fn accept(headers: &HeaderMap) -> Result<HeaderValue, (StatusCode, &'static str)> {
    let has_token = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    if !has_token(header::CONNECTION, "upgrade") || !has_token(header::UPGRADE, "websocket") {
        return Err((StatusCode::UPGRADE_REQUIRED, "WebSocket upgrade required"));
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v.as_bytes() != b"13")
    {
        return Err((StatusCode::UPGRADE_REQUIRED, "WebSocket version 13 required"));
    }
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
        return Err((StatusCode::BAD_REQUEST, "Sec-WebSocket-Key missing"));
    };
    HeaderValue::from_str(&accept_key(key.as_bytes()))
        .map_err(|_| (StatusCode::BAD_REQUEST, "bad Sec-WebSocket-Key"))
}

/// `Sec-WebSocket-Accept`: base64 of the SHA-1 of the key followed by [`KEY_GUID`].
fn accept_key(key: &[u8]) -> String {
    let digest = Sha1::new().chain_update(key).chain_update(KEY_GUID).finalize();
    base64::engine::general_purpose::STANDARD.encode(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_key_of_the_rfc_example() {
        // RFC 6455 section 1.3.
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    fn upgrade(version: &str, key: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_str(version).expect("ascii"),
        );
        if let Some(key) = key {
            h.insert(
                header::SEC_WEBSOCKET_KEY,
                HeaderValue::from_str(key).expect("ascii"),
            );
        }
        h
    }

    #[test]
    fn accepts_a_version_13_upgrade_and_refuses_the_rest() {
        let ok = accept(&upgrade("13", Some("dGhlIHNhbXBsZSBub25jZQ==")));
        assert_eq!(ok, Ok(HeaderValue::from_static("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")));
        assert_eq!(
            accept(&upgrade("8", Some("x"))).map_err(|e| e.0),
            Err(StatusCode::UPGRADE_REQUIRED)
        );
        assert_eq!(
            accept(&upgrade("13", None)).map_err(|e| e.0),
            Err(StatusCode::BAD_REQUEST)
        );
        let mut plain = upgrade("13", Some("x"));
        plain.remove(header::UPGRADE);
        assert_eq!(accept(&plain).map_err(|e| e.0), Err(StatusCode::UPGRADE_REQUIRED));
    }
}
