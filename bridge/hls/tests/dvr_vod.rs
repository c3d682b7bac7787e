//! DVR and VOD on disk: segments are written under `<data_dir>/hls/<stream>/<rendition>/`,
//! those older than the DVR window are deleted, the DVR playlist serves older segments from
//! disk, and at the end a VOD playlist is written and served from disk, also after the stream
//! is removed from the registry.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use axum::http::StatusCode;
use common::{Feeder, get, tracks};
use hls::{MediaSink, Origin, OriginConfig, StreamConfig, router};

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hls-dvr-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Waits (in real time: the writer is a thread) until `done` holds.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..500 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

fn segments_on_disk(dir: &Path) -> Vec<u64> {
    let mut msns: Vec<u64> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter_map(|n| n.strip_prefix('s')?.strip_suffix(".m4s")?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    msns.sort();
    msns
}

#[tokio::test]
async fn dvr_window_on_disk_and_vod_after_the_end() {
    let data_dir = temp_dir();
    let origin = Origin::new(OriginConfig {
        data_dir: Some(data_dir.clone()),
        ..OriginConfig::default()
    })
    .expect("origin");
    let config = StreamConfig {
        live_window: Duration::from_secs(6),
        dvr_window: Duration::from_secs(12),
        ..StreamConfig::default()
    };
    let mut sink = origin.create_stream("show", config).expect("stream");
    sink.start(tracks(), SystemTime::UNIX_EPOCH);
    let router = router(origin.clone());
    // 20 s: segments 0..=9 complete.
    Feeder::new().push_until(&mut sink, 30 * 20 + 1);

    let dir = data_dir.join("hls/show/360p");
    // The DVR window keeps the last 12 s: segments 4..=9.
    eventually("old segments deleted", || {
        segments_on_disk(&dir) == (4..=9).collect::<Vec<_>>()
    })
    .await;
    assert!(dir.join("init0.mp4").exists());

    let dvr = get(&router, "/hls/show/360p/dvr.m3u8").await;
    assert_eq!(dvr.status, StatusCode::OK);
    let text = dvr.text();
    assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:4\n"), "{text}");
    assert!(
        !text.contains("EXT-X-PART") && !text.contains("ENDLIST"),
        "{text}"
    );
    // Segment 4 is out of the live window (6 s: 7..=9) but in the DVR window: from disk.
    let old = get(&router, "/hls/show/360p/s4.m4s").await;
    assert_eq!(old.status, StatusCode::OK);
    assert_eq!(
        old.body.as_ref(),
        std::fs::read(dir.join("s4.m4s")).expect("on disk").as_slice()
    );
    assert_eq!(
        get(&router, "/hls/show/360p/s3.m4s").await.status,
        StatusCode::NOT_FOUND
    );
    let master = get(&router, "/hls/show/dvr.m3u8").await.text();
    assert!(master.contains("\n360p/dvr.m3u8\n"), "{master}");
    assert_eq!(
        get(&router, "/hls/show/vod.m3u8").await.status,
        StatusCode::NOT_FOUND
    );

    sink.finish();
    let vod_path = dir.join("vod.m3u8");
    eventually("VOD playlist written", || {
        vod_path.exists() && data_dir.join("hls/show/vod.m3u8").exists()
    })
    .await;
    let vod = get(&router, "/hls/show/360p/vod.m3u8").await;
    assert_eq!(vod.status, StatusCode::OK);
    let text = vod.text();
    assert!(
        text.contains("#EXT-X-PLAYLIST-TYPE:VOD\n") && text.ends_with("#EXT-X-ENDLIST\n"),
        "{text}"
    );
    // The last segment (frame 600 alone) came with the end and pushed segment 4 out.
    assert!(
        text.contains("#EXT-X-MEDIA-SEQUENCE:5\n") && text.contains("s10.m4s"),
        "{text}"
    );
    let master = get(&router, "/hls/show/vod.m3u8").await.text();
    assert!(
        master.contains("\n360p/vod.m3u8\n") && master.contains("URI=\"audio/vod.m3u8\""),
        "{master}"
    );

    // Removed from the registry: the VOD and its media still come from disk.
    assert!(origin.remove_stream("show"));
    assert_eq!(
        get(&router, "/hls/show/master.m3u8").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&router, "/hls/show/360p/vod.m3u8").await.status,
        StatusCode::OK
    );
    assert_eq!(
        get(&router, "/hls/show/360p/s10.m4s").await.status,
        StatusCode::OK
    );
    assert_eq!(
        get(&router, "/hls/show/360p/init0.mp4").await.status,
        StatusCode::OK
    );
    assert_eq!(
        get(&router, "/hls/show/360p/p9.0.m4s").await.status,
        StatusCode::NOT_FOUND
    );

    // The same id going live again starts afresh: the old files go.
    let mut again = origin
        .create_stream("show", StreamConfig::default())
        .expect("stream again");
    again.start(tracks(), SystemTime::UNIX_EPOCH);
    eventually("old session deleted", || !vod_path.exists()).await;
    drop(again);
    // Ending the new (empty) session writes its VOD playlists, the disk thread's last jobs:
    // remove the dir after them, or they land in it again.
    let show = data_dir.join("hls/show");
    eventually("the new session's VOD playlists written", || {
        ["240p", "360p", "audio"]
            .iter()
            .all(|r| show.join(r).join("vod.m3u8").exists())
    })
    .await;
    let _ = std::fs::remove_dir_all(&data_dir);
}

#[tokio::test]
async fn stream_ids_are_checked_and_live_ids_are_not_reused() {
    let origin = Origin::new(OriginConfig::default()).expect("origin");
    assert!(origin.create_stream("../x", StreamConfig::default()).is_err());
    assert!(origin.create_stream("", StreamConfig::default()).is_err());
    let sink = origin
        .create_stream("a", StreamConfig::default())
        .expect("stream");
    assert!(matches!(
        origin.create_stream("a", StreamConfig::default()),
        Err(hls::OriginError::AlreadyLive(_))
    ));
    assert_eq!(origin.stream_ids(), ["a"]);
    // Dropping the sink ends the stream; the id may go live again.
    drop(sink);
    assert!(origin.stream("a").expect("still registered").is_ended());
    assert!(origin.create_stream("a", StreamConfig::default()).is_ok());
}
