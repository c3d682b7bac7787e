//! The origin's HTTP routes: everything under `/hls/`.
//!
//! | path | what |
//! |---|---|
//! | `/hls/{stream}/master.m3u8` | multivariant playlist of the live renditions |
//! | `/hls/{stream}/dvr.m3u8`, `vod.m3u8` | multivariant playlists of the DVR and VOD playlists |
//! | `/hls/{stream}/{rendition}/live.m3u8` | LL-HLS playlist (`_HLS_msn`, `_HLS_part`, `_HLS_skip`) |
//! | `/hls/{stream}/{rendition}/dvr.m3u8`, `vod.m3u8` | DVR window, VOD (after the end, from disk) |
//! | `/hls/{stream}/{rendition}/init{g}.mp4` | init segment of source generation `g` |
//! | `/hls/{stream}/{rendition}/s{msn}.m4s` | segment |
//! | `/hls/{stream}/{rendition}/p{msn}.{part}.m4s` | part |

use std::time::Duration;

use axum::Router;
use axum::body::{Body, HttpBody};
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use tower_http::cors::{Any, CorsLayer};

use crate::origin::Origin;
use crate::reload::{PartWait, Readiness, part_wait, readiness, wait_until};
use crate::request::{HlsRequest, RequestError, parse};
use crate::resource::{PlaylistKind, Resource};
use crate::stats::RequestKind;
use crate::stream::StreamHandle;

/// Media never changes under its name.
pub const CACHE_MEDIA: &str = "public, max-age=31536000, immutable";
/// A plain live or DVR playlist changes with every part.
pub const CACHE_LIVE_PLAYLIST: &str = "public, max-age=1";
/// Errors are not to be cached: the resource may exist a moment later.
pub const CACHE_ERROR: &str = "no-store";

const PLAYLIST_TYPE: &str = "application/vnd.apple.mpegurl";

/// Why a request failed, as the client sees it: a status and a short reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HlsError {
    /// 400: a malformed path or query, or a blocking request too far ahead.
    BadRequest(&'static str),
    /// 404: no such stream, rendition or resource.
    NotFound(&'static str),
    /// 503: a blocking request waited its limit and what it waited for has not come.
    Unavailable(&'static str),
}

impl From<RequestError> for HlsError {
    fn from(error: RequestError) -> Self {
        match error {
            RequestError::NotFound => Self::NotFound("not found"),
            RequestError::BadPath(reason) | RequestError::BadQuery(reason) => Self::BadRequest(reason),
        }
    }
}

impl HlsError {
    /// Index into [`crate::stats::ERROR_KINDS`].
    fn kind(self) -> usize {
        match self {
            Self::BadRequest(_) => 0,
            Self::NotFound(_) => 1,
            Self::Unavailable(_) => 2,
        }
    }
}

impl IntoResponse for HlsError {
    fn into_response(self) -> Response {
        let (status, reason) = match self {
            Self::BadRequest(r) => (StatusCode::BAD_REQUEST, r),
            Self::NotFound(r) => (StatusCode::NOT_FOUND, r),
            Self::Unavailable(r) => (StatusCode::SERVICE_UNAVAILABLE, r),
        };
        let mut response = (status, format!("{reason}\n")).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(CACHE_ERROR));
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        if status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// The origin's routes, to be merged into the main HTTP router.
pub fn router(origin: Origin) -> Router {
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods(Any)
        .allow_headers(Any)
        .expose_headers([
            header::CONTENT_LENGTH,
            header::CONTENT_TYPE,
            header::AGE,
            header::DATE,
        ]);
    Router::new()
        .route("/hls/{*path}", get(serve))
        .with_state(origin)
        .layer(cors)
}

async fn serve(State(origin): State<Origin>, uri: Uri) -> Result<Response, HlsError> {
    let request = match parse(uri.path(), uri.query()) {
        Ok(r) => r,
        Err(e) => {
            let e = HlsError::from(e);
            origin.counters().refused(None, e.kind());
            return Err(e);
        }
    };
    let kind = RequestKind::of(request.resource, request.blocking.is_some());
    let result = route(&origin, &request).await;
    match &result {
        Ok(response) => {
            let bytes = HttpBody::size_hint(response.body()).exact().unwrap_or(0);
            origin.counters().served(kind, bytes);
        }
        Err(e) => origin.counters().refused(Some(kind), e.kind()),
    }
    result
}

async fn route(origin: &Origin, request: &HlsRequest) -> Result<Response, HlsError> {
    let stream = origin.stream(&request.stream);
    match (&request.rendition, request.resource, stream) {
        (None, Resource::Multivariant(PlaylistKind::Vod), _) => {
            from_disk(origin, request, PLAYLIST_TYPE, "public, max-age=60").await
        }
        (None, Resource::Multivariant(kind), Some(stream)) => {
            let text = stream
                .view()
                .multivariant(kind)
                .ok_or(HlsError::NotFound("no renditions yet"))?;
            Ok(playlist(text, "public, max-age=2"))
        }
        (Some(_), Resource::Media(PlaylistKind::Vod), _) => {
            from_disk(origin, request, PLAYLIST_TYPE, "public, max-age=60").await
        }
        (Some(name), resource, Some(stream)) => {
            serve_rendition(origin, &stream, name, resource, request).await
        }
        (Some(_), Resource::Init(_) | Resource::Segment(_), None) => {
            from_disk(origin, request, "video/mp4", CACHE_MEDIA).await
        }
        _ => Err(HlsError::NotFound("no such stream")),
    }
}

async fn serve_rendition(
    origin: &Origin,
    stream: &StreamHandle,
    name: &str,
    resource: Resource,
    request: &HlsRequest,
) -> Result<Response, HlsError> {
    let view = stream.view();
    let rendition = view
        .rendition(name)
        .ok_or(HlsError::NotFound("no such rendition"))?
        .clone();
    let target = Duration::from_secs(u64::from(rendition.target_duration));
    let limit = target * origin.config().max_block_target_durations.max(1);
    let content_type = if rendition.track.is_video() {
        "video/mp4"
    } else {
        "audio/mp4"
    };
    match resource {
        Resource::Media(PlaylistKind::Live) => {
            let Some(blocking) = request.blocking else {
                let cache = if view.ended {
                    "public, max-age=60"
                } else {
                    CACHE_LIVE_PLAYLIST
                };
                let text = view
                    .live_playlist(name, request.skip)
                    .ok_or(HlsError::NotFound("no such rendition"))?;
                return Ok(playlist(text, cache));
            };
            let decide = |v: &crate::stream::StreamView| {
                v.rendition(name).map_or(Readiness::Ready, |r| {
                    readiness(blocking, &r.head(), r.part_target)
                })
            };
            let view = match decide(&view) {
                Readiness::TooFar => return Err(HlsError::BadRequest("_HLS_msn too far ahead")),
                Readiness::Ready => view,
                Readiness::Wait => {
                    let _held = origin.counters().hold();
                    wait_until(&mut stream.subscribe(), limit, |v| decide(v) != Readiness::Wait)
                        .await
                        .ok_or(HlsError::Unavailable("the requested part has not come in time"))?
                }
            };
            let text = view
                .live_playlist(name, request.skip)
                .ok_or(HlsError::NotFound("no such rendition"))?;
            // A unique URL whose answer never changes: caches may keep it a while.
            let cache = format!("public, max-age={}", limit.as_secs().max(1));
            Ok(playlist(text, &cache))
        }
        Resource::Media(PlaylistKind::Dvr) => Ok(playlist(rendition.dvr_playlist(), CACHE_LIVE_PLAYLIST)),
        Resource::Part(msn, index) => {
            if let Some(data) = rendition.part(msn, index) {
                return Ok(media(data, content_type));
            }
            if part_wait(msn, index, &rendition.head()) == PartWait::Missing {
                return Err(HlsError::NotFound("no such part"));
            }
            let gone = |r: &std::sync::Arc<crate::rendition::RenditionView>| {
                let head = r.head();
                head.ended || head.has_part(msn, index) || head.next_part() > (msn, index)
            };
            let _held = origin.counters().hold();
            let view = wait_until(&mut stream.subscribe(), limit, |v| {
                v.rendition(name).is_none_or(&gone)
            })
            .await
            .ok_or(HlsError::Unavailable("the hinted part has not come in time"))?;
            let data = view.rendition(name).and_then(|r| r.part(msn, index));
            data.map(|d| media(d, content_type))
                .ok_or(HlsError::NotFound("no such part"))
        }
        Resource::Segment(msn) => match rendition.segment(msn) {
            Some(data) => Ok(media(data, content_type)),
            None if rendition.in_dvr(msn) => from_disk(origin, request, content_type, CACHE_MEDIA).await,
            None => Err(HlsError::NotFound("no such segment")),
        },
        Resource::Init(generation) => match rendition.init(generation) {
            Some(data) => Ok(media(data, content_type)),
            None => Err(HlsError::NotFound("no such init segment")),
        },
        Resource::Multivariant(_) | Resource::Media(PlaylistKind::Vod) => {
            Err(HlsError::NotFound("not found"))
        }
    }
}

/// Serves a file of the stream's directory.
async fn from_disk(
    origin: &Origin,
    request: &HlsRequest,
    content_type: &'static str,
    cache: &'static str,
) -> Result<Response, HlsError> {
    let mut path = origin
        .stream_dir(&request.stream)
        .ok_or(HlsError::NotFound("not found"))?;
    if let Some(rendition) = &request.rendition {
        path.push(rendition);
    }
    path.push(request.resource.to_string());
    let data = tokio::fs::read(&path)
        .await
        .map_err(|_| HlsError::NotFound("not found"))?;
    let mut response = Response::new(Body::from(Bytes::from(data)));
    set_headers(&mut response, content_type, cache);
    Ok(response)
}

fn playlist(text: impl Into<Bytes>, cache: &str) -> Response {
    let mut response = Response::new(Body::from(text.into()));
    set_headers(&mut response, PLAYLIST_TYPE, cache);
    response
}

fn media(data: Bytes, content_type: &'static str) -> Response {
    let mut response = Response::new(Body::from(data));
    set_headers(&mut response, content_type, CACHE_MEDIA);
    response
}

fn set_headers(response: &mut Response, content_type: &'static str, cache: &str) {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(value) = HeaderValue::from_str(cache) {
        headers.insert(header::CACHE_CONTROL, value);
    }
}
