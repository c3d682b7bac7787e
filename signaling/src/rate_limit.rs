//! Per-client request limits on the API and on WHIP/WHEP session creation.
//!
//! Limited: everything under `/api/`, and `POST /whip/{id}` / `POST /whep/{id}` (each one
//! builds a WebRTC session). Not limited: trickle `PATCH`, `DELETE`, media (`/hls/`), pages,
//! health checks and `/metrics`, which an established client or a monitor needs to reach.
//!
//! A client is its IP address (an IPv6 client its /64, which one host usually owns whole);
//! behind a reverse proxy (`--trust-proxy`) the address the proxy appended to
//! `X-Forwarded-For`. The buckets themselves are in [`RateLimiter`].

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::debug;

use crate::error::ApiError;
use crate::rate_limiter::RateLimiter;

/// Whether a request counts against its client's limit.
fn is_limited(method: &Method, path: &str) -> bool {
    path.starts_with("/api/") || creates_session(method, path)
}

/// `POST /whip/{id}` or `POST /whep/{id}` (not `/whip/{id}/{resource}`).
pub(crate) fn creates_session(method: &Method, path: &str) -> bool {
    let endpoint = |prefix: &str| {
        path.strip_prefix(prefix)
            .is_some_and(|id| !id.is_empty() && !id.contains('/'))
    };
    method == Method::POST && (endpoint("/whip/") || endpoint("/whep/"))
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

/// Middleware: answer `429` to a client over its limit.
pub(crate) async fn limit(
    State(limiter): State<Option<Arc<RateLimiter>>>,
    req: Request,
    next: Next,
) -> Response {
    if let Some(limiter) = &limiter
        && is_limited(req.method(), req.uri().path())
    {
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
        assert!(is_limited(&Method::GET, "/api/v1/streams/x"));
        assert!(is_limited(&Method::POST, "/api/v1/streams"));
        assert!(is_limited(&Method::POST, "/whip/abc"));
        assert!(is_limited(&Method::POST, "/whep/abc"));
        assert!(!is_limited(&Method::PATCH, "/whip/abc/res"));
        assert!(!is_limited(&Method::DELETE, "/whep/abc/res"));
        assert!(!is_limited(&Method::POST, "/whep/abc/res/layer"));
        assert!(!is_limited(&Method::OPTIONS, "/whip/abc"));
        assert!(!is_limited(&Method::GET, "/hls/abc/master.m3u8"));
        assert!(!is_limited(&Method::GET, "/healthz"));
        assert!(!is_limited(&Method::GET, "/readyz"));
        assert!(!is_limited(&Method::GET, "/metrics"));
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
