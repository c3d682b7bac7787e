//! Sending many datagrams with one system call.
//!
//! One `send_to` costs about as much CPU as the rest of forwarding a packet; a worker that
//! fans a packet out to hundreds of viewers hands the kernel the whole batch at once with
//! `sendmmsg(2)`, through nix's safe wrapper.

use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use nix::errno::Errno;
use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, sendmmsg};

/// Datagrams per system call (the kernel's UIO_MAXIOV is far above this).
const CHUNK: usize = 64;

/// Datagrams waiting for one socket.
pub(crate) struct SendBatch {
    items: Vec<(SockaddrStorage, Vec<u8>)>,
    /// The kernel's message headers, allocated once and refilled for every call.
    headers: MultiHeaders<SockaddrStorage>,
    /// Datagrams not sent since the last [`SendBatch::take_dropped`].
    dropped: u64,
}

impl Default for SendBatch {
    fn default() -> Self {
        SendBatch {
            items: Vec::new(),
            headers: MultiHeaders::preallocate(CHUNK, None),
            dropped: 0,
        }
    }
}

impl SendBatch {
    pub(crate) fn push(&mut self, to: SocketAddr, data: Vec<u8>) {
        self.items.push((SockaddrStorage::from(to), data));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Whether a full system call's worth is queued (send it rather than wait).
    pub(crate) fn is_full(&self) -> bool {
        self.items.len() >= CHUNK
    }

    /// Datagrams dropped (a full send buffer, an error) since the last call.
    pub(crate) fn take_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.dropped)
    }

    /// Send everything queued. Datagrams the kernel will not take now (a full buffer) are
    /// dropped, as a UDP send would drop them, and counted; returns how many were sent.
    pub(crate) fn flush(&mut self, socket: &impl AsRawFd) -> io::Result<usize> {
        let fd = socket.as_raw_fd();
        let mut sent = 0;
        let mut offset = 0;
        let mut result = Ok(());
        while offset < self.items.len() {
            let chunk = &self.items[offset..(offset + CHUNK).min(self.items.len())];
            let slices: Vec<[IoSlice<'_>; 1]> = chunk.iter().map(|(_, d)| [IoSlice::new(d)]).collect();
            let addrs: Vec<Option<SockaddrStorage>> = chunk.iter().map(|(a, _)| Some(*a)).collect();
            match sendmmsg(fd, &mut self.headers, &slices, &addrs, [], MsgFlags::empty()) {
                Ok(done) => {
                    let n = done.count();
                    offset += n;
                    sent += n;
                }
                Err(Errno::EINTR) => {}
                // ICMP errors from one peer surface on the next send; skip that datagram.
                Err(Errno::ECONNREFUSED) => offset += 1,
                Err(e) => {
                    result = Err(io::Error::from(e));
                    break;
                }
            }
        }
        self.dropped += (self.items.len() - sent) as u64;
        self.items.clear();
        result.map(|()| sent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_a_batch_to_several_destinations() {
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let a = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let b = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let mut batch = SendBatch::default();
        for i in 0..150u8 {
            let to = if i % 2 == 0 {
                a.local_addr()
            } else {
                b.local_addr()
            }
            .expect("addr");
            batch.push(to, vec![i; 10 + usize::from(i)]);
        }
        assert_eq!(batch.flush(&tx).expect("sent"), 150);
        assert!(batch.is_empty());
        assert_eq!(batch.take_dropped(), 0);
        let mut buf = [0u8; 512];
        a.set_read_timeout(Some(std::time::Duration::from_secs(1)))
            .expect("timeout");
        let (n, _) = a.recv_from(&mut buf).expect("first datagram");
        assert_eq!((n, buf[0]), (10, 0));
        let (n, _) = a.recv_from(&mut buf).expect("second datagram");
        assert_eq!((n, buf[0]), (12, 2));
    }
}
