//! Between the encoders and the packager: announce the tracks once all of them are known, then
//! let access units through in decode order, every video track starting on a keyframe.
//!
//! Pure: the pusher thread feeds it what the appsinks produced and it calls the sink.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

use hls::{AccessUnit, MediaSink, TrackConfig};

/// Access units held per track while waiting for the other tracks' caps; older ones are
/// dropped (a track whose encoder never negotiates must not grow memory).
pub(crate) const MAX_HELD: usize = 300;

/// Where the stream stands.
enum State {
    /// Some tracks' configs are still unknown; access units are held.
    Announcing {
        configs: Vec<Option<TrackConfig>>,
        anchor: Option<SystemTime>,
        held: Vec<VecDeque<AccessUnit>>,
    },
    /// The sink was started with `configs`; access units go through.
    Live {
        configs: Vec<TrackConfig>,
        anchor: SystemTime,
        tracks: Vec<Track>,
    },
    /// `finish` was called; nothing goes through any more.
    Finished,
}

/// One live track.
#[derive(Clone, Copy)]
enum Track {
    /// Nothing pushed since the (last) start; waiting for a keyframe.
    AwaitingKeyframe,
    /// Flowing; the last pushed decode time.
    Flowing { last_dts: Duration },
}

pub(crate) struct Gate {
    state: State,
}

impl Gate {
    pub(crate) fn new(tracks: usize) -> Self {
        Gate {
            state: State::Announcing {
                configs: vec![None; tracks],
                anchor: None,
                held: (0..tracks).map(|_| VecDeque::new()).collect(),
            },
        }
    }

    /// Track `track` negotiated `config`; `anchor` is the wall-clock time of running time 0.
    pub(crate) fn caps(
        &mut self,
        sink: &mut dyn MediaSink,
        track: usize,
        config: TrackConfig,
        anchor: SystemTime,
    ) {
        match &mut self.state {
            State::Announcing {
                configs, anchor: a, ..
            } => {
                let Some(slot) = configs.get_mut(track) else {
                    return;
                };
                *slot = Some(config);
                a.get_or_insert(anchor);
                self.announce_if_complete(sink);
            }
            State::Live {
                configs,
                anchor,
                tracks,
            } => {
                let Some(slot) = configs.get_mut(track) else {
                    return;
                };
                if *slot == config {
                    return;
                }
                // A track changed its parameters mid-stream: the packager needs new init
                // segments, which it writes on a new start; every track restarts on a keyframe.
                tracing::info!(track, "track config changed, restarting the stream");
                *slot = config;
                sink.start(configs.clone(), *anchor);
                tracks.fill(Track::AwaitingKeyframe);
            }
            State::Finished => {}
        }
    }

    /// One access unit of `track`, in decode order within the track.
    pub(crate) fn access_unit(&mut self, sink: &mut dyn MediaSink, track: usize, au: AccessUnit) {
        match &mut self.state {
            State::Announcing { held, .. } => {
                let Some(queue) = held.get_mut(track) else { return };
                if queue.len() == MAX_HELD {
                    queue.pop_front();
                }
                queue.push_back(au);
            }
            State::Live { tracks, .. } => {
                if let Some(t) = tracks.get_mut(track) {
                    pass(sink, track, t, au);
                }
            }
            State::Finished => {}
        }
    }

    /// The source stopped: finish the stream if it was ever started.
    pub(crate) fn finish(&mut self, sink: &mut dyn MediaSink) {
        match std::mem::replace(&mut self.state, State::Finished) {
            State::Live { .. } => sink.finish(),
            State::Announcing { configs, .. } => {
                let missing: Vec<usize> = (0..configs.len()).filter(|&i| configs[i].is_none()).collect();
                tracing::warn!(?missing, "the pipeline stopped before every track was negotiated");
            }
            State::Finished => {}
        }
    }

    fn announce_if_complete(&mut self, sink: &mut dyn MediaSink) {
        let State::Announcing {
            configs,
            anchor: Some(anchor),
            held,
        } = &mut self.state
        else {
            return;
        };
        if configs.iter().any(Option::is_none) {
            return;
        }
        let configs: Vec<TrackConfig> = configs.iter_mut().filter_map(Option::take).collect();
        let anchor = *anchor;
        let held = std::mem::take(held);
        sink.start(configs.clone(), anchor);
        let mut tracks = vec![Track::AwaitingKeyframe; configs.len()];
        for (track, queue) in held.into_iter().enumerate() {
            for au in queue {
                pass(sink, track, &mut tracks[track], au);
            }
        }
        self.state = State::Live {
            configs,
            anchor,
            tracks,
        };
    }
}

fn pass(sink: &mut dyn MediaSink, index: usize, track: &mut Track, au: AccessUnit) {
    match *track {
        Track::AwaitingKeyframe if !au.keyframe => return,
        Track::Flowing { last_dts } if au.dts < last_dts => {
            tracing::warn!(track = index, ?last_dts, dts = ?au.dts, "access unit out of decode order, dropped");
            return;
        }
        _ => {}
    }
    *track = Track::Flowing { last_dts: au.dts };
    sink.push(index, au);
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    #[derive(Debug, PartialEq)]
    enum Call {
        Start(usize),
        Push(usize, u64, bool),
        Finish,
    }

    #[derive(Default)]
    struct Record(Vec<Call>);

    impl MediaSink for Record {
        fn start(&mut self, tracks: Vec<TrackConfig>, _anchor: SystemTime) {
            self.0.push(Call::Start(tracks.len()));
        }
        fn push(&mut self, track: usize, au: AccessUnit) {
            self.0
                .push(Call::Push(track, au.dts.as_millis() as u64, au.keyframe));
        }
        fn finish(&mut self) {
            self.0.push(Call::Finish);
        }
    }

    fn video(width: u32) -> TrackConfig {
        TrackConfig::H264 {
            width,
            height: 360,
            frame_rate: (30, 1),
            bitrate: 700_000,
            sps: vec![Bytes::from_static(&[0x67])],
            pps: vec![Bytes::from_static(&[0x68])],
        }
    }

    fn audio() -> TrackConfig {
        TrackConfig::Aac {
            sample_rate: 48_000,
            channels: 2,
            bitrate: 128_000,
            audio_specific_config: Bytes::from_static(&[0x11, 0x90]),
        }
    }

    fn au(ms: u64, keyframe: bool) -> AccessUnit {
        let t = Duration::from_millis(ms);
        AccessUnit {
            pts: t,
            dts: t,
            keyframe,
            data: Bytes::from_static(&[0, 0, 0, 1, 0x65]),
        }
    }

    #[test]
    fn holds_until_every_track_is_known_then_starts_on_keyframes() {
        let (mut gate, mut sink, anchor) = (Gate::new(2), Record::default(), SystemTime::UNIX_EPOCH);
        gate.access_unit(&mut sink, 1, au(0, true));
        gate.caps(&mut sink, 0, video(640), anchor);
        gate.access_unit(&mut sink, 0, au(33, false)); // before the first keyframe: dropped
        gate.access_unit(&mut sink, 0, au(66, true));
        assert!(sink.0.is_empty(), "nothing before every track is announced");
        gate.caps(&mut sink, 1, audio(), anchor);
        gate.access_unit(&mut sink, 0, au(100, false));
        gate.finish(&mut sink);
        gate.access_unit(&mut sink, 0, au(133, false));
        assert_eq!(
            sink.0,
            vec![
                Call::Start(2),
                Call::Push(0, 66, true),
                Call::Push(1, 0, true),
                Call::Push(0, 100, false),
                Call::Finish
            ]
        );
    }

    #[test]
    fn drops_access_units_that_go_back_in_decode_time() {
        let (mut gate, mut sink, anchor) = (Gate::new(1), Record::default(), SystemTime::UNIX_EPOCH);
        gate.caps(&mut sink, 0, video(640), anchor);
        gate.access_unit(&mut sink, 0, au(100, true));
        gate.access_unit(&mut sink, 0, au(66, false));
        gate.access_unit(&mut sink, 0, au(133, false));
        assert_eq!(
            sink.0,
            vec![
                Call::Start(1),
                Call::Push(0, 100, true),
                Call::Push(0, 133, false)
            ]
        );
    }

    #[test]
    fn a_changed_config_restarts_the_stream_on_a_keyframe() {
        let (mut gate, mut sink, anchor) = (Gate::new(1), Record::default(), SystemTime::UNIX_EPOCH);
        gate.caps(&mut sink, 0, video(640), anchor);
        gate.access_unit(&mut sink, 0, au(0, true));
        gate.caps(&mut sink, 0, video(640), anchor); // same caps again: nothing happens
        gate.caps(&mut sink, 0, video(320), anchor);
        gate.access_unit(&mut sink, 0, au(33, false));
        gate.access_unit(&mut sink, 0, au(66, true));
        assert_eq!(
            sink.0,
            vec![
                Call::Start(1),
                Call::Push(0, 0, true),
                Call::Start(1),
                Call::Push(0, 66, true)
            ]
        );
    }

    #[test]
    fn holding_is_bounded_and_a_never_started_stream_is_not_finished() {
        let (mut gate, mut sink) = (Gate::new(2), Record::default());
        for i in 0..(MAX_HELD as u64 + 50) {
            gate.access_unit(&mut sink, 0, au(i * 33, i % 60 == 0));
        }
        let State::Announcing { held, .. } = &gate.state else {
            panic!("still announcing")
        };
        assert_eq!(held[0].len(), MAX_HELD);
        gate.finish(&mut sink);
        assert!(sink.0.is_empty());
    }
}
