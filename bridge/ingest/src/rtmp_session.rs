//! One RTMP publisher connection as a pure state machine: bytes in, [`RtmpEvent`]s out.
//!
//! ```text
//! Handshake --C0/C1/C2 done--> Connected --publish(key)--> Asking --accept--> Publishing
//!                                                            |reject
//!                                                            v
//!                                                          Closed
//! ```
//!
//! The handshake, chunk stream and AMF0 commands are rml_rtmp's; the FLV payloads of audio and
//! video messages are ours ([`crate::flv`]). The adapter around it ([`crate::rtmp`]) owns the
//! socket, the timeouts and the question to the [`crate::Gate`].
//!
//! Memory per connection is bounded: before a publication is accepted the connection may send
//! at most [`UNAUTHENTICATED_BYTES`] (the handshake and a few small commands need about 4 KiB),
//! and rml_rtmp holds at most one message being assembled (under 16 MiB, the 24-bit message
//! length), whatever chunk size the client announces.

use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{ServerSession, ServerSessionConfig, ServerSessionEvent, ServerSessionResult};

use crate::flv::{FlvDemuxer, FlvError};
use crate::frame::Frame;

/// Bytes a connection may send before its publication is accepted.
pub const UNAUTHENTICATED_BYTES: u64 = 64 * 1024;

/// Why a connection is closed.
#[derive(Debug, thiserror::Error)]
pub enum RtmpError {
    /// The handshake bytes are not RTMP.
    #[error("RTMP handshake failed: {0}")]
    Handshake(String),
    /// The chunk stream or an AMF0 command is malformed.
    #[error("RTMP protocol error: {0}")]
    Protocol(String),
    /// More than [`UNAUTHENTICATED_BYTES`] before a publication was accepted.
    #[error("too much data before publishing")]
    TooMuchBeforePublish,
    /// The client asked to play: this server only takes publishers over RTMP.
    #[error("RTMP playback is not offered (watch over WHEP or LL-HLS)")]
    PlayRefused,
    /// Used after it was closed.
    #[error("the connection is closed")]
    Closed,
}

/// What the adapter must do.
#[derive(Debug)]
pub enum RtmpEvent {
    /// Send these bytes, in order.
    Send(Vec<u8>),
    /// The client asks to publish with this stream key: answer with
    /// [`RtmpSession::accept`] or [`RtmpSession::reject`].
    Publish {
        /// The application name of the URL (`live` in `rtmp://host/live/KEY`).
        app: String,
        /// The stream key, without any query string. Never log it.
        key: String,
    },
    /// A media frame of the accepted publication.
    Frame(Frame),
    /// The source sends something we cannot take (an unsupported codec); shown in the
    /// stream's health, once per kind.
    Unsupported(String),
    /// The client ended its publication (it may publish again on this connection).
    Unpublished,
}

#[derive(Debug)]
enum Stage {
    Handshake,
    Connected,
    Asking { request_id: u32 },
    Publishing,
    Closed,
}

/// One connection.
pub struct RtmpSession {
    stage: Stage,
    handshake: Handshake,
    session: Option<ServerSession>,
    flv: FlvDemuxer,
    received: u64,
    /// Unsupported-codec reports already made (each once).
    reported: Vec<String>,
}

impl Default for RtmpSession {
    fn default() -> Self {
        RtmpSession::new()
    }
}

impl std::fmt::Debug for RtmpSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RtmpSession")
            .field("stage", &self.stage)
            .field("received", &self.received)
            .finish()
    }
}

impl RtmpSession {
    /// A connection that waits for the client's handshake.
    pub fn new() -> RtmpSession {
        RtmpSession {
            stage: Stage::Handshake,
            handshake: Handshake::new(PeerType::Server),
            session: None,
            flv: FlvDemuxer::default(),
            received: 0,
            reported: Vec::new(),
        }
    }

    /// Whether a publication is accepted and running.
    pub fn publishing(&self) -> bool {
        matches!(self.stage, Stage::Publishing)
    }

    /// Take bytes from the client.
    pub fn receive(&mut self, data: &[u8], out: &mut Vec<RtmpEvent>) -> Result<(), RtmpError> {
        self.received += data.len() as u64;
        if !self.publishing() && self.received > UNAUTHENTICATED_BYTES {
            self.stage = Stage::Closed;
            return Err(RtmpError::TooMuchBeforePublish);
        }
        match self.stage {
            Stage::Closed => Err(RtmpError::Closed),
            Stage::Handshake => {
                let result = self
                    .handshake
                    .process_bytes(data)
                    .map_err(|e| self.fail(RtmpError::Handshake(e.to_string())))?;
                match result {
                    HandshakeProcessResult::InProgress { response_bytes } => {
                        send(out, response_bytes);
                        Ok(())
                    }
                    HandshakeProcessResult::Completed {
                        response_bytes,
                        remaining_bytes,
                    } => {
                        send(out, response_bytes);
                        let (session, results) = ServerSession::new(ServerSessionConfig::new())
                            .map_err(|e| self.fail(RtmpError::Protocol(e.to_string())))?;
                        self.session = Some(session);
                        self.stage = Stage::Connected;
                        self.results(results, out)?;
                        if remaining_bytes.is_empty() {
                            return Ok(());
                        }
                        self.session_input(&remaining_bytes, out)
                    }
                }
            }
            _ => self.session_input(data, out),
        }
    }

    /// Accept the publication asked for by the last [`RtmpEvent::Publish`].
    pub fn accept(&mut self, out: &mut Vec<RtmpEvent>) -> Result<(), RtmpError> {
        let Stage::Asking { request_id } = self.stage else {
            return Err(RtmpError::Closed);
        };
        let session = self.session.as_mut().ok_or(RtmpError::Closed)?;
        let results = session
            .accept_request(request_id)
            .map_err(|e| RtmpError::Protocol(e.to_string()))?;
        self.stage = Stage::Publishing;
        self.flv = FlvDemuxer::default();
        self.results(results, out)
    }

    /// Refuse the publication asked for by the last [`RtmpEvent::Publish`]: the client gets
    /// `NetStream.Publish.BadName` and the connection is done (the adapter closes it after
    /// sending).
    pub fn reject(&mut self, description: &str, out: &mut Vec<RtmpEvent>) -> Result<(), RtmpError> {
        let Stage::Asking { request_id } = self.stage else {
            return Err(RtmpError::Closed);
        };
        let session = self.session.as_mut().ok_or(RtmpError::Closed)?;
        let results = session
            .reject_request(request_id, "NetStream.Publish.BadName", description)
            .map_err(|e| RtmpError::Protocol(e.to_string()))?;
        let r = self.results(results, out);
        self.stage = Stage::Closed;
        r
    }

    fn fail(&mut self, e: RtmpError) -> RtmpError {
        self.stage = Stage::Closed;
        e
    }

    fn session_input(&mut self, data: &[u8], out: &mut Vec<RtmpEvent>) -> Result<(), RtmpError> {
        let session = self.session.as_mut().ok_or(RtmpError::Closed)?;
        // rml_rtmp 0.8's chunk deserializer can panic on a crafted header (a message shorter
        // than what was already read of it underflows a subtraction; found by the property
        // test below): the session is then unusable, and the connection is closed.
        let results = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| session.handle_input(data)))
            .map_err(|_| RtmpError::Protocol("malformed chunk stream".into()))
            .and_then(|r| r.map_err(|e| RtmpError::Protocol(e.to_string())));
        match results {
            Ok(results) => self.results(results, out),
            Err(e) => Err(self.fail(e)),
        }
    }

    fn results(
        &mut self,
        results: Vec<ServerSessionResult>,
        out: &mut Vec<RtmpEvent>,
    ) -> Result<(), RtmpError> {
        for r in results {
            match r {
                ServerSessionResult::OutboundResponse(packet) => send(out, packet.bytes),
                ServerSessionResult::RaisedEvent(e) => self.event(e, out)?,
                // Messages rml_rtmp has no use for (acknowledgements of ours, unknown types).
                ServerSessionResult::UnhandleableMessageReceived(_) => {}
            }
        }
        Ok(())
    }

    fn event(&mut self, e: ServerSessionEvent, out: &mut Vec<RtmpEvent>) -> Result<(), RtmpError> {
        match e {
            ServerSessionEvent::ConnectionRequested { request_id, .. } => {
                // Any application name: the stream key alone says which stream it is.
                let session = self.session.as_mut().ok_or(RtmpError::Closed)?;
                let results = session
                    .accept_request(request_id)
                    .map_err(|e| RtmpError::Protocol(e.to_string()))?;
                self.results(results, out)
            }
            ServerSessionEvent::PublishStreamRequested {
                request_id,
                app_name,
                stream_key,
                ..
            } => {
                if !matches!(self.stage, Stage::Connected) {
                    return Err(self.fail(RtmpError::Protocol("publish while publishing".into())));
                }
                self.stage = Stage::Asking { request_id };
                // OBS and some encoders append parameters to the key (`KEY?param=...`).
                let key = stream_key.split('?').next().unwrap_or_default().to_string();
                out.push(RtmpEvent::Publish { app: app_name, key });
                Ok(())
            }
            ServerSessionEvent::PublishStreamFinished { .. } => {
                if self.publishing() {
                    self.stage = Stage::Connected;
                    out.push(RtmpEvent::Unpublished);
                }
                Ok(())
            }
            ServerSessionEvent::PlayStreamRequested { .. } => Err(self.fail(RtmpError::PlayRefused)),
            ServerSessionEvent::VideoDataReceived { data, timestamp, .. } if self.publishing() => {
                let r = self.flv.video(timestamp.value, &data);
                self.media(r, out);
                Ok(())
            }
            ServerSessionEvent::AudioDataReceived { data, timestamp, .. } if self.publishing() => {
                let r = self.flv.audio(timestamp.value, &data);
                self.media(r, out);
                Ok(())
            }
            // Metadata, acknowledgements, pings, commands rml_rtmp answers itself, media
            // before the publication is accepted.
            _ => Ok(()),
        }
    }

    fn media(&mut self, r: Result<Option<Frame>, FlvError>, out: &mut Vec<RtmpEvent>) {
        match r {
            Ok(Some(frame)) => out.push(RtmpEvent::Frame(frame)),
            Ok(None) => {}
            Err(e) => {
                let text = e.to_string();
                if !self.reported.contains(&text) && self.reported.len() < 8 {
                    self.reported.push(text.clone());
                    out.push(RtmpEvent::Unsupported(text));
                }
            }
        }
    }
}

fn send(out: &mut Vec<RtmpEvent>, bytes: Vec<u8>) {
    if !bytes.is_empty() {
        out.push(RtmpEvent::Send(bytes));
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use proptest::prelude::*;
    use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
    use rml_rtmp::sessions::{
        ClientSession, ClientSessionConfig, ClientSessionEvent, ClientSessionResult, PublishRequestType,
    };
    use rml_rtmp::time::RtmpTimestamp;

    use super::*;

    /// Client bytes to the server; the server's events, with its bytes applied to the client.
    struct Pair {
        client: ClientSession,
        server: RtmpSession,
        client_events: Vec<ClientSessionEvent>,
        server_events: Vec<RtmpEvent>,
    }

    impl Pair {
        /// Handshake both ways, then the client's session starts.
        fn connected() -> Pair {
            let mut server = RtmpSession::new();
            let mut client_hs = Handshake::new(PeerType::Client);
            let mut to_server = client_hs.generate_outbound_p0_and_p1().expect("C0+C1");
            let mut events = Vec::new();
            loop {
                server
                    .receive(&to_server, &mut events)
                    .expect("the server takes the handshake");
                let from_server: Vec<u8> = take_sent(&mut events);
                match client_hs
                    .process_bytes(&from_server)
                    .expect("the client takes S0-S2")
                {
                    HandshakeProcessResult::InProgress { response_bytes } => to_server = response_bytes,
                    HandshakeProcessResult::Completed { response_bytes, .. } => {
                        to_server = response_bytes;
                        break;
                    }
                }
            }
            server.receive(&to_server, &mut events).expect("C2");
            let (client, _) = ClientSession::new(ClientSessionConfig::new()).expect("client session");
            let mut pair = Pair {
                client,
                server,
                client_events: Vec::new(),
                server_events: Vec::new(),
            };
            // The server's opening messages (chunk size, window) reach the client.
            let bytes = take_sent(&mut events);
            pair.send_to_client(&bytes);
            pair.server_events.extend(events);
            pair
        }

        fn send_to_client(&mut self, bytes: &[u8]) {
            if bytes.is_empty() {
                return;
            }
            let results = self
                .client
                .handle_input(bytes)
                .expect("the client takes the server's bytes");
            self.client_results(results);
        }

        fn client_results(&mut self, results: Vec<ClientSessionResult>) {
            let mut out = Vec::new();
            for r in results {
                match r {
                    ClientSessionResult::OutboundResponse(p) => out.extend(p.bytes),
                    ClientSessionResult::RaisedEvent(e) => self.client_events.push(e),
                    ClientSessionResult::UnhandleableMessageReceived(_) => {}
                }
            }
            self.send_to_server(&out);
        }

        fn send_to_server(&mut self, bytes: &[u8]) {
            if bytes.is_empty() {
                return;
            }
            let mut events = Vec::new();
            self.server
                .receive(bytes, &mut events)
                .expect("the server takes the client's bytes");
            self.deliver(events);
        }

        fn deliver(&mut self, mut events: Vec<RtmpEvent>) {
            let bytes = take_sent(&mut events);
            self.server_events.extend(events);
            self.send_to_client(&bytes);
        }
    }

    fn take_sent(events: &mut Vec<RtmpEvent>) -> Vec<u8> {
        let mut out = Vec::new();
        events.retain(|e| match e {
            RtmpEvent::Send(b) => {
                out.extend_from_slice(b);
                false
            }
            _ => true,
        });
        out
    }

    fn publish(pair: &mut Pair, key: &str) {
        let r = pair.client.request_connection("live".into()).expect("connect");
        pair.client_results(vec![r]);
        assert!(
            pair.client_events
                .iter()
                .any(|e| matches!(e, ClientSessionEvent::ConnectionRequestAccepted)),
            "the connection was not accepted"
        );
        let r = pair
            .client
            .request_publishing(key.into(), PublishRequestType::Live)
            .expect("publish");
        pair.client_results(vec![r]);
    }

    /// An AVC sequence header (avcC with one tiny SPS and PPS) and a keyframe with one IDR NAL.
    fn avc_messages() -> (Bytes, Bytes) {
        let sps = [0x67, 0x42, 0xc0, 0x1e, 0x8c, 0x8d, 0x40, 0x50];
        let pps = [0x68, 0xce, 0x3c, 0x80];
        let mut config = vec![
            0x17,
            0x00,
            0,
            0,
            0,
            1,
            0x42,
            0xc0,
            0x1e,
            0xff,
            0xe1,
            0,
            sps.len() as u8,
        ];
        config.extend_from_slice(&sps);
        config.extend_from_slice(&[1, 0, pps.len() as u8]);
        config.extend_from_slice(&pps);
        let idr = [0x65, 0x88, 0x84, 0x00, 0x33];
        let mut frame = vec![0x17, 0x01, 0, 0, 0, 0, 0, 0, idr.len() as u8];
        frame.extend_from_slice(&idr);
        (Bytes::from(config), Bytes::from(frame))
    }

    #[test]
    fn a_client_publishes_with_its_key_and_its_frames_come_out() {
        let mut pair = Pair::connected();
        publish(&mut pair, "sk_abc?obs=1");
        let asked: Vec<&str> = pair
            .server_events
            .iter()
            .filter_map(|e| match e {
                RtmpEvent::Publish { key, .. } => Some(key.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(asked, ["sk_abc"], "the key, without the encoder's query string");
        let mut events = Vec::new();
        pair.server.accept(&mut events).expect("accept");
        pair.deliver(events);
        assert!(
            pair.client_events
                .iter()
                .any(|e| matches!(e, ClientSessionEvent::PublishRequestAccepted)),
            "the client was not told it may publish"
        );
        let (config, frame) = avc_messages();
        for (data, ts) in [(config, 0), (frame, 33)] {
            let r = pair
                .client
                .publish_video_data(data, RtmpTimestamp::new(ts), false)
                .expect("video");
            pair.client_results(vec![r]);
        }
        let frames: Vec<&Frame> = pair
            .server_events
            .iter()
            .filter_map(|e| match e {
                RtmpEvent::Frame(f) => Some(f),
                _ => None,
            })
            .collect();
        assert!(matches!(frames[0], Frame::VideoConfig(_)), "{frames:?}");
        match frames[1] {
            Frame::Video(v) => {
                assert!(v.keyframe);
                assert_eq!(v.dts, 33 * 90);
            }
            other => panic!("not a video frame: {other:?}"),
        }
    }

    #[test]
    fn a_refused_key_gets_an_error_and_closes() {
        let mut pair = Pair::connected();
        publish(&mut pair, "sk_wrong");
        let mut events = Vec::new();
        pair.server
            .reject("unknown stream key", &mut events)
            .expect("reject");
        assert!(
            events.iter().any(|e| matches!(e, RtmpEvent::Send(_))),
            "nothing told the client"
        );
        let more = pair.server.receive(&[0x03], &mut Vec::new());
        assert!(matches!(more, Err(RtmpError::Closed)), "{more:?}");
    }

    #[test]
    fn too_much_before_publishing_closes() {
        let mut pair = Pair::connected();
        // A connected client that never publishes but keeps sending (pings, garbage commands).
        let junk = vec![0u8; UNAUTHENTICATED_BYTES as usize];
        let r = pair.server.receive(&junk, &mut Vec::new());
        assert!(
            matches!(r, Err(RtmpError::TooMuchBeforePublish | RtmpError::Protocol(_))),
            "{r:?}"
        );
        let r = pair.server.receive(&[0], &mut Vec::new());
        assert!(r.is_err(), "a closed session takes more bytes");
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Arbitrary bytes, before and after a real handshake and publish, in arbitrary pieces:
        /// no panic, and a session never takes more than the unauthenticated allowance before
        /// it publishes.
        #[test]
        fn arbitrary_bytes_never_panic(
            data in proptest::collection::vec(any::<u8>(), 0..20_000),
            cut in 1usize..4096,
            after_publish in any::<bool>(),
        ) {
            let mut session = if after_publish {
                let mut pair = Pair::connected();
                publish(&mut pair, "sk_x");
                let mut events = Vec::new();
                pair.server.accept(&mut events).expect("accept");
                pair.server
            } else {
                RtmpSession::new()
            };
            let mut events = Vec::new();
            let mut taken = 0usize;
            for piece in data.chunks(cut) {
                if session.receive(piece, &mut events).is_err() {
                    break;
                }
                taken += piece.len();
                events.clear();
            }
            if !session.publishing() {
                prop_assert!(taken as u64 <= UNAUTHENTICATED_BYTES);
            }
        }
    }
}
