//! The signalling side of the load generator: a thread with its own tokio runtime that
//! creates subscribers at the ramp rate (str0m offer, WHEP POST, answer applied) and hands
//! each finished `Rtc` to the media driver; at the end it DELETEs every session.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use str0m::Candidate;
use str0m::Rtc;
use str0m::change::SdpAnswer;
use str0m::crypto::dtls::DtlsCert;
use str0m::media::{Direction, MediaKind};

use crate::loadgen::subscriber::Joined;
use crate::signal::{IcePolicy, Url, delete_resource, filter_candidates, http_client, post_offer};

/// What the signalling thread tells the driver.
pub(crate) enum SignalEvent {
    /// A subscriber whose answer is applied; the driver owns it from now on.
    Joined(Box<Joined>),
    /// A subscriber that could not be set up.
    Failed { error: String },
}

/// How the signalling thread ramps.
pub(crate) struct Plan {
    pub endpoint: Url,
    pub bearer: Option<String>,
    pub subscribers: usize,
    pub ramp_per_sec: f64,
    pub concurrency: usize,
    pub deadline: Instant,
    pub cert: DtlsCert,
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
                let bearer = plan.bearer.clone();
                ramp(plan, events, wake).await;
                // The driver sends the list when its run ends; give it until shortly after.
                let wait = deadline.saturating_duration_since(Instant::now()) + Duration::from_secs(30);
                let locations = tokio::task::spawn_blocking(move || cleanup.recv_timeout(wait))
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .unwrap_or_default();
                delete_all(locations, bearer).await;
            });
        })
}

async fn ramp(plan: Plan, events: mpsc::Sender<SignalEvent>, wake: Arc<mio::Waker>) {
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
        tasks.spawn(async move {
            let event = match join(id, &plan, &http).await {
                Ok(joined) => SignalEvent::Joined(Box::new(joined)),
                Err(error) => SignalEvent::Failed { error },
            };
            let _ = events.send(event);
            let _ = wake.wake();
            drop(permit);
        });
    }
    while tasks.join_next().await.is_some() {}
}

/// Creates one subscriber: socket, `Rtc` with a host candidate, recvonly offer, POST, answer.
async fn join(id: usize, plan: &Plan, http: &reqwest::Client) -> Result<Joined, String> {
    let std_socket = std::net::UdpSocket::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
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
    let mut change = rtc.sdp_api();
    change.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
    change.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
    let (offer, pending) = change
        .apply()
        .ok_or_else(|| "str0m produced no offer".to_owned())?;

    let posted_at = Instant::now();
    tracing::debug!(id, "POST offer");
    let answer = post_offer(
        http,
        &plan.endpoint,
        plan.bearer.as_deref(),
        &offer.to_sdp_string(),
    )
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

async fn delete_all(locations: Vec<Url>, bearer: Option<String>) {
    let http = http_client();
    let permits = Arc::new(tokio::sync::Semaphore::new(32));
    let mut tasks = tokio::task::JoinSet::new();
    for location in locations {
        let (http, permits, bearer) = (http.clone(), permits.clone(), bearer.clone());
        tasks.spawn(async move {
            let Ok(_permit) = permits.acquire_owned().await else {
                return;
            };
            if let Err(e) = delete_resource(&http, &location, bearer.as_deref()).await {
                tracing::debug!(%location, error = %e, "DELETE failed");
            }
        });
    }
    let all = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(15), all).await.is_err() {
        tracing::warn!("gave up deleting WHEP sessions after 15 s");
    }
}
