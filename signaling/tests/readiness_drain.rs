//! `/readyz` and the drain: while draining, readiness fails and new sessions are refused,
//! and everything else still answers.

mod common;

use std::time::Duration;

use axum::http::{Method, StatusCode};
use common::{app, request, send};

const A: [u8; 4] = [192, 0, 2, 1];

#[tokio::test]
async fn draining_fails_readiness_and_refuses_new_sessions() {
    let (app, state) = app(None, false).await;
    let (res, body) = send(&app, request(Method::GET, "/readyz", A, "")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(body, "ready");
    assert_eq!(res.headers()["cache-control"], "no-store");

    // Nothing open: the drain is over at once.
    tokio::time::timeout(Duration::from_secs(5), state.drain(Duration::from_secs(30)))
        .await
        .expect("a drain with no sessions does not wait for the window");
    assert!(state.draining());

    let (res, body) = send(&app, request(Method::GET, "/readyz", A, "")).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body, "not ready: draining");
    let (res, _) = send(&app, request(Method::GET, "/healthz", A, "")).await;
    assert_eq!(res.status(), StatusCode::OK, "alive while draining");

    for path in ["/whep/any", "/whip/any"] {
        let (res, body) = send(&app, request(Method::POST, path, A, "v=0")).await;
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert_eq!(res.headers()["retry-after"], "2");
        let v: serde_json::Value = serde_json::from_str(&body).expect("JSON error");
        assert_eq!(v["error"], "draining");
    }
    let (res, _) = send(&app, request(Method::GET, "/api/v1/streams/nope", A, "")).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND, "the API still answers");
    let (res, _) = send(&app, request(Method::DELETE, "/whep/any/res", A, "")).await;
    assert_eq!(
        res.status(),
        StatusCode::NOT_FOUND,
        "DELETE still reaches its handler"
    );
}
