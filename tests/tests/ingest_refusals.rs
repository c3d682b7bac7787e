//! What RTMP and SRT ingest refuse, and what they survive:
//!
//! - wrong stream keys over RTMP and SRT are refused (ffmpeg fails, nothing goes live) and
//!   never reach the log; a key rotation disconnects the RTMP publisher, the old key is
//!   refused after it, the new one works;
//! - while an RTMP stream plays to a webrtc-rs viewer, hostile TCP connections to the RTMP
//!   port (random bytes, a truncated handshake, garbage chunks after a handshake, an oversized
//!   chunk size, idle connections) and hostile datagrams to the SRT port (random bytes, forged
//!   handshakes, some carrying the listener's own cookie) neither interrupt the viewer's media
//!   nor stay open, and SRT still admits a publisher afterwards. (How soon each connection is
//!   closed is printed, not asserted: the publish timeout bounds them all.)

mod common;

use std::io::{self, Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::ingest::{self, Ffmpeg, LISTENERS, Push, RTMP_PORT, SRT_PORT, Video};
use common::{Server, http, in_netns, runtime, webrtc_rs_viewer};
use serde_json::Value;

#[test]
fn wrong_keys_are_refused_and_rotation_kicks() {
    if !in_netns("wrong_keys_are_refused_and_rotation_kicks") {
        return;
    }
    const WRONG_RTMP: &str = "sk_wrong_rtmp_key_the_log_must_not_show";
    const WRONG_SRT: &str = "sk_wrong_srt_key_the_log_must_not_show";
    // Debug logging, as an operator chasing a problem runs it: more places a key could leak
    // through (srt-tokio's debug lines print every caller's stream id).
    let server = Server::start_logging("debug,str0m=info", &LISTENERS);
    let created = ingest::create(&server, "keys");
    let rtmp_server = created.body["rtmpServer"].as_str().expect("rtmpServer");
    let srt_server = created.body["srtServer"].as_str().expect("srtServer");

    let mut wrong = Ffmpeg::push(
        Video::NoBFrames,
        Push::Rtmp(format!("{rtmp_server}/{WRONG_RTMP}")),
        30,
    );
    wrong.assert_refused("RTMP with a wrong key");
    for url in [
        format!("{srt_server}?streamid=publish:{WRONG_SRT}"),
        // Raw: ffmpeg's libsrt URL takes the value as it is ('#' starts no fragment there).
        format!("{srt_server}?streamid=#!::r={WRONG_SRT},m=publish"),
    ] {
        let mut wrong = Ffmpeg::push(
            Video::NoBFrames,
            Push::Srt {
                url,
                passphrase: None,
            },
            30,
        );
        wrong.assert_refused("SRT with a wrong key");
    }
    ingest::assert_never_live(&server, &created.id, Duration::from_secs(2));
    assert_eq!(ingest::stream(&server, &created.id)["status"], "created");

    // The right key, right after.
    let mut publisher = Ffmpeg::push(Video::NoBFrames, Push::Rtmp(created.rtmp_url()), 150);
    ingest::wait_live(&server, &created.id);

    let r = http(
        "POST",
        &format!("{}/api/v1/streams/{}/rotate-key", server.base, created.id),
        &[("Authorization", &format!("Bearer {}", server.admin))],
        None,
    );
    assert_eq!(r.status, 200, "rotate-key: {}", r.body);
    let rotated: Value = serde_json::from_str(&r.body).expect("rotation JSON");
    let new_key = rotated["streamKey"].as_str().expect("new streamKey").to_string();
    assert_ne!(new_key, created.key);
    let new_url = rotated["rtmpUrl"].as_str().expect("new rtmpUrl").to_string();
    assert_eq!(new_url, format!("{rtmp_server}/{new_key}"));

    let exit = publisher.wait_exit(Duration::from_secs(30));
    assert!(
        exit.is_some(),
        "the rotation did not disconnect the RTMP publisher"
    );
    ingest::wait_stream(
        &server,
        &created.id,
        Duration::from_secs(20),
        "reconnecting or ended after the rotation",
        |v| v["status"] == "ended" || v["reconnecting"] == true,
    );
    let mut old = Ffmpeg::push(Video::NoBFrames, Push::Rtmp(created.rtmp_url()), 30);
    old.assert_refused("RTMP with the rotated-out key");
    let _new = Ffmpeg::push(Video::NoBFrames, Push::Rtmp(new_url), 60);
    ingest::wait_stream(
        &server,
        &created.id,
        Duration::from_secs(30),
        "live with the new key",
        |v| v["status"] == "live" && v["reconnecting"] == false,
    );

    let log = server.log();
    for (what, secret) in [
        ("wrong RTMP key", WRONG_RTMP),
        ("wrong SRT key", WRONG_SRT),
        ("rotated-out key", created.key.as_str()),
        ("new key", new_key.as_str()),
    ] {
        assert!(!log.contains(secret), "the {what} is in the server log");
    }
}

/// How long a connection that does not publish may stay open: the server's publish timeout
/// (10 s) with room for a busy machine.
const CLOSED_WITHIN: Duration = Duration::from_secs(20);

#[test]
fn garbage_on_ingest_ports_does_not_disturb_a_playing_stream() {
    if !in_netns("garbage_on_ingest_ports_does_not_disturb_a_playing_stream") {
        return;
    }
    let mut server = Server::start(&LISTENERS);
    let created = ingest::create(&server, "garbage");
    let mut publisher = Ffmpeg::push(Video::NoBFrames, Push::Rtmp(created.rtmp_url()), 180);
    ingest::wait_live(&server, &created.id);
    let rt = runtime();
    let viewer = rt.block_on(webrtc_rs_viewer(&server, &created.id));
    rt.block_on(viewer.wait_for(Duration::from_secs(30), |s| {
        s.video.frames > 30 && s.audio.packets > 50
    }))
    .unwrap_or_else(|s| panic!("the viewer got too little before the garbage: {s:?}"));

    let mut attacks = vec![
        attack("random bytes", |s, rng| {
            let mut junk = vec![0u8; 4096];
            rng.fill(&mut junk);
            junk[0] = 0x47; // not RTMP's version byte
            let _ = s.write_all(&junk);
            Ok(())
        }),
        attack("a truncated handshake", |s, rng| {
            let mut c0c1 = vec![0u8; 1 + 768];
            rng.fill(&mut c0c1);
            c0c1[0] = 3;
            s.write_all(&c0c1)
        }),
        attack("garbage chunks after a handshake", |s, rng| {
            handshake(s, rng)?;
            let mut junk = vec![0u8; 4096];
            for _ in 0..64 {
                rng.fill(&mut junk);
                if s.write_all(&junk).is_err() {
                    break; // closed already
                }
            }
            Ok(())
        }),
        attack("an oversized chunk size", |s, rng| {
            handshake(s, rng)?;
            // Set Chunk Size (type 1) on chunk stream 2, message stream 0: 2^31 - 1.
            let set_chunk_size = [2, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff];
            s.write_all(&set_chunk_size)?;
            let mut junk = vec![0u8; 4096];
            rng.fill(&mut junk);
            let _ = s.write_all(&junk);
            Ok(())
        }),
    ];
    for _ in 0..4 {
        attacks.push(attack("an idle connection", |_, _| Ok(())));
    }
    let datagrams = std::thread::spawn(srt_garbage);

    // The viewer's media keeps arriving in every 2 s window while the attacks run.
    let started = Instant::now();
    let mut before = viewer.stats();
    let mut windows = 0;
    while windows < 5 || !datagrams.is_finished() || attacks.iter().any(|(_, a)| !a.is_finished()) {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "the attacks did not end"
        );
        std::thread::sleep(Duration::from_secs(2));
        let after = viewer.stats();
        assert!(
            after.video.packets > before.video.packets && after.audio.packets > before.audio.packets,
            "media stopped in window {windows}: {before:?} -> {after:?}"
        );
        assert!(server.wait_exit(Duration::ZERO).is_none(), "the server exited");
        before = after;
        windows += 1;
    }
    for (what, a) in attacks {
        match a.join().expect("attack thread") {
            Ok(after) => println!("{what}: closed by the server after {after:?}"),
            Err(e) => panic!("{what}: {e}"),
        }
    }
    let (sent, cookies) = datagrams.join().expect("datagram thread");
    println!("{sent} datagrams sent to the SRT port, conclusions with {cookies} of its cookies");
    assert!(cookies > 0, "the listener never answered an induction");

    let v = ingest::stream(&server, &created.id);
    assert!(v["status"] == "live" && v["reconnecting"] == false, "{v}");
    assert!(publisher.running(), "the RTMP publisher was disconnected");
    // The SRT listener survived the datagrams: a publisher still gets in.
    let other = ingest::create(&server, "srt after the garbage");
    let _srt = Ffmpeg::push(
        Video::NoBFrames,
        Push::Srt {
            url: other.srt_url(),
            passphrase: None,
        },
        60,
    );
    ingest::wait_live(&server, &other.id);
}

/// A tiny xorshift generator: garbage needs no quality, only variety.
struct Rng(u64);

impl Rng {
    fn new(salt: u64) -> Rng {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        Rng((t ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn fill(&mut self, buf: &mut [u8]) {
        buf.iter_mut().for_each(|b| *b = self.next() as u8);
    }
}

/// Opens a TCP connection to the RTMP port, runs `send` on it, then waits for the server to
/// close it. The result is how long after opening it was closed, or why it counts as a
/// failure.
fn attack(
    what: &'static str,
    send: impl FnOnce(&mut TcpStream, &mut Rng) -> io::Result<()> + Send + 'static,
) -> (&'static str, JoinHandle<Result<Duration, String>>) {
    let thread = std::thread::spawn(move || {
        let mut rng = Rng::new(what.len() as u64);
        let mut s = TcpStream::connect(("127.0.0.1", RTMP_PORT)).map_err(|e| format!("connect: {e}"))?;
        let opened = Instant::now();
        send(&mut s, &mut rng).map_err(|e| format!("sending: {e}"))?;
        closed_by_server(&mut s, opened)
    });
    (what, thread)
}

/// Reads until the server closes the connection (end of stream or a reset); an error if it is
/// still open `CLOSED_WITHIN` after `opened`.
fn closed_by_server(s: &mut TcpStream, opened: Instant) -> Result<Duration, String> {
    let mut buf = [0u8; 4096];
    loop {
        let left = (opened + CLOSED_WITHIN).saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("still open {CLOSED_WITHIN:?} after connecting"));
        }
        s.set_read_timeout(Some(left)).map_err(|e| e.to_string())?;
        match s.read(&mut buf) {
            Ok(0) => return Ok(opened.elapsed()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                return Err(format!("still open {CLOSED_WITHIN:?} after connecting"));
            }
            // Reset: the server closed with our garbage unread.
            Err(_) => return Ok(opened.elapsed()),
        }
    }
}

/// A plain RTMP handshake (C0 C1, S0 S1 S2, C2) as a client would do it.
fn handshake(s: &mut TcpStream, rng: &mut Rng) -> io::Result<()> {
    let mut c0c1 = vec![0u8; 1 + 1536];
    rng.fill(&mut c0c1);
    c0c1[0] = 3;
    c0c1[1..9].fill(0); // time and zero
    s.write_all(&c0c1)?;
    let mut s0s1s2 = vec![0u8; 1 + 2 * 1536];
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.read_exact(&mut s0s1s2)?;
    if s0s1s2[0] != 3 {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "S0 is not version 3"));
    }
    s.write_all(&s0s1s2[1..1537])
}

/// Sends hostile datagrams to the SRT port: random bytes, data packets for sockets that do not
/// exist, handshakes with random fields, and conclusion handshakes carrying the listener's own
/// cookie with random extensions. Returns how many were sent, and how many of the listener's
/// cookies the conclusions carried (0 would mean the forged handshakes never got that far).
fn srt_garbage() -> (usize, usize) {
    let mut rng = Rng::new(7);
    let sock = UdpSocket::bind("127.0.0.1:0").expect("a UDP socket");
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .expect("read timeout");
    let to = ("127.0.0.1", SRT_PORT);
    let mut sent = 0;
    let mut send = |p: &[u8]| {
        if sock.send_to(p, to).is_ok() {
            sent += 1;
        }
    };
    let mut cookie = 0u32;
    let mut cookies = 0;
    for i in 0..3000u32 {
        let mut p = match i % 4 {
            0 => vec![0u8; 1 + rng.below(1500) as usize],
            1 => vec![0u8; 16 + 1316],
            _ => vec![0u8; 64 + 4 * rng.below(40) as usize],
        };
        rng.fill(&mut p);
        match i % 4 {
            1 => p[0] &= 0x7f, // a data packet
            2 => {
                // A handshake control packet with random version, type and extensions.
                p[..4].copy_from_slice(&[0x80, 0, 0, 0]);
                p[12..16].fill(0);
            }
            3 => {
                // A conclusion with the listener's cookie, HSv5, random extension blocks.
                p[..4].copy_from_slice(&[0x80, 0, 0, 0]);
                p[12..16].fill(0);
                p[16..20].copy_from_slice(&5u32.to_be_bytes());
                p[36..40].copy_from_slice(&0xffff_ffffu32.to_be_bytes());
                p[44..48].copy_from_slice(&cookie.to_be_bytes());
            }
            _ => {}
        }
        send(&p);
        if i % 100 == 0 {
            // An induction, for a current cookie.
            let mut induction = vec![0u8; 64];
            induction[..4].copy_from_slice(&[0x80, 0, 0, 0]);
            induction[16..20].copy_from_slice(&4u32.to_be_bytes());
            induction[22..24].copy_from_slice(&2u16.to_be_bytes());
            induction[28..32].copy_from_slice(&1500u32.to_be_bytes());
            induction[32..36].copy_from_slice(&8192u32.to_be_bytes());
            induction[36..40].copy_from_slice(&1u32.to_be_bytes());
            induction[40..44].copy_from_slice(&(rng.next() as u32).to_be_bytes());
            send(&induction);
            // The answer may come after answers to earlier garbage.
            let mut answer = [0u8; 1500];
            while let Ok((n, _)) = sock.recv_from(&mut answer) {
                let induction_answer =
                    n >= 64 && answer[0] == 0x80 && answer[1] == 0 && answer[36..40] == 1u32.to_be_bytes();
                if induction_answer {
                    cookie = u32::from_be_bytes([answer[44], answer[45], answer[46], answer[47]]);
                    cookies += 1;
                    break;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    (sent, cookies)
}
