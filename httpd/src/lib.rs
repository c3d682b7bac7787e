//! Fanout's HTTP listeners (the API, pages and LL-HLS; chat) and the limits a public server
//! needs against clients that open connections and then do not use them:
//!
//! - **Header timeout**: a connection must deliver a whole request header within
//!   [`HttpLimits::header_timeout`] of opening, and again of each response it was sent
//!   (hyper's `header_read_timeout`, which runs while a keep-alive connection waits for its
//!   next request). A slowloris client, or a connection left idle, is closed then. A request
//!   being answered is not idle: a held LL-HLS playlist request or an upgraded WebSocket is
//!   not cut by it. HTTP/2 connections are pinged at that interval and closed when a ping goes
//!   unanswered.
//! - **Connection cap**: at most [`HttpLimits::max_connections`] connections at once
//!   ([`Gate`]). Past it, a new connection is accepted and closed at once (and counted), so the
//!   kernel's backlog does not fill with clients that wait forever.
//!
//! [`serve`] runs a listener for an axum [`Router`] with both, and `ConnectInfo<SocketAddr>`
//! for the handlers; [`http1`] gives a listener that runs its own loop (chat) the same
//! HTTP/1.1 settings.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tower::ServiceExt;

/// Limits of one HTTP listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// A request header must arrive whole within this long of the connection opening or of
    /// its previous response.
    pub header_timeout: Duration,
    /// Connections open at once, at most (0: no cap).
    pub max_connections: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            header_timeout: Duration::from_secs(10),
            max_connections: 10_000,
        }
    }
}

/// The connection cap of one listener, and what it refused.
#[derive(Debug)]
pub struct Gate {
    slots: Option<Arc<Semaphore>>,
    max: usize,
    refused: AtomicU64,
}

/// A connection's place under the cap, given back when it is dropped.
#[derive(Debug)]
pub struct Admitted(#[allow(dead_code)] Option<OwnedSemaphorePermit>);

impl Gate {
    /// A gate for `max_connections` (0: no cap).
    pub fn new(max_connections: usize) -> Arc<Gate> {
        Arc::new(Gate {
            slots: (max_connections > 0).then(|| Arc::new(Semaphore::new(max_connections))),
            max: max_connections,
            refused: AtomicU64::new(0),
        })
    }

    /// A place for one more connection, or `None` (counted) when every place is taken.
    pub fn admit(&self) -> Option<Admitted> {
        let Some(slots) = &self.slots else {
            return Some(Admitted(None));
        };
        match slots.clone().try_acquire_owned() {
            Ok(permit) => Some(Admitted(Some(permit))),
            Err(_) => {
                let n = self.refused.fetch_add(1, Ordering::Relaxed);
                if n.is_power_of_two() || n == 0 {
                    tracing::warn!(
                        max = self.max,
                        refused = n + 1,
                        "HTTP connection cap reached: closing new connections"
                    );
                }
                None
            }
        }
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.slots
            .as_ref()
            .map_or(0, |s| self.max - s.available_permits())
    }

    /// Connections closed at once because the cap was reached, so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

/// The next connection on `listener` that `gate` admits; those past its cap are closed, and
/// accept errors (out of descriptors, most likely) are waited out.
pub async fn accept(listener: &TcpListener, gate: &Gate) -> (TcpStream, SocketAddr, Admitted) {
    loop {
        match listener.accept().await {
            Ok((tcp, peer)) => match gate.admit() {
                Some(admitted) => return (tcp, peer, admitted),
                None => drop(tcp),
            },
            Err(e) => {
                // Let some connections close before trying again.
                tracing::warn!(local = ?listener.local_addr().ok(), error = %e, "HTTP accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// HTTP/1.1 connection settings with `limits`' header timeout.
pub fn http1(limits: &HttpLimits) -> hyper::server::conn::http1::Builder {
    let mut b = hyper::server::conn::http1::Builder::new();
    b.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    b
}

/// HTTP/1.1 and cleartext HTTP/2 (prior knowledge) with `limits`' timeouts.
fn auto_builder(limits: &HttpLimits) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    b.http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(limits.header_timeout))
        .keep_alive_timeout(limits.header_timeout);
    b
}

/// Serve `app` on `listener` (HTTP/1.1 and h2c) under `limits` until `shutdown` resolves;
/// then stop accepting, let open exchanges finish for at most `grace`, and return.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()> + Send,
    grace: Duration,
) {
    let gate = Gate::new(limits.max_connections);
    let builder = Arc::new(auto_builder(&limits));
    let mut shutdown = std::pin::pin!(shutdown);
    let (stop_tx, stop_rx) = watch::channel(false);
    // Every connection holds a receiver; `closed` tells when the last has gone.
    let (conns, conns_rx) = watch::channel(());
    loop {
        let (tcp, peer, admitted) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = accept(&listener, &gate) => accepted,
        };
        let service = TowerToHyperService::new(app.clone().map_request(
            move |mut req: axum::http::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req
            },
        ));
        let builder = builder.clone();
        let mut stop = stop_rx.clone();
        let held = conns_rx.clone();
        tokio::spawn(async move {
            let _admitted = admitted;
            let _held = held;
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(tcp), service);
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                served = conn.as_mut() => {
                    if let Err(e) = served {
                        tracing::debug!(%peer, error = %e, "HTTP connection ended");
                    }
                }
                // The only change there is: stop.
                _ = stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(conns_rx);
    if tokio::time::timeout(grace, conns.closed()).await.is_err() {
        tracing::info!(
            ?grace,
            "HTTP connections still open after the grace period: closed"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_admits_so_many_and_counts_the_rest() {
        let gate = Gate::new(2);
        let a = gate.admit().expect("first");
        let _b = gate.admit().expect("second");
        assert!(gate.admit().is_none());
        assert_eq!((gate.open(), gate.refused()), (2, 1));
        drop(a);
        assert!(gate.admit().is_some(), "a closed connection gives its place back");
        let open = Gate::new(0);
        for _ in 0..100 {
            std::mem::forget(open.admit().expect("no cap"));
        }
        assert_eq!(open.refused(), 0);
    }
}
