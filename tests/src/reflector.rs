//! A minimal in-process WHIP/WHEP forwarder on webrtc-rs, to check this crate's own clients
//! without a Fanout server: one publisher, every WHEP viewer gets its packets (SSRC and payload
//! type rewritten). HTTP is parsed by hand, one request per connection. Test-only.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use rtc::media_stream::MediaStreamTrack;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc};
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, RTCIceGatheringState, RTCSessionDescription, Registry,
    register_default_interceptors,
};

use crate::peer::{PeerEvents, PeerWatch, build_peer};

type Packet = (RtpCodecKind, rtp::Packet);

struct State {
    packets: broadcast::Sender<Packet>,
    codecs: Mutex<HashMap<RtpCodecKind, RTCRtpCodec>>,
    sessions: Mutex<HashMap<u64, Arc<dyn PeerConnection>>>,
    next_id: AtomicU64,
}

/// A running forwarder; `base` is `http://127.0.0.1:PORT`.
pub(crate) struct Reflector {
    pub base: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Reflector {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Reflector {
    pub(crate) async fn start() -> Reflector {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
            .expect("bind reflector HTTP port");
        let base = format!("http://{}", listener.local_addr().expect("listener address"));
        let state = Arc::new(State {
            packets: broadcast::channel(4096).0,
            codecs: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
        });
        let task = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                tokio::spawn(serve(conn, state.clone()));
            }
        });
        Reflector { base, task }
    }
}

async fn serve(mut conn: TcpStream, state: Arc<State>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        let Ok(n) = conn.read(&mut chunk).await else {
            return;
        };
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_string();
    let mut lines = head.lines();
    let request_line = lines.next().unwrap_or_default().to_owned();
    let content_length: usize = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < header_end + content_length {
        match conn.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let body = String::from_utf8_lossy(&buf[header_end..header_end + content_length]).to_string();
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let response = match (method, path.split('/').nth(1).unwrap_or("")) {
        ("POST", "whip") => answer(&state, body, true).await,
        ("POST", "whep") => answer(&state, body, false).await,
        ("DELETE", "res") => {
            let id = path.rsplit('/').next().and_then(|s| s.parse::<u64>().ok());
            let pc = id.and_then(|id| {
                state
                    .sessions
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&id)
            });
            match pc {
                Some(pc) => {
                    let _ = pc.close().await;
                    "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_owned()
                }
                None => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_owned(),
            }
        }
        _ => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_owned(),
    };
    let _ = conn.write_all(response.as_bytes()).await;
    let _ = conn.shutdown().await;
}

async fn answer(state: &Arc<State>, offer: String, is_publisher: bool) -> String {
    match try_answer(state, offer, is_publisher).await {
        Ok((id, sdp)) => format!(
            "HTTP/1.1 201 Created\r\nLocation: /res/{id}\r\nETag: \"{id}\"\r\n\
             Content-Type: application/sdp\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{sdp}",
            sdp.len()
        ),
        Err(e) => format!(
            "HTTP/1.1 400 Bad Request\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{e}",
            e.len()
        ),
    }
}

async fn try_answer(state: &Arc<State>, offer: String, is_publisher: bool) -> Result<(u64, String), String> {
    let mut media_engine = MediaEngine::default();
    media_engine
        .register_default_codecs()
        .map_err(|e| e.to_string())?;
    let registry =
        register_default_interceptors(Registry::new(), &mut media_engine).map_err(|e| e.to_string())?;
    let (tracks_tx, tracks_rx) = mpsc::unbounded_channel();
    let (events, watch) = PeerEvents::new(is_publisher.then_some(tracks_tx));
    let pc = build_peer(media_engine, registry, IpAddr::V4(Ipv4Addr::LOCALHOST), events)
        .await
        .map_err(|e| e.to_string())?;

    let mut outputs = Vec::new();
    if !is_publisher {
        let codecs = state
            .codecs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for (kind, codec) in codecs {
            let mime = codec.mime_type.clone();
            let ssrc = rand_ssrc(state);
            let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
                "reflector".to_owned(),
                format!("reflector-{kind}"),
                format!("reflector-{kind}"),
                kind,
                vec![RTCRtpEncodingParameters {
                    rtp_coding_parameters: RTCRtpCodingParameters {
                        ssrc: Some(ssrc),
                        ..Default::default()
                    },
                    codec,
                    ..Default::default()
                }],
            )));
            let sender = pc
                .add_track(Arc::clone(&track) as Arc<dyn TrackLocal>)
                .await
                .map_err(|e| e.to_string())?;
            outputs.push((kind, mime, ssrc, track, sender));
        }
    }

    let offer = RTCSessionDescription::offer(offer).map_err(|e| e.to_string())?;
    pc.set_remote_description(offer)
        .await
        .map_err(|e| e.to_string())?;
    let answer = pc.create_answer(None).await.map_err(|e| e.to_string())?;
    pc.set_local_description(answer)
        .await
        .map_err(|e| e.to_string())?;
    wait_gathered(watch).await;
    let sdp = pc
        .local_description()
        .await
        .map(|d| d.sdp)
        .ok_or("no local description")?;

    if is_publisher {
        tokio::spawn(ingest(tracks_rx, state.clone()));
    }
    for (kind, mime, ssrc, track, sender) in outputs {
        // The sender lists every negotiated codec of the m-line; take the one of the track.
        let pt = sender
            .get_parameters()
            .await
            .ok()
            .and_then(|p| {
                p.rtp_parameters
                    .codecs
                    .iter()
                    .find(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case(&mime))
                    .map(|c| c.payload_type)
            })
            .ok_or("viewer track without negotiated codec")?;
        let mut packets = state.packets.subscribe();
        tokio::spawn(async move {
            loop {
                match packets.recv().await {
                    Ok((k, mut packet)) if k == kind => {
                        packet.header.ssrc = ssrc;
                        packet.header.payload_type = pt;
                        if track.write_rtp(packet).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
    }
    let id = state.next_id.fetch_add(1, Ordering::Relaxed);
    state
        .sessions
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(id, pc);
    Ok((id, sdp))
}

async fn wait_gathered(mut watch: PeerWatch) {
    let done = watch.gathering.wait_for(|s| *s == RTCIceGatheringState::Complete);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), done).await;
}

async fn ingest(mut tracks: mpsc::UnboundedReceiver<Arc<dyn TrackRemote>>, state: Arc<State>) {
    while let Some(track) = tracks.recv().await {
        let state = state.clone();
        tokio::spawn(async move {
            let kind = track.kind().await;
            let mut codec_known = false;
            while let Some(event) = track.poll().await {
                let TrackRemoteEvent::OnRtpPacket(packet) = event else {
                    continue;
                };
                if !codec_known && let Some(codec) = track.codec(packet.header.ssrc).await {
                    state
                        .codecs
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(kind, codec);
                    codec_known = true;
                }
                let _ = state.packets.send((kind, packet));
            }
        });
    }
}

fn rand_ssrc(state: &State) -> u32 {
    0x5000_0000 | (state.next_id.fetch_add(1, Ordering::Relaxed) as u32 & 0xffff)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::codec::VideoCodec;
    use crate::loadgen::{LoadConfig, run};
    use crate::whep::{ViewOptions, Viewer};
    use crate::whip::{PublishOptions, Publisher};

    const NETNS_ENV: &str = "FANOUT_TESTS_IN_NETNS";

    /// WebRTC on loopback needs a private network namespace here: re-run this one test under
    /// `unshare -n`. Returns false when the caller should return (re-run done, or impossible).
    fn in_netns(test: &str) -> bool {
        if std::env::var_os(NETNS_ENV).is_some() {
            return true;
        }
        let exe = std::env::current_exe().expect("test binary path");
        let status = std::process::Command::new("unshare")
            .args(["-n", "sh", "-c", "ip link set lo up && exec \"$0\" \"$@\""])
            .arg(&exe)
            .args(["--exact", test, "--nocapture", "--test-threads=1"])
            .env(NETNS_ENV, "1")
            .status();
        match status {
            Ok(s) if s.success() => false,
            Ok(s) => panic!("{test} failed inside its network namespace ({s})"),
            Err(e) => {
                eprintln!("skipping {test}: cannot run unshare -n ({e}); needs root");
                false
            }
        }
    }

    async fn publish_and_watch(codec: VideoCodec) {
        let reflector = Reflector::start().await;
        let whip = format!("{}/whip/s", reflector.base);
        let whep = format!("{}/whep/s", reflector.base);
        let opts = PublishOptions {
            video: codec,
            ..PublishOptions::default()
        };
        let publisher = Publisher::publish(&whip, "key", opts)
            .await
            .expect("publish to reflector");
        assert!(publisher.location().as_str().starts_with(&reflector.base));
        // The reflector learns the codecs from the first packets.
        tokio::time::sleep(Duration::from_millis(500)).await;

        let viewer = Viewer::subscribe(&whep, ViewOptions::default())
            .await
            .expect("subscribe to reflector");
        let stats = viewer
            .wait_for(Duration::from_secs(10), |s| {
                s.video.keyframes >= 2 && s.audio.packets >= 100
            })
            .await
            .unwrap_or_else(|last| panic!("viewer did not get media: {last:#?}"));
        println!("{codec} viewer: {stats:#?}");
        assert_eq!(
            stats.video.codec.as_deref().map(VideoCodec::from_mime),
            Some(Some(codec))
        );
        assert_eq!(stats.video.lost, 0);
        assert_eq!(stats.video.discontinuities, 0);
        assert!(stats.video.frames >= 30, "{stats:?}");
        // One keyframe a second: 2 keyframes need at most ~2 s of frames.
        assert!(stats.video.frames <= 2 * 30 + 31, "{stats:?}");
        assert!(stats.video.first_keyframe.is_some());

        let rtp = publisher.rtp_stats().await;
        println!("publisher: {:?} {rtp:?}", publisher.stats());
        assert!(rtp.video_packets > 0 && rtp.audio_packets > 0, "{rtp:?}");

        let load = tokio::task::spawn_blocking(move || {
            run(&LoadConfig {
                whep_url: whep,
                subscribers: 5,
                duration: Duration::from_secs(4),
                settle: Duration::from_millis(1500),
                server_pid: Some(std::process::id()),
                ..LoadConfig::default()
            })
        })
        .await
        .expect("load thread")
        .expect("load run");
        println!("{}", load.to_table());
        assert_eq!(load.connected, 5, "{}", load.to_table());
        assert_eq!(load.receiving, 5, "{}", load.to_table());
        assert_eq!(load.loss_pct_max, 0.0, "{}", load.to_table());
        assert!(load.steady.is_some_and(|s| s.packets > 0));
        assert!(load.server_us_per_packet.is_some());

        assert_eq!(viewer.stop().await.expect("viewer DELETE"), 200);
        assert_eq!(publisher.stop().await.expect("publisher DELETE"), 200);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn vp8_publish_view_load_through_reflector() {
        if !in_netns("reflector::tests::vp8_publish_view_load_through_reflector") {
            return;
        }
        publish_and_watch(VideoCodec::Vp8).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn h264_publish_view_load_through_reflector() {
        if !in_netns("reflector::tests::h264_publish_view_load_through_reflector") {
            return;
        }
        publish_and_watch(VideoCodec::H264).await;
    }
}
