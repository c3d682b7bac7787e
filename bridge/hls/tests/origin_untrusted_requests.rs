//! Property tests: arbitrary paths and query strings sent to the origin's router never panic
//! and never answer 5xx, except the documented 503 of a blocking request (or hinted part) that
//! waited its limit.

mod common;

use std::time::SystemTime;

use axum::body::Body;
use axum::http::Request;
use common::{Feeder, tracks};
use hls::{MediaSink, Origin, OriginConfig, StreamConfig, router};
use proptest::prelude::*;
use tower::ServiceExt;

fn component() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("demo".to_owned()),
        Just("ended".to_owned()),
        Just("360p".to_owned()),
        Just("audio".to_owned()),
        Just("..".to_owned()),
        Just(".".to_owned()),
        Just(String::new()),
        Just("%2e%2e".to_owned()),
        Just("%2F".to_owned()),
        Just("master.m3u8".to_owned()),
        Just("live.m3u8".to_owned()),
        Just("dvr.m3u8".to_owned()),
        Just("vod.m3u8".to_owned()),
        (0u64..30).prop_map(|n| format!("s{n}.m4s")),
        (0u64..5, 0u32..15).prop_map(|(m, p)| format!("p{m}.{p}.m4s")),
        (0u32..3).prop_map(|g| format!("init{g}.mp4")),
        "[a-zA-Z0-9._~%!$&'()*+,;=:@-]{0,12}",
    ]
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u64..6).prop_map(|n| n.to_string()),
        (0u32..40).prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        Just("YES".to_owned()),
        Just("v2".to_owned()),
        Just("18446744073709551616".to_owned()),
        "[a-zA-Z0-9%.+-]{0,8}",
    ]
}

fn query() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("_HLS_msn"),
        Just("_HLS_part"),
        Just("_HLS_skip"),
        Just("sid"),
        Just(""),
    ];
    prop::collection::vec((key, prop::option::of(value())), 0..4).prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(k, v)| match v {
                Some(v) => format!("{k}={v}"),
                None => k.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("&")
    })
}

fn uri() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(component(), 0..5),
        prop::option::of(query()),
        any::<bool>(),
    )
        .prop_map(|(components, query, prefixed)| {
            let mut uri = if prefixed {
                "/hls/".to_owned()
            } else {
                "/".to_owned()
            };
            uri.push_str(&components.join("/"));
            if let Some(q) = query {
                uri.push('?');
                uri.push_str(&q);
            }
            uri
        })
}

fn setup() -> (Origin, hls::StreamSink) {
    let origin = Origin::new(OriginConfig::default()).expect("origin");
    let mut live = origin
        .create_stream("demo", StreamConfig::default())
        .expect("stream");
    live.start(tracks(), SystemTime::UNIX_EPOCH);
    Feeder::new().push_until(&mut live, 200);
    let mut ended = origin
        .create_stream("ended", StreamConfig::default())
        .expect("stream");
    ended.start(tracks(), SystemTime::UNIX_EPOCH);
    Feeder::new().push_until(&mut ended, 100);
    ended.finish();
    (origin, live)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_requests_never_panic_or_fail_on_the_server(uri in uri()) {
        let Ok(request) = Request::builder().uri(uri.as_str()).body(Body::empty()) else {
            return Ok(());
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("runtime");
        let (origin, _live) = setup();
        let status = runtime.block_on(async move {
            router(origin).oneshot(request).await.expect("infallible").status()
        });
        if status.is_server_error() {
            prop_assert_eq!(status.as_u16(), 503, "{}", uri);
            let waits = uri.contains("_HLS_msn") || uri.contains("/p");
            prop_assert!(waits, "503 only for a blocking request: {}", uri);
        }
    }
}
