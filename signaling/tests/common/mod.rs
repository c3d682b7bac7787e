//! An in-process signaling router over a real (loopback) SFU, driven with
//! `tower::ServiceExt::oneshot`.

#![allow(dead_code)]

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, Response};
use signaling::{AppState, Db, RateLimit, SignalConfig};
use tower::ServiceExt;

pub async fn app(rate_limit: Option<RateLimit>, trust_proxy: bool) -> (Router, AppState) {
    let db = Db::in_memory().expect("database");
    let sfu = sfu::Sfu::start(sfu::SfuConfig {
        udp_port: 0,
        ips: vec![IpAddr::from([127, 0, 0, 1])],
        workers: 1,
        ..sfu::SfuConfig::default()
    })
    .expect("SFU on loopback");
    let state = AppState::new(
        db,
        sfu.handle(),
        SignalConfig {
            admin_token: "admin".into(),
            public_url: None,
            web_dir: PathBuf::from("/nonexistent"),
            grace: Duration::from_secs(5),
            chat: None,
            turn: None,
            viewer_auth: std::sync::Arc::new(
                signaling::ViewerAuth::new(b"test-secret".to_vec(), Vec::new()).expect("no keys"),
            ),
            ingest: signaling::IngestUrls::default(),
            audience: audience::Audience::in_process(audience::Window::new(Duration::from_secs(120))),
            webhooks: None,
            rate_limit,
            trust_proxy,
            bridge: None,
            sources: None,
            hls: None,
        },
    )
    .await;
    (signaling::router(state.clone()), state)
}

/// A request as if it came from `from` (what `into_make_service_with_connect_info` adds).
pub fn request(method: Method, path: &str, from: [u8; 4], body: &str) -> Request<Body> {
    let mut r = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/sdp")
        .body(Body::from(body.to_string()))
        .expect("valid request");
    r.extensions_mut()
        .insert(ConnectInfo(SocketAddr::from((from, 40_000))));
    r
}

pub async fn send(app: &Router, req: Request<Body>) -> (Response<Body>, String) {
    let res = app.clone().oneshot(req).await.expect("infallible");
    let (parts, body) = res.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.expect("body");
    (
        Response::from_parts(parts, Body::empty()),
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}
