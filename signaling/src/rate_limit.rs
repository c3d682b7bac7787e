//! Per-client request limits on the API and on WHIP/WHEP session creation.
//!
//! Limited: everything under `/api/`, and `POST /whip/{id}` / `POST /whep/{id}` (each one
//! builds a WebRTC session). Trickle `PATCH` has a bucket of its own, [`TRICKLE_FACTOR`] times
//! larger (a browser trickles a handful of fragments per session, in a burst right after its
//! offer). Not limited: `DELETE`, media (`/hls/`), pages, health checks and `/metrics`, which
//! an established client or a monitor needs to reach.
//!
//! A client is its IP address (an IPv6 client its /64, which one host usually owns whole);
//! behind a reverse proxy (`--trust-proxy`) the address the proxy appended to
//! `X-Forwarded-For`. The buckets themselves are in [`RateLimiter`].

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use std::convert::Infallible;

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::debug;

use crate::error::ApiError;
use crate::rate_limiter::{RateLimit, RateLimiter};
use crate::state::AppState;

/// How much larger the trickle bucket is than the API's, in rate and burst.
pub(crate) const TRICKLE_FACTOR: u32 = 5;

/// Which bucket a request counts against, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bucket {
    Api,
    Trickle,
}

fn bucket(method: &Method, path: &str) -> Option<Bucket> {
    if path.starts_with("/api/") || creates_session(method, path) {
        Some(Bucket::Api)
    } else if method == Method::PATCH && is_session_resource(path) {
        Some(Bucket::Trickle)
    } else {
        None
    }
}

/// What follows `/whip/` or `/whep/` in `path`.
fn after_endpoint(path: &str) -> Option<&str> {
    path.strip_prefix("/whip/")
        .or_else(|| path.strip_prefix("/whep/"))
}

/// A path segment: not empty, no `/`.
fn segment(s: &str) -> bool {
    !s.is_empty() && !s.contains('/')
}

/// `/whip/{id}/{resource}` or `/whep/{id}/{resource}`.
fn is_session_resource(path: &str) -> bool {
    after_endpoint(path)
        .and_then(|r| r.split_once('/'))
        .is_some_and(|(id, resource)| segment(id) && segment(resource))
}

/// The per-client buckets: the API's and session creation's, and trickle's.
#[derive(Clone, Default)]
pub(crate) struct Limiters {
    pub(crate) api: Option<Arc<RateLimiter>>,
    pub(crate) trickle: Option<Arc<RateLimiter>>,
}

impl Limiters {
    /// Buckets at `limit` (trickle's [`TRICKLE_FACTOR`] times larger); none without a limit.
    pub(crate) fn new(limit: Option<RateLimit>, trust_proxy: bool) -> Limiters {
        let Some(limit) = limit else {
            return Limiters::default();
        };
        let trickle = RateLimit {
            per_second: limit.per_second * f64::from(TRICKLE_FACTOR),
            burst: limit.burst.saturating_mul(TRICKLE_FACTOR),
        };
        Limiters {
            api: Some(Arc::new(RateLimiter::new(limit, trust_proxy))),
            trickle: Some(Arc::new(RateLimiter::new(trickle, trust_proxy))),
        }
    }

    /// Requests refused so far, over both buckets.
    pub(crate) fn refused(&self) -> u64 {
        [&self.api, &self.trickle]
            .into_iter()
            .flatten()
            .map(|l| l.refused())
            .sum()
    }
}

/// `POST /whip/{id}` or `POST /whep/{id}` (not `/whip/{id}/{resource}`).
pub(crate) fn creates_session(method: &Method, path: &str) -> bool {
    method == Method::POST && after_endpoint(path).is_some_and(segment)
}

/// The client a request is counted against.
fn client_ip(peer: Option<SocketAddr>, headers: &HeaderMap, trust_proxy: bool) -> IpAddr {
    let forwarded = trust_proxy
        .then(|| {
            // Only the last hop is the proxy's own word; earlier entries are the client's.
            headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .filter_map(|a| a.trim().parse::<IpAddr>().ok())
                .next_back()
        })
        .flatten();
    // Without a peer address (a server built without connect info) every client shares one
    // bucket: stricter than intended, never unlimited.
    let ip = forwarded
        .or(peer.map(|p| p.ip()))
        .unwrap_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED));
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

/// The client of a request as the limits count it (see [`client_ip`]); `None` when the
/// server has no peer address to go by.
pub(crate) struct Client(pub(crate) Option<IpAddr>);

impl FromRequestParts<AppState> for Client {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Infallible> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
        let ip = client_ip(peer, &parts.headers, state.config.trust_proxy);
        Ok(Client((!ip.is_unspecified()).then_some(ip)))
    }
}

/// Middleware: answer `429` to a client over its limit.
pub(crate) async fn limit(State(limiters): State<Limiters>, req: Request, next: Next) -> Response {
    let limiter = match bucket(req.method(), req.uri().path()) {
        Some(Bucket::Api) => limiters.api.as_ref(),
        Some(Bucket::Trickle) => limiters.trickle.as_ref(),
        None => None,
    };
    if let Some(limiter) = limiter {
        let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
        let client = client_ip(peer, req.headers(), limiter.trust_proxy);
        if let Err(wait) = limiter.check(client) {
            debug!(path = %req.uri().path(), "rate limited");
            let retry_after = wait.as_secs_f64().ceil().max(1.0) as u64;
            return ApiError::RateLimited { retry_after }.into_response();
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an IP address")
    }

    #[test]
    fn which_requests_count() {
        let api = Some(Bucket::Api);
        assert_eq!(bucket(&Method::GET, "/api/v1/streams/x"), api);
        assert_eq!(bucket(&Method::POST, "/api/v1/streams"), api);
        assert_eq!(bucket(&Method::POST, "/whip/abc"), api);
        assert_eq!(bucket(&Method::POST, "/whep/abc"), api);
        assert_eq!(bucket(&Method::PATCH, "/whip/abc/res"), Some(Bucket::Trickle));
        assert_eq!(bucket(&Method::PATCH, "/whep/abc/res"), Some(Bucket::Trickle));
        assert_eq!(bucket(&Method::PATCH, "/whep/abc/res/layer"), None);
        assert_eq!(bucket(&Method::DELETE, "/whep/abc/res"), None);
        assert_eq!(bucket(&Method::POST, "/whep/abc/res/layer"), None);
        assert_eq!(bucket(&Method::OPTIONS, "/whip/abc"), None);
        assert_eq!(bucket(&Method::GET, "/hls/abc/master.m3u8"), None);
        assert_eq!(bucket(&Method::GET, "/healthz"), None);
        assert_eq!(bucket(&Method::GET, "/readyz"), None);
        assert_eq!(bucket(&Method::GET, "/metrics"), None);
    }

    #[test]
    fn forwarded_for_only_behind_a_trusted_proxy() {
        let peer = Some(SocketAddr::from(([10, 0, 0, 1], 5000)));
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            "203.0.113.9, 198.51.100.7".parse().expect("header"),
        );
        assert_eq!(client_ip(peer, &h, false), ip("10.0.0.1"));
        assert_eq!(
            client_ip(peer, &h, true),
            ip("198.51.100.7"),
            "the entry the proxy appended, not the one the client wrote"
        );
        assert_eq!(client_ip(peer, &HeaderMap::new(), true), ip("10.0.0.1"));
        h.insert("x-forwarded-for", "garbage".parse().expect("header"));
        assert_eq!(client_ip(peer, &h, true), ip("10.0.0.1"));
    }

    #[test]
    fn ipv6_clients_are_their_64() {
        let a = client_ip(
            Some("[2001:db8:1:2:aaaa::1]:5000".parse().expect("addr")),
            &HeaderMap::new(),
            false,
        );
        let b = client_ip(
            Some("[2001:db8:1:2:bbbb::2]:5000".parse().expect("addr")),
            &HeaderMap::new(),
            false,
        );
        assert_eq!(a, b);
        assert_eq!(a, ip("2001:db8:1:2::"));
        let mapped = client_ip(
            Some("[::ffff:192.0.2.1]:5000".parse().expect("addr")),
            &HeaderMap::new(),
            false,
        );
        assert_eq!(mapped, ip("192.0.2.1"));
    }
}
