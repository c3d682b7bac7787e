//! A WHEP fan-out load generator on str0m: thousands of subscribers on one thread.
//!
//! Model: a signalling thread (tokio, reqwest) creates subscribers at the ramp rate — one UDP
//! socket on 127.0.0.1 and one RTP-mode str0m `Rtc` each, a recvonly audio+video offer POSTed
//! to the WHEP URL, the answer applied (or, to measure Janus the same way, a Janus API session
//! that watches a streaming mountpoint, Janus's offer answered: see [`LoadConfig::janus`]) —
//! and hands each `Rtc` to the media driver, which runs
//! on the calling thread: one mio poll over all sockets, a timer heap of str0m timeouts, every
//! input followed by a drain of `poll_output`. str0m sends receiver reports, NACKs and TWCC
//! feedback by itself. Each subscriber counts RTP packets and sequence holes per SSRC; a hole
//! still open after the NACK recovery window is a lost packet.
//!
//! Measurement: the *run* window covers everything; the *steady* window starts once every
//! subscriber has signalled plus a settling time (DTLS handshakes done) and ends with the run.
//! CPU: the load generator's own (getrusage) and, given a PID, the server's (`/proc/PID/stat`),
//! sampled at the window edges; server CPU per forwarded packet = server CPU / packets received
//! by all subscribers in the same window.
//!
//! Only loopback: the URL must name a loopback host and only loopback candidates of the
//! answer are used. Everything is bounded by the run duration (plus at most ~45 s to DELETE
//! the sessions at the end).
//!
//! [`run`] blocks; call it from `tokio::task::spawn_blocking` in async code.

mod cpu;
mod janus;
mod report;
pub mod server_metrics;
mod signaling;
mod subscriber;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token, Waker};

pub use cpu::{own_cpu, parse_stat_ticks, process_cpu};
pub use report::{LoadReport, SubscriberOutcome, Window, percentile};

use crate::signal::{is_loopback_url, parse_url};
use signaling::{Plan, SignalEvent, Signalling};
use subscriber::Subscriber;

const WAKER: Token = Token(usize::MAX);

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// The WHEP endpoint (loopback only).
    pub whep_url: String,
    /// Further WHEP endpoints (loopback only), to watch several streams in one run: subscriber
    /// `i` watches the `i mod (1 + len)`th of `whep_url` and these, so with as many subscribers
    /// as URLs every stream gets one viewer. Not used with [`janus`](Self::janus).
    pub more_whep_urls: Vec<String>,
    /// `Authorization: Bearer` for private streams.
    pub bearer: Option<String>,
    /// How many subscribers.
    pub subscribers: usize,
    /// Total run time, ramp included.
    pub duration: Duration,
    /// Subscribers created per second.
    pub ramp_per_sec: f64,
    /// WHEP exchanges in flight at once.
    pub concurrency: usize,
    /// Time after the last subscriber signalled before the steady window starts.
    pub settle: Duration,
    /// End the run this long after the steady window started, so that runs of different
    /// ramp lengths measure the same window (`duration` still bounds the whole run).
    pub steady_window: Option<Duration>,
    /// How long a hole may wait for a retransmission before it counts as lost.
    pub loss_window: Duration,
    /// The server process, for its CPU time.
    pub server_pid: Option<u32>,
    /// The server's Prometheus endpoint, for its own forwarding-delay histogram.
    pub metrics_url: Option<String>,
    /// Watch a Janus streaming mountpoint instead of `whep_url`: the only difference is how a
    /// subscriber signs in; media, counting and CPU sampling are the same.
    pub janus: Option<JanusMountpoint>,
    /// The loopback address the subscribers' sockets bind to (their only ICE candidate).
    /// Janus never gathers on `lo`, so it is given a loopback address on another interface, and
    /// its sockets send through that interface only: subscribers must bind to that same address.
    pub bind_ip: IpAddr,
}

/// A mountpoint of Janus's streaming plugin, reached through the Janus HTTP API.
#[derive(Debug, Clone)]
pub struct JanusMountpoint {
    /// The Janus API root, e.g. `http://127.0.0.1:8088/janus` (loopback only).
    pub api_url: String,
    /// The mountpoint's numeric id.
    pub id: u64,
}

impl Default for LoadConfig {
    fn default() -> Self {
        Self {
            whep_url: String::new(),
            more_whep_urls: Vec::new(),
            bearer: None,
            subscribers: 10,
            duration: Duration::from_secs(10),
            ramp_per_sec: 100.0,
            concurrency: 32,
            settle: Duration::from_secs(2),
            steady_window: None,
            loss_window: Duration::from_secs(1),
            server_pid: None,
            metrics_url: None,
            janus: None,
            bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        }
    }
}

/// Why a load run could not start.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The URL is unusable.
    #[error(transparent)]
    Url(#[from] crate::signal::SignalError),
    /// The URL (or the bind address) is not on a loopback host.
    #[error("{0} is not a loopback URL or address; the load generator only talks to 127.0.0.1/::1/localhost")]
    NotLoopback(String),
    /// Poll, waker, socket or thread set-up failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being set up.
        context: &'static str,
        /// The error.
        source: std::io::Error,
    },
    /// The DTLS certificate could not be generated.
    #[error("cannot generate a DTLS certificate")]
    Certificate,
}

fn io_err(context: &'static str) -> impl FnOnce(std::io::Error) -> LoadError {
    move |source| LoadError::Io { context, source }
}

/// A CPU/packet sample at a window edge.
#[derive(Clone)]
struct Sample {
    at: Instant,
    packets: u64,
    bytes: u64,
    own_cpu: Duration,
    server_cpu: Option<Duration>,
    server_delay: Option<server_metrics::Buckets>,
}

impl Sample {
    fn window_to(&self, end: &Sample) -> Window {
        Window {
            seconds: end.at.saturating_duration_since(self.at).as_secs_f64(),
            packets: end.packets.saturating_sub(self.packets),
            bytes: end.bytes.saturating_sub(self.bytes),
            loadgen_cpu_s: end.own_cpu.saturating_sub(self.own_cpu).as_secs_f64(),
            server_cpu_s: match (self.server_cpu, end.server_cpu) {
                (Some(a), Some(b)) => Some(b.saturating_sub(a).as_secs_f64()),
                _ => None,
            },
        }
    }
}

/// The media driver: owns every subscriber, their sockets and the timer heap.
struct Driver {
    poll: Poll,
    subscribers: Vec<Subscriber>,
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    buf: Vec<u8>,
}

impl Driver {
    fn schedule(&mut self, index: usize) {
        if let Some(at) = self.subscribers[index].next_timeout() {
            self.timers.push(Reverse((at, index)));
        }
    }

    fn add(&mut self, mut subscriber: Subscriber) {
        let index = self.subscribers.len();
        if let Err(e) =
            self.poll
                .registry()
                .register(subscriber.socket_mut(), Token(index), Interest::READABLE)
        {
            tracing::warn!(error = %e, "cannot register subscriber socket");
        }
        subscriber.on_timeout(Instant::now());
        self.subscribers.push(subscriber);
        // Datagrams may have queued before registration; edge-triggered poll would not report them.
        self.subscribers[index].on_readable(&mut self.buf);
        self.schedule(index);
    }

    fn readable(&mut self, index: usize) {
        let Some(subscriber) = self.subscribers.get_mut(index) else {
            return;
        };
        subscriber.on_readable(&mut self.buf);
        self.schedule(index);
    }

    fn fire_due_timers(&mut self, now: Instant) {
        while let Some(Reverse((at, index))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            // Stale entries (the subscriber rescheduled since) are skipped.
            if self.subscribers[index].next_timeout() == Some(at) {
                self.subscribers[index].on_timeout(now);
                self.schedule(index);
            }
        }
    }

    fn sample(&self, server_pid: Option<u32>, metrics_url: Option<&str>) -> Sample {
        Sample {
            server_delay: metrics_url.and_then(server_metrics::scrape),
            at: Instant::now(),
            packets: self.subscribers.iter().map(Subscriber::packets).sum(),
            bytes: self.subscribers.iter().map(Subscriber::bytes).sum(),
            own_cpu: own_cpu(),
            server_cpu: server_pid.and_then(process_cpu),
        }
    }
}

/// Runs the load and returns the report. Blocks for `config.duration` (plus cleanup).
pub fn run(config: &LoadConfig) -> Result<LoadReport, LoadError> {
    let (url, signalling, label) = match &config.janus {
        Some(janus) => (
            &janus.api_url,
            Signalling::Janus { mountpoint: janus.id },
            format!("{} (Janus streaming mountpoint {})", janus.api_url, janus.id),
        ),
        None => (
            &config.whep_url,
            Signalling::Whep {
                bearer: config.bearer.clone(),
            },
            config.whep_url.clone(),
        ),
    };
    let endpoint = parse_url(url)?;
    if !is_loopback_url(&endpoint) {
        return Err(LoadError::NotLoopback(url.clone()));
    }
    let mut more_endpoints = Vec::new();
    if config.janus.is_none() {
        for url in &config.more_whep_urls {
            let more = parse_url(url)?;
            if !is_loopback_url(&more) {
                return Err(LoadError::NotLoopback(url.clone()));
            }
            more_endpoints.push(more);
        }
    }
    let label = match more_endpoints.len() {
        0 => label,
        n => format!("{label} and {n} more WHEP endpoints"),
    };
    if !config.bind_ip.is_loopback() {
        return Err(LoadError::NotLoopback(config.bind_ip.to_string()));
    }
    let provider = str0m::crypto::from_feature_flags();
    let cert = provider
        .dtls_provider
        .generate_certificate()
        .ok_or(LoadError::Certificate)?;
    provider.install_process_default();

    let poll = Poll::new().map_err(io_err("create poll"))?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER).map_err(io_err("create waker"))?);
    let (events_tx, events_rx) = mpsc::channel();
    let (cleanup_tx, cleanup_rx) = mpsc::channel();

    let start_sample_at = Instant::now();
    let mut end = start_sample_at + config.duration;
    let signal_thread = signaling::spawn(
        Plan {
            endpoint,
            more_endpoints,
            signalling,
            bind_ip: config.bind_ip,
            subscribers: config.subscribers,
            ramp_per_sec: config.ramp_per_sec,
            concurrency: config.concurrency,
            deadline: end,
            cert,
        },
        events_tx,
        // The driver keeps a clone: a waker dropped by the signalling thread closes its eventfd
        // and takes a pending wake-up with it.
        waker.clone(),
        cleanup_rx,
    )
    .map_err(io_err("spawn signalling thread"))?;

    let mut driver = Driver {
        poll,
        subscribers: Vec::with_capacity(config.subscribers),
        timers: BinaryHeap::new(),
        buf: vec![0; 2048],
    };
    let run_start = driver.sample(config.server_pid, config.metrics_url.as_deref());
    let mut accounted = 0usize;
    let mut errors: Vec<String> = Vec::new();
    let mut failed_signal = 0usize;
    let mut steady_at: Option<Instant> = None;
    let mut steady_start: Option<Sample> = None;
    let mut events = Events::with_capacity(1024);

    // A WHEP exchange that hangs must not keep the steady window from starting.
    let ramp_end = start_sample_at
        + Duration::from_secs_f64(config.subscribers as f64 / config.ramp_per_sec.max(1e-3))
        + crate::signal::REQUEST_TIMEOUT;
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        if steady_at.is_none() && now >= ramp_end {
            steady_at = Some(now + config.settle);
        }
        if steady_start.is_none()
            && let Some(at) = steady_at
            && now >= at
        {
            let sample = driver.sample(config.server_pid, config.metrics_url.as_deref());
            if let Some(window) = config.steady_window {
                end = end.min(sample.at + window);
            }
            steady_start = Some(sample);
        }
        let mut wake_at = end;
        if let Some(Reverse((at, _))) = driver.timers.peek() {
            wake_at = wake_at.min(*at);
        }
        match (steady_at, &steady_start) {
            (Some(at), None) => wake_at = wake_at.min(at),
            (None, _) => wake_at = wake_at.min(ramp_end),
            _ => {}
        }
        let timeout = wake_at.saturating_duration_since(now);
        if let Err(e) = driver.poll.poll(&mut events, Some(timeout))
            && e.kind() != std::io::ErrorKind::Interrupted
        {
            errors.push(format!("poll: {e}"));
            break;
        }
        for event in events.iter() {
            if event.token() == WAKER {
                while let Ok(message) = events_rx.try_recv() {
                    accounted += 1;
                    match message {
                        SignalEvent::Joined(joined) => {
                            tracing::trace!(id = joined.id, "subscriber joined");
                            driver.add(Subscriber::new(*joined));
                        }
                        SignalEvent::Failed { error } => {
                            failed_signal += 1;
                            if errors.len() < 5 {
                                errors.push(error);
                            }
                        }
                    }
                }
                if accounted >= config.subscribers && steady_at.is_none() {
                    steady_at = Some(Instant::now() + config.settle);
                }
            } else {
                driver.readable(event.token().0);
            }
        }
        driver.fire_due_timers(Instant::now());
    }

    let run_end = driver.sample(config.server_pid, config.metrics_url.as_deref());
    let at = run_end.at;
    let mut outcomes: Vec<SubscriberOutcome> = driver
        .subscribers
        .iter()
        .map(|s| s.outcome(at, config.loss_window))
        .collect();
    outcomes.extend((0..failed_signal).map(|_| SubscriberOutcome::default()));
    for s in &driver.subscribers {
        if let Some(reason) = s.failure()
            && errors.len() < 10
        {
            errors.push(format!("{}: {reason}", s.location()));
        }
    }
    let send_errors = driver.subscribers.iter().map(Subscriber::send_errors).sum();
    let server_delay = steady_start
        .as_ref()
        .unwrap_or(&run_start)
        .server_delay
        .as_ref()
        .zip(run_end.server_delay.as_ref())
        .and_then(|(a, b)| server_metrics::percentiles(a, b));
    let mut report = LoadReport::build(
        &label,
        config.subscribers,
        &outcomes,
        run_start.window_to(&run_end),
        steady_start.as_ref().map(|s| s.window_to(&run_end)),
        send_errors,
        errors,
    );
    report.server_forward_delay = server_delay;
    report.last_media_unix_ms = driver
        .subscribers
        .iter()
        .filter_map(Subscriber::last_media_at)
        .max()
        .map(|t| {
            let ago = Instant::now().saturating_duration_since(t);
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            now.saturating_sub(ago).as_secs_f64() * 1e3
        });

    for s in &mut driver.subscribers {
        s.close();
    }
    let locations = driver.subscribers.iter().map(|s| s.location().clone()).collect();
    let _ = cleanup_tx.send(locations);
    let _ = signal_thread.join();
    Ok(report)
}
