//! An independent HLS client reads the origin over real HTTP: ffmpeg-encoded x264 + AAC go
//! through a stream sink, the router is served on loopback, and ffprobe opens the multivariant
//! playlist, follows it to the media playlists, init segments and segments, and decodes every
//! frame of both renditions.
//!
//! ffmpeg and ffprobe must be installed; the test fails (it does not skip) without them.

mod common;

use std::time::SystemTime;

use common::ffmpeg::{ffprobe_frames, push_interleaved, temp_dir, test_media};
use hls::{MediaSink, Origin, OriginConfig, StreamConfig, router};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffprobe_plays_the_stream_over_http() {
    let dir = temp_dir("playback");
    let (video, audio_config, audio) = test_media(&dir);
    let origin = Origin::new(OriginConfig::default()).expect("origin");
    let mut sink = origin
        .create_stream("demo", StreamConfig::default())
        .expect("stream");
    sink.start(vec![video.config.clone(), audio_config], SystemTime::now());
    push_interleaved(&mut sink, &video.units, &audio);
    sink.finish();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local address");
    let server = tokio::spawn(async move { axum::serve(listener, router(origin)).await });

    let url = format!("http://{addr}/hls/demo/master.m3u8");
    let streams = tokio::task::spawn_blocking(move || ffprobe_frames(&url))
        .await
        .expect("ffprobe task");
    server.abort();
    let _ = std::fs::remove_dir_all(&dir);

    let frames = |codec: &str| streams.iter().filter(|(c, _)| c == codec).map(|(_, n)| *n).max();
    assert_eq!(frames("h264"), Some(video.units.len() as u64), "{streams:?}");
    assert_eq!(frames("aac"), Some(audio.len() as u64), "{streams:?}");
}
