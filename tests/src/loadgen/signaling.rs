//! The signalling side of the load generator: a thread with its own tokio runtime that
//! creates subscribers at the ramp rate and hands each finished `Rtc` to the media driver; at
//! the end it ends every session.
//!
//! WHEP: str0m offers, the offer is POSTed, the answer applied; the end is a DELETE. Janus: a
//! session watches the streaming mountpoint, str0m answers Janus's offer; the sessions are kept
//! alive while the run lasts and destroyed at the end.

use std::net::{IpAddr, SocketAddr};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use str0m::Candidate;
use str0m::Rtc;
use str0m::change::{SdpAnswer, SdpOffer};
use str0m::crypto::dtls::DtlsCert;
use str0m::media::{Direction, MediaKind};

use crate::loadgen::janus::{self, JanusSession};
use crate::loadgen::subscriber::Joined;
use crate::signal::{IcePolicy, Url, delete_resource, filter_candidates, http_client, post_offer};

/// What the signalling thread tells the driver.
pub(crate) enum SignalEvent {
    /// A subscriber whose answer is applied; the driver owns it from now on.
    Joined(Box<Joined>),
    /// A subscriber that could not be set up.
    Failed { error: String },
}

/// How a subscriber signs in.
#[derive(Debug, Clone)]
pub(crate) enum Signalling {
    /// POST a WHEP offer to the endpoint (with a bearer token for private streams).
    Whep { bearer: Option<String> },
    /// Watch this streaming mountpoint through the Janus API at the endpoint.
    Janus { mountpoint: u64 },
}

/// How the signalling thread ramps.
pub(crate) struct Plan {
    pub endpoint: Url,
    /// Further WHEP endpoints: subscriber `id` posts to the `id mod (1 + len)`th of all.
    pub more_endpoints: Vec<Url>,
    pub signalling: Signalling,
    pub bind_ip: IpAddr,
    pub subscribers: usize,
    pub ramp_per_sec: f64,
    pub concurrency: usize,
    pub deadline: Instant,
    pub cert: DtlsCert,
}

impl Plan {
    /// The WHEP endpoint subscriber `id` watches.
    fn whep_endpoint(&self, id: usize) -> &Url {
        match id % (1 + self.more_endpoints.len()) {
            0 => &self.endpoint,
            i => &self.more_endpoints[i - 1],
        }
    }
}

/// Starts the thread. Subscribers go to `events` (the driver is woken through `wake`); after
/// the ramp it waits for the list of sessions to DELETE on `cleanup` and deletes them.
pub(crate) fn spawn(
    plan: Plan,
    events: mpsc::Sender<SignalEvent>,
    wake: Arc<mio::Waker>,
    cleanup: mpsc::Receiver<Vec<Url>>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("loadgen-signal".to_owned())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    for _ in 0..plan.subscribers {
                        let _ = events.send(SignalEvent::Failed {
                            error: format!("tokio runtime: {e}"),
                        });
                    }
                    let _ = wake.wake();
                    return;
                }
            };
            runtime.block_on(async move {
                let deadline = plan.deadline;
                let signalling = plan.signalling.clone();
                // Janus sessions joined so far, kept alive until the run's sessions are ended.
                let sessions = Arc::new(Mutex::new(Vec::new()));
                let keepalives = matches!(signalling, Signalling::Janus { .. })
                    .then(|| tokio::spawn(keep_alive(sessions.clone())));
                ramp(plan, events, wake, sessions).await;
                // The driver sends the list when its run ends; give it until shortly after.
                let wait = deadline.saturating_duration_since(Instant::now()) + Duration::from_secs(30);
                let locations = tokio::task::spawn_blocking(move || cleanup.recv_timeout(wait))
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .unwrap_or_default();
                if let Some(task) = keepalives {
                    task.abort();
                }
                end_all(locations, signalling).await;
            });
        })
}

async fn ramp(
    plan: Plan,
    events: mpsc::Sender<SignalEvent>,
    wake: Arc<mio::Waker>,
    sessions: Arc<Mutex<Vec<Url>>>,
) {
    let http = http_client();
    let plan = Arc::new(plan);
    let permits = Arc::new(tokio::sync::Semaphore::new(plan.concurrency.max(1)));
    let start = tokio::time::Instant::now();
    let interval = if plan.ramp_per_sec > 0.0 {
        Duration::from_secs_f64(1.0 / plan.ramp_per_sec)
    } else {
        Duration::ZERO
    };
    let mut tasks = tokio::task::JoinSet::new();
    for id in 0..plan.subscribers {
        let due = start + interval * u32::try_from(id).unwrap_or(u32::MAX);
        tokio::time::sleep_until(due).await;
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        if Instant::now() >= plan.deadline {
            // Out of time: the rest are reported as not signalled.
            for _ in id..plan.subscribers {
                let _ = events.send(SignalEvent::Failed {
                    error: "run ended before this subscriber was created".to_owned(),
                });
            }
            let _ = wake.wake();
            break;
        }
        let (plan, http, events, wake) = (plan.clone(), http.clone(), events.clone(), wake.clone());
        let sessions = sessions.clone();
        tasks.spawn(async move {
            let joined = match &plan.signalling {
                Signalling::Whep { bearer } => join_whep(id, &plan, &http, bearer.as_deref()).await,
                Signalling::Janus { mountpoint } => join_janus(id, &plan, &http, *mountpoint).await,
            };
            let event = match joined {
                Ok(joined) => {
                    if matches!(plan.signalling, Signalling::Janus { .. }) {
                        sessions
                            .lock()
                            .expect("no code panics while holding the session list")
                            .push(joined.location.clone());
                    }
                    SignalEvent::Joined(Box::new(joined))
                }
                Err(error) => SignalEvent::Failed { error },
            };
            let _ = events.send(event);
            let _ = wake.wake();
            drop(permit);
        });
    }
    while tasks.join_next().await.is_some() {}
}

/// A subscriber's socket on the bind address (127.0.0.1 unless told) and its RTP-mode `Rtc`,
/// with that socket as its only candidate.
fn new_peer(plan: &Plan) -> Result<(Rtc, mio::net::UdpSocket, SocketAddr), String> {
    let std_socket = std::net::UdpSocket::bind(SocketAddr::from((plan.bind_ip, 0)))
        .map_err(|e| format!("bind UDP socket: {e}"))?;
    std_socket
        .set_nonblocking(true)
        .map_err(|e| format!("non-blocking socket: {e}"))?;
    let local = std_socket
        .local_addr()
        .map_err(|e| format!("socket address: {e}"))?;
    let socket = mio::net::UdpSocket::from_std(std_socket);

    let mut rtc = Rtc::builder()
        .set_rtp_mode(true)
        .set_dtls_cert(plan.cert.clone())
        .build(Instant::now());
    let candidate = Candidate::host(local, "udp").map_err(|e| format!("host candidate: {e}"))?;
    rtc.add_local_candidate(candidate);
    Ok((rtc, socket, local))
}

/// Creates one WHEP subscriber: recvonly offer, POST, answer.
async fn join_whep(
    id: usize,
    plan: &Plan,
    http: &reqwest::Client,
    bearer: Option<&str>,
) -> Result<Joined, String> {
    let (mut rtc, socket, local) = new_peer(plan)?;
    let mut change = rtc.sdp_api();
    change.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
    change.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
    let (offer, pending) = change
        .apply()
        .ok_or_else(|| "str0m produced no offer".to_owned())?;

    let posted_at = Instant::now();
    tracing::debug!(id, "POST offer");
    let answer = post_offer(http, plan.whep_endpoint(id), bearer, &offer.to_sdp_string())
        .await
        .map_err(|e| {
            tracing::debug!(id, error = %e, took = ?posted_at.elapsed(), "POST failed");
            e.to_string()
        })?;
    let sdp = filter_candidates(&answer.sdp, IcePolicy::LoopbackOnly);
    let parsed = SdpAnswer::from_sdp_string(&sdp).map_err(|e| format!("answer SDP: {e}"))?;
    rtc.sdp_api()
        .accept_answer(pending, parsed)
        .map_err(|e| format!("accept answer: {e}"))?;
    tracing::debug!(id, location = %answer.location, took = ?posted_at.elapsed(), "answer applied");
    Ok(Joined {
        id,
        rtc,
        socket,
        local,
        location: answer.location,
        posted_at,
    })
}

/// Creates one Janus subscriber: session, handle, watch, str0m answers Janus's offer, start.
async fn join_janus(
    id: usize,
    plan: &Plan,
    http: &reqwest::Client,
    mountpoint: u64,
) -> Result<Joined, String> {
    let (mut rtc, socket, local) = new_peer(plan)?;
    let posted_at = Instant::now();
    let session = JanusSession::create(http, &plan.endpoint)
        .await
        .map_err(|e| e.to_string())?;
    let answered = async {
        let offer = session.watch(http, mountpoint).await.map_err(|e| e.to_string())?;
        let sdp = filter_candidates(&offer, IcePolicy::LoopbackOnly);
        let offer = SdpOffer::from_sdp_string(&sdp).map_err(|e| format!("offer SDP: {e}"))?;
        let answer = rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| format!("accept offer: {e}"))?;
        session
            .start(http, &answer.to_sdp_string())
            .await
            .map_err(|e| e.to_string())
    };
    if let Err(e) = answered.await {
        tracing::debug!(id, error = %e, took = ?posted_at.elapsed(), "Janus watch failed");
        janus::destroy(http, session.url()).await;
        return Err(e);
    }
    tracing::debug!(id, session = %session.url(), took = ?posted_at.elapsed(), "answer sent");
    Ok(Joined {
        id,
        rtc,
        socket,
        local,
        location: session.url().clone(),
        posted_at,
    })
}

/// Sends every joined Janus session a keepalive each [`janus::KEEPALIVE_EVERY`], until aborted.
async fn keep_alive(sessions: Arc<Mutex<Vec<Url>>>) {
    loop {
        tokio::time::sleep(janus::KEEPALIVE_EVERY).await;
        let now: Vec<Url> = sessions
            .lock()
            .expect("no code panics while holding the session list")
            .clone();
        for_each_session(now, "keepalive", |http, session| async move {
            if let Err(e) = janus::keepalive(&http, &session).await {
                tracing::debug!(%session, error = %e, "keepalive failed");
            }
        })
        .await;
    }
}

/// Ends every session: WHEP DELETE, or Janus destroy.
async fn end_all(locations: Vec<Url>, signalling: Signalling) {
    match signalling {
        Signalling::Whep { bearer } => {
            for_each_session(locations, "DELETE", move |http, location| {
                let bearer = bearer.clone();
                async move {
                    if let Err(e) = delete_resource(&http, &location, bearer.as_deref()).await {
                        tracing::debug!(%location, error = %e, "DELETE failed");
                    }
                }
            })
            .await;
        }
        Signalling::Janus { .. } => {
            for_each_session(locations, "destroy", |http, session| async move {
                janus::destroy(&http, &session).await;
            })
            .await;
        }
    }
}

/// Runs `request` for every session, 32 at a time, for at most 15 s.
async fn for_each_session<F, Fut>(sessions: Vec<Url>, what: &str, request: F)
where
    F: Fn(reqwest::Client, Url) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let http = http_client();
    let permits = Arc::new(tokio::sync::Semaphore::new(32));
    let mut tasks = tokio::task::JoinSet::new();
    for session in sessions {
        let permits = permits.clone();
        let call = request(http.clone(), session);
        tasks.spawn(async move {
            let Ok(_permit) = permits.acquire_owned().await else {
                return;
            };
            call.await;
        });
    }
    let all = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(15), all).await.is_err() {
        tracing::warn!("gave up on {what} of the sessions after 15 s");
    }
}
