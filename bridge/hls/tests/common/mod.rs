//! Synthetic media for the origin tests: a 30 fps H.264 track (real parameter sets, dummy
//! slices, IDR every 2 s) and 48 kHz AAC, pushed in time order.

#![allow(dead_code)]

pub mod ffmpeg;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, Response, StatusCode};
use bytes::Bytes;
use hls::{AccessUnit, MediaSink, TrackConfig};
use tower::ServiceExt;

pub fn tracks() -> Vec<TrackConfig> {
    let sps = Bytes::from_static(&[
        0x67, 0x64, 0x00, 0x1e, 0xac, 0xb2, 0x01, 0x40, 0x5f, 0xf2, 0xe0, 0x22, 0x00, 0x00, 0x03, 0x00, 0x02,
        0x00, 0x00, 0x03, 0x00, 0x78, 0x1e, 0x2c, 0x5c, 0x90,
    ]);
    let pps = Bytes::from_static(&[0x68, 0xeb, 0xc3, 0xcb, 0x22, 0xc0]);
    vec![
        TrackConfig::H264 {
            width: 640,
            height: 360,
            frame_rate: (30, 1),
            bitrate: 800_000,
            sps: vec![sps.clone()],
            pps: vec![pps.clone()],
        },
        TrackConfig::H264 {
            width: 426,
            height: 240,
            frame_rate: (30, 1),
            bitrate: 400_000,
            sps: vec![sps],
            pps: vec![pps],
        },
        TrackConfig::Aac {
            sample_rate: 48_000,
            channels: 2,
            bitrate: 128_000,
            audio_specific_config: Bytes::from_static(&[0x11, 0x90]),
        },
    ]
}

/// Pushes media of the three tracks of [`tracks`], in time order, from `from` to `to` (video
/// frame indices at 30 fps; audio follows the same clock).
pub struct Feeder {
    video: u64,
    audio: u64,
}

impl Feeder {
    pub fn new() -> Self {
        Self { video: 0, audio: 0 }
    }

    fn video_time(frame: u64) -> Duration {
        Duration::from_nanos(frame * 1_000_000_000 / 30)
    }

    fn audio_time(frame: u64) -> Duration {
        Duration::from_nanos(frame * 1024 * 1_000_000_000 / 48_000)
    }

    /// Pushes up to (not including) video frame `until`.
    pub fn push_until(&mut self, sink: &mut dyn MediaSink, until: u64) {
        while self.video < until {
            let vt = Self::video_time(self.video);
            let at = Self::audio_time(self.audio);
            if at <= vt {
                let au = AccessUnit {
                    pts: at,
                    dts: at,
                    keyframe: true,
                    data: Bytes::from(vec![0x21; 40]),
                };
                sink.push(2, au);
                self.audio += 1;
            } else {
                let keyframe = self.video.is_multiple_of(60);
                let data = Bytes::from(vec![0u8, 0, 0, 2, if keyframe { 0x65 } else { 0x41 }, 0x88]);
                for track in [0, 1] {
                    sink.push(
                        track,
                        AccessUnit {
                            pts: vt,
                            dts: vt,
                            keyframe,
                            data: data.clone(),
                        },
                    );
                }
                self.video += 1;
            }
        }
    }
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }
}

pub async fn reply(response: Response<Body>) -> Reply {
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    Reply {
        status,
        headers,
        body,
    }
}

pub async fn get(router: &axum::Router, uri: &str) -> Reply {
    let request = Request::builder().uri(uri).body(Body::empty()).expect("request");
    reply(router.clone().oneshot(request).await.expect("infallible")).await
}
