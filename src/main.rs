//! The `fanout` binary: command line, roles, wiring. No logic lives here.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use tracing::info;

#[derive(Parser, Debug)]
#[command(
    name = "fanout",
    version,
    about = "Live-streaming server: WHIP in, WHEP and LL-HLS out, chat"
)]
struct Cli {
    /// Log as JSON lines.
    #[arg(long, env = "FANOUT_LOG_JSON", global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run every role in one process.
    Serve(Box<ServeArgs>),
    /// Run only the chat service.
    Chat(ChatOnlyArgs),
}

#[derive(Args, Debug, Clone)]
struct ChatArgs {
    /// Chat WebSocket listener.
    #[arg(long, env = "FANOUT_CHAT_ADDR", default_value = "0.0.0.0:8081")]
    chat_addr: SocketAddr,
    /// Redis for chat fan-out, shared rate limits, bans and history, and viewer counts
    /// across nodes.
    #[arg(long, env = "FANOUT_REDIS_URL")]
    redis_url: Option<String>,
    /// How long a viewer counts after its last heartbeat, seconds (counted in two buckets
    /// of half this). Every node sharing a Redis must use the same value. For tests.
    #[arg(long, env = "FANOUT_AUDIENCE_WINDOW_SECS", default_value_t = 120, hide = true)]
    audience_window_secs: u64,
    /// HS256 secret for chat and viewer tokens. Generated and kept in the data dir when absent.
    #[arg(long, env = "FANOUT_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// PEM file of a platform's public key (RSA for RS256, Ed25519 for EdDSA) whose chat and
    /// viewer tokens are accepted too (repeatable).
    #[arg(long = "jwt-public-key", env = "FANOUT_JWT_PUBLIC_KEY", value_delimiter = ',')]
    jwt_public_key: Vec<PathBuf>,
    /// Seconds an HTTP client (API and chat listeners) has to send a whole request header,
    /// from connecting or from its previous response; a slow or idle connection is closed.
    #[arg(long, env = "FANOUT_HTTP_HEADER_TIMEOUT", default_value_t = 10)]
    http_header_timeout_secs: u64,
    /// Connections each HTTP listener (API and chat) holds at most; past it, new ones are
    /// closed at once (0: no cap).
    #[arg(long, env = "FANOUT_HTTP_MAX_CONNECTIONS", default_value_t = 10_000)]
    http_max_connections: usize,
}

impl ChatArgs {
    /// The HS256 secret: the flag's, or the one kept in the data dir.
    fn secret(&self, data_dir: &Path) -> Result<String> {
        match &self.jwt_secret {
            Some(s) => Ok(s.clone()),
            None => load_or_create_secret(data_dir, "jwt-secret", ""),
        }
    }

    /// The limits of each HTTP listener.
    fn http_limits(&self) -> fanout_httpd::HttpLimits {
        fanout_httpd::HttpLimits {
            header_timeout: Duration::from_secs(self.http_header_timeout_secs.max(1)),
            max_connections: self.http_max_connections,
        }
    }

    /// The contents of the `--jwt-public-key` files.
    fn public_keys(&self) -> Result<Vec<String>> {
        self.jwt_public_key
            .iter()
            .map(|p| std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display())))
            .collect()
    }
}

#[derive(Args, Debug, Clone)]
struct ChatOnlyArgs {
    #[command(flatten)]
    chat: ChatArgs,
    /// Where chat history is kept.
    #[arg(long, env = "FANOUT_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,
}

#[derive(Args, Debug, Clone)]
struct ServeArgs {
    /// HTTP listener: API, WHIP/WHEP, web pages.
    #[arg(long, env = "FANOUT_HTTP_ADDR", default_value = "0.0.0.0:8080")]
    http_addr: SocketAddr,
    /// First UDP port for WebRTC media; worker i listens on udp-port + i.
    #[arg(long, env = "FANOUT_UDP_PORT", default_value_t = 8189)]
    udp_port: u16,
    /// Address to advertise as an ICE host candidate (repeatable). Default: every
    /// non-loopback interface address.
    #[arg(long = "public-ip", env = "FANOUT_PUBLIC_IP", value_delimiter = ',')]
    public_ip: Vec<IpAddr>,
    /// Also advertise 127.0.0.1 (tests, viewers on the same machine).
    #[arg(long, env = "FANOUT_ICE_LOOPBACK")]
    ice_loopback: bool,
    /// Where streams (SQLite) and media are kept.
    #[arg(long, env = "FANOUT_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,
    /// Token for the admin API. Generated and kept in the data dir when absent.
    #[arg(long, env = "FANOUT_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Directory of the web pages.
    #[arg(long, env = "FANOUT_WEB_DIR", default_value = "./web")]
    web_dir: PathBuf,
    /// Base URL for links in API responses (default: from the request's Host header).
    #[arg(long, env = "FANOUT_PUBLIC_URL")]
    public_url: Option<String>,
    /// Media worker threads (default: one per core).
    #[arg(long, env = "FANOUT_WORKERS", default_value_t = 0)]
    workers: usize,
    /// Seconds a stream waits for its publisher to reconnect before it ends.
    #[arg(long, env = "FANOUT_RECONNECT_GRACE", default_value_t = 5)]
    reconnect_grace: u64,
    /// Run the built-in test source (720p/480p/360p ladder with the wall clock burnt in) as
    /// the public stream `test`, at /hls/test/master.m3u8.
    #[arg(long, env = "FANOUT_TEST_PATTERN")]
    test_pattern: bool,
    #[command(flatten)]
    hls: HlsArgs,
    #[command(flatten)]
    ingest: IngestArgs,
    /// TURN server URL to offer clients (repeatable), e.g. turn:turn.example.com:3478.
    /// Needs --turn-secret; see turn-config/.
    #[arg(long = "turn-url", env = "FANOUT_TURN_URL", value_delimiter = ',')]
    turn_url: Vec<String>,
    /// The shared secret of coturn's `use-auth-secret` (TURN REST credentials).
    #[arg(long, env = "FANOUT_TURN_SECRET", hide_env_values = true)]
    turn_secret: Option<String>,
    /// Lifetime of minted TURN credentials, seconds.
    #[arg(long, env = "FANOUT_TURN_TTL", default_value_t = 86_400)]
    turn_ttl: u64,
    #[command(flatten)]
    ops: OpsArgs,
    #[command(flatten)]
    chat: ChatArgs,
}

/// The LL-HLS bridge: every live room transcoded into an ABR ladder.
#[derive(Args, Debug, Clone)]
struct HlsArgs {
    /// Ladder heights, top first (a source gets those at or below its own height).
    #[arg(long, env = "FANOUT_HLS_LADDER", default_value = "720,480,360", value_parser = parse_ladder)]
    hls_ladder: Ladder,
    /// Video encoder: auto (NVENC, then VA-API, then x264), x264, nvenc or vaapi.
    #[arg(long, env = "FANOUT_HLS_ENCODER", default_value = "auto")]
    hls_encoder: bridge::encoder::EncoderPreference,
    /// Do not bridge live rooms to LL-HLS (WebRTC only).
    #[arg(long, env = "FANOUT_NO_HLS_BRIDGE")]
    no_hls_bridge: bool,
    /// Encode every rung, also for RTMP, SRT and RTSP sources, whose own H.264 is otherwise
    /// the top rung as it is (no decode, no encode).
    #[arg(long, env = "FANOUT_NO_HLS_SOURCE_COPY")]
    no_hls_source_copy: bool,
}

/// RTMP and SRT ingest.
#[derive(Args, Debug, Clone)]
struct IngestArgs {
    /// RTMP listener (publish at rtmp://HOST:PORT/live/{streamKey}).
    #[arg(long, env = "FANOUT_RTMP_ADDR", default_value = "0.0.0.0:1935")]
    rtmp_addr: SocketAddr,
    /// Do not listen for RTMP.
    #[arg(long, env = "FANOUT_NO_RTMP")]
    no_rtmp: bool,
    /// SRT listener, UDP (publish at srt://HOST:PORT?streamid=publish:{streamKey}).
    #[arg(long, env = "FANOUT_SRT_ADDR", default_value = "0.0.0.0:8890")]
    srt_addr: SocketAddr,
    /// Do not listen for SRT.
    #[arg(long, env = "FANOUT_NO_SRT")]
    no_srt: bool,
    /// SRT encryption passphrase (10 to 79 characters) every publisher must use; without it,
    /// encrypted callers are refused.
    #[arg(long, env = "FANOUT_SRT_PASSPHRASE", hide_env_values = true)]
    srt_passphrase: Option<String>,
    /// SRT latency in milliseconds (the larger of this and the caller's applies).
    #[arg(long, env = "FANOUT_SRT_LATENCY_MS", default_value_t = 120)]
    srt_latency_ms: u64,
}

/// Ladder heights, top first.
#[derive(Debug, Clone)]
struct Ladder(Vec<u32>);

fn parse_ladder(text: &str) -> Result<Ladder, String> {
    bridge::ladder::parse_heights(text).map(Ladder)
}

/// Webhooks, rate limits, shutdown.
#[derive(Args, Debug, Clone)]
struct OpsArgs {
    /// Receiver of stream lifecycle webhooks (repeatable; plain http:// only).
    #[arg(long = "webhook-url", env = "FANOUT_WEBHOOK_URL", value_delimiter = ',')]
    webhook_url: Vec<String>,
    /// Secret that signs webhooks. Generated and kept in the data dir when absent.
    #[arg(long, env = "FANOUT_WEBHOOK_SECRET", hide_env_values = true)]
    webhook_secret: Option<String>,
    /// API and WHIP/WHEP session requests per second per client IP (0: unlimited).
    #[arg(long, env = "FANOUT_API_RATE_LIMIT", default_value_t = 20.0)]
    api_rate_limit: f64,
    /// Requests a client may send at once before the rate applies.
    #[arg(long, env = "FANOUT_API_BURST", default_value_t = 40)]
    api_burst: u32,
    /// Seconds a WHIP/WHEP session has to connect (ICE and DTLS) before it is closed.
    #[arg(long, env = "FANOUT_CONNECT_TIMEOUT", default_value_t = 30)]
    connect_timeout_secs: u64,
    /// WHIP/WHEP sessions this server holds at most; past it, new ones get 503 (0: no cap).
    #[arg(long, env = "FANOUT_MAX_SESSIONS", default_value_t = 5_000)]
    max_sessions: usize,
    /// WHIP/WHEP sessions not connected yet one client address may have; past it, new ones
    /// get 429 (0: no cap). Connected sessions do not count (many viewers share a NAT).
    #[arg(long, env = "FANOUT_MAX_CONNECTING_PER_CLIENT", default_value_t = 32)]
    max_connecting_per_client: usize,
    /// Take the client address from X-Forwarded-For (only behind a proxy that sets it).
    #[arg(long, env = "FANOUT_TRUST_PROXY")]
    trust_proxy: bool,
    /// On SIGTERM, seconds open sessions may go on before streams end (0: at once).
    #[arg(long, env = "FANOUT_DRAIN_SECS", default_value_t = 10)]
    drain_secs: u64,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    init_logging(cli.log_json);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .worker_threads(2)
        .build()
        .context("starting the async runtime")?;
    match cli.command {
        Command::Serve(args) => runtime.block_on(serve(*args)),
        Command::Chat(args) => runtime.block_on(chat_only(args)),
    }
}

fn init_logging(json: bool) {
    use tracing_subscriber::EnvFilter;
    // srt-tokio logs every caller's stream id (the stream key) at debug, and a warning per
    // malformed datagram (garbage on the port would flood the log): capped whatever RUST_LOG says.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,str0m=warn,is=warn"))
        .add_directive("srt_tokio=info".parse().expect("a valid directive"))
        .add_directive("srt_protocol=error".parse().expect("a valid directive"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn serve(args: ServeArgs) -> Result<()> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating data dir {}", args.data_dir.display()))?;
    // Where the operator finds the admin token: never printed, it would end up in logs.
    let (admin_token, admin_token_at) = match args.admin_token.clone() {
        Some(t) => (t, "as given (--admin-token or FANOUT_ADMIN_TOKEN)".to_string()),
        None => {
            let path = args.data_dir.join("admin-token");
            let token = load_or_create_secret(&args.data_dir, "admin-token", "adm_")?;
            (token, format!("in {}", path.display()))
        }
    };

    let ips = sfu::candidate_ips(&args.public_ip, args.ice_loopback);
    let sfu = sfu::Sfu::start(sfu::SfuConfig {
        udp_port: args.udp_port,
        ips: ips.clone(),
        workers: args.workers,
        initial_bwe_bps: 1_000_000,
        connect_timeout: Duration::from_secs(args.ops.connect_timeout_secs.max(1)),
        limits: sfu::SessionLimits {
            max_sessions: args.ops.max_sessions,
            max_connecting_per_client: args.ops.max_connecting_per_client,
        },
    })
    .context("starting the SFU (is the UDP port free?)")?;
    let db = signaling::Db::open(&args.data_dir).context("opening the database")?;
    let window = audience::Window::new(Duration::from_secs(args.chat.audience_window_secs));
    let audience = match &args.chat.redis_url {
        Some(url) => audience::Audience::redis(url, window).context("viewer counts in Redis")?,
        None => audience::Audience::in_process(window),
    };
    // Chat starts first (signaling links to it); its sockets are marked once signaling is up.
    let marks_to: Arc<OnceLock<signaling::AppState>> = Arc::default();
    let marks = {
        let to = marks_to.clone();
        chat::ViewerMarks::new(window.remark_every(), move |stream, viewer| {
            if let Some(state) = to.get() {
                state.mark_known(stream, viewer);
            }
        })
    };
    // Chat stays up through the drain (viewers still watching keep talking) and closes its
    // sockets, with `shutting_down`, when the HTTP server stops.
    let (stop_chat, chat_stopped) = tokio::sync::oneshot::channel::<()>();
    let (chat, chat_link) = start_chat(&args.chat, &args.data_dir, Some(marks), async move {
        let _ = chat_stopped.await;
    })
    .await?;
    let viewer_auth = signaling::ViewerAuth::new(
        args.chat.secret(&args.data_dir)?.into_bytes(),
        args.chat.public_keys()?,
    )
    .context("reading --jwt-public-key")?;
    let origin = hls::Origin::new(hls::OriginConfig {
        data_dir: Some(args.data_dir.clone()),
        ..Default::default()
    })
    .context("starting the LL-HLS origin")?;
    let room_ingest = bridge::ingest::RoomIngest::new(sfu.handle())
        .context("starting the ingest conversions (GStreamer)")?;
    let bridges = new_bridges(&args.hls, &sfu, &origin, &room_ingest)?;
    let sources = Arc::new(Sources(room_ingest));
    let rtmp = if args.ingest.no_rtmp {
        info!("RTMP ingest off (--no-rtmp)");
        None
    } else {
        let config = ingest::rtmp::RtmpConfig {
            addr: args.ingest.rtmp_addr,
            ..Default::default()
        };
        Some(ingest::rtmp::RtmpServer::bind(config).await.with_context(|| {
            format!(
                "binding the RTMP listener {} (--rtmp-addr, or --no-rtmp)",
                args.ingest.rtmp_addr
            )
        })?)
    };
    let rtmp_port = rtmp
        .as_ref()
        .map(|r| r.local_addr())
        .transpose()?
        .map(|a| a.port());
    let srt = if args.ingest.no_srt {
        info!("SRT ingest off (--no-srt)");
        None
    } else {
        let mut config = ingest::SrtConfig::new(args.ingest.srt_addr);
        config.passphrase = args.ingest.srt_passphrase.clone();
        config.latency = Duration::from_millis(args.ingest.srt_latency_ms);
        Some(ingest::SrtListener::bind(config).await.with_context(|| {
            format!(
                "binding the SRT listener {} (--srt-addr, or --no-srt)",
                args.ingest.srt_addr
            )
        })?)
    };
    let srt_port = srt.as_ref().map(|s| s.local_addr().port());
    let state = signaling::AppState::new(
        db,
        sfu.handle(),
        signaling::SignalConfig {
            admin_token: admin_token.clone(),
            public_url: args.public_url.clone(),
            web_dir: args.web_dir.clone(),
            grace: Duration::from_secs(args.reconnect_grace),
            chat: Some(chat_link),
            turn: turn_config(&args)?,
            viewer_auth: std::sync::Arc::new(viewer_auth),
            ingest: signaling::IngestUrls { rtmp_port, srt_port },
            audience,
            webhooks: webhook_config(&args.ops, &args.data_dir)?,
            rate_limit: (args.ops.api_rate_limit > 0.0).then_some(signaling::RateLimit {
                per_second: args.ops.api_rate_limit,
                burst: args.ops.api_burst,
            }),
            trust_proxy: args.ops.trust_proxy,
            hls: Some(origin.clone()),
            bridge: bridges
                .clone()
                .map(|b| Arc::new(BridgeView(b)) as Arc<dyn signaling::BridgeView>),
            sources: Some(sources.clone()),
        },
    )
    .await;
    let _ = marks_to.set(state.clone());
    let gate = state.start_ingest(sources).await;
    if let Some(rtmp) = rtmp {
        // New publications are refused while draining (the gate asks); open ones end with
        // the process.
        tokio::spawn(rtmp.run(gate.clone(), std::future::pending()));
    }
    if let Some(srt) = srt {
        let gate = gate.clone();
        tokio::spawn(async move {
            if let Err(e) = srt.run(gate, std::future::pending()).await {
                tracing::error!("SRT ingest stopped: {e}");
            }
        });
    }
    let draining = state.clone();
    let db = state.database().clone();
    if let Some(bridges) = &bridges {
        follow_streams(bridges.clone(), &state);
    }
    let test_source = if args.test_pattern {
        Some(start_test_pattern(&origin, &state).await?)
    } else {
        None
    };
    // Outermost the private-stream check (it rewrites signed paths), then viewer counting.
    let hls = hls::router(origin.clone()).layer(axum::middleware::from_fn_with_state(
        state.clone(),
        signaling::mark_hls_request,
    ));
    let app = signaling::router(state.clone()).merge(signaling::guard_hls(state, hls));
    let listener = tokio::net::TcpListener::bind(args.http_addr)
        .await
        .with_context(|| format!("binding {}", args.http_addr))?;
    let local = listener.local_addr()?;

    let host = match local.ip() {
        ip if ip.is_unspecified() => "localhost".to_string(),
        ip => ip.to_string(),
    };
    let base = args
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{host}:{}", local.port()));
    let media: Vec<String> = sfu.handle().addresses().iter().map(|a| a.to_string()).collect();
    println!();
    println!("  Fanout is running");
    println!("    Home page       {base}/");
    println!("    Streams API     {base}/api/v1/streams   (Authorization: Bearer <admin token>)");
    println!("    Admin token     {admin_token_at}");
    println!("    WebRTC media    UDP {}", media.join(", "));
    if let Some(port) = rtmp_port {
        println!(
            "    RTMP ingest     rtmp://{host}:{port}/live/<stream key>   (OBS: server rtmp://{host}:{port}/live)"
        );
    }
    if let Some(port) = srt_port {
        println!("    SRT ingest      srt://{host}:{port}?streamid=publish:<stream key>");
    }
    println!(
        "    Chat            ws://{host}:{}/v1/chat/<stream id>",
        chat.local_addr().port()
    );
    if test_source.is_some() {
        println!("    Test pattern    {base}/hls/test/master.m3u8   (player: {base}/hls.html?stream=test)");
    }
    println!(
        "    ICE candidates  {}",
        ips.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
    );
    println!("  Create a stream:");
    match &args.admin_token {
        Some(_) => println!("    ADMIN_TOKEN=<the admin token you gave>"),
        None => println!(
            "    ADMIN_TOKEN=$(cat {})",
            args.data_dir.join("admin-token").display()
        ),
    }
    println!(
        "    curl -s -X POST {base}/api/v1/streams -H \"Authorization: Bearer $ADMIN_TOKEN\" -d '{{\"title\":\"My stream\"}}'"
    );
    println!();
    info!(%local, "HTTP listening");

    let drain_window = Duration::from_secs(args.ops.drain_secs);
    fanout_httpd::serve(
        listener,
        app,
        args.chat.http_limits(),
        async move {
            shutdown_signal().await;
            // Still serving: open sessions go on, /readyz says 503, new sessions are refused.
            draining.drain(drain_window).await;
            let _ = stop_chat.send(());
        },
        HTTP_CLOSE_GRACE,
    )
    .await;
    if let Some(bridges) = bridges {
        // Every live stream's VOD is finalised before the process ends.
        tokio::task::spawn_blocking(move || bridges.stop_all())
            .await
            .context("stopping the LL-HLS bridges")?;
    }
    if let Some(source) = test_source {
        tokio::task::spawn_blocking(move || source.stop())
            .await
            .context("stopping the test pattern")?
            .context("stopping the test pattern")?;
        db.set_status(TEST_STREAM, signaling::Status::Ended)
            .await
            .context("ending the test stream")?;
    }
    chat.wait().await.context("chat service")?;
    Ok(())
}

fn turn_config(args: &ServeArgs) -> Result<Option<signaling::TurnConfig>> {
    match (&args.turn_url[..], &args.turn_secret) {
        ([], None) => Ok(None),
        ([], Some(_)) => anyhow::bail!("--turn-secret needs at least one --turn-url"),
        (_, None) => anyhow::bail!("--turn-url needs --turn-secret (coturn's static-auth-secret)"),
        (urls, Some(secret)) => Ok(Some(signaling::TurnConfig {
            urls: urls.to_vec(),
            secret: secret.clone(),
            ttl: Duration::from_secs(args.turn_ttl.max(60)),
        })),
    }
}

fn webhook_config(args: &OpsArgs, data_dir: &Path) -> Result<Option<signaling::WebhookConfig>> {
    if args.webhook_url.is_empty() {
        return Ok(None);
    }
    let secret = match &args.webhook_secret {
        Some(s) => s.clone(),
        None => {
            let secret = load_or_create_secret(data_dir, "webhook-secret", "whsec_")?;
            info!(
                "webhooks are signed with the secret in {}",
                data_dir.join("webhook-secret").display()
            );
            secret
        }
    };
    let config = signaling::WebhookConfig::new(&args.webhook_url, &secret)?;
    info!(endpoints = config.endpoints(), "webhooks on");
    Ok(Some(config))
}

/// The LL-HLS bridge of every live room (`None` with --no-hls-bridge).
fn new_bridges(
    args: &HlsArgs,
    sfu: &sfu::Sfu,
    origin: &hls::Origin,
    ingest: &bridge::ingest::RoomIngest,
) -> Result<Option<bridge::live::Bridges>> {
    if args.no_hls_bridge {
        info!("LL-HLS bridge off (--no-hls-bridge): live rooms are WebRTC only");
        return Ok(None);
    }
    let choice =
        bridge::encoder::probe(args.hls_encoder).context("choosing the LL-HLS encoder (--hls-encoder)")?;
    let mut config = bridge::live::BridgeConfig::new(choice);
    config.ladder = args.hls_ladder.0.clone();
    Ok(Some(bridge::live::Bridges::new(
        sfu.handle(),
        origin.clone(),
        config,
        (!args.no_hls_source_copy).then(|| ingest.clone()),
    )))
}

/// The room side of RTMP, SRT and RTSP ingest, as signaling sees it.
#[derive(Debug)]
struct Sources(bridge::ingest::RoomIngest);

impl signaling::RoomSources for Sources {
    fn start(&self, stream: &str) -> Result<(sfu::SessionId, Box<dyn ingest::Sink>), String> {
        let (id, sink) = self.0.start(stream).map_err(|e| e.to_string())?;
        Ok((id, Box::new(sink)))
    }

    fn health(&self, stream: &str) -> Option<serde_json::Value> {
        let h = self.0.health(stream)?;
        Some(serde_json::json!({
            "reencoding": h.reencoding,
            "droppedFrames": h.dropped_frames,
            "problems": h.problems,
        }))
    }
}

/// Signaling's view of the bridges: each stream's bridge health, and their metrics.
#[derive(Debug)]
struct BridgeView(bridge::live::Bridges);

impl signaling::BridgeView for BridgeView {
    fn health(&self, stream: &str) -> Option<serde_json::Value> {
        let h = self.0.health(stream)?;
        Some(serde_json::json!({
            "state": h.state.as_str(),
            "encoder": h.encoder,
            "renditions": h.renditions,
            "videoCodec": h.video_codec,
            "topRungCopied": h.top_rung_copied,
            "audioCopied": h.audio_copied,
            "audio": h.audio,
            "clock": h.clock,
            "restarts": h.restarts,
            "lastError": h.last_error,
        }))
    }

    fn metrics(
        &self,
    ) -> (
        Box<dyn prometheus_client::collector::Collector>,
        Box<dyn fanout_metrics::ErrorSource>,
    ) {
        let m = self.0.metrics();
        (Box::new(m.clone()), Box::new(m))
    }
}

/// Bridge every live room into LL-HLS, following the streams' lifecycle.
fn follow_streams(following: bridge::live::Bridges, state: &signaling::AppState) {
    let mut events = state.stream_events();
    tokio::spawn(async move {
        use tokio::sync::broadcast::error::RecvError;
        loop {
            match events.recv().await {
                Ok(signaling::StreamEvent::Live { stream, meta }) if stream != TEST_STREAM => {
                    let settings = bridge::live::StreamSettings {
                        ladder: meta.hls_ladder,
                        dvr: meta.enable_dvr,
                        low_latency: meta.low_latency,
                    };
                    if let Err(e) = following.stream_live(&stream, settings) {
                        tracing::error!(%stream, "no LL-HLS for this stream: {e}");
                    }
                }
                Ok(signaling::StreamEvent::Ended { stream }) => following.stream_ended(&stream),
                Ok(_) => {}
                Err(RecvError::Lagged(n)) => tracing::warn!("the LL-HLS bridge missed {n} stream events"),
                Err(RecvError::Closed) => break,
            }
        }
    });
}

/// The stream id the built-in test source publishes to.
const TEST_STREAM: &str = "test";

/// Create (or reuse) the public `test` stream and feed its LL-HLS renditions from the
/// built-in test source.
async fn start_test_pattern(
    origin: &hls::Origin,
    state: &signaling::AppState,
) -> Result<bridge::test_source::TestSource> {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    state
        .database()
        .ensure(TEST_STREAM, "Test pattern", now_ms)
        .await
        .context("creating the test stream")?;
    let sink = origin
        .create_stream(TEST_STREAM, hls::StreamConfig::default())
        .context("creating the test stream's renditions")?;
    // The fastest x264 preset: the test pattern shares the machine with everything else, and
    // an encoder that falls behind makes the whole ladder late.
    let config = bridge::test_source::TestSourceConfig {
        speed_preset: bridge::test_source::SpeedPreset::Ultrafast,
        ..Default::default()
    };
    let source = bridge::test_source::TestSource::start(config, Box::new(sink))
        .context("starting the test pattern (GStreamer)")?;
    state
        .source_started(TEST_STREAM)
        .await
        .map_err(|e| anyhow::anyhow!("marking the test stream live: {e}"))?;
    info!("test pattern running as stream {TEST_STREAM}");
    Ok(source)
}

async fn start_chat(
    args: &ChatArgs,
    data_dir: &Path,
    viewer_marks: Option<chat::ViewerMarks>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(chat::ChatHandle, signaling::ChatLink)> {
    let secret = args.secret(data_dir)?;
    let config = chat::ChatConfig {
        addr: args.chat_addr,
        redis_url: args.redis_url.clone(),
        jwt: chat::JwtConfig {
            hs256_secret: Some(secret.as_bytes().to_vec()),
            public_keys_pem: args.public_keys()?,
            ..Default::default()
        },
        data_dir: data_dir.to_path_buf(),
        viewer_marks,
        http: args.http_limits(),
        ..Default::default()
    };
    let handle = chat::serve(config, shutdown)
        .await
        .with_context(|| format!("starting chat on {}", args.chat_addr))?;
    let link = signaling::ChatLink {
        state: handle.state().clone(),
        jwt_secret: secret.into_bytes(),
        port: handle.local_addr().port(),
    };
    Ok((handle, link))
}

async fn chat_only(args: ChatOnlyArgs) -> Result<()> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating data dir {}", args.data_dir.display()))?;
    // With Redis, a chat-only node counts its sockets into the same viewer counts as the
    // signaling nodes; without, there is nobody to count for.
    let marks = match &args.chat.redis_url {
        Some(url) => {
            let window = audience::Window::new(Duration::from_secs(args.chat.audience_window_secs));
            let audience = audience::Audience::redis(url, window).context("viewer counts in Redis")?;
            Some(chat::ViewerMarks::new(
                window.remark_every(),
                move |stream, viewer| {
                    audience.seen(stream, viewer, SystemTime::now());
                },
            ))
        }
        None => None,
    };
    // A chat-only node closes its sockets at once (`shutting_down`): clients reconnect to
    // another node, which costs them nothing.
    let (chat, _) = start_chat(&args.chat, &args.data_dir, marks, shutdown_signal()).await?;
    println!("  Fanout chat on ws://{}/v1/chat/<stream id>", chat.local_addr());
    chat.wait().await.context("chat service")?;
    Ok(())
}

/// A secret kept in the data dir, generated on first use: created with mode 0600 (never
/// readable by others, not even between a write and a chmod).
fn load_or_create_secret(dir: &Path, name: &str, prefix: &str) -> Result<String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(name);
    if let Ok(t) = std::fs::read_to_string(&path) {
        let t = t.trim().to_string();
        if !t.is_empty() {
            return Ok(t);
        }
        // An empty file (a crash between creating and writing it): made again.
        std::fs::remove_file(&path).with_context(|| format!("removing the empty {}", path.display()))?;
    }
    let token = signaling::new_secret(prefix);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(token.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(token)
}

/// After the drain, how long open HTTP exchanges (held LL-HLS requests) may take to finish.
const HTTP_CLOSE_GRACE: Duration = Duration::from_secs(5);

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    info!("shutting down");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_generated_secret_is_private_from_the_start_and_kept() {
        let dir = std::env::temp_dir().join(format!("fanout-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let token = load_or_create_secret(&dir, "admin-token", "adm_").expect("created");
        assert!(token.starts_with("adm_"), "{token}");
        let mode = std::fs::metadata(dir.join("admin-token"))
            .expect("written")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
        assert_eq!(
            load_or_create_secret(&dir, "admin-token", "adm_").expect("read"),
            token
        );
        // An empty file (a crash between creating and writing it) is made again, private.
        std::fs::write(dir.join("jwt-secret"), "").expect("empty file");
        let jwt = load_or_create_secret(&dir, "jwt-secret", "").expect("remade");
        assert!(!jwt.is_empty());
        let mode = std::fs::metadata(dir.join("jwt-secret"))
            .expect("written")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
        std::fs::remove_dir_all(&dir).expect("cleaned up");
    }
}
