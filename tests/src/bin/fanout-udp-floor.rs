//! `fanout-udp-floor`: the cheapest possible UDP fan-out, the floor under any forwarding server.
//!
//! ```text
//! fanout-udp-floor forward --listen 127.0.0.1:5004,127.0.0.1:5002 --to-base 127.0.0.1:20000 --n 10
//! fanout-udp-floor sink --base 127.0.0.1:20000 --n 10 --warm-seconds 10 --seconds 20 --forward-pid PID
//! ```
//!
//! `forward` reads every datagram that reaches its sockets and hands the kernel one copy per
//! destination, up to 64 copies per `sendmmsg(2)`: no parsing, no crypto, no per-viewer state.
//! What a packet costs it is what the kernel charges any forwarder on loopback for sending a
//! datagram, delivering it to the receiving socket and waking the receiver, plus one read per
//! incoming packet; a server's own work per packet comes on top. It prints a JSON summary line
//! when `--seconds` have passed (never with 0).
//!
//! `sink` binds N sockets on consecutive ports under one poll and counts what arrives; after
//! `--warm-seconds` it measures a window of `--seconds` and prints one JSON line: packets and
//! packets/s in the window, the worst socket's RTP loss (sequence holes, over the whole run)
//! and, given `--forward-pid`, that process's CPU (`utime + stime`) over the window and per
//! packet received.
//!
//! Loopback only: every address must be a loopback address.

use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use fanout_tests::loadgen::process_cpu;
use fanout_tests::sequence::SeqTracker;
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};
use nix::errno::Errno;
use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, sendmmsg, setsockopt, sockopt};

/// Copies per `sendmmsg` call.
const CHUNK: usize = 64;

/// Largest datagram forwarded whole (RTP from the test publisher is at most ~1,250 bytes).
const MAX_DATAGRAM: usize = 2048;

/// The cheapest UDP fan-out on loopback, and a sink that counts what it delivers.
#[derive(Debug, Parser)]
#[command(name = "fanout-udp-floor", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Copy every datagram received to every destination (one thread, sendmmsg).
    Forward(ForwardArgs),
    /// Count datagrams on N consecutive ports, and the forwarder's CPU per datagram.
    Sink(SinkArgs),
}

#[derive(Debug, Args)]
struct ForwardArgs {
    /// Addresses to receive on (comma-separated or repeated), e.g. the video and audio ports.
    #[arg(long, required = true, value_delimiter = ',')]
    listen: Vec<SocketAddr>,
    /// Destinations (comma-separated or repeated).
    #[arg(
        long,
        value_delimiter = ',',
        required_unless_present = "to_base",
        conflicts_with = "to_base"
    )]
    to: Vec<SocketAddr>,
    /// First of --n destinations on consecutive ports.
    #[arg(long, requires = "n")]
    to_base: Option<SocketAddr>,
    /// Number of destinations from --to-base.
    #[arg(long, requires = "to_base")]
    n: Option<u16>,
    /// Stop after this long and print a summary; 0 = run until killed.
    #[arg(long, default_value_t = 0.0)]
    seconds: f64,
}

#[derive(Debug, Args)]
struct SinkArgs {
    /// First port's address; the sockets take --n consecutive ports from here.
    #[arg(long)]
    base: SocketAddr,
    /// Number of sockets.
    #[arg(long)]
    n: u16,
    /// Seconds from the start before the measured window.
    #[arg(long, default_value_t = 0.0)]
    warm_seconds: f64,
    /// Length of the measured window in seconds.
    #[arg(long)]
    seconds: f64,
    /// The forwarder's process id, to report its CPU per received datagram.
    #[arg(long)]
    forward_pid: Option<u32>,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Forward(args) => forward(&args),
        Command::Sink(args) => sink(&args),
    }
}

/// `base`, `base + 1`, ... `base + n - 1`.
fn consecutive(base: SocketAddr, n: u16) -> anyhow::Result<Vec<SocketAddr>> {
    anyhow::ensure!(n > 0, "--n must be at least 1");
    (0..n)
        .map(|i| {
            let port = base
                .port()
                .checked_add(i)
                .with_context(|| format!("{base} + {n} ports runs past port 65535"))?;
            Ok(SocketAddr::new(base.ip(), port))
        })
        .collect()
}

fn loopback_only(addrs: &[SocketAddr]) -> anyhow::Result<()> {
    match addrs.iter().find(|a| !a.ip().is_loopback()) {
        Some(a) => anyhow::bail!("{a} is not a loopback address"),
        None => Ok(()),
    }
}

fn duration(seconds: f64, option: &str) -> anyhow::Result<Duration> {
    anyhow::ensure!(
        seconds.is_finite() && seconds >= 0.0,
        "{option} must be a number of seconds >= 0"
    );
    Ok(Duration::from_secs_f64(seconds))
}

/// Waits for events until `until` (forever without one); false once it has passed.
fn wait(poll: &mut Poll, events: &mut Events, until: Option<Instant>) -> io::Result<bool> {
    let timeout = match until {
        Some(at) => {
            let left = at.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            Some(left)
        }
        None => None,
    };
    match poll.poll(events, timeout) {
        Err(e) if e.kind() == io::ErrorKind::Interrupted => events.clear(),
        other => other?,
    }
    Ok(true)
}

fn forward(args: &ForwardArgs) -> anyhow::Result<()> {
    let destinations = match args.to_base {
        Some(base) => consecutive(base, args.n.expect("clap requires --n with --to-base"))?,
        None => args.to.clone(),
    };
    loopback_only(&args.listen)?;
    loopback_only(&destinations)?;
    let run_for = duration(args.seconds, "--seconds")?;
    let end = (!run_for.is_zero()).then(|| Instant::now() + run_for);

    let mut poll = Poll::new().context("create poll")?;
    let mut sockets = Vec::with_capacity(args.listen.len());
    for (i, addr) in args.listen.iter().enumerate() {
        let mut socket = UdpSocket::bind(*addr).with_context(|| format!("bind {addr}"))?;
        // The buffers a forwarding server asks for, so that bursts meet the same limits.
        let _ = setsockopt(&socket, sockopt::SndBuf, &(4 << 20));
        let _ = setsockopt(&socket, sockopt::RcvBuf, &(4 << 20));
        poll.registry()
            .register(&mut socket, Token(i), Interest::READABLE)
            .context("register socket")?;
        sockets.push(socket);
    }
    let mut fanout = Fanout::new(&destinations);
    let mut events = Events::with_capacity(64);
    while wait(&mut poll, &mut events, end).context("poll")? {
        for event in events.iter() {
            // Edge-triggered: read until the socket is empty, or the next edge never comes.
            let socket = &sockets[event.token().0];
            loop {
                match fanout.receive(socket) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    // A copy sent before the sink was up may come back as an ICMP error.
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::Interrupted | io::ErrorKind::ConnectionRefused
                        ) => {}
                    Err(e) => return Err(e).context("receive"),
                }
            }
            fanout.flush(socket);
        }
    }
    println!(
        "{}",
        serde_json::json!({
            "received": fanout.received,
            "sent": fanout.sent,
            "dropped": fanout.dropped,
            "destinations": destinations.len(),
        })
    );
    Ok(())
}

/// Datagrams read since the last flush and their copies, queued for `sendmmsg`.
struct Fanout {
    destinations: Vec<SockaddrStorage>,
    /// The kernel's message headers, allocated once.
    headers: MultiHeaders<SockaddrStorage>,
    /// One buffer per datagram a flush can hold (each has at least one copy), reused.
    buffers: Vec<[u8; MAX_DATAGRAM]>,
    lengths: Vec<usize>,
    /// (datagram, destination) per queued copy.
    copies: Vec<(usize, usize)>,
    received: u64,
    sent: u64,
    /// Copies the kernel did not take (a full buffer, an error).
    dropped: u64,
}

impl Fanout {
    fn new(destinations: &[SocketAddr]) -> Self {
        Fanout {
            destinations: destinations.iter().map(|&a| SockaddrStorage::from(a)).collect(),
            headers: MultiHeaders::preallocate(CHUNK, None),
            buffers: vec![[0; MAX_DATAGRAM]; CHUNK],
            lengths: Vec::with_capacity(CHUNK),
            copies: Vec::with_capacity(CHUNK + destinations.len()),
            received: 0,
            sent: 0,
            dropped: 0,
        }
    }

    /// Reads one datagram and queues a copy for every destination; sends once a call's worth
    /// is queued.
    fn receive(&mut self, socket: &UdpSocket) -> io::Result<()> {
        let held = self.lengths.len();
        let length = socket.recv(&mut self.buffers[held][..])?;
        self.received += 1;
        self.lengths.push(length);
        self.copies
            .extend((0..self.destinations.len()).map(|destination| (held, destination)));
        if self.copies.len() >= CHUNK {
            self.flush(socket);
        }
        Ok(())
    }

    /// Sends every queued copy, `CHUNK` per call.
    fn flush(&mut self, socket: &UdpSocket) {
        let fd = socket.as_raw_fd();
        for chunk in self.copies.chunks(CHUNK) {
            let slices: Vec<[IoSlice<'_>; 1]> = chunk
                .iter()
                .map(|&(d, _)| [IoSlice::new(&self.buffers[d][..self.lengths[d]])])
                .collect();
            let addrs: Vec<Option<SockaddrStorage>> =
                chunk.iter().map(|&(_, to)| Some(self.destinations[to])).collect();
            let mut offset = 0;
            while offset < chunk.len() {
                match sendmmsg(
                    fd,
                    &mut self.headers,
                    &slices[offset..],
                    &addrs[offset..],
                    [],
                    MsgFlags::empty(),
                ) {
                    Ok(done) => {
                        let n = done.count();
                        offset += n;
                        self.sent += n as u64;
                    }
                    Err(Errno::EINTR) => {}
                    // A closed port's ICMP error surfaces on a later send: skip that copy.
                    Err(Errno::ECONNREFUSED) => {
                        offset += 1;
                        self.dropped += 1;
                    }
                    Err(_) => {
                        self.dropped += (chunk.len() - offset) as u64;
                        break;
                    }
                }
            }
        }
        self.copies.clear();
        self.lengths.clear();
    }
}

fn sink(args: &SinkArgs) -> anyhow::Result<()> {
    let addrs = consecutive(args.base, args.n)?;
    loopback_only(&addrs)?;
    let window_length = duration(args.seconds, "--seconds")?;
    anyhow::ensure!(!window_length.is_zero(), "--seconds must be above 0");
    let window_start = Instant::now() + duration(args.warm_seconds, "--warm-seconds")?;
    let end = window_start + window_length;

    let mut poll = Poll::new().context("create poll")?;
    let mut sockets = Vec::with_capacity(addrs.len());
    for (i, addr) in addrs.iter().enumerate() {
        let mut socket = UdpSocket::bind(*addr).with_context(|| format!("bind {addr}"))?;
        poll.registry()
            .register(&mut socket, Token(i), Interest::READABLE)
            .context("register socket")?;
        sockets.push(socket);
    }
    let mut tallies: Vec<Tally> = (0..sockets.len()).map(|_| Tally::default()).collect();
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut window: Option<(Instant, Vec<u64>, Option<Duration>)> = None;
    loop {
        let until = if window.is_some() { end } else { window_start };
        if !wait(&mut poll, &mut events, Some(until)).context("poll")? {
            if window.is_some() {
                break;
            }
            let counts = tallies.iter().map(|t| t.packets).collect();
            window = Some((Instant::now(), counts, args.forward_pid.and_then(process_cpu)));
            continue;
        }
        for event in events.iter() {
            let index = event.token().0;
            loop {
                match sockets[index].recv(&mut buf) {
                    Ok(length) => tallies[index].push(&buf[..length], Instant::now()),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e).context("receive"),
                }
            }
        }
    }
    let (at, before, cpu_before) = window.expect("the loop ends only after the window started");
    let seconds = at.elapsed().as_secs_f64();
    let cpu_after = args.forward_pid.and_then(process_cpu);
    let in_window: Vec<u64> = tallies.iter().zip(&before).map(|(t, b)| t.packets - b).collect();
    let packets: u64 = in_window.iter().sum();
    let cpu = cpu_before
        .zip(cpu_after)
        .map(|(b, a)| a.saturating_sub(b).as_secs_f64());
    println!(
        "{}",
        serde_json::json!({
            "sockets": sockets.len(),
            "receiving": in_window.iter().filter(|&&p| p > 0).count(),
            "seconds": seconds,
            "packets": packets,
            "packets_per_sec": packets as f64 / seconds.max(1e-9),
            "loss_pct_max": tallies.iter().map(Tally::loss_pct).fold(0.0, f64::max),
            "forward_cpu_s": cpu,
            "forward_us_per_packet": cpu.filter(|_| packets > 0).map(|c| c * 1e6 / packets as f64),
        })
    );
    Ok(())
}

/// What one sink socket received: datagrams, and the RTP streams among them.
#[derive(Debug, Default)]
struct Tally {
    packets: u64,
    /// (SSRC, its sequence numbers): a socket gets one video and one audio stream.
    streams: Vec<(u32, SeqTracker)>,
}

impl Tally {
    fn push(&mut self, datagram: &[u8], now: Instant) {
        self.packets += 1;
        // RTP version 2 with a whole fixed header; anything else is only counted.
        if datagram.len() < 12 || datagram[0] >> 6 != 2 {
            return;
        }
        let seq = u16::from_be_bytes([datagram[2], datagram[3]]);
        let ssrc = u32::from_be_bytes([datagram[8], datagram[9], datagram[10], datagram[11]]);
        let index = match self.streams.iter().position(|(s, _)| *s == ssrc) {
            Some(i) => i,
            None => {
                self.streams.push((ssrc, SeqTracker::new()));
                self.streams.len() - 1
            }
        };
        self.streams[index].1.push(seq, now);
    }

    /// Sequence holes as a share of the packets expected, all streams together. Nothing
    /// retransmits here, so every hole is a loss.
    fn loss_pct(&self) -> f64 {
        let (received, holes) = self
            .streams
            .iter()
            .fold((0, 0), |(r, h), (_, s)| (r + s.received(), h + s.gaps_opened()));
        if received + holes == 0 {
            0.0
        } else {
            holes as f64 * 100.0 / (received + holes) as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rtp(ssrc: u32, seq: u16) -> Vec<u8> {
        let mut packet = vec![0x80, 96];
        packet.extend_from_slice(&seq.to_be_bytes());
        packet.extend_from_slice(&[0; 4]);
        packet.extend_from_slice(&ssrc.to_be_bytes());
        packet.extend_from_slice(&[7; 100]);
        packet
    }

    #[test]
    fn consecutive_ports_stop_at_the_last_port() {
        let base: SocketAddr = "127.0.0.1:65534".parse().expect("address");
        assert_eq!(consecutive(base, 2).expect("fits").len(), 2);
        assert!(consecutive(base, 3).is_err());
        assert!(consecutive(base, 0).is_err());
    }

    #[test]
    fn refuses_addresses_off_loopback() {
        let lo: SocketAddr = "127.0.0.2:1".parse().expect("address");
        let off: SocketAddr = "10.0.0.1:1".parse().expect("address");
        assert!(loopback_only(&[lo]).is_ok());
        assert!(loopback_only(&[lo, off]).is_err());
    }

    #[test]
    fn tally_counts_holes_per_stream() {
        let now = Instant::now();
        let mut tally = Tally::default();
        for seq in [1, 2, 4] {
            tally.push(&rtp(10, seq), now);
        }
        for seq in [7, 8, 9] {
            tally.push(&rtp(20, seq), now);
        }
        tally.push(b"not rtp", now);
        assert_eq!(tally.packets, 7);
        // One hole (3) among 7 expected RTP packets.
        assert!((tally.loss_pct() - 100.0 / 7.0).abs() < 1e-9);
    }

    #[test]
    fn forwards_every_datagram_to_every_destination() {
        let sinks: Vec<std::net::UdpSocket> = (0..3)
            .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").expect("bind"))
            .collect();
        let destinations: Vec<SocketAddr> = sinks.iter().map(|s| s.local_addr().expect("addr")).collect();
        let socket = UdpSocket::bind("127.0.0.1:0".parse().expect("address")).expect("bind");
        let to = socket.local_addr().expect("addr");
        let source = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        // 30 datagrams x 3 copies: one full call of 64 mid-way, the rest at the flush.
        for seq in 0..30 {
            source.send_to(&rtp(1, seq), to).expect("send");
        }
        let mut fanout = Fanout::new(&destinations);
        let deadline = Instant::now() + Duration::from_secs(5);
        while fanout.received < 30 && Instant::now() < deadline {
            match fanout.receive(&socket) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                Err(e) => panic!("receive: {e}"),
            }
        }
        fanout.flush(&socket);
        assert_eq!((fanout.received, fanout.sent, fanout.dropped), (30, 90, 0));
        let mut buf = [0u8; MAX_DATAGRAM];
        for sink in &sinks {
            sink.set_read_timeout(Some(Duration::from_secs(1)))
                .expect("timeout");
            for seq in 0..30u16 {
                let n = sink.recv(&mut buf).expect("a copy");
                assert_eq!(&buf[..n], &rtp(1, seq)[..]);
            }
        }
    }
}
