//! Independent-stack peers, fixtures and load tools for testing Fanout end to end.
//!
//! Everything here talks to a server only through its public surface (HTTP + WebRTC), with
//! stacks that share no code with it, so the same tools can point at another server:
//!
//! - [`fixtures`]: real VP8 / H.264 / Opus files made once by ffmpeg and cached.
//! - [`whip::Publisher`]: a webrtc-rs WHIP publisher sending those files in real time (also the
//!   OBS-shaped client: H.264 + Opus, non-trickle, Bearer key, DELETE on stop).
//! - [`whep::Viewer`]: a webrtc-rs WHEP viewer that counts packets, frames, keyframes and
//!   sequence gaps, and times the first packet and keyframe.
//! - [`loadgen`]: thousands of str0m WHEP subscribers on one thread, measuring loss and the
//!   server's CPU per forwarded packet (also the `fanout-loadgen` binary).
//! - [`api::ApiClient`]: the stream API (create a stream, read its status).
//!
//! Media only ever binds loopback by default, and remote ICE candidates are narrowed to
//! loopback ([`signal::IcePolicy`]). WebRTC between two processes on one machine needs a fresh
//! network namespace: run under `unshare -n` with `ip link set lo up`.

pub mod api;
pub mod codec;
pub mod fixtures;
pub mod frame;
pub mod keyframe;
pub mod loadgen;
pub mod peer;
#[cfg(test)]
mod reflector;
pub mod sequence;
pub mod signal;
pub mod whep;
pub mod whip;
