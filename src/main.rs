//! The `fanout` binary: command line, roles, wiring. No logic lives here.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

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
    Serve(ServeArgs),
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
        Command::Serve(args) => runtime.block_on(serve(args)),
    }
}

fn init_logging(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,str0m=warn,is=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn serve(args: ServeArgs) -> Result<()> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating data dir {}", args.data_dir.display()))?;
    let admin_token = match args.admin_token.clone() {
        Some(t) => t,
        None => load_or_create_admin_token(&args.data_dir)?,
    };

    let ips = sfu::candidate_ips(&args.public_ip, args.ice_loopback);
    let sfu = sfu::Sfu::start(sfu::SfuConfig {
        udp_port: args.udp_port,
        ips: ips.clone(),
        workers: args.workers,
        initial_bwe_bps: 1_000_000,
    })
    .context("starting the SFU (is the UDP port free?)")?;
    let db = signaling::Db::open(&args.data_dir).context("opening the database")?;
    let state = signaling::AppState::new(
        db,
        sfu.handle(),
        signaling::SignalConfig {
            admin_token: admin_token.clone(),
            public_url: args.public_url.clone(),
            web_dir: args.web_dir.clone(),
            grace: Duration::from_secs(args.reconnect_grace),
        },
    );
    let app = signaling::router(state);
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
    println!("    Admin token     {admin_token}");
    println!("    WebRTC media    UDP {}", media.join(", "));
    println!(
        "    ICE candidates  {}",
        ips.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
    );
    println!("  Create a stream:");
    println!(
        "    curl -s -X POST {base}/api/v1/streams -H 'Authorization: Bearer {admin_token}' -d '{{\"title\":\"My stream\"}}'"
    );
    println!();
    info!(%local, "HTTP listening");

    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("HTTP server")?;
    Ok(())
}

fn load_or_create_admin_token(dir: &Path) -> Result<String> {
    let path = dir.join("admin-token");
    if let Ok(t) = std::fs::read_to_string(&path) {
        let t = t.trim().to_string();
        if !t.is_empty() {
            return Ok(t);
        }
    }
    let token = signaling::new_admin_token();
    std::fs::write(&path, &token).with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
    }
    Ok(token)
}

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
