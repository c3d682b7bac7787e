//! What WHIP and WHEP share: creating a session resource, PATCH (trickle ICE, ICE
//! restart) and DELETE.

use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sfu::{IceFragment, SessionKind};

use crate::auth::new_secret;
use crate::db::StreamRow;
use crate::error::ApiError;
use crate::rate_limit::Client;
use crate::state::{AppState, Resource};
use crate::turn::{TurnConfig, add_links};

/// Require a `Content-Type` (parameters such as charset are ignored).
pub(crate) fn require_content_type(headers: &HeaderMap, expected: &'static str) -> Result<(), ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    match ct.as_deref() {
        Some(v) if v == expected => Ok(()),
        _ => Err(ApiError::UnsupportedMediaType(expected)),
    }
}

/// The stream, or 404.
pub(crate) async fn stream(state: &AppState, id: &str) -> Result<StreamRow, ApiError> {
    state.db.get(id).await?.ok_or(ApiError::NotFound)
}

/// Accept an offer into the SFU and answer `201 Created` with the resource's location.
pub(crate) fn create(
    state: &AppState,
    row: &StreamRow,
    kind: SessionKind,
    prefix: &str,
    client: Client,
    body: &[u8],
) -> Result<Response, ApiError> {
    let offer =
        std::str::from_utf8(body).map_err(|_| ApiError::BadRequest("malformed SDP: not UTF-8".into()))?;
    let (session, answer) = state.sfu.create_session(&row.id, kind, offer, client.0)?;
    let token = new_secret("");
    let etag = format!("\"{}\"", &new_secret("")[..12]);
    state.streams.session_created(&row.id, row.status, kind, session);
    state.resources.insert(
        token.clone(),
        Resource {
            stream: row.id.clone(),
            session,
            kind,
            etag: etag.clone(),
        },
    );
    let location = format!("/{prefix}/{}/{token}", row.id);
    let mut res = (StatusCode::CREATED, answer).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/sdp"));
    insert(h, header::LOCATION, &location);
    insert(h, header::ETAG, &etag);
    h.insert(
        "accept-patch",
        HeaderValue::from_static("application/trickle-ice-sdpfrag"),
    );
    add_links(state.config.turn.as_ref(), h);
    Ok(res)
}

fn insert(h: &mut HeaderMap, name: header::HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        h.insert(name, v);
    }
}

/// The resource named in the URL, checked against its stream.
pub(crate) fn resource(state: &AppState, stream: &str, token: &str) -> Result<Resource, ApiError> {
    state.resources.get(stream, token).ok_or(ApiError::NotFound)
}

/// PATCH: trickle candidates or an ICE restart.
pub(crate) async fn patch(
    state: &AppState,
    stream: &str,
    token: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let r = resource(state, stream, token)?;
    require_content_type(headers, "application/trickle-ice-sdpfrag")?;
    if let Some(m) = headers.get(header::IF_MATCH) {
        let m = m.to_str().unwrap_or("");
        if m != "*" && m != r.etag {
            return Err(ApiError::PreconditionFailed);
        }
    }
    let text = std::str::from_utf8(body).map_err(|_| ApiError::BadRequest("fragment is not UTF-8".into()))?;
    let fragment = IceFragment::parse(text)?;
    let restart = fragment.restart.is_some();
    let creds = state.sfu.trickle(r.session, fragment).await?;
    match (restart, creds) {
        (true, Some((ufrag, pwd))) => {
            let etag = format!("\"{}\"", &new_secret("")[..12]);
            state.resources.set_etag(token, etag.clone());
            let body = format!("a=ice-ufrag:{ufrag}\r\na=ice-pwd:{pwd}\r\n");
            let mut res = (StatusCode::OK, body).into_response();
            let h = res.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/trickle-ice-sdpfrag"),
            );
            insert(h, header::ETAG, &etag);
            Ok(res)
        }
        _ => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

/// DELETE: end the session.
pub(crate) fn delete(state: &AppState, stream: &str, token: &str) -> Result<Response, ApiError> {
    let r = resource(state, stream, token)?;
    state.resources.remove(token);
    // The session may already be gone (ICE timeout); the resource is deleted either way.
    let _ = state.sfu.close(r.session);
    Ok(StatusCode::OK.into_response())
}

/// OPTIONS on an endpoint: what it accepts (the TURN servers come from [`endpoint_options`]).
pub(crate) fn options() -> Response {
    let mut res = StatusCode::NO_CONTENT.into_response();
    res.headers_mut()
        .insert("accept-post", HeaderValue::from_static("application/sdp"));
    res
}

/// Middleware: OPTIONS on a WHIP/WHEP endpoint says what it accepts and offers the TURN servers
/// (RFC 9725 section 4.6), also when the CORS layer answered the request as a preflight.
pub(crate) async fn endpoint_options(
    axum::extract::State(turn): axum::extract::State<Option<Arc<TurnConfig>>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let endpoint = req.method() == axum::http::Method::OPTIONS
        && (req.uri().path().starts_with("/whip/") || req.uri().path().starts_with("/whep/"));
    let mut res = next.run(req).await;
    if endpoint {
        let h = res.headers_mut();
        if !h.contains_key("accept-post") {
            h.insert("accept-post", HeaderValue::from_static("application/sdp"));
        }
        if !h.contains_key(header::LINK) {
            add_links(turn.as_deref(), h);
        }
    }
    res
}
