//! Sending many datagrams with one system call.
//!
//! One `send_to` costs about as much CPU as the rest of forwarding a packet; a worker that
//! fans a packet out to hundreds of viewers hands the kernel the whole batch at once with
//! `sendmmsg(2)`. This is the only unsafe code in the project: it builds the C arrays the
//! call reads, from slices that outlive the call.
#![allow(unsafe_code)]

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use socket2::SockAddr;

/// Datagrams per system call (the kernel's UIO_MAXIOV is far above this).
const CHUNK: usize = 64;

/// Datagrams waiting for one socket.
#[derive(Default)]
pub(crate) struct SendBatch {
    items: Vec<(SocketAddr, Vec<u8>)>,
}

impl SendBatch {
    pub(crate) fn push(&mut self, to: SocketAddr, data: Vec<u8>) {
        self.items.push((to, data));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Whether a full system call's worth is queued (send it rather than wait).
    pub(crate) fn is_full(&self) -> bool {
        self.items.len() >= CHUNK
    }

    /// Send everything queued. Datagrams the kernel will not take now (a full buffer) are
    /// dropped, as a UDP send would drop them; returns how many were sent.
    pub(crate) fn flush(&mut self, socket: &impl AsRawFd) -> io::Result<usize> {
        let fd = socket.as_raw_fd();
        let mut sent = 0;
        let mut result = Ok(());
        for chunk in self.items.chunks(CHUNK) {
            let addrs: Vec<SockAddr> = chunk.iter().map(|(a, _)| SockAddr::from(*a)).collect();
            let mut iovs: Vec<libc::iovec> = chunk
                .iter()
                .map(|(_, d)| libc::iovec {
                    iov_base: d.as_ptr() as *mut libc::c_void,
                    iov_len: d.len(),
                })
                .collect();
            let mut msgs: Vec<libc::mmsghdr> = iovs
                .iter_mut()
                .zip(&addrs)
                .map(|(iov, addr)| {
                    // SAFETY: a zeroed msghdr is a valid "no name, no data, no control" header.
                    let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
                    hdr.msg_name = addr.as_ptr() as *mut libc::c_void;
                    hdr.msg_namelen = addr.len();
                    hdr.msg_iov = iov as *mut libc::iovec;
                    hdr.msg_iovlen = 1;
                    libc::mmsghdr {
                        msg_hdr: hdr,
                        msg_len: 0,
                    }
                })
                .collect();
            let mut offset = 0;
            while offset < msgs.len() {
                // SAFETY: `msgs[offset..]` points at headers whose name and iovec pointers
                // refer to `addrs`, `iovs` and the queued buffers, all alive until after the call.
                let n = unsafe {
                    libc::sendmmsg(
                        fd,
                        msgs[offset..].as_mut_ptr(),
                        (msgs.len() - offset) as libc::c_uint,
                        0,
                    )
                };
                if n < 0 {
                    let e = io::Error::last_os_error();
                    match e.kind() {
                        io::ErrorKind::Interrupted => continue,
                        // ICMP errors from one peer surface on the next send; skip that datagram.
                        io::ErrorKind::ConnectionRefused => {
                            offset += 1;
                            continue;
                        }
                        _ => {
                            result = Err(e);
                            break;
                        }
                    }
                }
                offset += n as usize;
                sent += n as usize;
            }
            if result.is_err() {
                break;
            }
        }
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
        let mut buf = [0u8; 512];
        a.set_read_timeout(Some(std::time::Duration::from_secs(1)))
            .expect("timeout");
        let (n, _) = a.recv_from(&mut buf).expect("first datagram");
        assert_eq!((n, buf[0]), (10, 0));
        let (n, _) = a.recv_from(&mut buf).expect("second datagram");
        assert_eq!((n, buf[0]), (12, 2));
    }
}
