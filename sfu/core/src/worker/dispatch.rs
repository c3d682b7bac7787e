//! Driving one session's str0m state machine and acting on what it reports.

use std::time::{Duration, Instant};

use str0m::bwe::{Bitrate, BweKind};
use str0m::media::{MediaKind, Rid};
use str0m::{Event, IceConnectionState};
use tracing::{debug, info};

use super::Worker;
use super::fan_out::replay_cached;
use super::input::PeerMessage;
use super::output::{Output, SfuEvent};
use super::session::{Role, Session, SessionState, defer_drain};
use crate::ids::SessionId;
use crate::layer_stats::top_layer;
use crate::session::SessionKind;

/// Time updates one drain gives a session for releasing its queued packets (one each); a
/// session still due after that waits for the next loop, so one viewer cannot hold the worker.
/// A 720p keyframe is 100-150 packets.
const RELEASE_ROUNDS: usize = 512;

/// How far ahead of the last time update str0m's pacer asks for the next one.
const PACER_STEP: Duration = Duration::from_micros(1);

impl Worker {
    pub(super) fn drain(&mut self, id: SessionId, needs_time: bool, now: Instant) {
        let Some(mut s) = self.sessions.remove(&id) else {
            return;
        };
        s.pending_drain = false;
        if needs_time
            && s.rtc.is_alive()
            && let Err(e) = s.rtc.handle_input(str0m::Input::Timeout(now))
        {
            debug!(session = %id, "timeout handling failed: {e}");
            s.rtc.disconnect();
        }
        let mut rounds = 0;
        let mut clock = now;
        while s.rtc.is_alive() {
            let output = match s.rtc.poll_output() {
                Ok(o) => o,
                Err(e) => {
                    debug!(session = %id, "poll failed: {e}");
                    s.rtc.disconnect();
                    break;
                }
            };
            match output {
                // str0m's pacer releases one queued packet per time update and asks for the
                // next update 1 µs later (send times must advance). Give it those updates
                // here, so everything written to this session leaves in this pass: left to
                // the driver's next loop, a viewer got one packet per loop iteration, and
                // under CPU load its queue grew without bound. The session's clock runs
                // ahead of the worker's by 1 µs per packet released.
                str0m::Output::Timeout(t) if t <= clock + PACER_STEP && rounds < RELEASE_ROUNDS => {
                    rounds += 1;
                    clock = clock.max(t);
                    if let Err(e) = s.rtc.handle_input(str0m::Input::Timeout(clock)) {
                        debug!(session = %id, "timeout handling failed: {e}");
                        s.rtc.disconnect();
                    }
                }
                str0m::Output::Timeout(t) => {
                    self.timers.set(&mut s, t);
                    break;
                }
                str0m::Output::Transmit(t) => self.out.push_back(Output::Transmit(t)),
                str0m::Output::Event(e) => self.event(&mut s, e, now),
            }
        }
        if s.rtc.is_alive() {
            self.sessions.insert(id, s);
        } else {
            self.remove_session(*s);
        }
    }

    pub(super) fn event(&mut self, s: &mut Session, e: Event, now: Instant) {
        match e {
            Event::Connected => {
                s.state = SessionState::Connected;
                info!(session = %s.id, room = %s.room, kind = ?s.kind, "connected");
                self.out.push_back(Output::Event(SfuEvent::Connected {
                    session: s.id,
                    room: s.room.clone(),
                    kind: s.kind,
                }));
                if let Role::Subscriber(sub) = &mut s.role {
                    // Ask for a keyframe now rather than at the next tick: time to first frame.
                    let layers = self
                        .rooms
                        .get_mut(&s.room)
                        .map(|r| r.layers.active(now))
                        .unwrap_or_default();
                    let desired = sub.allocate(now, &layers);
                    s.rtc
                        .bwe()
                        .set_bitrate(Bitrate::from(0.0), Bitrate::from(desired as f64));
                    if let Some((rid, _)) = sub.awaiting_keyframe() {
                        // The keyframe asked for when the session was created is usually
                        // here already: start from it. Otherwise ask (again) now.
                        let sent = match self.rooms.get(&s.room) {
                            Some(r) => replay_cached(&r.gops, sub, &mut s.rtc, rid, now),
                            None => 0,
                        };
                        if sent > 0 {
                            self.stats.packets_out += sent;
                            defer_drain(&mut self.deferred, s);
                        } else {
                            debug!(session = %s.id, ?rid, "no cached keyframe to start from");
                            let room = s.room.clone();
                            self.request_keyframe(&room, rid, now);
                        }
                    }
                }
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                info!(session = %s.id, "ICE disconnected");
                s.rtc.disconnect();
            }
            Event::MediaAdded(m) => match &mut s.role {
                Role::Publisher(p) => {
                    p.media_added(m.mid, m.kind);
                    if m.kind == MediaKind::Video
                        && let Some(sim) = &m.simulcast
                        && let Some(room) = self.rooms.get_mut(&s.room)
                    {
                        let rids: Vec<Rid> = sim.recv.iter().chain(&sim.send).map(|l| l.rid).collect();
                        room.declared_top = top_layer(&rids);
                    }
                }
                Role::Subscriber(sub) => {
                    sub.media_added(m.mid, m.kind);
                    if m.kind == MediaKind::Video && s.state == SessionState::Connected {
                        // The video track appeared after the connection: place the viewer now
                        // rather than at the next tick (time to first frame).
                        self.allocate_soon.push(s.room.clone());
                    }
                    if m.kind == MediaKind::Video
                        && let Some(tx) = s.rtc.direct_api().stream_tx_by_mid(m.mid, None)
                    {
                        // The publisher's encoder already paces its frames. Pacing them again
                        // at 1.1 x the estimate spreads every keyframe over hundreds of
                        // milliseconds: late first frames, a long glass-to-glass tail.
                        tx.set_unpaced(true);
                    }
                }
            },
            Event::RtpPacket(p) => {
                // str0m hands out a received packet at the poll after its datagram.
                let arrived = self.arrival.take().unwrap_or(now);
                if let Role::Publisher(publisher) = &mut s.role
                    && let Some(packet) = publisher.packet(&mut s.rtc, &s.room, p, arrived)
                {
                    if packet.kind == MediaKind::Video && !publisher.video_announced {
                        publisher.video_announced = true;
                        let declared = self.rooms.get(&s.room).is_some_and(|r| r.declared_top.is_some());
                        self.out.push_back(Output::Event(SfuEvent::PublisherVideo {
                            session: s.id,
                            room: s.room.clone(),
                            codec: packet.params.spec().codec,
                            simulcast: declared || packet.rid.is_some(),
                        }));
                    }
                    self.packets.push(packet);
                }
            }
            Event::KeyframeRequest(_) => {
                if let Role::Subscriber(sub) = &s.role {
                    let rid = sub.keyframe_target();
                    let room = s.room.clone();
                    self.request_keyframe(&room, rid, now);
                }
            }
            Event::MediaEgressStats(st) => {
                debug!(session = %s.id, mid = %st.mid, packets = st.packets, nacks = st.nacks, plis = st.plis, loss = ?st.loss, rtt = ?st.rtt, "egress");
            }
            Event::EgressBitrateEstimate(BweKind::Twcc { estimate, .. }) => {
                if let Role::Subscriber(sub) = &mut s.role {
                    let old = std::mem::replace(&mut sub.estimate_bps, estimate.as_u64());
                    self.stats.estimate_moved(Some(old), Some(sub.estimate_bps));
                    debug!(session = %s.id, estimate = sub.estimate_bps, layer = ?sub.layers().0, "bandwidth estimate");
                }
            }
            _ => {}
        }
    }

    pub(super) fn remove_session(&mut self, s: Session) {
        for a in &s.addrs {
            self.by_addr.remove(a);
        }
        if let Role::Subscriber(sub) = &s.role {
            self.stats.estimate_moved(Some(sub.estimate_bps), None);
        }
        info!(session = %s.id, room = %s.room, kind = ?s.kind, "closed");
        self.out.push_back(Output::Event(SfuEvent::Closed {
            session: s.id,
            room: s.room.clone(),
            kind: s.kind,
        }));
        let me = self.config.id;
        let Some(room) = self.rooms.get_mut(&s.room) else {
            return;
        };
        match s.kind {
            SessionKind::Publisher => {
                if room.publisher == Some(s.id) {
                    room.publisher = None;
                }
            }
            SessionKind::Subscriber => {
                room.subscribers.retain(|x| *x != s.id);
                if room.subscribers.is_empty() && room.home != me {
                    self.out.push_back(Output::Peer(
                        room.home,
                        PeerMessage::Interest {
                            room: s.room.clone(),
                            worker: me,
                            on: false,
                        },
                    ));
                }
            }
        }
        if room.is_idle() {
            // Keep the epoch on the home worker while anyone could still be watching.
            self.rooms.remove(&s.room);
        }
    }
}
