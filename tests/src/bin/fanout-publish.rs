//! `fanout-publish`: publish the ffmpeg test pattern over WHIP (webrtc-rs) for scripts.
//!
//! ```text
//! fanout-publish --whip-url http://127.0.0.1:8080/whip/ID --key KEY --codec h264 --seconds 30
//! fanout-publish --rtp-to 127.0.0.1:5004,127.0.0.1:5002 --size 1280x720 --seconds 0
//! ```
//! Prints the session's Location once connected and a JSON summary line at the end; DELETEs the
//! session on exit (also on Ctrl-C / SIGTERM). With `--rtp-to` the same media, paced and
//! packetized the same way, goes out as plain RTP (video, audio) instead, for servers that
//! ingest RTP (a Janus streaming mountpoint).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use fanout_tests::codec::VideoCodec;
use fanout_tests::whip::plain_rtp::RtpFeed;
use fanout_tests::whip::{PublishOptions, Publisher};

/// Publish real VP8/H.264 + Opus test media to a WHIP endpoint (or as plain RTP).
#[derive(Debug, Parser)]
#[command(name = "fanout-publish", version)]
struct Args {
    /// WHIP endpoint.
    #[arg(long, required_unless_present = "rtp_to", conflicts_with = "rtp_to")]
    whip_url: Option<String>,
    /// Stream key (sent as `Authorization: Bearer`).
    #[arg(long, env = "FANOUT_STREAM_KEY", required_unless_present = "rtp_to")]
    key: Option<String>,
    /// Send plain RTP to VIDEO,AUDIO (loopback addresses) instead of publishing over WHIP.
    #[arg(long, value_name = "VIDEO,AUDIO", value_parser = parse_rtp_to)]
    rtp_to: Option<(SocketAddr, SocketAddr)>,
    /// Video codec: vp8 or h264.
    #[arg(long, default_value = "vp8")]
    codec: VideoCodec,
    /// How long to publish; 0 = until Ctrl-C / SIGTERM.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Do not send audio.
    #[arg(long)]
    no_audio: bool,
    /// Picture size of the VP8 test pattern, e.g. 1280x720 (H.264: 640x360 only).
    #[arg(long, default_value = "640x360", value_parser = parse_size)]
    size: (u32, u32),
    /// Keep every ICE candidate of the answer, not only loopback ones.
    #[arg(long)]
    any_candidate: bool,
    /// Print the offer and the answer SDP to stderr.
    #[arg(long)]
    print_sdp: bool,
}

fn parse_rtp_to(text: &str) -> Result<(SocketAddr, SocketAddr), String> {
    let (video, audio) = text.split_once(',').ok_or("two addresses: VIDEO,AUDIO")?;
    let parse = |a: &str| {
        a.parse::<SocketAddr>()
            .map_err(|_| format!("{a:?} is not an address such as 127.0.0.1:5004"))
    };
    Ok((parse(video)?, parse(audio)?))
}

fn parse_size(text: &str) -> Result<(u32, u32), String> {
    let (w, h) = text.split_once('x').ok_or("a size such as 1280x720")?;
    let parse = |n: &str| n.parse::<u32>().map_err(|_| format!("{n:?} is not a number"));
    Ok((parse(w)?, parse(h)?))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,rtc_dtls=error")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    anyhow::ensure!(
        args.seconds.is_finite() && args.seconds >= 0.0,
        "--seconds must be >= 0"
    );
    let opts = PublishOptions {
        video: args.codec,
        audio: !args.no_audio,
        ice_policy: if args.any_candidate {
            fanout_tests::signal::IcePolicy::Any
        } else {
            fanout_tests::signal::IcePolicy::LoopbackOnly
        },
        video_size: args.size,
        ..PublishOptions::default()
    };
    if let Some((video, audio)) = args.rtp_to {
        return send_rtp(video, audio, &opts, args.seconds).await;
    }
    let (Some(whip_url), Some(key)) = (args.whip_url.as_deref(), args.key.as_deref()) else {
        anyhow::bail!("--whip-url and --key are required without --rtp-to");
    };
    let publisher = Publisher::publish(whip_url, key, opts).await.context("publish")?;
    println!("location {}", publisher.location());
    if args.print_sdp {
        eprintln!(
            "--- offer\n{}--- answer\n{}",
            publisher.offer_sdp(),
            publisher.answer().sdp
        );
    }
    wait_for_end(args.seconds).await?;

    let stats = publisher.stats();
    let rtp = publisher.rtp_stats().await;
    let state = publisher.connection_state().to_string();
    let deleted = publisher.stop().await.context("stop")?;
    println!(
        "{}",
        serde_json::json!({
            "state": state,
            "videoFrames": stats.video_frames,
            "videoBytes": stats.video_bytes,
            "audioFrames": stats.audio_frames,
            "videoPackets": rtp.video_packets,
            "audioPackets": rtp.audio_packets,
            "nacks": rtp.nacks,
            "plis": rtp.plis,
            "deleteStatus": deleted.as_u16(),
        })
    );
    Ok(())
}

/// The `--rtp-to` run: the same media as plain RTP, then the same summary line (no feedback
/// counters: plain RTP has no RTCP).
async fn send_rtp(
    video: SocketAddr,
    audio: SocketAddr,
    opts: &PublishOptions,
    seconds: f64,
) -> anyhow::Result<()> {
    let feed = RtpFeed::start(video, audio, opts).await.context("RTP feed")?;
    println!("rtp video {video} audio {audio}");
    wait_for_end(seconds).await?;
    let (stats, rtp) = (feed.stats(), feed.rtp_stats());
    feed.stop().await.context("RTP feed")?;
    println!(
        "{}",
        serde_json::json!({
            "videoFrames": stats.video_frames,
            "videoBytes": stats.video_bytes,
            "audioFrames": stats.audio_frames,
            "videoPackets": rtp.video_packets,
            "audioPackets": rtp.audio_packets,
        })
    );
    Ok(())
}

/// Returns after `seconds` (never when 0), or on Ctrl-C / SIGTERM.
async fn wait_for_end(seconds: f64) -> anyhow::Result<()> {
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("SIGTERM handler")?;
    let run_for = async {
        if seconds > 0.0 {
            tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        _ = run_for => {}
        _ = tokio::signal::ctrl_c() => {}
        _ = sigterm.recv() => {}
    }
    Ok(())
}
