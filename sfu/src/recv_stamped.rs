//! Receiving a datagram with the time the kernel received it.
//!
//! While a worker is busy, or not scheduled at all on a loaded machine, media waits in its
//! socket's receive buffer. The time of the `recvmsg` call hides that wait; the kernel's own
//! receive timestamp (`SO_TIMESTAMPNS`, on the realtime clock) shows it, so the age budget of
//! forwarded media and the forwarding-delay histogram count from the true arrival.

use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::socket::{ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg, setsockopt, sockopt};

/// Ask the kernel to stamp every datagram of `socket` with its receive time.
pub(crate) fn enable(socket: &impl std::os::fd::AsFd) -> io::Result<()> {
    setsockopt(socket, sockopt::ReceiveTimestampns, &true).map_err(io::Error::from)
}

/// Reads datagrams with their arrival time; holds the buffer for control messages.
pub(crate) struct StampedReceiver {
    cmsg: Vec<u8>,
}

impl Default for StampedReceiver {
    fn default() -> Self {
        StampedReceiver {
            cmsg: nix::cmsg_space!(nix::sys::time::TimeSpec),
        }
    }
}

/// One datagram: its length, sender, and when it arrived (the read time when the kernel gave
/// no stamp). `now` is the time of the read.
pub(crate) struct Stamped {
    pub(crate) len: usize,
    pub(crate) source: SocketAddr,
    pub(crate) arrived: Instant,
    pub(crate) now: Instant,
}

impl StampedReceiver {
    /// Receive one datagram into `buf` (non-blocking socket: `WouldBlock` when none waits).
    pub(crate) fn recv(&mut self, socket: &impl AsRawFd, buf: &mut [u8]) -> io::Result<Stamped> {
        let mut iov = [IoSliceMut::new(buf)];
        let msg = recvmsg::<SockaddrStorage>(
            socket.as_raw_fd(),
            &mut iov,
            Some(&mut self.cmsg),
            MsgFlags::empty(),
        )
        .map_err(io::Error::from)?;
        let now = Instant::now();
        let source =
            msg.address.as_ref().and_then(socket_addr).ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidData, "datagram without a source address")
            })?;
        let mut arrived = now;
        if let Ok(cmsgs) = msg.cmsgs() {
            for c in cmsgs {
                if let ControlMessageOwned::ScmTimestampns(ts) = c {
                    let stamp = Duration::new(ts.tv_sec().max(0) as u64, ts.tv_nsec().max(0) as u32);
                    arrived = arrival(now, SystemTime::now(), stamp);
                }
            }
        }
        Ok(Stamped {
            len: msg.bytes,
            source,
            arrived,
            now,
        })
    }
}

/// The kernel's realtime `stamp` as an `Instant`, given the same moment on both clocks. A
/// stamp from the future (the realtime clock stepped back) counts as now.
fn arrival(now: Instant, wall_now: SystemTime, stamp: Duration) -> Instant {
    let wall = wall_now.duration_since(UNIX_EPOCH).unwrap_or_default();
    now.checked_sub(wall.saturating_sub(stamp)).unwrap_or(now)
}

fn socket_addr(a: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(SocketAddr::from(*v4));
    }
    a.as_sockaddr_in6().map(|v6| SocketAddr::from(*v6))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_datagram_that_waited_in_the_buffer_shows_its_wait() {
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        rx.set_nonblocking(true).expect("non-blocking");
        enable(&rx).expect("timestamps");
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let mut r = StampedReceiver::default();
        let mut buf = [0u8; 64];
        let waited = Duration::from_millis(50);
        // The kernel turns receive stamping on a moment after the first socket asks (until
        // then it stamps at the read): the first datagrams may show no wait.
        let mut ages = Vec::new();
        for _ in 0..20 {
            tx.send_to(b"hello", rx.local_addr().expect("addr"))
                .expect("send");
            std::thread::sleep(waited);
            let d = r.recv(&rx, &mut buf).expect("a datagram is waiting");
            assert_eq!(&buf[..d.len], b"hello");
            assert_eq!(d.source, tx.local_addr().expect("addr"));
            let age = d.now - d.arrived;
            assert!(age < Duration::from_secs(5), "age {age:?}");
            ages.push(age);
            if age >= waited {
                let e = r.recv(&rx, &mut buf).err().expect("nothing more");
                assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
                return;
            }
        }
        panic!("no datagram showed its {waited:?} in the buffer: {ages:?}");
    }

    #[test]
    fn a_stamp_from_the_future_counts_as_now() {
        let now = Instant::now();
        let wall = UNIX_EPOCH + Duration::from_secs(1_000);
        assert_eq!(arrival(now, wall, Duration::from_secs(1_001)), now);
        assert_eq!(
            arrival(now, wall, Duration::from_millis(999_900)),
            now - Duration::from_millis(100)
        );
    }
}
