//! `fanout-push-test`: the clock-stamped test pattern (H.264 + AAC) pushed over RTMP or SRT to a
//! server on loopback, for ingest glass-to-glass measurements; or, with `--floor`, encoded and
//! decoded again in this process, printing how old each frame is when decoded (the encoder's
//! own latency, the floor of an ingest figure).
//!
//! ```text
//! fanout-push-test --rtmp-url rtmp://127.0.0.1:1935/live/KEY [--b-frames 2] [--seconds 0]
//! fanout-push-test --srt-url 'srt://127.0.0.1:8890?streamid=publish:KEY' [--srt-latency-ms 20]
//! fanout-push-test --floor [--b-frames 2] [--seconds 30] [--warmup 2] [--json]
//! ```
//!
//! Every frame carries the wall clock as the code `web/js/clockcode.js` reads (the bench
//! viewer `web/bench/g2g-watch.html` reads it too).

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use bridge::test_source::{PushConfig, PushTarget, PushTest};
use clap::Parser;
use fanout_tests::loadgen::percentile;
use fanout_tests::signal::is_loopback_url;

#[derive(Debug, Parser)]
#[command(name = "fanout-push-test", version)]
struct Args {
    /// Push FLV over RTMP to this URL (loopback only).
    #[arg(long, conflicts_with_all = ["srt_url", "floor"], required_unless_present_any = ["srt_url", "floor"])]
    rtmp_url: Option<String>,
    /// Push MPEG-TS over SRT to this URL, `srt://127.0.0.1:PORT?streamid=...` (loopback only).
    #[arg(long, conflicts_with = "floor")]
    srt_url: Option<String>,
    /// The SRT latency this caller asks for, in ms (the larger of both ends' applies).
    #[arg(long, default_value_t = 20)]
    srt_latency_ms: u64,
    /// Push nowhere: decode again here and print each frame's age at the decoder's output.
    #[arg(long)]
    floor: bool,
    /// Picture size.
    #[arg(long, default_value = "1280x720")]
    size: String,
    /// Frames per second.
    #[arg(long, default_value_t = 30)]
    fps: u32,
    /// Video bit rate, bit/s.
    #[arg(long, default_value_t = 2_500_000)]
    bitrate: u32,
    /// B-frames between references (0: zerolatency, what the server passes through).
    #[arg(long, default_value_t = 0)]
    b_frames: u32,
    /// Keyframe interval, seconds.
    #[arg(long, default_value_t = 2.0)]
    keyframe_seconds: f64,
    /// Video only.
    #[arg(long)]
    no_audio: bool,
    /// Run time in seconds; 0 pushes until killed.
    #[arg(long, default_value_t = 0.0)]
    seconds: f64,
    /// The floor: seconds of samples dropped first (the encoder's start).
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// The floor: print one JSON line instead of the table.
    #[arg(long)]
    json: bool,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let (width, height) = args
        .size
        .split_once('x')
        .and_then(|(w, h)| Some((w.parse().ok()?, h.parse().ok()?)))
        .context("--size must be WIDTHxHEIGHT")?;
    ensure!(
        args.seconds >= 0.0 && args.seconds.is_finite(),
        "--seconds must be >= 0"
    );
    ensure!(args.keyframe_seconds > 0.0, "--keyframe-seconds must be positive");
    let target = if let Some(url) = &args.rtmp_url {
        ensure_loopback(url, "rtmp")?;
        PushTarget::Rtmp(url.clone())
    } else if let Some(url) = &args.srt_url {
        let parsed = ensure_loopback(url, "srt")?;
        let stream_id = parsed
            .query_pairs()
            .find(|(k, _)| k == "streamid")
            .map(|(_, v)| v.into_owned());
        let port = parsed.port().context("the SRT URL needs a port")?;
        PushTarget::Srt {
            uri: format!("srt://{}:{port}", parsed.host_str().unwrap_or("127.0.0.1")),
            stream_id,
            latency: Duration::from_millis(args.srt_latency_ms),
        }
    } else {
        PushTarget::Floor
    };
    let config = PushConfig {
        target,
        width,
        height,
        frame_rate: args.fps,
        bitrate: args.bitrate,
        b_frames: args.b_frames,
        keyframe_interval: Duration::from_secs_f64(args.keyframe_seconds),
        audio: !args.no_audio,
    };
    let push = PushTest::start(&config).context("starting the pipeline")?;
    eprintln!(
        "pushing {width}x{height}@{} {} kbit/s, {} B-frames",
        args.fps,
        args.bitrate / 1000,
        args.b_frames
    );
    if args.floor {
        return floor(&push, &args);
    }
    let end = (args.seconds > 0.0).then(|| Instant::now() + Duration::from_secs_f64(args.seconds));
    // RTMP: how old each video frame is when the muxer hands it to the socket, after the
    // warm-up, as a JSON line every 5 s (the run is usually ended by a signal).
    let warm = Instant::now() + Duration::from_secs_f64(args.warmup);
    let mut sent: Vec<f64> = Vec::new();
    let mut reported = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(200));
        push.health().context("the push failed")?;
        let ages = push.take_ages_ms();
        if Instant::now() >= warm {
            sent.extend(ages);
        }
        if !sent.is_empty() && reported.elapsed() >= Duration::from_secs(5) {
            reported = Instant::now();
            let p = |q| percentile(&sent, q).unwrap_or(f64::NAN);
            println!(
                r#"{{"mode":"sent","samples":{},"p50Ms":{:.1},"p95Ms":{:.1},"maxMs":{:.1}}}"#,
                sent.len(),
                p(50.0),
                p(95.0),
                p(100.0)
            );
        }
        if end.is_some_and(|end| Instant::now() >= end) {
            break;
        }
    }
    push.stop().context("stopping")?;
    Ok(())
}

fn floor(push: &PushTest, args: &Args) -> anyhow::Result<()> {
    let seconds = if args.seconds > 0.0 { args.seconds } else { 30.0 };
    std::thread::sleep(Duration::from_secs_f64(args.warmup));
    push.health()?;
    push.take_ages_ms();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    push.health()?;
    let ages = push.take_ages_ms();
    if ages.is_empty() {
        bail!("no frame with a readable clock was decoded");
    }
    let p = |q| percentile(&ages, q).unwrap_or(f64::NAN);
    if args.json {
        println!(
            r#"{{"mode":"floor","bFrames":{},"seconds":{seconds},"samples":{},"p50Ms":{:.1},"p95Ms":{:.1},"p99Ms":{:.1},"maxMs":{:.1}}}"#,
            args.b_frames,
            ages.len(),
            p(50.0),
            p(95.0),
            p(99.0),
            p(100.0)
        );
    } else {
        println!(
            "floor (encode + decode here, no server), {} B-frames",
            args.b_frames
        );
        println!(
            "  frame age at the decoder p50 / p95 / p99 / max: {:.1} / {:.1} / {:.1} / {:.1} ms",
            p(50.0),
            p(95.0),
            p(99.0),
            p(100.0)
        );
        println!("  samples: {} in {seconds} s", ages.len());
    }
    Ok(())
}

/// Parses `url`, which must have `scheme` and a loopback host: this tool talks to nothing else.
fn ensure_loopback(url: &str, scheme: &str) -> anyhow::Result<reqwest::Url> {
    let parsed = reqwest::Url::parse(url).with_context(|| format!("bad URL {url}"))?;
    ensure!(parsed.scheme() == scheme, "{url}: expected a {scheme}:// URL");
    ensure!(is_loopback_url(&parsed), "{url} is not on a loopback host");
    Ok(parsed)
}
