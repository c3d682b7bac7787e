//! The origin over HTTP (in-process, `tower::ServiceExt::oneshot`), in paused tokio time:
//! playlists, blocking reload, preload hints, delta updates, media, errors and headers.

mod common;

use std::time::{Duration, SystemTime};

use axum::http::StatusCode;
use common::{Feeder, get, tracks};
use hls::{MediaSink, Origin, OriginConfig, StreamConfig, router};

fn origin_with_stream() -> (Origin, hls::StreamSink, axum::Router) {
    let origin = Origin::new(OriginConfig::default()).expect("origin");
    let mut sink = origin
        .create_stream("demo", StreamConfig::default())
        .expect("stream");
    sink.start(
        tracks(),
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_777_636_800),
    );
    let router = router(origin.clone());
    (origin, sink, router)
}

async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn multivariant_and_live_playlists() {
    let (_origin, mut sink, router) = origin_with_stream();
    Feeder::new().push_until(&mut sink, 75);

    let master = get(&router, "/hls/demo/master.m3u8").await;
    assert_eq!(master.status, StatusCode::OK);
    assert_eq!(master.header("content-type"), "application/vnd.apple.mpegurl");
    assert_eq!(master.header("access-control-allow-origin"), "*");
    let text = master.text();
    assert!(
        text.contains(
            "CODECS=\"avc1.64001e,mp4a.40.2\",RESOLUTION=640x360,FRAME-RATE=30.000,AUDIO=\"audio\""
        )
    );
    assert!(text.contains("\n360p/live.m3u8\n") && text.contains("\n240p/live.m3u8\n"));
    assert!(text.contains("#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\""));

    let live = get(&router, "/hls/demo/360p/live.m3u8").await;
    assert_eq!(live.status, StatusCode::OK);
    assert_eq!(live.header("cache-control"), "public, max-age=1");
    let text = live.text();
    // 75 frames: segment 0 (60 frames) complete, two parts of segment 1.
    assert!(text.contains("#EXTINF:2.00000,\ns0.m4s\n"), "{text}");
    assert!(
        text.contains("#EXT-X-PART:DURATION=0.20000,URI=\"p1.1.m4s\"\n"),
        "{text}"
    );
    assert!(
        text.contains("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"p1.2.m4s\"\n"),
        "{text}"
    );
    assert!(
        text.contains("#EXT-X-RENDITION-REPORT:URI=\"../240p/live.m3u8\",LAST-MSN=1,LAST-PART=1\n"),
        "{text}"
    );
    assert!(
        text.contains("#EXT-X-RENDITION-REPORT:URI=\"../audio/live.m3u8\",LAST-MSN=1,"),
        "{text}"
    );
    assert!(
        text.contains("#EXT-X-PROGRAM-DATE-TIME:2026-05-01T12:00:00.001Z\n"),
        "{text}"
    );

    let audio = get(&router, "/hls/demo/audio/live.m3u8").await.text();
    assert!(audio.contains("#EXT-X-PART-INF:PART-TARGET=0.22134\n"), "{audio}");
    // The audio segment ends with the frame before the one holding the video's 2 s cut.
    assert!(audio.contains("#EXTINF:1.98400,"), "{audio}");
}

#[tokio::test(start_paused = true)]
async fn blocking_reload_answers_when_the_part_is_published() {
    let (_origin, mut sink, router) = origin_with_stream();
    let mut feeder = Feeder::new();
    feeder.push_until(&mut sink, 75);

    // Part (1, 2) is next: the request waits for it.
    let pending = tokio::spawn({
        let router = router.clone();
        async move { get(&router, "/hls/demo/360p/live.m3u8?_HLS_msn=1&_HLS_part=2").await }
    });
    settle().await;
    assert!(!pending.is_finished(), "answered before the part exists");
    feeder.push_until(&mut sink, 78);
    settle().await;
    assert!(!pending.is_finished(), "answered before the part is complete");
    feeder.push_until(&mut sink, 79);
    let reply = pending.await.expect("request task");
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("cache-control"), "public, max-age=6");
    let text = reply.text();
    assert!(
        text.contains("URI=\"p1.2.m4s\"\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"p1.3.m4s\""),
        "{text}"
    );

    // Already there: answered at once. A whole segment: once it is complete.
    let ready = get(&router, "/hls/demo/360p/live.m3u8?_HLS_msn=0").await;
    assert_eq!(ready.status, StatusCode::OK);
    let pending = tokio::spawn({
        let router = router.clone();
        async move { get(&router, "/hls/demo/360p/live.m3u8?_HLS_msn=1").await }
    });
    feeder.push_until(&mut sink, 115);
    settle().await;
    assert!(!pending.is_finished());
    feeder.push_until(&mut sink, 121);
    let text = pending.await.expect("request task").text();
    assert!(text.contains("#EXTINF:2.00000,\ns1.m4s\n"), "{text}");
}

#[tokio::test(start_paused = true)]
async fn requests_released_together_share_one_rendering() {
    let (origin, mut sink, router) = origin_with_stream();
    let mut feeder = Feeder::new();
    feeder.push_until(&mut sink, 75);
    let held: Vec<_> = (0..50)
        .map(|i| {
            let router = router.clone();
            let skip = if i % 2 == 0 { "" } else { "&_HLS_skip=YES" };
            tokio::spawn(async move {
                get(
                    &router,
                    &format!("/hls/demo/360p/live.m3u8?_HLS_msn=1&_HLS_part=2{skip}"),
                )
                .await
            })
        })
        .collect();
    settle().await;
    feeder.push_until(&mut sink, 79);
    let mut bodies = Vec::new();
    for pending in held {
        let reply = pending.await.expect("request task");
        assert_eq!(reply.status, StatusCode::OK);
        bodies.push(reply.body);
    }
    // Same snapshot, same query: the same bytes, rendered once (one allocation).
    let view = origin.stream("demo").expect("stream").view();
    let full = view.live_playlist("360p", false).expect("rendition");
    // (Two segments: nothing old enough to skip yet, but the delta has its own slot.)
    let delta = view.live_playlist("360p", true).expect("rendition");
    for (i, body) in bodies.iter().enumerate() {
        let want = if i % 2 == 0 { &full } else { &delta };
        assert_eq!(body, want, "request {i}");
    }
    assert_eq!(
        view.live_playlist("360p", false).expect("rendition").as_ptr(),
        full.as_ptr()
    );
    assert!(view.live_playlist("1080p", false).is_none());
}

#[tokio::test(start_paused = true)]
async fn blocking_reload_limits() {
    let (_origin, mut sink, router) = origin_with_stream();
    Feeder::new().push_until(&mut sink, 75);

    let too_far = get(&router, "/hls/demo/360p/live.m3u8?_HLS_msn=4").await;
    assert_eq!(too_far.status, StatusCode::BAD_REQUEST);
    assert_eq!(too_far.header("cache-control"), "no-store");

    // Nothing is pushed: the wait ends after three target durations with a 503.
    let started = tokio::time::Instant::now();
    let timed_out = get(&router, "/hls/demo/360p/live.m3u8?_HLS_msn=2").await;
    assert_eq!(timed_out.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(tokio::time::Instant::now() - started, Duration::from_secs(6));
    assert_eq!(timed_out.header("retry-after"), "1");

    // Once the stream ends, every blocking request is answered with the final playlist.
    sink.finish();
    let ended = get(&router, "/hls/demo/360p/live.m3u8?_HLS_msn=2&_HLS_part=0").await;
    assert_eq!(ended.status, StatusCode::OK);
    assert!(ended.text().ends_with("#EXT-X-ENDLIST\n"));
    assert!(!ended.text().contains("PRELOAD-HINT"));
}

#[tokio::test(start_paused = true)]
async fn the_hinted_part_is_served_when_complete() {
    let (_origin, mut sink, router) = origin_with_stream();
    let mut feeder = Feeder::new();
    feeder.push_until(&mut sink, 75);
    let pending = tokio::spawn({
        let router = router.clone();
        async move { get(&router, "/hls/demo/360p/p1.2.m4s").await }
    });
    settle().await;
    assert!(!pending.is_finished());
    feeder.push_until(&mut sink, 79);
    let part = pending.await.expect("request task");
    assert_eq!(part.status, StatusCode::OK);
    assert_eq!(
        part.header("cache-control"),
        "public, max-age=31536000, immutable"
    );
    assert_eq!(&part.body[4..8], b"moof");

    // A part further ahead than the hint is not waited for.
    let ahead = get(&router, "/hls/demo/360p/p1.5.m4s").await;
    assert_eq!(ahead.status, StatusCode::NOT_FOUND);
    assert_eq!(ahead.header("cache-control"), "no-store");
}

#[tokio::test(start_paused = true)]
async fn media_is_immutable_and_a_segment_is_its_parts() {
    let (_origin, mut sink, router) = origin_with_stream();
    Feeder::new().push_until(&mut sink, 130);
    let init = get(&router, "/hls/demo/360p/init0.mp4").await;
    assert_eq!(init.status, StatusCode::OK);
    assert_eq!(&init.body[4..8], b"ftyp");
    assert_eq!(init.header("content-type"), "video/mp4");
    let audio_init = get(&router, "/hls/demo/audio/init0.mp4").await;
    assert_eq!(audio_init.header("content-type"), "audio/mp4");

    let segment = get(&router, "/hls/demo/360p/s1.m4s").await;
    assert_eq!(segment.status, StatusCode::OK);
    assert_eq!(
        segment.header("cache-control"),
        "public, max-age=31536000, immutable"
    );
    let mut parts = Vec::new();
    for index in 0..10 {
        let part = get(&router, &format!("/hls/demo/360p/p1.{index}.m4s")).await;
        assert_eq!(part.status, StatusCode::OK, "part {index}");
        parts.extend_from_slice(&part.body);
    }
    assert_eq!(segment.body.as_ref(), parts.as_slice());
    assert_eq!(
        get(&router, "/hls/demo/360p/s9.m4s").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&router, "/hls/demo/360p/init1.mp4").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(start_paused = true)]
async fn delta_updates_skip_old_segments() {
    let (_origin, mut sink, router) = origin_with_stream();
    Feeder::new().push_until(&mut sink, 30 * 26 + 7);
    let full = get(&router, "/hls/demo/360p/live.m3u8").await.text();
    let delta = get(&router, "/hls/demo/360p/live.m3u8?_HLS_skip=YES")
        .await
        .text();
    assert!(full.contains("#EXT-X-MEDIA-SEQUENCE:"));
    let skipped = delta
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-SKIP:SKIPPED-SEGMENTS="))
        .and_then(|n| n.parse::<usize>().ok())
        .expect("a skip tag");
    assert!(skipped > 0);
    assert_eq!(
        full.matches("#EXTINF").count(),
        delta.matches("#EXTINF").count() + skipped,
        "the delta lists the rest"
    );
    assert!(delta.len() < full.len());
}

#[tokio::test(start_paused = true)]
async fn errors_are_short_and_uncached() {
    let (_origin, mut sink, router) = origin_with_stream();
    Feeder::new().push_until(&mut sink, 10);
    for (uri, status) in [
        ("/hls/nope/master.m3u8", StatusCode::NOT_FOUND),
        ("/hls/demo/1080p/live.m3u8", StatusCode::NOT_FOUND),
        ("/hls/demo/360p/chunk.ts", StatusCode::NOT_FOUND),
        ("/hls/demo/../demo/master.m3u8", StatusCode::BAD_REQUEST),
        ("/hls/demo/360p%2F..%2Flive.m3u8", StatusCode::BAD_REQUEST),
        ("/hls/demo/360p/live.m3u8?_HLS_msn=x", StatusCode::BAD_REQUEST),
        ("/hls/demo/360p/live.m3u8?_HLS_part=1", StatusCode::BAD_REQUEST),
        (
            "/hls/demo/360p/live.m3u8?_HLS_msn=1&_HLS_skip=maybe",
            StatusCode::BAD_REQUEST,
        ),
        ("/hls/demo/360p/vod.m3u8", StatusCode::NOT_FOUND),
    ] {
        let reply = get(&router, uri).await;
        assert_eq!(reply.status, status, "{uri}");
        assert_eq!(reply.header("cache-control"), "no-store", "{uri}");
        assert!(
            reply.body.len() < 100 && reply.text().ends_with('\n'),
            "{uri}: {}",
            reply.text()
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_source_change_is_a_discontinuity_with_a_new_init_segment() {
    let (_origin, mut sink, router) = origin_with_stream();
    let mut feeder = Feeder::new();
    feeder.push_until(&mut sink, 100);
    sink.start(
        tracks(),
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_777_637_000),
    );
    Feeder::new().push_until(&mut sink, 70);
    let text = get(&router, "/hls/demo/360p/live.m3u8").await.text();
    assert!(
        text.contains("#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init1.mp4\"\n"),
        "{text}"
    );
    assert!(
        text.contains("#EXT-X-PROGRAM-DATE-TIME:2026-05-01T12:03:20.001Z\n"),
        "{text}"
    );
    assert_eq!(
        get(&router, "/hls/demo/360p/init1.mp4").await.status,
        StatusCode::OK
    );
}

#[tokio::test(start_paused = true)]
async fn cors_preflights_are_answered() {
    use tower::ServiceExt;
    let (_origin, _sink, router) = origin_with_stream();
    let request = axum::http::Request::builder()
        .method("OPTIONS")
        .uri("/hls/demo/360p/live.m3u8?_HLS_msn=1")
        .header("origin", "https://player.example")
        .header("access-control-request-method", "GET")
        .body(axum::body::Body::empty())
        .expect("request");
    let reply = common::reply(router.oneshot(request).await.expect("infallible")).await;
    assert!(reply.status.is_success(), "{}", reply.status);
    assert_eq!(reply.header("access-control-allow-origin"), "*");
}
