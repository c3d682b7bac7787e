//! One str0m WHEP subscriber: its `Rtc` (RTP mode), its UDP socket and what it has received.
//!
//! The driver feeds it socket input and timeouts; after every input it drains `poll_output`
//! (RTP mode hands out one packet per input, so draining after each one is mandatory), sends
//! what str0m wants sent, and counts RTP packets per SSRC.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use str0m::net::{Protocol, Receive};
use str0m::{Event, IceConnectionState, Input, Output, Rtc};

use crate::frame::FrameTracker;
use crate::lag::MediaLag;
use crate::loadgen::report::SubscriberOutcome;
use crate::sequence::SeqTracker;
use crate::signal::Url;

/// Where a subscriber's session stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SessionState {
    /// Answer applied, ICE/DTLS under way.
    Connecting,
    /// ICE + DTLS up.
    Connected,
    /// ICE lost, str0m error, or the remote closed.
    Failed(String),
}

/// A subscriber handed over by the signalling thread.
pub(crate) struct Joined {
    pub id: usize,
    pub rtc: Rtc,
    pub socket: UdpSocket,
    pub local: SocketAddr,
    pub location: Url,
    pub posted_at: Instant,
}

pub(crate) struct Subscriber {
    rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    location: Url,
    posted_at: Instant,
    state: SessionState,
    next_timeout: Option<Instant>,
    /// Per SSRC: whether it is video (90 kHz clock), and its holes.
    trackers: HashMap<u32, (bool, SeqTracker)>,
    packets: u64,
    bytes: u64,
    video_frames: FrameTracker,
    video_lag: MediaLag,
    connected_at: Option<Instant>,
    first_packet_at: Option<Instant>,
    /// When the latest packet with a payload arrived (padding carries none).
    last_media_at: Option<Instant>,
    send_errors: u64,
}

impl Subscriber {
    pub(crate) fn new(joined: Joined) -> Self {
        Self {
            rtc: joined.rtc,
            socket: joined.socket,
            local: joined.local,
            location: joined.location,
            posted_at: joined.posted_at,
            state: SessionState::Connecting,
            next_timeout: None,
            trackers: HashMap::new(),
            packets: 0,
            bytes: 0,
            video_frames: FrameTracker::new(),
            video_lag: MediaLag::new(90_000),
            connected_at: None,
            first_packet_at: None,
            last_media_at: None,
            send_errors: 0,
        }
    }

    pub(crate) fn socket_mut(&mut self) -> &mut UdpSocket {
        &mut self.socket
    }

    pub(crate) fn location(&self) -> &Url {
        &self.location
    }

    pub(crate) fn next_timeout(&self) -> Option<Instant> {
        self.next_timeout
    }

    pub(crate) fn packets(&self) -> u64 {
        self.packets
    }

    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    pub(crate) fn send_errors(&self) -> u64 {
        self.send_errors
    }

    fn alive(&self) -> bool {
        !matches!(self.state, SessionState::Failed(_)) && self.rtc.is_alive()
    }

    /// Reads every datagram waiting on the socket (mio is edge-triggered).
    pub(crate) fn on_readable(&mut self, buf: &mut [u8]) {
        loop {
            match self.socket.recv_from(buf) {
                Ok((n, source)) => {
                    if !self.alive() {
                        continue;
                    }
                    let now = Instant::now();
                    let Ok(receive) = Receive::new(Protocol::Udp, source, self.local, &buf[..n]) else {
                        continue;
                    };
                    if let Err(e) = self.rtc.handle_input(Input::Receive(now, receive)) {
                        self.fail(format!("handle_input: {e}"));
                        continue;
                    }
                    self.drain(now);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                // ICMP port unreachable and the like surface here; the session's timers decide.
                Err(_) => return,
            }
        }
    }

    /// Drives time forward.
    pub(crate) fn on_timeout(&mut self, now: Instant) {
        if !self.alive() {
            self.next_timeout = None;
            return;
        }
        if let Err(e) = self.rtc.handle_input(Input::Timeout(now)) {
            self.fail(format!("timeout: {e}"));
            return;
        }
        self.drain(now);
    }

    fn fail(&mut self, reason: String) {
        if !matches!(self.state, SessionState::Failed(_)) {
            tracing::debug!(location = %self.location, %reason, "subscriber failed");
            self.state = SessionState::Failed(reason);
        }
        self.next_timeout = None;
        self.rtc.disconnect();
    }

    fn drain(&mut self, now: Instant) {
        loop {
            if !self.rtc.is_alive() {
                if !matches!(self.state, SessionState::Failed(_)) {
                    self.state = SessionState::Failed("closed".to_owned());
                }
                self.next_timeout = None;
                return;
            }
            match self.rtc.poll_output() {
                Ok(Output::Timeout(at)) => {
                    self.next_timeout = Some(at);
                    return;
                }
                Ok(Output::Transmit(t)) => {
                    if self.socket.send_to(&t.contents, t.destination).is_err() {
                        self.send_errors += 1;
                    }
                }
                Ok(Output::Event(event)) => self.on_event(event, now),
                Err(e) => {
                    self.fail(format!("poll_output: {e}"));
                    return;
                }
            }
        }
    }

    fn on_event(&mut self, event: Event, now: Instant) {
        match event {
            Event::Connected => {
                self.state = SessionState::Connected;
                self.connected_at.get_or_insert(now);
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                self.fail("ICE disconnected".to_owned());
            }
            Event::Closed => self.fail("remote closed".to_owned()),
            Event::RtpPacket(packet) => {
                self.packets += 1;
                self.bytes += packet.payload.len() as u64;
                self.first_packet_at.get_or_insert(now);
                if !packet.payload.is_empty() {
                    self.last_media_at = Some(now);
                }
                let is_video = packet.time.denom() == 90_000;
                // str0m drops duplicates itself, so every packet here is new.
                let _ = self
                    .trackers
                    .entry(*packet.header.ssrc)
                    .or_insert_with(|| (is_video, SeqTracker::new()))
                    .1
                    .push_extended(*packet.seq_no, now);
                if is_video {
                    self.video_frames
                        .push(packet.header.timestamp, packet.header.marker);
                    self.video_lag.push_extended(packet.time.numer(), now);
                }
            }
            _ => {}
        }
    }

    /// Stops the session locally; the server learns from the DELETE that follows.
    pub(crate) fn close(&mut self) {
        self.rtc.disconnect();
        self.next_timeout = None;
    }

    pub(crate) fn outcome(&self, at: Instant, loss_window: Duration) -> SubscriberOutcome {
        let lost = |video: Option<bool>| -> u64 {
            self.trackers
                .values()
                .filter(|(is_video, _)| video.is_none_or(|v| v == *is_video))
                .map(|(_, t)| t.lost(at, loss_window))
                .sum()
        };
        let received = |video: bool| -> u64 {
            self.trackers
                .values()
                .filter(|(is_video, _)| *is_video == video)
                .map(|(_, t)| t.received())
                .sum()
        };
        SubscriberOutcome {
            signaled: true,
            connected: self.connected_at.is_some(),
            failed: matches!(self.state, SessionState::Failed(_)),
            packets: self.packets,
            bytes: self.bytes,
            lost: lost(None),
            video_packets: received(true),
            video_lost: lost(Some(true)),
            audio_packets: received(false),
            audio_lost: lost(Some(false)),
            video_frames: self.video_frames.frames(),
            incomplete_frames: self.video_frames.incomplete(),
            video_lag_ms: self.video_lag.lag_ms(),
            video_max_lag_ms: self.video_lag.max_lag_ms(),
            discontinuities: self.trackers.values().map(|(_, t)| t.discontinuities()).sum(),
            connect_time: self
                .connected_at
                .map(|t| t.saturating_duration_since(self.posted_at)),
            first_packet: self
                .first_packet_at
                .map(|t| t.saturating_duration_since(self.posted_at)),
        }
    }

    /// When the latest media packet arrived.
    pub(crate) fn last_media_at(&self) -> Option<Instant> {
        self.last_media_at
    }

    pub(crate) fn failure(&self) -> Option<&str> {
        match &self.state {
            SessionState::Failed(reason) => Some(reason),
            _ => None,
        }
    }
}
