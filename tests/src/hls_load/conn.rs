//! One HTTP/1.1 keep-alive connection (hyper's connection API): opened once, reused for every
//! request, reopened when the server closes it.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Request, header};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::LoadError;

/// A response as the load generator needs it.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// The whole body.
    pub body: Bytes,
    /// From the request being handed to the connection to the last body byte.
    pub elapsed: Duration,
}

/// A keep-alive connection to one server.
pub struct Conn {
    addr: SocketAddr,
    host: String,
    sender: Option<SendRequest<Empty<Bytes>>>,
    timeout: Duration,
}

impl Conn {
    /// A connection that opens on first use.
    pub fn lazy(addr: SocketAddr, host: &str, timeout: Duration) -> Conn {
        Conn {
            addr,
            host: host.to_owned(),
            sender: None,
            timeout,
        }
    }

    /// Opens the TCP connection now (if it is not open).
    pub async fn open(&mut self) -> Result<(), LoadError> {
        if self.sender.as_ref().is_some_and(|s| !s.is_closed()) {
            return Ok(());
        }
        let stream = tokio::time::timeout(self.timeout, TcpStream::connect(self.addr))
            .await
            .map_err(|_| LoadError::Timeout)?
            .map_err(|e| LoadError::Connect(e.to_string()))?;
        stream.set_nodelay(true).ok();
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| LoadError::Connect(e.to_string()))?;
        // The connection future drives the socket; it ends when either side closes.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        self.sender = Some(sender);
        Ok(())
    }

    /// GET `path_and_query`, reading the whole body. A connection the server closed is
    /// reopened once; a request that was sent is never retried.
    pub async fn get(&mut self, path_and_query: &str) -> Result<Reply, LoadError> {
        self.open().await?;
        let sender = self.sender.as_mut().expect("open() leaves a sender");
        if sender.ready().await.is_err() {
            self.sender = None;
            self.open().await?;
        }
        let sender = self.sender.as_mut().expect("open() leaves a sender");
        let request = Request::get(path_and_query)
            .header(header::HOST, &self.host)
            .body(Empty::<Bytes>::new())
            .map_err(|e| LoadError::BadUrl(e.to_string()))?;
        let started = Instant::now();
        let exchange = async {
            let response = sender.send_request(request).await?;
            let status = response.status().as_u16();
            let body = response.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>((status, body))
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(Ok((status, body))) => Ok(Reply {
                status,
                body,
                elapsed: started.elapsed(),
            }),
            Ok(Err(e)) => {
                self.sender = None;
                Err(LoadError::Http(e.to_string()))
            }
            Err(_) => {
                self.sender = None;
                Err(LoadError::Timeout)
            }
        }
    }
}
