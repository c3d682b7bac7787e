//! The DTLS handshake on OpenSSL.
//!
//! str0m's own DTLS stack signs and verifies ECDSA only, so a client whose certificate is
//! RSA fails its handshake right after ICE connects: GStreamer's webrtcbin creates an
//! RSA-2048 certificate unless told otherwise, and so do other OpenSSL-based peers.
//! OpenSSL's DTLS 1.2 accepts both. [`crypto_provider`] keeps aws-lc-rs for everything else
//! str0m does with keys (SRTP, the STUN HMAC, fingerprints): per-packet work is unchanged,
//! and OpenSSL runs once per session, for the handshake. Our own certificate stays the
//! ECDSA P-256 one str0m generates, which every browser expects.
//!
//! The instance is sans-IO like the rest of an `Rtc`: datagrams go in through
//! [`DtlsInstance::handle_packet`] and come out of [`DtlsInstance::poll_output`]. OpenSSL
//! keeps its retransmission timer on the wall clock, so while a handshake is under way the
//! instance asks to be woken every [`HANDSHAKE_TICK`] to let OpenSSL look at that timer.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use openssl::pkey::PKey;
use openssl::ssl::{
    ErrorCode, Ssl, SslContextBuilder, SslMethod, SslOptions, SslStream, SslVerifyMode, SslVersion,
};
use openssl::x509::X509;
use str0m::crypto::dtls::{
    DtlsCert, DtlsImplError, DtlsInstance, DtlsOutput, DtlsProvider, DtlsVersion, KeyingMaterial,
    ProtocolVersion, SrtpProfile,
};
use str0m::crypto::{CryptoError, CryptoProvider};
use tracing::debug;

/// How often a running handshake wakes up for OpenSSL's retransmission timer, which
/// starts at one second.
const HANDSHAKE_TICK: Duration = Duration::from_millis(100);

/// When nothing is due: a wake-up far enough away never to matter.
const IDLE: Duration = Duration::from_secs(3600);

/// RFC 5764 4.2: the label of the SRTP keys exported from the handshake.
const SRTP_EXPORTER_LABEL: &str = "EXTRACTOR-dtls_srtp";

/// ECDHE suites only (forward secrecy), AEAD first; ECDSA suites serve our own certificate,
/// RSA ones a peer that is the DTLS server with an RSA certificate.
const CIPHERS: &str = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:\
    ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:\
    ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:\
    ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA";

/// aws-lc-rs for SRTP, HMAC and hashing (str0m's default), OpenSSL for DTLS.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| {
            static OPENSSL: OpenSslDtls = OpenSslDtls;
            let mut provider = str0m::crypto::from_feature_flags();
            provider.dtls_provider = &OPENSSL;
            Arc::new(provider)
        })
        .clone()
}

/// Creates [`OpenSslInstance`]s; certificates come from str0m's default provider.
#[derive(Debug)]
struct OpenSslDtls;

impl DtlsProvider for OpenSslDtls {
    fn generate_certificate(&self) -> Option<DtlsCert> {
        str0m::crypto::from_feature_flags()
            .dtls_provider
            .generate_certificate()
    }

    fn new_dtls(
        &self,
        cert: &DtlsCert,
        now: Instant,
        version: DtlsVersion,
        mtu: Option<usize>,
    ) -> Result<Box<dyn DtlsInstance>, CryptoError> {
        if matches!(version, DtlsVersion::Dtls13) {
            return Err(CryptoError::Other("OpenSSL DTLS here is DTLS 1.2 only".into()));
        }
        let mtu = mtu.unwrap_or(str0m::DATAGRAM_MTU_TARGET);
        Ok(Box::new(OpenSslInstance::new(cert, now, mtu).map_err(ssl_setup)?))
    }
}

fn ssl_setup(e: openssl::error::ErrorStack) -> CryptoError {
    CryptoError::Other(format!("OpenSSL DTLS setup: {e}"))
}

/// Datagrams between OpenSSL and str0m: one `read` is one datagram in, one `write` one out.
#[derive(Debug, Default)]
struct Wire {
    inbound: VecDeque<Vec<u8>>,
    outbound: VecDeque<Vec<u8>>,
}

impl Read for Wire {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(datagram) = self.inbound.pop_front() else {
            return Err(io::ErrorKind::WouldBlock.into());
        };
        // OpenSSL reads with a buffer of a whole record's size; a longer datagram is not DTLS.
        let n = datagram.len().min(buf.len());
        buf[..n].copy_from_slice(&datagram[..n]);
        Ok(n)
    }
}

impl Write for Wire {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.outbound.push_back(buf.to_vec());
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Where the connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting to learn whether it is the DTLS client or server.
    Unstarted,
    /// Flights are being exchanged.
    Handshaking,
    /// Keys exported; application data flows.
    Connected,
    /// `close_notify` sent or received.
    Closed,
    /// A fatal alert, sent or received.
    Failed,
}

/// What the instance has to hand str0m, besides datagrams.
#[derive(Debug)]
enum Report {
    PeerCert(Vec<u8>),
    Keys(Vec<u8>, SrtpProfile),
    Connected,
    CloseNotify,
    Data(Vec<u8>),
}

/// One session's DTLS connection.
#[derive(Debug)]
struct OpenSslInstance {
    stream: SslStream<Wire>,
    active: bool,
    phase: Phase,
    reports: VecDeque<Report>,
    now: Instant,
    /// When a running handshake next lets OpenSSL check its timer.
    next_tick: Instant,
}

impl OpenSslInstance {
    fn new(cert: &DtlsCert, now: Instant, mtu: usize) -> Result<Self, openssl::error::ErrorStack> {
        let mut ctx = SslContextBuilder::new(SslMethod::dtls())?;
        ctx.set_min_proto_version(Some(SslVersion::DTLS1_2))?;
        ctx.set_cipher_list(CIPHERS)?;
        let profiles: Vec<String> = SrtpProfile::ALL.iter().map(|p| p.to_string()).collect();
        ctx.set_tlsext_use_srtp(&profiles.join(":"))?;
        // Any certificate is accepted here: str0m checks it against the fingerprint the
        // peer's SDP announced (`DtlsOutput::PeerCert`), which is what DTLS-SRTP trusts.
        ctx.set_verify_callback(
            SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT,
            |_, _| true,
        );
        let certificate = X509::from_der(&cert.certificate)?;
        let key = PKey::private_key_from_der(&cert.private_key)?;
        ctx.set_certificate(&certificate)?;
        ctx.set_private_key(&key)?;
        ctx.check_private_key()?;
        // No cookie round trip (OpenSSL sends none unless asked: ICE has proven the peer's
        // address already), no renegotiation, and the MTU str0m asks for rather than a guess.
        ctx.set_options(SslOptions::NO_RENEGOTIATION | SslOptions::NO_QUERY_MTU);
        let mut ssl = Ssl::new(&ctx.build())?;
        ssl.set_mtu(u32::try_from(mtu).unwrap_or(u32::MAX))?;
        Ok(OpenSslInstance {
            stream: SslStream::new(ssl, Wire::default())?,
            active: false,
            phase: Phase::Unstarted,
            reports: VecDeque::new(),
            now,
            next_tick: now,
        })
    }

    /// Let OpenSSL consume what has arrived and move the connection on.
    fn advance(&mut self) -> Result<(), DtlsImplError> {
        if self.phase == Phase::Handshaking {
            // SSL_connect and SSL_accept pick up where the last call left off.
            let step = if self.active {
                self.stream.connect()
            } else {
                self.stream.accept()
            };
            match step {
                Ok(()) => self.connected()?,
                Err(e) if waits(&e) => return Ok(()),
                Err(e) => return Err(self.fail("handshake", &e)),
            }
        }
        if self.phase != Phase::Connected {
            return Ok(());
        }
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match self.stream.ssl_read(&mut buf) {
                Ok(n) => self.reports.push_back(Report::Data(buf[..n].to_vec())),
                Err(e) if e.code() == ErrorCode::ZERO_RETURN => {
                    // The peer's close_notify: answer with ours, then report it.
                    let _ = self.stream.shutdown();
                    self.phase = Phase::Closed;
                    self.reports.push_back(Report::CloseNotify);
                    return Ok(());
                }
                Err(e) if waits(&e) => return Ok(()),
                Err(e) => return Err(self.fail("read", &e)),
            }
        }
    }

    /// The handshake is done: the peer's certificate, the SRTP keys, then `Connected`.
    fn connected(&mut self) -> Result<(), DtlsImplError> {
        let ssl = self.stream.ssl();
        let cert = ssl.peer_certificate().and_then(|c| c.to_der().ok());
        let profile = ssl
            .selected_srtp_profile()
            .and_then(|p| SrtpProfile::ALL.iter().find(|ours| ours.to_string() == p.name()))
            .copied();
        let (Some(cert), Some(profile)) = (cert, profile) else {
            debug!("DTLS handshake ended without a peer certificate or an SRTP profile");
            self.phase = Phase::Failed;
            return Err(DtlsImplError::ConnectionClosed);
        };
        let mut keys = vec![0u8; profile.keying_material_len()];
        if let Err(e) = ssl.export_keying_material(&mut keys, SRTP_EXPORTER_LABEL, None) {
            debug!("DTLS-SRTP key export failed: {e}");
            self.phase = Phase::Failed;
            return Err(DtlsImplError::ConnectionClosed);
        }
        let cipher = ssl.current_cipher().map(|c| c.name());
        debug!(version = ssl.version_str(), ?cipher, %profile, "DTLS connected");
        self.reports.push_back(Report::PeerCert(cert));
        self.reports.push_back(Report::Keys(keys, profile));
        self.reports.push_back(Report::Connected);
        self.phase = Phase::Connected;
        Ok(())
    }

    /// A fatal error: OpenSSL has queued its alert; str0m closes the session.
    fn fail(&mut self, during: &str, e: &openssl::ssl::Error) -> DtlsImplError {
        debug!(during, "DTLS failed: {e}");
        self.phase = Phase::Failed;
        DtlsImplError::ConnectionClosed
    }
}

/// OpenSSL needs another datagram before it can go on (our `Wire` never blocks writes).
fn waits(e: &openssl::ssl::Error) -> bool {
    matches!(e.code(), ErrorCode::WANT_READ | ErrorCode::WANT_WRITE)
}

/// Copies `bytes` into str0m's buffer, or says how big it must be.
fn place<'a>(buf: &'a mut [u8], bytes: &[u8]) -> Result<&'a [u8], usize> {
    let out = buf.get_mut(..bytes.len()).ok_or(bytes.len())?;
    out.copy_from_slice(bytes);
    Ok(out)
}

impl DtlsInstance for OpenSslInstance {
    fn set_active(&mut self, active: bool) {
        if self.phase != Phase::Unstarted {
            return;
        }
        self.active = active;
        self.phase = Phase::Handshaking;
        self.next_tick = self.now;
    }

    fn handle_packet(&mut self, packet: &[u8]) -> Result<(), DtlsImplError> {
        match self.phase {
            Phase::Unstarted | Phase::Failed => return Ok(()),
            Phase::Handshaking | Phase::Connected | Phase::Closed => {}
        }
        // str0m hands an empty packet to a client to have it start (send its ClientHello).
        if !packet.is_empty() {
            self.stream.get_mut().inbound.push_back(packet.to_vec());
        }
        let result = self.advance();
        // Whatever OpenSSL did not take (after a failure or close) is of no use later.
        self.stream.get_mut().inbound.clear();
        result
    }

    fn poll_output<'a>(&mut self, buf: &'a mut [u8]) -> DtlsOutput<'a> {
        if let Some(datagram) = self.stream.get_mut().outbound.pop_front() {
            return match place(buf, &datagram) {
                Ok(out) => DtlsOutput::Packet(out),
                Err(needed) => {
                    self.stream.get_mut().outbound.push_front(datagram);
                    DtlsOutput::BufferTooSmall { needed }
                }
            };
        }
        if let Some(report) = self.reports.pop_front() {
            let placed = match &report {
                Report::PeerCert(der) => place(buf, der).map(DtlsOutput::PeerCert),
                Report::Keys(keys, profile) => {
                    Ok(DtlsOutput::KeyingMaterial(KeyingMaterial::new(keys), *profile))
                }
                Report::Connected => Ok(DtlsOutput::Connected),
                Report::CloseNotify => Ok(DtlsOutput::CloseNotify),
                Report::Data(data) => place(buf, data).map(DtlsOutput::ApplicationData),
            };
            return match placed {
                Ok(output) => output,
                Err(needed) => {
                    self.reports.push_front(report);
                    DtlsOutput::BufferTooSmall { needed }
                }
            };
        }
        match self.phase {
            Phase::Handshaking => DtlsOutput::Timeout(self.next_tick),
            _ => DtlsOutput::Timeout(self.now + IDLE),
        }
    }

    fn handle_timeout(&mut self, now: Instant) -> Result<(), DtlsImplError> {
        self.now = now;
        if self.phase == Phase::Handshaking && now >= self.next_tick {
            self.next_tick = now + HANDSHAKE_TICK;
            // With nothing to read, OpenSSL resends its last flight if its timer ran out.
            return self.advance();
        }
        Ok(())
    }

    fn send_application_data(&mut self, data: &[u8]) -> Result<usize, DtlsImplError> {
        if self.phase != Phase::Connected {
            // Not accepted yet: str0m keeps it and tries again once connected.
            return Ok(0);
        }
        match self.stream.ssl_write(data) {
            Ok(n) => Ok(n),
            Err(e) => Err(self.fail("write", &e)),
        }
    }

    fn is_active(&self) -> bool {
        self.active
    }

    fn protocol_version(&self) -> Option<ProtocolVersion> {
        (self.phase == Phase::Connected).then_some(ProtocolVersion::DTLS1_2)
    }

    fn is_closing(&self) -> bool {
        self.phase == Phase::Closed && !self.stream.get_ref().outbound.is_empty()
    }

    fn is_closed(&self) -> bool {
        self.phase == Phase::Closed && self.stream.get_ref().outbound.is_empty()
    }

    fn close(&mut self) -> Result<(), DtlsImplError> {
        if self.phase == Phase::Connected {
            // Queues close_notify; the peer's answer is not waited for.
            let _ = self.stream.shutdown();
        }
        self.phase = Phase::Closed;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::rsa_cert;
    use super::*;

    /// What one end handed out in a round: datagrams for the other end, and its keys and
    /// peer certificate once connected.
    #[derive(Default)]
    struct End {
        keys: Option<Vec<u8>>,
        peer_cert: Option<Vec<u8>>,
        connected: bool,
    }

    fn drain(from: &mut dyn DtlsInstance, end: &mut End) -> Vec<Vec<u8>> {
        let mut buf = vec![0u8; 2000];
        let mut datagrams = Vec::new();
        loop {
            match from.poll_output(&mut buf) {
                DtlsOutput::Packet(p) => datagrams.push(p.to_vec()),
                DtlsOutput::KeyingMaterial(k, _) => end.keys = Some(k.to_vec()),
                DtlsOutput::PeerCert(c) => end.peer_cert = Some(c.to_vec()),
                DtlsOutput::Connected => end.connected = true,
                DtlsOutput::Timeout(_) => return datagrams,
                other => panic!("unexpected output {other:?}"),
            }
        }
    }

    /// A client with `client_cert` against a server with str0m's own certificate.
    fn handshake(client_cert: &DtlsCert) -> (End, End, DtlsCert) {
        let provider = crypto_provider();
        let now = Instant::now();
        let server_cert = provider
            .dtls_provider
            .generate_certificate()
            .expect("certificate");
        let new = |cert: &DtlsCert| {
            provider
                .dtls_provider
                .new_dtls(cert, now, DtlsVersion::Dtls12, None)
                .expect("instance")
        };
        let (mut client, mut server) = (new(client_cert), new(&server_cert));
        client.set_active(true);
        server.set_active(false);
        client.handle_packet(&[]).expect("the client starts");
        let (mut c, mut s) = (End::default(), End::default());
        for _ in 0..10 {
            for d in drain(client.as_mut(), &mut c) {
                server.handle_packet(&d).expect("the server goes on");
            }
            for d in drain(server.as_mut(), &mut s) {
                client.handle_packet(&d).expect("the client goes on");
            }
        }
        (c, s, server_cert)
    }

    #[test]
    fn an_rsa_client_connects() {
        let client_cert = rsa_cert();
        let (client, server, server_cert) = handshake(&client_cert);
        assert!(client.connected && server.connected);
        assert!(server.keys.is_some());
        assert_eq!(client.keys, server.keys, "both ends export the same SRTP keys");
        assert_eq!(server.peer_cert, Some(client_cert.certificate));
        assert_eq!(client.peer_cert, Some(server_cert.certificate));
    }

    #[test]
    fn an_ecdsa_client_connects() {
        let client_cert = crypto_provider()
            .dtls_provider
            .generate_certificate()
            .expect("certificate");
        let (client, server, _) = handshake(&client_cert);
        assert!(client.connected && server.connected);
        assert_eq!(client.keys, server.keys);
        assert_eq!(server.peer_cert, Some(client_cert.certificate));
    }
}
