//! A session built by [`build_session`] against an in-memory str0m client, in simulated
//! time: offers that must be refused, consent (RFC 7675) as clients of different habits
//! exercise it, and the cost of the DTLS handshake (an ignored test that prints a table).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::change::SdpAnswer;
use str0m::config::DtlsCert;
use str0m::crypto::CryptoProvider;
use str0m::media::{Direction, MediaKind};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Rtc, RtcConfig};

use super::*;

fn config() -> SessionConfig {
    SessionConfig {
        candidates: vec![SERVER],
        video_codec: None,
        estimate_bandwidth: true,
        initial_bwe_bps: 1_000_000,
    }
}

#[test]
fn garbage_is_malformed() {
    for bad in [
        "",
        "hello",
        "v=0\r\nnonsense",
        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n",
    ] {
        let err = build_session(&config(), SessionKind::Publisher, bad, Instant::now()).expect_err(bad);
        assert!(
            matches!(err, SfuError::MalformedSdp(_) | SfuError::Unacceptable(_)),
            "{bad}: {err}"
        );
    }
}

const SERVER: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 1, 0, 1)), 9);
const CLIENT: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 1, 0, 2)), 5000);
/// One way, on the simulated wire.
const LATENCY: Duration = Duration::from_millis(1);

/// Which of the client's datagrams reach the server.
type Filter = fn(&[u8]) -> bool;

fn everything(_: &[u8]) -> bool {
    true
}

/// A STUN binding request (RFC 5389: type 0x0001 in the first two bytes).
fn is_binding_request(d: &[u8]) -> bool {
    d.len() >= 20 && d[0] == 0x00 && d[1] == 0x01
}

/// A client the way libnice behaves once connected: it answers checks and sends media,
/// but no binding requests of its own (its keepalives are indications).
fn no_binding_requests(d: &[u8]) -> bool {
    !is_binding_request(d)
}

fn nothing(_: &[u8]) -> bool {
    false
}

/// A str0m client publishing (or viewing) against a server session, over a simulated wire.
struct Pair {
    now: Instant,
    client: Rtc,
    server: Rtc,
    client_timeout: Instant,
    server_timeout: Instant,
    /// In flight: arrival time, towards the server?, bytes.
    wire: VecDeque<(Instant, bool, Vec<u8>)>,
    filter: Filter,
    /// When the client's last datagram reached the server.
    last_heard: Option<Instant>,
    connected: Option<Instant>,
    /// When the server reported ICE disconnected (the worker then closes the session).
    gone: Option<Instant>,
    /// Thread CPU time spent inside the server's `Rtc` calls.
    server_cpu: Duration,
}

impl Pair {
    /// The WHIP exchange, the server's side by `build` (from the offer); nothing sent yet.
    /// Also returns the thread CPU time `build` took.
    fn new(
        client: RtcConfig,
        build: impl FnOnce(&str, Instant) -> Result<SessionSetup, SfuError>,
    ) -> (Pair, Duration) {
        let now = Instant::now();
        let mut client = client.set_rtp_mode(true).build(now);
        client.add_local_candidate(Candidate::host(CLIENT, "udp").expect("a host candidate"));
        let mut api = client.sdp_api();
        api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
        api.add_media(MediaKind::Video, Direction::SendOnly, None, None, None);
        let (offer, pending) = api.apply().expect("an offer");
        let cpu = thread_cpu();
        let setup = build(&offer.to_sdp_string(), now).expect("the server accepts the offer");
        let build_cpu = thread_cpu() - cpu;
        let answer = SdpAnswer::from_sdp_string(&setup.answer).expect("the answer parses");
        client
            .sdp_api()
            .accept_answer(pending, answer)
            .expect("the client accepts the answer");
        let pair = Pair {
            now,
            client,
            server: setup.rtc,
            client_timeout: now,
            server_timeout: now,
            wire: VecDeque::new(),
            filter: everything,
            last_heard: None,
            connected: None,
            gone: None,
            server_cpu: Duration::ZERO,
        };
        (pair, build_cpu)
    }

    /// A str0m client (its own DTLS, ECDSA) publishing to a session from [`build_session`].
    fn publisher() -> Pair {
        Pair::with_client(RtcConfig::new())
    }

    fn with_client(client: RtcConfig) -> Pair {
        let build = |offer: &str, now| build_session(&config(), SessionKind::Publisher, offer, now);
        Pair::new(client, build).0
    }

    /// Run until `done` or `limit` of simulated time; whether `done` held.
    fn run_until(&mut self, limit: Duration, done: impl Fn(&Pair) -> bool) -> bool {
        let end = self.now + limit;
        while !done(self) {
            if self.now >= end || !self.server.is_alive() {
                return done(self);
            }
            self.step(end);
        }
        true
    }

    fn step(&mut self, end: Instant) {
        self.poll_client();
        self.poll_server();
        let next = [self.client_timeout, self.server_timeout, end]
            .into_iter()
            .chain(self.wire.front().map(|d| d.0))
            .min()
            .expect("not empty");
        self.now = next.max(self.now);
        while let Some((at, to_server, data)) = self.wire.front() {
            if *at > self.now {
                break;
            }
            let (to_server, data) = (*to_server, data.clone());
            self.wire.pop_front();
            let (source, destination) = if to_server {
                (CLIENT, SERVER)
            } else {
                (SERVER, CLIENT)
            };
            let receive = Receive {
                proto: Protocol::Udp,
                source,
                destination,
                contents: data.as_slice().try_into().expect("a datagram str0m parses"),
            };
            let input = str0m::Input::Receive(self.now, receive);
            if to_server {
                self.last_heard = Some(self.now);
                let cpu = thread_cpu();
                let _ = self.server.handle_input(input);
                self.server_cpu += thread_cpu() - cpu;
                self.poll_server();
            } else {
                // A client may fail (a handshake refused): it then goes quiet.
                let _ = self.client.handle_input(input);
                self.poll_client();
            }
        }
        if self.client_timeout <= self.now {
            let _ = self.client.handle_input(str0m::Input::Timeout(self.now));
        }
        if self.server_timeout <= self.now {
            let cpu = thread_cpu();
            let _ = self.server.handle_input(str0m::Input::Timeout(self.now));
            self.server_cpu += thread_cpu() - cpu;
        }
    }

    fn poll_client(&mut self) {
        while self.client.is_alive() {
            let Ok(output) = self.client.poll_output() else {
                self.client.disconnect();
                break;
            };
            match output {
                str0m::Output::Timeout(t) => {
                    self.client_timeout = t;
                    return;
                }
                str0m::Output::Transmit(t) => {
                    if (self.filter)(&t.contents) {
                        self.wire
                            .push_back((self.now + LATENCY, true, t.contents.to_vec()));
                    }
                }
                str0m::Output::Event(_) => {}
            }
        }
        self.client_timeout = self.now + Duration::from_secs(3600);
    }

    fn poll_server(&mut self) {
        let cpu = thread_cpu();
        while self.server.is_alive() {
            let Ok(output) = self.server.poll_output() else {
                self.server.disconnect();
                break;
            };
            match output {
                str0m::Output::Timeout(t) => {
                    self.server_timeout = t;
                    break;
                }
                str0m::Output::Transmit(t) => {
                    self.wire
                        .push_back((self.now + LATENCY, false, t.contents.to_vec()));
                }
                str0m::Output::Event(Event::Connected) => self.connected = Some(self.now),
                str0m::Output::Event(Event::IceConnectionStateChange(IceConnectionState::Disconnected)) => {
                    // What the worker does on this event.
                    self.gone = Some(self.now);
                    self.server.disconnect();
                }
                str0m::Output::Event(_) => {}
            }
        }
        self.server_cpu += thread_cpu() - cpu;
        if !self.server.is_alive() {
            self.server_timeout = self.now + Duration::from_secs(3600);
        }
    }
}

fn thread_cpu() -> Duration {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map(Duration::from)
        .expect("the thread CPU clock")
}

#[test]
fn a_client_that_answers_checks_but_sends_none_stays() {
    let mut pair = Pair::publisher();
    assert!(pair.run_until(Duration::from_secs(5), |p| p.connected.is_some()));
    // libnice after connecting: answers, media, indications; never a binding request.
    pair.filter = no_binding_requests;
    let stayed = !pair.run_until(Duration::from_secs(120), |p| p.gone.is_some());
    assert!(
        stayed,
        "dropped {:?} after connecting",
        pair.gone.map(|g| g - pair.connected.unwrap_or(g))
    );
}

#[test]
fn a_silent_client_is_dropped_about_30_s_after_it_went_quiet() {
    let mut pair = Pair::publisher();
    assert!(pair.run_until(Duration::from_secs(5), |p| p.connected.is_some()));
    assert!(!pair.run_until(Duration::from_secs(20), |p| p.gone.is_some()));
    pair.filter = nothing;
    let quiet = pair.now;
    assert!(pair.run_until(Duration::from_secs(60), |p| p.gone.is_some()));
    let after = pair.gone.expect("gone") - quiet;
    // From the first unanswered check (at most 3 s after the client went quiet): 27.5 s.
    assert!(
        after >= Duration::from_secs(27) && after <= Duration::from_secs(31),
        "dropped {after:?} after the client went quiet"
    );
    let heard = quiet - pair.last_heard.expect("heard from the client");
    assert!(
        heard < Duration::from_secs(3),
        "the client was talking until it went quiet"
    );
}

/// A self-signed RSA-2048 certificate, the kind GStreamer's webrtcbin makes (one per run:
/// an RSA key takes long to generate).
pub(super) fn rsa_cert() -> DtlsCert {
    static CERT: std::sync::OnceLock<DtlsCert> = std::sync::OnceLock::new();
    CERT.get_or_init(new_rsa_cert).clone()
}

fn new_rsa_cert() -> DtlsCert {
    use openssl::asn1::Asn1Time;
    use openssl::hash::MessageDigest;
    use openssl::pkey::PKey;
    use openssl::rsa::Rsa;
    use openssl::x509::{X509, X509NameBuilder};

    let key = PKey::from_rsa(Rsa::generate(2048).expect("RSA key")).expect("key");
    let mut name = X509NameBuilder::new().expect("name");
    name.append_entry_by_text("CN", "webrtc").expect("CN");
    let name = name.build();
    let mut x509 = X509::builder().expect("builder");
    x509.set_version(2).expect("v3");
    x509.set_subject_name(&name).expect("subject");
    x509.set_issuer_name(&name).expect("issuer");
    x509.set_pubkey(&key).expect("public key");
    x509.set_not_before(&Asn1Time::days_from_now(0).expect("now"))
        .expect("not before");
    x509.set_not_after(&Asn1Time::days_from_now(30).expect("later"))
        .expect("not after");
    x509.sign(&key, MessageDigest::sha256()).expect("signed");
    DtlsCert {
        certificate: x509.build().to_der().expect("DER"),
        private_key: key.private_key_to_der().expect("key DER"),
    }
}

#[test]
fn an_rsa_client_connects_to_a_built_session() {
    // The client's own DTLS must speak RSA too: OpenSSL, as in webrtcbin.
    let client = RtcConfig::new()
        .set_crypto_provider(dtls::crypto_provider())
        .set_dtls_cert(rsa_cert());
    let mut pair = Pair::with_client(client);
    assert!(pair.run_until(Duration::from_secs(5), |p| p.connected.is_some()));
}

/// Server CPU per session, by DTLS stack and client certificate:
/// `cargo test --workspace --lib -- --ignored dtls_handshake_cost --nocapture`
/// (`HANDSHAKES=N`, default 200).
#[test]
#[ignore = "a benchmark: prints a table"]
fn dtls_handshake_cost() {
    let n: u32 = std::env::var("HANDSHAKES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let str0m_dtls = || Arc::new(str0m::crypto::from_feature_flags());
    let ecdsa = || RtcConfig::new();
    let rsa = || {
        RtcConfig::new()
            .set_crypto_provider(dtls::crypto_provider())
            .set_dtls_cert(rsa_cert())
    };
    type Case = (
        &'static str,
        &'static str,
        fn() -> RtcConfig,
        fn() -> Arc<CryptoProvider>,
    );
    let cases: [Case; 4] = [
        ("str0m (dimpl, aws-lc-rs)", "ECDSA P-256", ecdsa, str0m_dtls),
        ("OpenSSL 3", "ECDSA P-256", ecdsa, dtls::crypto_provider),
        ("str0m (dimpl, aws-lc-rs)", "RSA-2048", rsa, str0m_dtls),
        ("OpenSSL 3", "RSA-2048", rsa, dtls::crypto_provider),
    ];
    println!("{n} sessions each, server CPU per session (thread CPU time, dev profile)");
    println!("| server DTLS | client certificate | build_session | ICE + DTLS to connected | total |");
    println!("|---|---|---:|---:|---:|");
    for (stack, cert, client, crypto) in cases {
        let (mut building, mut connect, mut failed) = (Duration::ZERO, Duration::ZERO, 0);
        for _ in 0..n {
            let build =
                |offer: &str, now| build_with(&config(), SessionKind::Publisher, offer, now, crypto());
            let (mut pair, build_cpu) = Pair::new(client(), build);
            if pair.run_until(Duration::from_secs(5), |p| p.connected.is_some()) {
                building += build_cpu;
                connect += pair.server_cpu;
            } else {
                failed += 1;
            }
        }
        let ok = n - failed;
        if ok == 0 {
            println!("| {stack} | {cert} | - | handshake fails | - |");
            continue;
        }
        let us = |d: Duration| format!("{} µs", d.as_micros() / u128::from(ok));
        println!(
            "| {stack} | {cert} | {} | {} | {} |",
            us(building),
            us(connect),
            us(building + connect)
        );
    }
}
