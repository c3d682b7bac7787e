//! What the webrtc-rs publisher and viewer share: building a peer connection bound to one
//! address, watching its states, waiting for non-trickle ICE gathering, and the error type.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rtc::ice::mdns::MulticastDnsMode;
use tokio::sync::{mpsc, watch};
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCConfigurationBuilder,
    RTCIceGatheringState, RTCPeerConnectionState, RTCSessionDescription, Registry, SettingEngineBuilder,
};

use crate::fixtures::FixtureError;
use crate::signal::SignalError;

/// How long non-trickle ICE gathering may take before the offer is sent anyway.
pub const GATHER_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a publisher or viewer session failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// A media fixture could not be made.
    #[error(transparent)]
    Fixture(#[from] FixtureError),
    /// The WHIP/WHEP HTTP exchange failed.
    #[error(transparent)]
    Signal(#[from] SignalError),
    /// webrtc-rs refused an operation.
    #[error("webrtc-rs: {context}: {source}")]
    WebRtc {
        /// What was being done.
        context: &'static str,
        /// The library's error.
        source: webrtc::error::Error,
    },
    /// Something did not happen in time.
    #[error("timed out after {after:?} waiting for {what} (connection state {state})")]
    Timeout {
        /// What was awaited.
        what: &'static str,
        /// How long it was awaited.
        after: Duration,
        /// The peer connection state at that moment.
        state: String,
    },
    /// The peer connection reached `failed` or `closed` before `connected`.
    #[error("peer connection {state} before it connected")]
    ConnectionFailed {
        /// The final state.
        state: String,
    },
    /// A file or socket operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: std::io::Error,
    },
}

/// Adds context to a webrtc-rs error.
pub(crate) fn rtc_err(context: &'static str) -> impl FnOnce(webrtc::error::Error) -> SessionError {
    move |source| SessionError::WebRtc { context, source }
}

/// Event handler that publishes states on watch channels and hands out remote tracks.
pub(crate) struct PeerEvents {
    gathering: watch::Sender<RTCIceGatheringState>,
    state: watch::Sender<RTCPeerConnectionState>,
    tracks: Option<mpsc::UnboundedSender<Arc<dyn TrackRemote>>>,
}

/// Receiving ends of a [`PeerEvents`].
pub(crate) struct PeerWatch {
    pub gathering: watch::Receiver<RTCIceGatheringState>,
    pub state: watch::Receiver<RTCPeerConnectionState>,
}

impl PeerEvents {
    pub(crate) fn new(tracks: Option<mpsc::UnboundedSender<Arc<dyn TrackRemote>>>) -> (Arc<Self>, PeerWatch) {
        let (gathering, gathering_rx) = watch::channel(RTCIceGatheringState::New);
        let (state, state_rx) = watch::channel(RTCPeerConnectionState::New);
        (
            Arc::new(Self {
                gathering,
                state,
                tracks,
            }),
            PeerWatch {
                gathering: gathering_rx,
                state: state_rx,
            },
        )
    }
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for PeerEvents {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        self.gathering.send_replace(state);
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        tracing::debug!(%state, "peer connection state");
        self.state.send_replace(state);
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        if let Some(tracks) = &self.tracks {
            // The receiver lives as long as the session; a send error means it is ending.
            let _ = tracks.send(track);
        }
    }
}

/// Builds a peer connection whose only UDP socket is bound to `bind_ip`, without STUN/TURN
/// servers or mDNS, so its only candidate is a host candidate on that address.
pub(crate) async fn build_peer(
    media_engine: MediaEngine,
    registry: Registry,
    bind_ip: IpAddr,
    events: Arc<PeerEvents>,
) -> Result<Arc<dyn PeerConnection>, SessionError> {
    let settings = SettingEngineBuilder::new()
        .with_multicast_dns_mode(MulticastDnsMode::Disabled)
        .build();
    let pc = PeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_media_engine(media_engine)
        .with_interceptor_registry(registry)
        .with_setting_engine(settings)
        .with_handler(events)
        .with_udp_addrs(vec![SocketAddr::new(bind_ip, 0)])
        .build()
        .await
        .map_err(rtc_err("build peer connection"))?;
    Ok(Arc::new(pc))
}

/// Creates an offer, sets it locally and waits for ICE gathering to complete (non-trickle),
/// returning the SDP with all candidates in it.
pub(crate) async fn complete_offer(
    pc: &Arc<dyn PeerConnection>,
    watch: &mut PeerWatch,
) -> Result<String, SessionError> {
    let offer = pc.create_offer(None).await.map_err(rtc_err("create offer"))?;
    pc.set_local_description(offer)
        .await
        .map_err(rtc_err("set local description"))?;
    let gathered = watch.gathering.wait_for(|s| *s == RTCIceGatheringState::Complete);
    if tokio::time::timeout(GATHER_TIMEOUT, gathered).await.is_err() {
        return Err(SessionError::Timeout {
            what: "ICE gathering",
            after: GATHER_TIMEOUT,
            state: watch.state.borrow().to_string(),
        });
    }
    let local = pc.local_description().await.ok_or_else(|| SessionError::WebRtc {
        context: "local description after gathering",
        source: webrtc::error::Error::Other("no local description".to_owned()),
    })?;
    Ok(local.sdp)
}

/// Applies an SDP answer.
pub(crate) async fn apply_answer(pc: &Arc<dyn PeerConnection>, sdp: String) -> Result<(), SessionError> {
    let answer = RTCSessionDescription::answer(sdp).map_err(rtc_err("parse SDP answer"))?;
    pc.set_remote_description(answer)
        .await
        .map_err(rtc_err("set remote description"))
}

/// Waits until the connection is `connected`; fails early on `failed`/`closed`.
pub(crate) async fn wait_connected(
    state: &watch::Receiver<RTCPeerConnectionState>,
    timeout: Duration,
) -> Result<(), SessionError> {
    let mut state = state.clone();
    let settled = state.wait_for(|s| {
        matches!(
            s,
            RTCPeerConnectionState::Connected
                | RTCPeerConnectionState::Failed
                | RTCPeerConnectionState::Closed
        )
    });
    let outcome = tokio::time::timeout(timeout, settled)
        .await
        .map(|r| r.map(|s| *s));
    match outcome {
        Ok(Ok(RTCPeerConnectionState::Connected)) => Ok(()),
        Ok(Ok(s)) => Err(SessionError::ConnectionFailed { state: s.to_string() }),
        Ok(Err(_)) => Err(SessionError::ConnectionFailed {
            state: "dropped".to_owned(),
        }),
        Err(_) => Err(SessionError::Timeout {
            what: "connected state",
            after: timeout,
            state: state.borrow().to_string(),
        }),
    }
}
