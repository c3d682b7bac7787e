//! `fanout-view`: watch a WHEP stream with the webrtc-rs viewer and print what arrived.
//!
//! ```text
//! fanout-view --whep-url http://127.0.0.1:8080/whep/ID --seconds 10
//! ```
//! Prints one JSON line of [`fanout_tests::whep::ViewerStats`] (packets, frames, keyframes, gaps,
//! first packet/keyframe times) and DELETEs the session. Exits non-zero when no video keyframe
//! arrived.

use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use fanout_tests::signal::IcePolicy;
use fanout_tests::whep::{ViewOptions, Viewer};

/// Watch a WHEP endpoint and report what was received.
#[derive(Debug, Parser)]
#[command(name = "fanout-view", version)]
struct Args {
    /// WHEP endpoint.
    #[arg(long)]
    whep_url: String,
    /// How long to watch.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Bearer token for private streams.
    #[arg(long, env = "FANOUT_WHEP_TOKEN")]
    bearer: Option<String>,
    /// Ask for this simulcast layer once connected (`q`, `h`, `f`).
    #[arg(long)]
    layer: Option<String>,
    /// Keep every ICE candidate of the answer, not only loopback ones.
    #[arg(long)]
    any_candidate: bool,
    /// Print the offer and the answer SDP to stderr.
    #[arg(long)]
    print_sdp: bool,
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
        args.seconds.is_finite() && args.seconds > 0.0,
        "--seconds must be positive"
    );
    let opts = ViewOptions {
        bearer: args.bearer,
        ice_policy: if args.any_candidate {
            IcePolicy::Any
        } else {
            IcePolicy::LoopbackOnly
        },
        ..ViewOptions::default()
    };
    let viewer = Viewer::subscribe(&args.whep_url, opts)
        .await
        .context("subscribe")?;
    if args.print_sdp {
        eprintln!(
            "--- offer\n{}--- answer\n{}",
            viewer.offer_sdp(),
            viewer.answer().sdp
        );
    }
    if let Some(rid) = &args.layer {
        viewer
            .wait_connected(Duration::from_secs(10))
            .await
            .context("connect")?;
        let status = viewer.layer(Some(rid)).await.context("layer request")?;
        eprintln!("POST layer {rid}: {status}");
    }
    tokio::time::sleep(Duration::from_secs_f64(args.seconds)).await;
    let stats = viewer.stats();
    let deleted = viewer.stop().await.context("stop")?;
    let mut json = serde_json::to_value(&stats).context("stats to JSON")?;
    json["deleteStatus"] = deleted.as_u16().into();
    println!("{json}");
    anyhow::ensure!(stats.video.keyframes > 0, "no video keyframe received");
    Ok(())
}
