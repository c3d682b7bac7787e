//! Per-client rate limits on the API and on WHIP/WHEP session creation, through the real
//! router.

mod common;

use axum::http::{Method, StatusCode};
use common::{app, request, send};
use signaling::RateLimit;

/// Practically no refill during a test, so the burst alone decides (no timing in the test).
const SLOW: RateLimit = RateLimit {
    per_second: 0.01,
    burst: 40,
};

const A: [u8; 4] = [192, 0, 2, 1];
const B: [u8; 4] = [192, 0, 2, 2];

#[tokio::test]
async fn the_41st_burst_request_gets_429_and_another_client_is_unaffected() {
    let (app, _state) = app(Some(SLOW), false).await;
    for i in 0..40 {
        let (res, _) = send(&app, request(Method::GET, "/api/v1/streams/nope", A, "")).await;
        assert_eq!(
            res.status(),
            StatusCode::NOT_FOUND,
            "request {i} is within the burst"
        );
    }
    let (res, body) = send(&app, request(Method::GET, "/api/v1/streams/nope", A, "")).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(res.headers()["retry-after"], "100", "one token per 100 s");
    assert_eq!(res.headers()["content-type"], "application/json");
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON error");
    assert_eq!(v["error"], "rate_limited");
    assert!(v["message"].as_str().is_some_and(|m| m.contains("100 s")), "{v}");

    let (res, _) = send(&app, request(Method::GET, "/api/v1/streams/nope", B, "")).await;
    assert_eq!(
        res.status(),
        StatusCode::NOT_FOUND,
        "another client has its own bucket"
    );

    let (res, _) = send(&app, request(Method::GET, "/metrics", A, "")).await;
    assert_eq!(res.status(), StatusCode::OK, "/metrics is not limited");
    let (_, metrics) = send(&app, request(Method::GET, "/metrics", A, "")).await;
    assert!(metrics.contains("fanout_api_rate_limited_total 1\n"), "{metrics}");
}

#[tokio::test]
async fn session_creation_counts_delete_and_health_do_not() {
    let (app, _state) = app(Some(SLOW), false).await;
    for _ in 0..20 {
        send(&app, request(Method::POST, "/whep/nope", A, "v=0")).await;
        send(&app, request(Method::POST, "/whip/nope", A, "v=0")).await;
    }
    let (res, _) = send(&app, request(Method::POST, "/whep/nope", A, "v=0")).await;
    assert_eq!(
        res.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "WHIP/WHEP POSTs are counted"
    );
    let (res, _) = send(&app, request(Method::PATCH, "/whep/nope/res", A, "")).await;
    assert_ne!(
        res.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "trickle PATCH has its own bucket"
    );
    let (res, _) = send(&app, request(Method::DELETE, "/whip/nope/res", A, "")).await;
    assert_ne!(res.status(), StatusCode::TOO_MANY_REQUESTS, "DELETE is not");
    let (res, _) = send(&app, request(Method::GET, "/healthz", A, "")).await;
    assert_eq!(res.status(), StatusCode::OK, "health checks are not");
    let (res, _) = send(&app, request(Method::GET, "/readyz", A, "")).await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn trickle_patch_has_a_bucket_five_times_larger() {
    let (app, _state) = app(Some(SLOW), false).await;
    let burst = SLOW.burst as usize * 5;
    for i in 0..burst {
        let (res, _) = send(&app, request(Method::PATCH, "/whep/nope/res", A, "")).await;
        assert_ne!(
            res.status(),
            StatusCode::TOO_MANY_REQUESTS,
            "PATCH {i} is within the burst"
        );
    }
    let (res, body) = send(&app, request(Method::PATCH, "/whip/nope/res", A, "")).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(res.headers().contains_key("retry-after"));
    // The API bucket is untouched, and so is another client's trickle.
    let (res, _) = send(&app, request(Method::GET, "/api/v1/streams/nope", A, "")).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let (res, _) = send(&app, request(Method::PATCH, "/whep/nope/res", B, "")).await;
    assert_ne!(res.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn forwarded_for_is_honoured_only_when_trusted() {
    let forwarded = |ip: &str| {
        let mut r = request(Method::GET, "/api/v1/streams/nope", A, "");
        r.headers_mut()
            .insert("x-forwarded-for", ip.parse().expect("header"));
        r
    };
    let (trusting, _s) = app(Some(SLOW), true).await;
    for _ in 0..40 {
        send(&trusting, forwarded("203.0.113.1")).await;
    }
    let (res, _) = send(&trusting, forwarded("203.0.113.1")).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let (res, _) = send(&trusting, forwarded("203.0.113.2")).await;
    assert_eq!(
        res.status(),
        StatusCode::NOT_FOUND,
        "behind the proxy, clients are told apart by X-Forwarded-For"
    );

    let (direct, _s) = app(Some(SLOW), false).await;
    for i in 0..40 {
        send(&direct, forwarded(&format!("203.0.113.{i}"))).await;
    }
    let (res, _) = send(&direct, forwarded("203.0.113.200")).await;
    assert_eq!(
        res.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "without --trust-proxy a client cannot escape its limit with the header"
    );
}

#[tokio::test]
async fn no_limit_configured_means_none() {
    let (app, _state) = app(None, false).await;
    for _ in 0..100 {
        let (res, _) = send(&app, request(Method::GET, "/api/v1/streams/nope", A, "")).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
    }
}
