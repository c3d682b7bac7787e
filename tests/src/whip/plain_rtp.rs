//! The publisher's media as plain RTP over UDP, without WebRTC: what an RTP receiver such as
//! Janus's streaming plugin reads.
//!
//! The same fixtures, the same real-time pacing and the same webrtc-rs packetizers (the VP8 or
//! Opus payloader, 1200-byte packets) as a WHIP [`Publisher`](super::Publisher), so a server
//! fed this way receives the packets and bytes a server fed over WHIP receives. Video goes out
//! with payload type 96 (VP8) or 102 (H.264), Opus with 111. There is no RTCP: nothing answers
//! a NACK or a PLI, so a new viewer waits for the next keyframe (one a second).
//!
//! Destinations must be loopback addresses: this is for benchmarks on one machine.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rtc::rtp::packetizer::{Packetizer, new_packetizer};
use rtc::rtp::sequence::new_random_sequencer;
use rtc::rtp_transceiver::rtp_sender::RTCRtpCodecParameters;
use rtc::shared::marshal::Marshal;
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{
    Counters, FrameSink, PublishOptions, PublisherStats, RtpSendStats, opus_codec_parameters, pump_audio,
    pump_video, random_u32, video_codec_parameters,
};
use crate::codec::VideoCodec;
use crate::fixtures;
use crate::peer::{SessionError, rtc_err};

/// The payload size limit of one packet, as the WHIP publisher's tracks packetize.
const MTU: usize = 1200;

/// A running plain-RTP feed; stops when dropped or on [`RtpFeed::stop`].
pub struct RtpFeed {
    counters: Arc<Counters>,
    video: Arc<Sent>,
    audio: Arc<Sent>,
    stop: watch::Sender<bool>,
    pumps: Vec<JoinHandle<Result<(), SessionError>>>,
}

impl RtpFeed {
    /// Starts sending the test media of `opts` (video codec, size, audio or not) in real time:
    /// video to `video_to`, Opus to `audio_to` (when `opts.audio`).
    pub async fn start(
        video_to: SocketAddr,
        audio_to: SocketAddr,
        opts: &PublishOptions,
    ) -> Result<Self, SessionError> {
        for to in [video_to, audio_to] {
            if !to.ip().is_loopback() {
                return Err(io_error(
                    format!("RTP destination {to}"),
                    std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a loopback address"),
                ));
            }
        }
        let video_path = match opts.video {
            VideoCodec::Vp8 => fixtures::vp8_ivf_sized(opts.video_size.0, opts.video_size.1)?,
            VideoCodec::H264 => fixtures::h264_annexb()?,
        };
        let counters = Arc::new(Counters::default());
        let (video, audio) = (Arc::new(Sent::default()), Arc::new(Sent::default()));
        let (stop, stop_rx) = watch::channel(false);
        let video_sink = RtpSink::bind(video_to, &video_codec_parameters(opts.video), video.clone()).await?;
        let mut pumps = vec![tokio::spawn(pump_video(
            opts.video,
            video_path,
            video_sink,
            counters.clone(),
            stop_rx.clone(),
            opts.loop_forever,
        ))];
        if opts.audio {
            let audio_sink = RtpSink::bind(audio_to, &opus_codec_parameters(), audio.clone()).await?;
            pumps.push(tokio::spawn(pump_audio(
                fixtures::opus_ogg()?,
                audio_sink,
                counters.clone(),
                stop_rx,
                opts.loop_forever,
            )));
        }
        Ok(Self {
            counters,
            video,
            audio,
            stop,
            pumps,
        })
    }

    /// Frames and bytes handed to the packetizers so far.
    pub fn stats(&self) -> PublisherStats {
        self.counters.stats()
    }

    /// RTP packets and payload bytes sent (no feedback: there is no RTCP).
    pub fn rtp_stats(&self) -> RtpSendStats {
        RtpSendStats {
            video_packets: self.video.packets.load(Ordering::Relaxed),
            video_bytes: self.video.bytes.load(Ordering::Relaxed),
            audio_packets: self.audio.packets.load(Ordering::Relaxed),
            audio_bytes: self.audio.bytes.load(Ordering::Relaxed),
            ..RtpSendStats::default()
        }
    }

    /// Stops sending and returns the first error a media task met, if any.
    pub async fn stop(mut self) -> Result<(), SessionError> {
        self.stop.send_replace(true);
        let mut first_error = None;
        for pump in self.pumps.drain(..) {
            if let Ok(Ok(Err(e))) = tokio::time::timeout(Duration::from_secs(2), pump).await {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl Drop for RtpFeed {
    fn drop(&mut self) {
        self.stop.send_replace(true);
        for pump in &self.pumps {
            pump.abort();
        }
    }
}

/// Packets and payload bytes one sink has sent.
#[derive(Default)]
struct Sent {
    packets: AtomicU64,
    bytes: AtomicU64,
}

/// One stream: a packetizer with its own SSRC and sequence, and a socket that sends to `to`.
struct RtpSink {
    socket: UdpSocket,
    to: SocketAddr,
    packetizer: Mutex<Box<dyn Packetizer>>,
    clock_rate: u32,
    sent: Arc<Sent>,
}

impl RtpSink {
    async fn bind(
        to: SocketAddr,
        codec: &RTCRtpCodecParameters,
        sent: Arc<Sent>,
    ) -> Result<Self, SessionError> {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(|e| io_error(format!("bind a UDP socket for RTP to {to}"), e))?;
        let payloader = codec.rtp_codec.payloader().map_err(rtc_err("payloader"))?;
        let packetizer = new_packetizer(
            Instant::now(),
            MTU,
            codec.payload_type,
            random_u32(),
            payloader,
            Box::new(new_random_sequencer()),
            codec.rtp_codec.clock_rate,
        );
        Ok(Self {
            socket,
            to,
            packetizer: Mutex::new(Box::new(packetizer)),
            clock_rate: codec.rtp_codec.clock_rate,
            sent,
        })
    }

    /// The frame's packets, marshalled, with the payload bytes they carry.
    fn packetize(&self, data: &Bytes, duration: Duration) -> Result<Vec<(BytesMut, usize)>, SessionError> {
        let samples = (duration.as_secs_f64() * f64::from(self.clock_rate)) as u32;
        let packets = self
            .packetizer
            .lock()
            .expect("no code panics while holding the packetizer")
            .packetize(Instant::now(), data, samples)
            .map_err(rtc_err("packetize"))?;
        packets
            .into_iter()
            .map(|p| Ok((p.marshal().map_err(rtc_err("marshal RTP"))?, p.payload.len())))
            .collect()
    }
}

impl FrameSink for RtpSink {
    async fn write(&self, data: Bytes, duration: Duration) -> Result<(), SessionError> {
        for (packet, payload) in self.packetize(&data, duration)? {
            self.socket
                .send_to(&packet, self.to)
                .await
                .map_err(|e| io_error(format!("send RTP to {}", self.to), e))?;
            self.sent.packets.fetch_add(1, Ordering::Relaxed);
            self.sent.bytes.fetch_add(payload as u64, Ordering::Relaxed);
        }
        Ok(())
    }
}

fn io_error(context: String, source: std::io::Error) -> SessionError {
    SessionError::Io { context, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    use rtc::rtp::packet::Packet;
    use rtc::shared::marshal::Unmarshal;

    #[tokio::test]
    async fn frames_become_numbered_packets_within_the_mtu() {
        let receiver = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        let to = receiver.local_addr().expect("address");
        let sent = Arc::new(Sent::default());
        let sink = RtpSink::bind(to, &video_codec_parameters(VideoCodec::Vp8), sent.clone())
            .await
            .expect("sink");
        // A 3000-byte VP8 keyframe (P bit clear) and a small inter frame.
        let mut key = vec![0u8; 3000];
        key[0] = 0x10;
        sink.write(Bytes::from(key), Duration::from_millis(33))
            .await
            .expect("send");
        sink.write(Bytes::from_static(&[0x11; 100]), Duration::from_millis(33))
            .await
            .expect("send");

        let mut buf = [0u8; 2048];
        let mut packets = Vec::new();
        let count = sent.packets.load(Ordering::Relaxed);
        assert!(
            count >= 4,
            "3000 bytes need 3 packets of <= 1200, plus one: {count}"
        );
        for _ in 0..count {
            let n = receiver.recv(&mut buf).expect("packet");
            assert!(n <= MTU, "{n}");
            packets.push(Packet::unmarshal(&mut &buf[..n]).expect("RTP"));
        }
        let first = &packets[0].header;
        assert_eq!(first.payload_type, 96);
        for (i, p) in packets.iter().enumerate() {
            assert_eq!(p.header.ssrc, first.ssrc);
            assert_eq!(
                p.header.sequence_number,
                first.sequence_number.wrapping_add(i as u16)
            );
        }
        let last = packets.last().expect("packets");
        // One frame per timestamp, marker on each frame's last packet; 33 ms at 90 kHz apart.
        assert!(packets[packets.len() - 2].header.marker && last.header.marker);
        assert_eq!(last.header.timestamp, first.timestamp.wrapping_add(2970));
    }

    #[tokio::test]
    async fn refuses_destinations_off_loopback() {
        let opts = PublishOptions::default();
        let away = SocketAddr::from(([192, 0, 2, 1], 5004));
        let local = SocketAddr::from((Ipv4Addr::LOCALHOST, 5002));
        assert!(RtpFeed::start(away, local, &opts).await.is_err());
        assert!(RtpFeed::start(local, away, &opts).await.is_err());
    }
}
