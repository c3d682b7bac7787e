//! Independent-stack peers, fixtures and load tools for testing Fanout end to end.
//!
//! Everything here talks to a server only through its public surface (HTTP + WebRTC), with
//! stacks that share no code with it (webrtc-rs for the publisher and viewer, str0m in RTP mode
//! for the load generator), so the same tools can point at another server:
//!
//! - [`fixtures`]: real VP8 / H.264 / Opus files made once by ffmpeg and cached.
//! - [`whip::Publisher`]: a webrtc-rs WHIP publisher sending those files in real time (also the
//!   OBS-shaped client: H.264 + Opus, non-trickle, Bearer key, DELETE on stop).
//! - [`whep::Viewer`]: a webrtc-rs WHEP viewer that counts packets, frames, keyframes, sequence
//!   gaps and delivery lag, and times the first packet and keyframe.
//! - [`loadgen`]: thousands of str0m WHEP subscribers on one thread, measuring loss and the
//!   server's CPU per forwarded packet.
//! - [`hls_load`]: simulated low-latency HLS players (hls.js-shaped) against an origin or a
//!   cache in front of it, held blocking requests, parts per second.
//! - [`api::ApiClient`]: the stream API (create a stream, read its status).
//! - [`redis_server::Redis`]: a private redis-server (other crates' tests include the file).
//! - Pure pieces, unit-tested: [`keyframe`], [`sequence`], [`frame`], [`lag`].
//!
//! Binaries: `fanout-publish` (publish for N seconds), `fanout-view` (watch and print the
//! viewer's stats as JSON), `fanout-loadgen` (fan-out load, table or JSON), `fanout-hls-load`
//! (LL-HLS load, table or JSON), `fanout-udp-floor` (the cheapest UDP fan-out and a sink that
//! counts it: the floor under a server's CPU per packet).
//!
//! In a test (tokio runtime, inside a network namespace):
//!
//! ```no_run
//! # async fn t() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use fanout_tests::{api::ApiClient, whep::{Viewer, ViewOptions}, whip::{Publisher, PublishOptions}};
//! let api = ApiClient::new("http://127.0.0.1:18080", "admin-token")?;
//! let stream = api.create_stream("t").await?;
//! let publisher = Publisher::publish(&stream.whip_url, &stream.stream_key, PublishOptions::obs()).await?;
//! let viewer = Viewer::subscribe(&stream.whep_url, ViewOptions::default()).await?;
//! let stats = viewer
//!     .wait_for(Duration::from_secs(10), |s| s.video.keyframes >= 2)
//!     .await
//!     .map_err(|last| format!("no keyframes: {last:?}"))?;
//! assert_eq!(stats.video.lost, 0);
//! viewer.stop().await?;
//! publisher.stop().await?;
//! # Ok(()) }
//! ```
//!
//! Media only ever binds loopback by default, and remote ICE candidates are narrowed to
//! loopback ([`signal::IcePolicy`]). WebRTC between two processes on one machine needs a fresh
//! network namespace: run under `unshare -n` with `ip link set lo up`.

pub mod api;
pub mod codec;
pub mod fixtures;
pub mod frame;
pub mod hls_load;
pub mod keyframe;
pub mod lag;
pub mod loadgen;
pub mod peer;
pub mod prometheus;
pub mod redis_server;
#[cfg(test)]
mod reflector;
pub mod sequence;
pub mod signal;
pub mod whep;
pub mod whip;
