//! Per-client request limits on the API and on WHIP/WHEP session creation.
//!
//! Limited: everything under `/api/`, and `POST /whip/{id}` / `POST /whep/{id}` (each one
//! builds a WebRTC session). Not limited: trickle `PATCH`, `DELETE`, media (`/hls/`), pages,
//! health checks and `/metrics`, which an established client or a monitor needs to reach.
//!
//! A client is its IP address (an IPv6 client its /64, which one host usually owns whole);
//! behind a reverse proxy (`--trust-proxy`) the address the proxy appended to
//! `X-Forwarded-For`. Buckets that have refilled are forgotten, so memory follows the
//! clients active in the last few seconds.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::{debug, warn};

use crate::app::{AppState, lock};
use crate::error::ApiError;
use crate::token_bucket::{RateLimit, TokenBucket};

/// How often full buckets are swept out.
const SWEEP_EVERY: Duration = Duration::from_secs(10);
/// Clients tracked at most; past this (after a sweep), new clients are not limited rather
/// than memory growing without bound.
const MAX_CLIENTS: usize = 100_000;

struct Buckets {
    map: HashMap<IpAddr, TokenBucket>,
    swept: Instant,
}

/// Buckets of every recent client.
pub(crate) struct RateLimiter {
    limit: RateLimit,
    buckets: Mutex<Buckets>,
    refused: AtomicU64,
}

impl RateLimiter {
    pub(crate) fn new(limit: RateLimit) -> RateLimiter {
        RateLimiter {
            limit,
            buckets: Mutex::new(Buckets {
                map: HashMap::new(),
                swept: Instant::now(),
            }),
            refused: AtomicU64::new(0),
        }
    }

    /// Count one request from `client`: `Err(wait)` when it is over its limit.
    pub(crate) fn check(&self, client: IpAddr, now: Instant) -> Result<(), Duration> {
        let mut b = lock(&self.buckets);
        let since = now.saturating_duration_since(b.swept);
        if since >= SWEEP_EVERY || (b.map.len() >= MAX_CLIENTS && since >= Duration::from_secs(1)) {
            let before = b.map.len();
            b.map.retain(|_, bucket| !bucket.is_full(&self.limit, now));
            b.swept = now;
            if b.map.len() >= MAX_CLIENTS && before >= MAX_CLIENTS {
                warn!("{MAX_CLIENTS} clients over their API rate at once; new clients are not limited");
            }
        }
        let full = b.map.len() >= MAX_CLIENTS;
        let result = match b.map.get_mut(&client) {
            Some(bucket) => bucket.take(&self.limit, now),
            None if full => Ok(()),
            None => {
                let mut bucket = TokenBucket::full(&self.limit, now);
                let r = bucket.take(&self.limit, now);
                b.map.insert(client, bucket);
                r
            }
        };
        if result.is_err() {
            self.refused.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    /// Requests refused so far.
    pub(crate) fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    #[cfg(test)]
    fn clients(&self) -> usize {
        lock(&self.buckets).map.len()
    }
}

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
pub(crate) async fn limit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if let Some(limiter) = &state.inner.limiter
        && is_limited(req.method(), req.uri().path())
    {
        let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
        let client = client_ip(peer, req.headers(), state.inner.config.trust_proxy);
        if let Err(wait) = limiter.check(client, Instant::now()) {
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

    const LIMIT: RateLimit = RateLimit {
        per_second: 20.0,
        burst: 40,
    };

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an IP address")
    }

    #[test]
    fn clients_have_separate_buckets() {
        let l = RateLimiter::new(LIMIT);
        let t0 = Instant::now();
        for _ in 0..40 {
            l.check(ip("192.0.2.1"), t0).expect("within the burst");
        }
        assert!(l.check(ip("192.0.2.1"), t0).is_err());
        assert_eq!(l.check(ip("192.0.2.2"), t0), Ok(()));
        assert_eq!(l.refused(), 1);
    }

    #[test]
    fn idle_buckets_are_swept() {
        let l = RateLimiter::new(LIMIT);
        let t0 = Instant::now();
        for i in 0..50u8 {
            l.check(IpAddr::from([198, 51, 100, i]), t0)
                .expect("first request");
        }
        // A busy client: its bucket takes 2 s to refill.
        for _ in 0..40 {
            l.check(ip("192.0.2.1"), t0 + Duration::from_secs(9))
                .expect("within the burst");
        }
        assert_eq!(l.clients(), 51, "no sweep before {SWEEP_EVERY:?}");
        l.check(ip("192.0.2.2"), t0 + SWEEP_EVERY).expect("ok");
        assert_eq!(l.clients(), 2, "refilled buckets are gone, recent ones stay");
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
