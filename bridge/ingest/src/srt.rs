//! The SRT listener: publishers push MPEG-TS over SRT, and each accepted connection becomes
//! one publication.
//!
//! The model: [`SrtListener::bind`] opens the UDP port (port 0 picks one; see
//! [`SrtListener::local_addr`]), and [`SrtListener::run`] answers callers until its shutdown
//! future completes. srt-tokio does the protocol (handshake, ARQ, the AES key exchange);
//! this module decides who gets in and moves payloads into a [`TsDemuxer`] and its frames
//! into the publication's [`Sink`].
//!
//! Admission happens during the handshake, so a refused caller gets an SRT reject code
//! instead of a connection that is closed at once. In order, each caller is checked for:
//!
//! | check | refusal | code (wire; libsrt reports it less 1000) |
//! |---|---|---|
//! | stream id is `publish:{key}` or `#!::r={key},m=publish[,...]` | [`Rejection::BadStreamId`] | 2400 bad request |
//! | the stream id asks to publish (`read:`, `m=request`, no `m`: SRT's default mode is request) | [`Rejection::NotPublish`] | 2405 bad mode |
//! | `t=` absent or `stream` | [`Rejection::NotStream`] | 2415 unsupported media |
//! | encrypted exactly when a passphrase is configured | [`Rejection::Unsecure`] | 1011 (SRT_REJ_UNSECURE) |
//! | fewer than `max_connections` callers admitted or being admitted | [`Rejection::Overload`] | 2402 overload |
//! | the [`Gate`] knows the key | [`Rejection::BadKey`] | 2401 unauthorized |
//! | the [`Gate`] lets the stream be published now | [`Rejection::Unavailable`] | 2409 conflict |
//! | the [`Gate`] answers within 5 s | [`Rejection::GateTimeout`] | 2503 down |
//!
//! With a passphrase configured, the gate is asked twice. Opening the publication must wait
//! until after the key exchange: a wrong passphrase fails in srt-tokio's key exchange with
//! 1010 (SRT_REJ_BADSECRET), the caller's key material can only be read there, and opening
//! replaces the stream's current publisher, so a caller with the stream key and a wrong
//! passphrase would otherwise end a live stream. The key alone is checked during the handshake
//! ([`Gate::check`], which starts nothing), so a wrong key still gets 2401; only a refusal at
//! the open itself (2409, 2503: the stream became unavailable meanwhile) closes the connection
//! instead of a reject code.
//!
//! Nothing logged names the stream key or the caller's address: connections are named by
//! their SRT socket id.
//!
//! A publication ends when the caller closes, when nothing arrives for `idle_timeout`, when
//! its sink reports [`SinkClosed`](crate::SinkClosed), or at shutdown; dropping its sink is
//! what tells the server.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use srt_protocol::packet::CoreRejectReason;
use srt_protocol::settings::KeySettings;
use srt_tokio::access::{RejectReason, ServerRejectReason};
use srt_tokio::options::{ByteCount, KeySize, Passphrase, SocketOptions};
use srt_tokio::{ConnectionRequest, SrtIncoming, SrtSocket};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use crate::frame::Frame;
use crate::gate::{Gate, Protocol, PublishRequest, Refusal, Sink};
use crate::ts::TsDemuxer;

/// How long the gate may take to decide: a caller gives up on its handshake after 3 s by
/// default (libsrt's connect timeout), so waiting longer only holds a slot.
const GATE_TIMEOUT: Duration = Duration::from_secs(5);

/// The UDP receive buffer asked of the kernel (it may grant less): srt-tokio's 64 KiB
/// default holds 45 ms of a 10 Mbit/s stream, shared by every caller on the port.
const UDP_RECV_BUFFER: u64 = 4 * 1024 * 1024;

/// How the listener is set up.
#[derive(Debug, Clone)]
pub struct SrtConfig {
    /// The UDP address to listen on; port 0 picks a free one.
    pub addr: SocketAddr,
    /// SRT latency (receive buffer delay for retransmissions), both directions; the larger
    /// of this and the caller's is used.
    pub latency: Duration,
    /// When set, callers must encrypt with this passphrase (10 to 79 bytes); when not,
    /// encrypted callers are refused.
    pub passphrase: Option<String>,
    /// A connection that delivers nothing for this long is closed.
    pub idle_timeout: Duration,
    /// The most publishers connected (or being admitted) at once.
    pub max_connections: usize,
}

impl SrtConfig {
    /// Listen on `addr` with the defaults: 120 ms latency (libsrt's), no passphrase, 10 s
    /// idle timeout, 64 connections.
    pub fn new(addr: SocketAddr) -> Self {
        SrtConfig {
            addr,
            latency: Duration::from_millis(120),
            passphrase: None,
            idle_timeout: Duration::from_secs(10),
            max_connections: 64,
        }
    }
}

/// Why the listener could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum SrtError {
    /// The configuration cannot be used.
    #[error("invalid SRT configuration: {0}")]
    Config(String),
    /// The UDP socket could not be opened.
    #[error("cannot listen for SRT: {0}")]
    Bind(#[source] io::Error),
    /// srt-tokio's listener task ended on its own (it panics on some malformed handshakes).
    #[error("the SRT listener stopped unexpectedly")]
    ListenerStopped,
}

/// Why a caller was refused during the handshake (see the module docs for the order and
/// the codes). None of them carries the stream key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// No stream id, or not one of the publish forms.
    #[error("the stream id is missing or not a publish request")]
    BadStreamId,
    /// The stream id asks to read (`read:`, `m=request`, `m=bidirectional`, or no `m`).
    #[error("the stream id does not ask to publish")]
    NotPublish,
    /// The stream id asks for a file or auth transfer (`t=`).
    #[error("the stream id asks for a transfer type other than stream")]
    NotStream,
    /// The caller encrypts and no passphrase is configured, or the reverse.
    #[error("encryption required or unexpected")]
    Unsecure,
    /// `max_connections` callers are already in.
    #[error("too many connections")]
    Overload,
    /// The gate knows no stream with this key.
    #[error("unknown stream key")]
    BadKey,
    /// The gate's reason the stream cannot be published now.
    #[error("the stream cannot be published now: {0}")]
    Unavailable(String),
    /// The gate did not answer in time.
    #[error("the gate did not answer in time")]
    GateTimeout,
}

impl Rejection {
    /// The reject code sent in the handshake (as on the wire: libsrt's srt_getrejectreason
    /// reports server codes less 1000, e.g. 1401 for 2401).
    pub fn code(&self) -> i32 {
        self.reason().into()
    }

    fn reason(&self) -> RejectReason {
        let server = match self {
            Rejection::BadStreamId => ServerRejectReason::BadRequest,
            Rejection::NotPublish => ServerRejectReason::BadMode,
            Rejection::NotStream => ServerRejectReason::NotSupMedia,
            Rejection::Unsecure => return RejectReason::Core(CoreRejectReason::Unsecure),
            Rejection::Overload => ServerRejectReason::Overload,
            Rejection::BadKey => ServerRejectReason::Unauthorized,
            Rejection::Unavailable(_) => ServerRejectReason::Conflict,
            Rejection::GateTimeout => ServerRejectReason::Down,
        };
        RejectReason::Server(server)
    }
}

impl From<Refusal> for Rejection {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::BadKey => Rejection::BadKey,
            Refusal::Unavailable(why) => Rejection::Unavailable(why),
        }
    }
}

/// The stream key of a publish stream id, in either of the two forms:
/// `publish:{key}`, or SRT's access control syntax `#!::r={key},m=publish` with the keys in
/// any order (`u=`, `h=`, `s=` and unknown keys are ignored; `t=` must be `stream` if
/// present).
pub fn publish_key(stream_id: &str) -> Result<&str, Rejection> {
    let key = if let Some(acl) = stream_id.strip_prefix("#!::") {
        let (mut resource, mut mode, mut kind) = (None, None, None);
        for entry in acl.split(',') {
            let (name, value) = entry.split_once('=').ok_or(Rejection::BadStreamId)?;
            let slot = match name {
                "r" => &mut resource,
                "m" => &mut mode,
                "t" => &mut kind,
                _ => continue,
            };
            // A key given twice is ambiguous: which one would the caller mean?
            if slot.replace(value).is_some() {
                return Err(Rejection::BadStreamId);
            }
        }
        if kind.is_some_and(|t| t != "stream") {
            return Err(Rejection::NotStream);
        }
        // The access control spec makes "request" (reading) the default mode.
        if mode != Some("publish") {
            return Err(Rejection::NotPublish);
        }
        resource.ok_or(Rejection::BadStreamId)?
    } else if let Some((verb, _)) = stream_id.split_once(':') {
        match verb {
            "publish" => &stream_id["publish:".len()..],
            "read" | "play" | "request" | "subscribe" => return Err(Rejection::NotPublish),
            _ => return Err(Rejection::BadStreamId),
        }
    } else {
        return Err(Rejection::BadStreamId);
    };
    if key.is_empty() {
        return Err(Rejection::BadStreamId);
    }
    Ok(key)
}

/// The key settings to accept an encrypted caller with, or `None` for a clear one.
///
/// srt-tokio panics (`unimplemented!`) when a caller's key size differs from the
/// listener's, or when a caller encrypts and the listener does not; so the listener itself
/// has no key settings, each accepted caller gets the passphrase with its own key size, and
/// callers that encrypt without a configured passphrase are refused here, before srt-tokio
/// sees them. A caller that announces no key size does not encrypt (libsrt announces
/// SRTO_PBKEYLEN whenever a passphrase is set), so with a passphrase configured it is
/// refused here too, before the gate opens a publication for it.
fn key_settings(passphrase: Option<&Passphrase>, caller: KeySize) -> Result<Option<KeySettings>, Rejection> {
    match (passphrase, caller) {
        (None, KeySize::Unspecified) => Ok(None),
        (None, _) | (Some(_), KeySize::Unspecified) => Err(Rejection::Unsecure),
        (Some(passphrase), key_size) => Ok(Some(KeySettings {
            key_size,
            passphrase: passphrase.clone(),
        })),
    }
}

/// What each admission needs, shared by the tasks.
struct Shared {
    gate: Arc<dyn Gate>,
    passphrase: Option<Passphrase>,
    idle_timeout: Duration,
    slots: Arc<Semaphore>,
}

/// A bound SRT listener, not yet answering callers.
#[derive(Debug)]
pub struct SrtListener {
    listener: srt_tokio::SrtListener,
    incoming: SrtIncoming,
    local_addr: SocketAddr,
    config: SrtConfig,
    passphrase: Option<Passphrase>,
}

impl SrtListener {
    /// Opens the UDP socket. Callers that arrive before [`SrtListener::run`] wait in
    /// srt-tokio's queue.
    pub async fn bind(config: SrtConfig) -> Result<Self, SrtError> {
        let passphrase = match &config.passphrase {
            Some(p) => Some(Passphrase::try_from(p.clone()).map_err(|e| SrtError::Config(e.to_string()))?),
            None => None,
        };
        if config.max_connections == 0 {
            return Err(SrtError::Config("max_connections must be at least 1".into()));
        }
        let mut options = SocketOptions::default();
        options.connect.local = config.addr;
        options.connect.udp_recv_buffer_size = ByteCount(UDP_RECV_BUFFER);
        options.sender.peer_latency = config.latency;
        options.receiver.latency = config.latency;
        // srt-tokio refuses to listen on port 0, so the socket is bound here and its port
        // handed on.
        let socket = srt_tokio::bind_socket(&options).await.map_err(SrtError::Bind)?;
        let local_addr = socket.local_addr().map_err(SrtError::Bind)?;
        let (listener, incoming) = srt_tokio::SrtListener::builder()
            .set(|o| *o = options)
            .socket(socket)
            .bind(local_addr)
            .await
            .map_err(SrtError::Bind)?;
        Ok(SrtListener {
            listener,
            incoming,
            local_addr,
            config,
            passphrase,
        })
    }

    /// The bound address (with the port chosen when the configuration asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Answers callers until `shutdown` completes, then closes every connection (their
    /// sinks are dropped) and the socket. Returns an error only if srt-tokio's listener
    /// stopped by itself.
    pub async fn run(self, gate: Arc<dyn Gate>, shutdown: impl Future<Output = ()>) -> Result<(), SrtError> {
        let SrtListener {
            listener,
            mut incoming,
            config,
            passphrase,
            ..
        } = self;
        let shared = Arc::new(Shared {
            gate,
            passphrase,
            idle_timeout: config.idle_timeout,
            slots: Arc::new(Semaphore::new(config.max_connections)),
        });
        let mut connections = JoinSet::new();
        tokio::pin!(shutdown);
        let result = loop {
            tokio::select! {
                () = &mut shutdown => break Ok(()),
                request = incoming.incoming().next() => match request {
                    // Each caller in its own task: a slow gate must not hold up the others.
                    Some(request) => {
                        connections.spawn(admit(request, shared.clone()));
                    }
                    None => break Err(SrtError::ListenerStopped),
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        };
        connections.shutdown().await;
        // srt-tokio's listener task runs until told to close (dropping it does not stop
        // it), and its close() unwraps the task's result, which panics if the task had
        // panicked: so it closes in a task of its own.
        let mut listener = listener;
        let _ = tokio::spawn(async move { listener.close().await }).await;
        result
    }
}

/// Binds and runs a listener (for callers that know their port).
pub async fn serve(
    config: SrtConfig,
    gate: Arc<dyn Gate>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), SrtError> {
    SrtListener::bind(config).await?.run(gate, shutdown).await
}

/// Decides on one caller and, if admitted, runs its publication.
async fn admit(request: ConnectionRequest, shared: Arc<Shared>) {
    let conn = request.remote_socket_id().0;
    let checked = (|| {
        let key = publish_key(request.stream_id().map_or("", |id| id.as_str()))?.to_owned();
        let key_settings = key_settings(shared.passphrase.as_ref(), request.key_size())?;
        // Taken before the gate is asked, so at most max_connections gate calls run at once.
        let slot = shared
            .slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| Rejection::Overload)?;
        Ok::<_, Rejection>((key, key_settings, slot))
    })();
    let (key, key_settings, slot) = match checked {
        Ok(checked) => checked,
        Err(rejection) => return refuse(conn, request, rejection).await,
    };
    let peer = request.remote();
    if key_settings.is_none() {
        // A clear caller: the gate decides during the handshake, so a wrong key gets its code.
        let sink = match open(&shared, key, peer).await {
            Ok(sink) => sink,
            Err(rejection) => return refuse(conn, request, rejection).await,
        };
        match request.accept(None).await {
            Ok(socket) => {
                tracing::info!(conn, stream = sink.stream(), "SRT publisher connected");
                publish(conn, socket, sink, shared.idle_timeout, slot).await;
            }
            Err(e) => tracing::info!(
                conn,
                stream = sink.stream(),
                "SRT caller gone after admission: {e}"
            ),
        }
        return;
    }
    // An encrypted caller: the key checked now, the passphrase next, the publication opened
    // last (see the module docs).
    let check = shared.gate.check(&PublishRequest::Key {
        protocol: Protocol::Srt,
        key: key.clone(),
        peer,
    });
    let checked = tokio::time::timeout(GATE_TIMEOUT, check)
        .await
        .map_err(|_| Rejection::GateTimeout)
        .and_then(|r| r.map_err(Rejection::from));
    if let Err(rejection) = checked {
        return refuse(conn, request, rejection).await;
    }
    let mut socket = match request.accept(key_settings).await {
        Ok(socket) => socket,
        Err(e) => {
            tracing::info!(conn, "SRT key exchange failed (wrong or no passphrase): {e}");
            return;
        }
    };
    match open(&shared, key, peer).await {
        Ok(sink) => {
            tracing::info!(conn, stream = sink.stream(), "SRT publisher connected");
            publish(conn, socket, sink, shared.idle_timeout, slot).await;
        }
        Err(rejection) => {
            tracing::info!(
                conn,
                code = rejection.code(),
                "SRT publish refused after the key exchange: {rejection}"
            );
            let _ = tokio::time::timeout(Duration::from_secs(1), socket.close()).await;
        }
    }
}

/// Asks the gate to open a publication for `key`, within [`GATE_TIMEOUT`].
async fn open(shared: &Shared, key: String, peer: SocketAddr) -> Result<Box<dyn Sink>, Rejection> {
    let open = shared.gate.open(PublishRequest::Key {
        protocol: Protocol::Srt,
        key,
        peer,
    });
    Ok(tokio::time::timeout(GATE_TIMEOUT, open)
        .await
        .map_err(|_| Rejection::GateTimeout)??)
}

/// Turns a caller away during the handshake with the rejection's code.
async fn refuse(conn: u32, request: ConnectionRequest, rejection: Rejection) {
    tracing::info!(conn, code = rejection.code(), "SRT publish refused: {rejection}");
    let _ = request.reject(rejection.reason()).await;
}

/// How a publication ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The caller closed the connection (or srt-tokio timed it out).
    Closed,
    /// Nothing arrived for the idle timeout.
    Idle,
    /// The server ended the publication.
    SinkClosed,
}

/// Demuxes one connection's payloads into its sink until it ends.
async fn publish(
    conn: u32,
    mut socket: SrtSocket,
    mut sink: Box<dyn Sink>,
    idle: Duration,
    slot: OwnedSemaphorePermit,
) {
    let mut demuxer = TsDemuxer::new();
    let mut frames: Vec<Frame> = Vec::new();
    let end = loop {
        match tokio::time::timeout(idle, socket.next()).await {
            Err(_) => break End::Idle,
            Ok(None | Some(Err(_))) => {
                demuxer.flush(&mut frames);
                break End::Closed;
            }
            Ok(Some(Ok((_, payload)))) => demuxer.push(&payload, &mut frames),
        }
        if frames.drain(..).try_for_each(|frame| sink.push(frame)).is_err() {
            break End::SinkClosed;
        }
    };
    if end == End::Closed {
        let _ = frames.drain(..).try_for_each(|frame| sink.push(frame));
    }
    let stats = demuxer.stats();
    tracing::info!(
        conn,
        stream = sink.stream(),
        ?end,
        packets = stats.packets,
        resyncs = stats.resyncs,
        cc_errors = stats.cc_errors,
        dropped_pes = stats.dropped_pes,
        "SRT publisher gone"
    );
    // Ends the publication before the connection's slot is given back.
    drop(sink);
    drop(slot);
    // A clean SRT shutdown tells the caller at once; it must not hold up the task long.
    let _ = tokio::time::timeout(Duration::from_secs(1), socket.close()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_forms() {
        assert_eq!(publish_key("publish:abc"), Ok("abc"));
        assert_eq!(publish_key("publish:a:b"), Ok("a:b"));
        assert_eq!(publish_key("#!::r=abc,m=publish"), Ok("abc"));
        assert_eq!(
            publish_key("#!::m=publish,u=someone,r=abc,t=stream,x=y"),
            Ok("abc")
        );
    }

    #[test]
    fn refusals_and_their_codes() {
        for (id, rejection, code) in [
            ("", Rejection::BadStreamId, 2400),
            ("abc", Rejection::BadStreamId, 2400),
            ("publish:", Rejection::BadStreamId, 2400),
            ("write:abc", Rejection::BadStreamId, 2400),
            ("#!::m=publish", Rejection::BadStreamId, 2400),
            ("#!::r=abc,m=publish,r=def", Rejection::BadStreamId, 2400),
            ("#!::r=abc,m=publish,junk", Rejection::BadStreamId, 2400),
            ("#!::r=,m=publish", Rejection::BadStreamId, 2400),
            ("read:abc", Rejection::NotPublish, 2405),
            ("#!::r=abc", Rejection::NotPublish, 2405),
            ("#!::r=abc,m=request", Rejection::NotPublish, 2405),
            ("#!::r=abc,m=bidirectional", Rejection::NotPublish, 2405),
            ("#!::r=abc,m=publish,t=file", Rejection::NotStream, 2415),
        ] {
            assert_eq!(publish_key(id), Err(rejection.clone()), "{id}");
            assert_eq!(rejection.code(), code, "{id}");
        }
        assert_eq!(Rejection::BadKey.code(), 2401);
        assert_eq!(
            Rejection::from(Refusal::Unavailable("stopped".into())).code(),
            2409
        );
        assert_eq!(Rejection::Overload.code(), 2402);
        assert_eq!(Rejection::Unsecure.code(), 1011);
        assert_eq!(Rejection::GateTimeout.code(), 2503);
    }

    #[test]
    fn encryption_must_match_the_configuration() {
        let passphrase = Passphrase::try_from("0123456789abc".to_string()).expect("valid length");
        assert_eq!(key_settings(None, KeySize::Unspecified), Ok(None));
        assert_eq!(key_settings(None, KeySize::AES128), Err(Rejection::Unsecure));
        assert_eq!(
            key_settings(Some(&passphrase), KeySize::Unspecified),
            Err(Rejection::Unsecure)
        );
        let settings = key_settings(Some(&passphrase), KeySize::AES256).expect("accepted");
        assert_eq!(settings.map(|s| s.key_size), Some(KeySize::AES256));
    }
}
