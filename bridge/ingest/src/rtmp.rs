//! The RTMP server: a TCP listener whose connections are [`RtmpSession`]s.
//!
//! `rtmp://HOST:1935/live/{streamKey}` (OBS: server `rtmp://HOST:1935/live`, stream key = the
//! key). The key decides the stream ([`Gate::open`]); a wrong key gets
//! `NetStream.Publish.BadName` and the connection is closed. Every connection is bounded in
//! time (it must be publishing within `publish_timeout`, and a publisher silent for
//! `idle_timeout` is dropped), in memory (see [`crate::rtmp_session`]) and in number
//! (`max_connections`; more are closed at once). Nothing one connection sends can reach
//! another.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::{Instant, timeout, timeout_at};
use tracing::{debug, info, warn};

use crate::gate::{Gate, Protocol, PublishRequest, Sink};
use crate::rtmp_session::{RtmpEvent, RtmpSession};

/// How the RTMP server listens.
#[derive(Debug, Clone)]
pub struct RtmpConfig {
    /// Where (default `0.0.0.0:1935`).
    pub addr: SocketAddr,
    /// A connection must be publishing this soon after it opens.
    pub publish_timeout: Duration,
    /// A publisher that sends nothing for this long is dropped.
    pub idle_timeout: Duration,
    /// Connections at once; more are closed as they come.
    pub max_connections: usize,
}

impl Default for RtmpConfig {
    fn default() -> Self {
        RtmpConfig {
            addr: SocketAddr::from(([0, 0, 0, 0], 1935)),
            publish_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(10),
            max_connections: 256,
        }
    }
}

/// A bound RTMP server, not yet accepting.
#[derive(Debug)]
pub struct RtmpServer {
    listener: TcpListener,
    config: RtmpConfig,
}

impl RtmpServer {
    /// Bind the listener.
    pub async fn bind(config: RtmpConfig) -> std::io::Result<RtmpServer> {
        let listener = TcpListener::bind(config.addr).await?;
        Ok(RtmpServer { listener, config })
    }

    /// Where it listens (the port, when bound to port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Accept connections until `shutdown` completes.
    pub async fn run(self, gate: Arc<dyn Gate>, shutdown: impl Future<Output = ()>) {
        let permits = Arc::new(Semaphore::new(self.config.max_connections));
        let config = Arc::new(self.config);
        tokio::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                _ = &mut shutdown => break,
                accepted = self.listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: wait instead of spinning.
                        warn!("RTMP accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                debug!(
                    "RTMP connection refused: {} connections open",
                    config.max_connections
                );
                continue;
            };
            let _ = stream.set_nodelay(true);
            let gate = gate.clone();
            let config = config.clone();
            tokio::spawn(async move {
                let _permit = permit;
                if let Err(e) = connection(stream, peer, gate, &config).await {
                    debug!("RTMP connection closed: {e}");
                }
            });
        }
    }
}

/// Why a connection ended (logged at debug: a closed socket is normal).
#[derive(Debug, thiserror::Error)]
enum Ended {
    #[error("{0}")]
    Rtmp(#[from] crate::rtmp_session::RtmpError),
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
    #[error("not publishing within the time allowed")]
    PublishTimeout,
    #[error("idle publisher")]
    Idle,
    #[error("the client closed the connection")]
    Eof,
    #[error("publication refused")]
    Refused,
    #[error("publication ended by the server")]
    Kicked,
}

/// How long one write to a client may take (a client that does not read is dropped).
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

async fn connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    gate: Arc<dyn Gate>,
    config: &RtmpConfig,
) -> Result<(), Ended> {
    let mut session = RtmpSession::new();
    let mut sink: Option<Box<dyn Sink>> = None;
    let mut buf = vec![0u8; 16 * 1024];
    let mut events = Vec::new();
    let publish_by = Instant::now() + config.publish_timeout;
    loop {
        let read = if session.publishing() {
            timeout(config.idle_timeout, stream.read(&mut buf))
                .await
                .map_err(|_| Ended::Idle)?
        } else {
            timeout_at(publish_by, stream.read(&mut buf))
                .await
                .map_err(|_| Ended::PublishTimeout)?
        };
        let n = read?;
        if n == 0 {
            return Err(Ended::Eof);
        }
        // Acknowledge at once. Encoders leave Nagle's algorithm on: a frame's last segment
        // waits for the previous one's ACK, which the kernel delays by up to 40 ms, so every
        // frame could reach us late by as much. Linux leaves quick-ACK mode by itself, so it
        // is set again after every read.
        let _ = socket2::SockRef::from(&stream).set_tcp_quickack(true);
        let result = session.receive(&buf[..n], &mut events);
        // Whatever the session produced before an error still goes out (a reject, say).
        while !events.is_empty() {
            for e in std::mem::take(&mut events) {
                match e {
                    RtmpEvent::Send(bytes) => write(&mut stream, &bytes).await?,
                    RtmpEvent::Publish { key, .. } => {
                        let request = PublishRequest::Key {
                            protocol: Protocol::Rtmp,
                            key,
                            peer,
                        };
                        match gate.open(request).await {
                            Ok(s) => {
                                info!(stream = s.stream(), "RTMP publisher connected");
                                sink = Some(s);
                                session.accept(&mut events)?;
                            }
                            Err(refusal) => {
                                warn!(peer = %peer.ip(), "RTMP publish refused: {refusal}");
                                session.reject(&refusal.to_string(), &mut events)?;
                                flush_sends(&mut stream, &mut events).await?;
                                return Err(Ended::Refused);
                            }
                        }
                    }
                    RtmpEvent::Frame(frame) => {
                        if let Some(s) = sink.as_mut()
                            && s.push(frame).is_err()
                        {
                            info!(stream = s.stream(), "RTMP publisher ended by the server");
                            return Err(Ended::Kicked);
                        }
                    }
                    RtmpEvent::Unsupported(text) => {
                        if let Some(s) = sink.as_mut() {
                            warn!(stream = s.stream(), "RTMP source: {text}");
                            s.problem(text);
                        }
                    }
                    RtmpEvent::Unpublished => {
                        if let Some(s) = sink.take() {
                            info!(stream = s.stream(), "RTMP publisher unpublished");
                        }
                    }
                }
            }
        }
        result?;
    }
}

async fn flush_sends(stream: &mut TcpStream, events: &mut Vec<RtmpEvent>) -> Result<(), Ended> {
    for e in std::mem::take(events) {
        if let RtmpEvent::Send(bytes) = e {
            write(stream, &bytes).await?;
        }
    }
    Ok(())
}

async fn write(stream: &mut TcpStream, bytes: &[u8]) -> Result<(), Ended> {
    timeout(WRITE_TIMEOUT, stream.write_all(bytes))
        .await
        .map_err(|_| Ended::Io(std::io::ErrorKind::TimedOut.into()))??;
    Ok(())
}
