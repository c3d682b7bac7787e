//! Creating a WebRTC session from a WHIP or WHEP offer.
//!
//! Building the [`Rtc`] and its SDP answer happens on the caller's thread (the HTTP
//! handler needs the answer at once); the finished `Rtc` is then moved to its worker.
//!
//! Two choices here decide which clients can stay connected:
//! - **DTLS on OpenSSL** (`session/dtls.rs`): RSA client certificates are accepted as well as
//!   ECDSA ones.
//! - **A full ICE agent** that checks consent itself (RFC 7675). As an ICE-lite agent, str0m
//!   drops a session 15 s after the client's last binding *request*, and libnice (under
//!   GStreamer's webrtcbin) sends only binding indications once connected. As a full
//!   (controlled) agent the server sends its own checks every 3 s on the selected pair, so
//!   any client that answers them stays, and one that stops answering is gone about 30 s
//!   after its last answer ([`CONSENT_CHECKS`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use str0m::bwe::Bitrate;
use str0m::change::SdpOffer;
use str0m::crypto::CryptoProvider;
use str0m::format::Codec;
use str0m::{Candidate, Rtc, RtcConfig};

use crate::error::SfuError;

mod dtls;
#[cfg(test)]
mod tests;

/// Unanswered consent checks before a session is given up. str0m checks every 3 s while
/// the peer answers; from the first unanswered check it retries after 3 s, 0.5 s, 1 s, 2 s,
/// then every 3 s, and gives up 3 s after the last. Eleven checks make that 27.5 s, or about
/// 30 s after the last answer: RFC 7675's consent timeout. (str0m's default, 9, is 21.5 s.)
const CONSENT_CHECKS: usize = 11;

/// Publisher (WHIP) or subscriber (WHEP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionKind {
    /// Sends media into a room.
    Publisher,
    /// Receives a room's media.
    Subscriber,
}

/// What a new session needs to know about where it will live.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Host candidates: the worker's socket on every advertised address.
    pub candidates: Vec<SocketAddr>,
    /// The room's video codec when a publisher is live, so a viewer's answer picks it.
    pub video_codec: Option<Codec>,
    /// Starting point of the viewer's bandwidth estimate.
    pub initial_bwe_bps: u64,
    /// Estimate a viewer's bandwidth (TWCC): only worth it when the room's video has layers
    /// to choose from. Without it str0m sends a viewer's queued packets after one time update
    /// instead of one update per packet, which makes a forwarded packet cheaper.
    pub estimate_bandwidth: bool,
}

/// A session ready to be handed to its worker.
#[derive(Debug)]
pub struct SessionSetup {
    /// The WebRTC state machine, already holding the remote offer.
    pub rtc: Rtc,
    /// The SDP answer for the client.
    pub answer: String,
}

/// Accept an offer and build the session's `Rtc`.
pub fn build_session(
    config: &SessionConfig,
    kind: SessionKind,
    offer: &str,
    now: Instant,
) -> Result<SessionSetup, SfuError> {
    build_with(config, kind, offer, now, dtls::crypto_provider())
}

/// [`build_session`] with the given crypto (the tests compare DTLS stacks).
fn build_with(
    config: &SessionConfig,
    kind: SessionKind,
    offer: &str,
    now: Instant,
    crypto: Arc<CryptoProvider>,
) -> Result<SessionSetup, SfuError> {
    if !offer.starts_with("v=0") {
        return Err(SfuError::MalformedSdp("does not start with v=0".into()));
    }
    let text = offer;
    let offer =
        SdpOffer::from_sdp_string(text).map_err(|e| SfuError::MalformedSdp(one_line(&e.to_string())))?;
    if !text.contains("\nm=audio") && !text.contains("\nm=video") {
        return Err(SfuError::Unacceptable(
            "offer has no audio or video section".into(),
        ));
    }

    let mut builder = RtcConfig::new()
        .set_crypto_provider(crypto)
        .set_rtp_mode(true)
        .set_ice_lite(false)
        .clear_codecs()
        .enable_opus(true, false);
    builder.set_max_stun_retransmits(CONSENT_CHECKS);
    let video_codecs: &[Codec] = match config.video_codec {
        Some(c) if kind == SessionKind::Subscriber => &[c][..],
        _ => &[Codec::Vp8, Codec::H264, Codec::Vp9, Codec::Av1][..],
    };
    for codec in video_codecs {
        builder = match codec {
            Codec::Vp8 => builder.enable_vp8(true),
            Codec::H264 => builder.enable_h264(true),
            Codec::Vp9 => builder.enable_vp9(true),
            Codec::Av1 => builder.enable_av1(true),
            _ => builder,
        };
    }
    if kind == SessionKind::Subscriber {
        if config.estimate_bandwidth {
            builder = builder.enable_bwe(Some(Bitrate::from(config.initial_bwe_bps as f64)));
        }
        builder = builder.set_stats_interval(Some(std::time::Duration::from_secs(1)));
    }
    let mut rtc = builder.build(now);

    for addr in &config.candidates {
        let candidate = Candidate::host(*addr, "udp").map_err(|e| SfuError::Unacceptable(e.to_string()))?;
        rtc.add_local_candidate(candidate);
    }

    let answer = rtc
        .sdp_api()
        .accept_offer(offer)
        .map_err(|e| SfuError::Unacceptable(one_line(&e.to_string())))?;
    let answer = answer.to_sdp_string();
    let has_media = answer
        .split("\r\n")
        .filter(|l| l.starts_with("m=audio") || l.starts_with("m=video"))
        .any(|l| !l.starts_with("m=audio 0 ") && !l.starts_with("m=video 0 "));
    if !has_media {
        return Err(SfuError::Unacceptable("no common codec".into()));
    }
    Ok(SessionSetup { rtc, answer })
}

fn one_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or("");
    // The parser reports a memory address, which means nothing to a client.
    let line = line.split(" at PointerOffset").next().unwrap_or(line);
    line.chars().take(200).collect()
}
