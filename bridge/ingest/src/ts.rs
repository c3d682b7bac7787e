//! A sans-IO MPEG-TS demuxer: transport stream bytes in, [`Frame`]s out.
//!
//! The model: [`TsDemuxer::push`] takes bytes as they arrive, in chunks of any size (SRT
//! delivers 1316-byte payloads of seven packets, a file or a TCP stream anything), and
//! appends the frames they complete to a caller's vector. It owns no socket and no clock:
//! times come from the stream's PTS/DTS. Its layers, bottom up:
//!
//! 1. **Packets.** 188 bytes behind a 0x47 sync byte. Bytes that do not line up are skipped
//!    until a sync byte that (where the data is there to tell) is followed by another one
//!    188 bytes on, and the loss is counted. Packets flagged with transport_error_indicator
//!    are dropped. A jump in a PID's continuity counter means lost packets: the PES being
//!    assembled on that PID is thrown away rather than passed on with a hole in it.
//! 2. **Tables.** The PAT names the first program's PMT; the PMT names the streams. Only
//!    the first H.264 stream (stream_type 0x1B) and the first audio stream, AAC in ADTS
//!    (0x0F) or Opus (0x06 with an "Opus" registration descriptor), are used; a new PMT
//!    that changes either restarts that stream.
//! 3. **PES.** Reassembled per PID from unit start to unit start, or to its announced
//!    length, and capped ([`MAX_VIDEO_PES`], [`MAX_AUDIO_PES`]): a bigger one is dropped.
//!    PTS and DTS are 33-bit and wrap every 26.5 hours; they are extended into [`Ticks`](crate::Ticks)
//!    that keep counting, with one reference for the whole program so its streams stay
//!    comparable.
//! 4. **Elementary streams.** H.264 access units become [`Frame::Video`] (with a
//!    [`Frame::VideoConfig`] first whenever the parameter sets change), ADTS frames become
//!    raw AAC [`Frame::Audio`] after a [`Frame::AudioConfig`], Opus packets likewise.
//!
//! Nothing in the input can make it panic or hold more than a bounded amount of memory
//! ([`TsDemuxer::buffered_bytes`]); what went wrong is counted in [`TsStats`].

mod adts;
mod annexb;
mod opus;
mod pes;
mod psi;

use bytes::Bytes;

use crate::frame::Frame;
use adts::AdtsTrack;
use annexb::VideoTrack;
use opus::OpusTrack;
use pes::{PesAssembler, Unwrapper};
use psi::{EsInfo, EsKind, ProgramMap, SectionAssembler};

/// The length of a transport stream packet.
pub const PACKET_LEN: usize = 188;

/// The byte every packet starts with.
const SYNC: u8 = 0x47;

/// The largest video PES kept: an access unit above this (a 4K intra frame at a very high
/// bitrate is ~2 MB) is dropped instead of buffered.
pub const MAX_VIDEO_PES: usize = 4 * 1024 * 1024;

/// The largest audio PES kept: ffmpeg and hardware encoders pack a few frames of a few
/// hundred bytes each.
pub const MAX_AUDIO_PES: usize = 64 * 1024;

/// How much input is copied into the packet window at a time, so that one huge `push`
/// does not mean one huge copy.
const WINDOW: usize = 8 * PACKET_LEN;

/// What the demuxer has seen and thrown away, since it was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TsStats {
    /// Packets taken (in sync, whatever their content).
    pub packets: u64,
    /// Times sync was lost: bytes where a packet should have started were not 0x47.
    pub resyncs: u64,
    /// Packets dropped because they carried the transport_error_indicator.
    pub transport_errors: u64,
    /// Continuity counter jumps on the PIDs in use (lost packets).
    pub cc_errors: u64,
    /// PES packets dropped: over the size cap, cut short, or broken by lost packets.
    pub dropped_pes: u64,
    /// Malformed structures skipped: tables with a bad CRC, PES headers, ADTS or Opus
    /// framing that does not parse, video without a PTS.
    pub malformed: u64,
}

/// Where the packet framing stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sync {
    /// Looking for a sync byte (at the start, and after losing sync).
    Searching,
    /// The last packet began where one was due.
    Locked,
}

/// What the continuity counter of a packet says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Continuity {
    /// The next one, or the first, or after a signalled discontinuity.
    Next,
    /// The same as the last: a repeated packet (allowed once), to be ignored.
    Duplicate,
    /// Packets were lost.
    Gap,
}

/// The last continuity counter of a PID.
#[derive(Debug, Default)]
struct Counter(Option<u8>);

impl Counter {
    fn check(&mut self, cc: u8, discontinuity: bool) -> Continuity {
        let last = self.0.replace(cc);
        match last {
            Some(last) if !discontinuity && cc == last => Continuity::Duplicate,
            Some(last) if !discontinuity && cc != (last + 1) & 0x0F => Continuity::Gap,
            _ => Continuity::Next,
        }
    }
}

/// A PSI PID: its counter and its section assembler.
#[derive(Debug, Default)]
struct Table {
    counter: Counter,
    sections: SectionAssembler,
}

impl Table {
    fn push(&mut self, packet: &Packet<'_>, stats: &mut TsStats) -> Vec<Vec<u8>> {
        match self.counter.check(packet.cc, packet.discontinuity) {
            Continuity::Duplicate => return Vec::new(),
            Continuity::Gap => {
                stats.cc_errors += 1;
                self.sections.reset();
            }
            Continuity::Next => {}
        }
        self.sections.push(packet.unit_start, packet.payload)
    }
}

/// The audio codec of the audio stream.
#[derive(Debug)]
enum Audio {
    Aac(AdtsTrack),
    Opus(OpusTrack),
}

/// What an elementary stream PID carries, with its decoder state.
#[derive(Debug)]
enum Es {
    Video(VideoTrack),
    Audio(Audio),
}

/// An elementary stream in use.
#[derive(Debug)]
struct Track {
    info: EsInfo,
    counter: Counter,
    pes: PesAssembler,
    es: Es,
}

impl Track {
    fn new(info: EsInfo) -> Self {
        let (cap, es) = match info.kind {
            EsKind::H264 => (MAX_VIDEO_PES, Es::Video(VideoTrack::default())),
            EsKind::AdtsAac => (MAX_AUDIO_PES, Es::Audio(Audio::Aac(AdtsTrack::default()))),
            EsKind::Opus { channels } => (MAX_AUDIO_PES, Es::Audio(Audio::Opus(OpusTrack::new(channels)))),
        };
        Track {
            info,
            counter: Counter::default(),
            pes: PesAssembler::new(cap),
            es,
        }
    }

    fn buffered(&self) -> usize {
        self.pes.buffered()
            + match &self.es {
                Es::Video(v) => v.buffered(),
                Es::Audio(Audio::Aac(a)) => a.buffered(),
                Es::Audio(Audio::Opus(_)) => 0,
            }
    }
}

/// One packet's header fields and payload.
#[derive(Debug)]
struct Packet<'a> {
    pid: u16,
    unit_start: bool,
    cc: u8,
    discontinuity: bool,
    payload: &'a [u8],
}

impl<'a> Packet<'a> {
    /// The packet's payload, or `None` when it has none that can be used (adaptation field
    /// only, scrambled, malformed adaptation field, reserved adaptation_field_control).
    fn parse(p: &'a [u8]) -> Option<Self> {
        let [_, b1, b2, b3, rest @ ..] = p else {
            return None;
        };
        let scrambled = b3 >> 6 != 0;
        let control = b3 >> 4 & 0x03;
        // 0b01: payload only, 0b11: adaptation field then payload. Packets without payload
        // do not advance the continuity counter, so they are not looked at at all.
        if control & 0x01 == 0 || scrambled {
            return None;
        }
        let (discontinuity, payload) = if control == 0b11 {
            let (&len, rest) = rest.split_first()?;
            let (field, payload) = rest.split_at_checked(usize::from(len))?;
            (field.first().is_some_and(|flags| flags & 0x80 != 0), payload)
        } else {
            (false, rest)
        };
        Some(Packet {
            pid: u16::from(b1 & 0x1F) << 8 | u16::from(*b2),
            unit_start: b1 & 0x40 != 0,
            cc: b3 & 0x0F,
            discontinuity,
            payload,
        })
    }
}

/// The MPEG-TS demuxer (see the module docs).
#[derive(Debug)]
pub struct TsDemuxer {
    /// Input not yet taken as packets: less than a packet, after each push.
    window: Vec<u8>,
    sync: Sync,
    pat: Table,
    pmt_pid: Option<u16>,
    pmt: Table,
    program: ProgramMap,
    video: Option<Track>,
    audio: Option<Track>,
    clock: Unwrapper,
    stats: TsStats,
}

impl Default for TsDemuxer {
    fn default() -> Self {
        Self::new()
    }
}

impl TsDemuxer {
    /// A demuxer that has seen nothing: frames come out once a PAT and a PMT have arrived.
    pub fn new() -> Self {
        TsDemuxer {
            window: Vec::with_capacity(WINDOW + PACKET_LEN),
            sync: Sync::Searching,
            pat: Table::default(),
            pmt_pid: None,
            pmt: Table::default(),
            program: ProgramMap::default(),
            video: None,
            audio: None,
            clock: Unwrapper::default(),
            stats: TsStats::default(),
        }
    }

    /// Takes the next bytes of the stream and appends the frames they complete to `out`.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<Frame>) {
        for chunk in bytes.chunks(WINDOW) {
            self.window.extend_from_slice(chunk);
            let window = std::mem::take(&mut self.window);
            let used = self.packets(&window, out);
            self.window = window;
            self.window.drain(..used);
        }
    }

    /// The stream ended (the connection closed, the file is at its end): hands out the
    /// access unit still open. A video PES with no length ends only at the next unit start
    /// on its PID, so without this the last picture would never come out.
    pub fn flush(&mut self, out: &mut Vec<Frame>) {
        let Self {
            video,
            audio,
            clock,
            stats,
            ..
        } = self;
        for track in [video, audio].into_iter().flatten() {
            let (pes, dropped) = track.pes.flush();
            stats.dropped_pes += u64::from(dropped);
            if let Some(pes) = pes {
                Self::es_pes(&mut track.es, pes, clock, stats, out);
            }
        }
    }

    /// What was counted so far.
    pub fn stats(&self) -> TsStats {
        self.stats
    }

    /// The bytes held between pushes: a partial packet, partial tables, the PES packets
    /// being assembled, partial audio frames. Bounded by the PES caps whatever the input.
    pub fn buffered_bytes(&self) -> usize {
        self.window.len()
            + self.pat.sections.buffered()
            + self.pmt.sections.buffered()
            + self.video.as_ref().map_or(0, Track::buffered)
            + self.audio.as_ref().map_or(0, Track::buffered)
    }

    /// Takes the whole packets at the start of `buf`; returns how many bytes were used.
    fn packets(&mut self, buf: &[u8], out: &mut Vec<Frame>) -> usize {
        let mut pos = 0;
        while let Some(rest) = buf.get(pos..)
            && let Some(&first) = rest.first()
        {
            // When searching, a lone 0x47 in garbage is not enough where the next packet's
            // sync byte can be checked too.
            let aligned = first == SYNC
                && (self.sync == Sync::Locked || rest.get(PACKET_LEN).is_none_or(|&b| b == SYNC));
            if !aligned {
                if self.sync == Sync::Locked {
                    self.sync = Sync::Searching;
                    self.stats.resyncs += 1;
                }
                pos += 1 + rest[1..]
                    .iter()
                    .position(|&b| b == SYNC)
                    .unwrap_or(rest.len() - 1);
                continue;
            }
            let Some(packet) = rest.get(..PACKET_LEN) else {
                break;
            };
            self.sync = Sync::Locked;
            self.packet(packet, out);
            pos += PACKET_LEN;
        }
        pos
    }

    fn packet(&mut self, bytes: &[u8], out: &mut Vec<Frame>) {
        self.stats.packets += 1;
        if bytes.get(1).is_some_and(|b| b & 0x80 != 0) {
            self.stats.transport_errors += 1;
            return;
        }
        let Some(packet) = Packet::parse(bytes) else {
            return;
        };
        if packet.pid == 0 {
            for section in self.pat.push(&packet, &mut self.stats) {
                match psi::parse_pat(&section) {
                    Ok(Some(pid)) if Some(pid) != self.pmt_pid => {
                        self.pmt_pid = Some(pid);
                        self.pmt = Table::default();
                    }
                    Ok(_) => {}
                    Err(_) => self.stats.malformed += 1,
                }
            }
        } else if Some(packet.pid) == self.pmt_pid {
            for section in self.pmt.push(&packet, &mut self.stats) {
                match psi::parse_pmt(&section) {
                    Ok(map) => self.apply(map),
                    Err(_) => self.stats.malformed += 1,
                }
            }
        } else if let Some(track) = [&mut self.video, &mut self.audio]
            .into_iter()
            .flatten()
            .find(|t| t.info.pid == packet.pid)
        {
            Self::es_packet(track, &packet, &mut self.clock, &mut self.stats, out);
        }
    }

    /// Switches to the streams of a new PMT, keeping the state of those that did not change.
    fn apply(&mut self, map: ProgramMap) {
        if map == self.program {
            return;
        }
        self.program = map;
        for (slot, info) in [(&mut self.video, map.video), (&mut self.audio, map.audio)] {
            if slot.as_ref().map(|t| t.info) != info {
                *slot = info.map(Track::new);
            }
        }
    }

    fn es_packet(
        track: &mut Track,
        packet: &Packet<'_>,
        clock: &mut Unwrapper,
        stats: &mut TsStats,
        out: &mut Vec<Frame>,
    ) {
        match track.counter.check(packet.cc, packet.discontinuity) {
            Continuity::Duplicate => return,
            Continuity::Gap => {
                stats.cc_errors += 1;
                if track.pes.reset() {
                    stats.dropped_pes += 1;
                }
                if let Es::Audio(Audio::Aac(aac)) = &mut track.es {
                    aac.reset();
                }
            }
            Continuity::Next => {}
        }
        let pushed = track.pes.push(packet.unit_start, packet.payload);
        stats.dropped_pes += pushed.dropped;
        for pes in pushed.complete {
            Self::es_pes(&mut track.es, pes, clock, stats, out);
        }
    }

    fn es_pes(es: &mut Es, pes: Bytes, clock: &mut Unwrapper, stats: &mut TsStats, out: &mut Vec<Frame>) {
        let Ok(pes) = pes::parse(pes) else {
            stats.malformed += 1;
            return;
        };
        let dts = pes.dts.map(|t| clock.extend(t));
        let pts = pes.pts.map(|t| clock.extend(t));
        match es {
            Es::Video(video) => match pts {
                Some(pts) => video.push(pts, dts.unwrap_or(pts), &pes.payload, out),
                // A picture without a time cannot be placed; ffmpeg, OBS and encoders send
                // one with every access unit.
                None => stats.malformed += 1,
            },
            Es::Audio(Audio::Aac(aac)) => stats.malformed += aac.push(pts, &pes.payload, out),
            Es::Audio(Audio::Opus(opus)) => stats.malformed += u64::from(opus.push(pts, &pes.payload, out)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{AudioCodec, AudioFrame, VideoConfig, VideoFrame};

    const PMT_PID: u16 = 0x1000;
    const VIDEO_PID: u16 = 0x100;
    const AUDIO_PID: u16 = 0x101;

    /// Packetizes `payload` on `pid` (the first packet with the unit start flag), padding the
    /// last packet with an adaptation field; `cc` is advanced per packet.
    fn packets(pid: u16, cc: &mut u8, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut first = true;
        let mut chunks: Vec<&[u8]> = payload.chunks(184).collect();
        if chunks.is_empty() {
            chunks.push(&[]);
        }
        for chunk in chunks {
            let mut p = vec![SYNC, (pid >> 8) as u8 | if first { 0x40 } else { 0 }, pid as u8];
            let stuffing = 184 - chunk.len();
            if stuffing == 0 {
                p.push(0x10 | *cc);
            } else {
                p.push(0x30 | *cc);
                p.push((stuffing - 1) as u8);
                if stuffing > 1 {
                    p.push(0x00);
                    p.extend(std::iter::repeat_n(0xFF, stuffing - 2));
                }
            }
            p.extend_from_slice(chunk);
            assert_eq!(p.len(), PACKET_LEN);
            out.extend(p);
            *cc = (*cc + 1) & 0x0F;
            first = false;
        }
        out
    }

    fn psi_packet(pid: u16, section: &[u8]) -> Vec<u8> {
        let mut payload = vec![0];
        payload.extend_from_slice(section);
        payload.resize(184, 0xFF);
        packets(pid, &mut 0, &payload)
    }

    fn pat() -> Vec<u8> {
        psi_packet(0, &psi::tests::section(0, 1, &[0x00, 0x01, 0xF0, 0x00]))
    }

    fn pmt(audio: &[u8]) -> Vec<u8> {
        let mut body = vec![0xE1, 0x00, 0xF0, 0x00, 0x1B, 0xE1, 0x00, 0xF0, 0x00];
        body.extend_from_slice(audio);
        psi_packet(PMT_PID, &psi::tests::section(2, 1, &body))
    }

    const AAC_ES: [u8; 5] = [0x0F, 0xE1, 0x01, 0xF0, 0x00];

    fn access_unit(nal: &[&[u8]]) -> Vec<u8> {
        let mut out = vec![0, 0, 0, 1, 0x09, 0xF0];
        for n in nal {
            out.extend_from_slice(&[0, 0, 0, 1]);
            out.extend_from_slice(n);
        }
        out
    }

    fn headers() -> Vec<u8> {
        let mut ts = pat();
        ts.extend(pmt(&AAC_ES));
        ts
    }

    fn demux_all(ts: &[u8], split: usize) -> (Vec<Frame>, TsStats) {
        let mut demuxer = TsDemuxer::new();
        let mut out = Vec::new();
        for chunk in ts.chunks(split) {
            demuxer.push(chunk, &mut out);
        }
        (out, demuxer.stats())
    }

    #[test]
    fn video_and_audio_from_hand_made_packets_at_any_split() {
        let mut ts = headers();
        let (mut vcc, mut acc) = (0, 0);
        let idr = access_unit(&[&[0x67, 0x42, 0x00, 0x1E], &[0x68, 0xCE], &[0x65; 500]]);
        ts.extend(packets(
            VIDEO_PID,
            &mut vcc,
            &pes::tests::pes(0xE0, Some(3000), Some(0), &idr, false),
        ));
        let mut adts_frames = adts::tests::adts(3, b"aac-one");
        adts_frames.extend(adts::tests::adts(3, b"aac-two"));
        ts.extend(packets(
            AUDIO_PID,
            &mut acc,
            &pes::tests::pes(0xC0, Some(100), None, &adts_frames, true),
        ));
        let p = access_unit(&[&[0x41; 300]]);
        ts.extend(packets(
            VIDEO_PID,
            &mut vcc,
            &pes::tests::pes(0xE0, Some(6000), None, &p, false),
        ));
        // The second picture ends at the next unit start on its PID.
        ts.extend(packets(
            VIDEO_PID,
            &mut vcc,
            &pes::tests::pes(0xE0, Some(9000), None, &p, false),
        ));

        for split in [1, 7, 188, 1316, ts.len()] {
            let (frames, stats) = demux_all(&ts, split);
            assert_eq!(
                stats.resyncs + stats.cc_errors + stats.dropped_pes + stats.malformed,
                0
            );
            let config = VideoConfig {
                sps: vec![Bytes::from_static(&[0x67, 0x42, 0x00, 0x1E])],
                pps: vec![Bytes::from_static(&[0x68, 0xCE])],
            };
            // The bounded audio PES is complete at once; an unbounded video PES only at the
            // next unit start on its PID.
            assert_eq!(
                frames[0],
                Frame::AudioConfig(AudioCodec::Aac {
                    config: Bytes::from_static(&[0x11, 0x90])
                })
            );
            assert_eq!(
                frames[1],
                Frame::Audio(AudioFrame {
                    pts: 100,
                    data: Bytes::from_static(b"aac-one")
                })
            );
            assert_eq!(
                frames[2],
                Frame::Audio(AudioFrame {
                    pts: 100 + 1920,
                    data: Bytes::from_static(b"aac-two")
                })
            );
            assert_eq!(frames[3], Frame::VideoConfig(config), "split {split}");
            assert!(
                matches!(&frames[4], Frame::Video(VideoFrame { dts: 0, pts: 3000, keyframe: true, nalus, .. }) if nalus.len() == 3)
            );
            assert!(matches!(
                &frames[5],
                Frame::Video(VideoFrame {
                    dts: 6000,
                    pts: 6000,
                    keyframe: false,
                    ..
                })
            ));
            assert_eq!(frames.len(), 6);
        }
    }

    #[test]
    fn nothing_comes_out_before_the_tables() {
        let mut cc = 0;
        let p = access_unit(&[&[0x65; 10]]);
        let mut ts = packets(
            VIDEO_PID,
            &mut cc,
            &pes::tests::pes(0xE0, Some(1), None, &p, false),
        );
        ts.extend(packets(
            VIDEO_PID,
            &mut cc,
            &pes::tests::pes(0xE0, Some(2), None, &p, false),
        ));
        let (frames, stats) = demux_all(&ts, 188);
        assert!(frames.is_empty());
        assert_eq!(stats.packets, 2);
    }

    #[test]
    fn resyncs_after_garbage_and_drops_errored_packets() {
        let mut ts = vec![0x47, 0x12, 0x47, 0x00, 0x55];
        ts.extend(headers());
        ts.extend([0x00, 0x11, 0x22]);
        let mut vcc = 0;
        let idr = access_unit(&[&[0x65; 10]]);
        ts.extend(packets(
            VIDEO_PID,
            &mut vcc,
            &pes::tests::pes(0xE0, Some(1), None, &idr, true),
        ));
        let mut errored = packets(
            VIDEO_PID,
            &mut vcc,
            &pes::tests::pes(0xE0, Some(2), None, &idr, true),
        );
        errored[1] |= 0x80;
        ts.extend(errored);
        let (frames, stats) = demux_all(&ts, 100);
        // Garbage before the first packet is not a loss of sync; garbage after one is.
        assert_eq!(stats.resyncs, 1);
        assert_eq!(stats.transport_errors, 1);
        let videos: Vec<_> = frames.iter().filter(|f| matches!(f, Frame::Video(_))).collect();
        assert_eq!(videos.len(), 1);
    }

    #[test]
    fn a_continuity_gap_drops_the_pes_in_progress() {
        let mut ts = headers();
        let mut vcc = 0;
        let big = access_unit(&[&[0x65; 1000]]);
        let mut first = packets(
            VIDEO_PID,
            &mut vcc,
            &pes::tests::pes(0xE0, Some(1), None, &big, false),
        );
        // Lose the third packet of the first picture.
        first.drain(2 * PACKET_LEN..3 * PACKET_LEN);
        ts.extend(first);
        let small = access_unit(&[&[0x65; 10]]);
        ts.extend(packets(
            VIDEO_PID,
            &mut vcc,
            &pes::tests::pes(0xE0, Some(2), None, &small, true),
        ));
        // A repeated packet is ignored, not counted.
        let dup = ts[ts.len() - PACKET_LEN..].to_vec();
        ts.extend(dup);
        let (frames, stats) = demux_all(&ts, 1316);
        assert_eq!((stats.cc_errors, stats.dropped_pes), (1, 1));
        let videos: Vec<_> = frames
            .iter()
            .filter_map(|f| match f {
                Frame::Video(v) => Some(v.pts),
                _ => None,
            })
            .collect();
        assert_eq!(videos, vec![2]);
    }

    #[test]
    fn oversized_pes_is_dropped_and_memory_stays_bounded() {
        let mut demuxer = TsDemuxer::new();
        let mut out = Vec::new();
        demuxer.push(&headers(), &mut out);
        // An audio PES that never ends.
        let mut acc = 0;
        let mut start = pes::tests::pes(0xC0, Some(1), None, &[0xAB; 100], false);
        start.resize(184, 0xAB);
        demuxer.push(&packets(AUDIO_PID, &mut acc, &start), &mut out);
        for _ in 0..(MAX_AUDIO_PES / 184 + 10) {
            let mut continuation = packets(AUDIO_PID, &mut acc, &[0xAB; 184]);
            continuation[1] &= !0x40;
            demuxer.push(&continuation, &mut out);
            let last = demuxer.buffered_bytes();
            assert!(last <= MAX_AUDIO_PES + PACKET_LEN, "{last}");
        }
        assert_eq!(demuxer.stats().dropped_pes, 1);
    }

    #[test]
    fn opus_stream_with_channels_from_the_pmt() {
        let mut ts = pat();
        ts.extend(pmt(&[
            0x06, 0xE1, 0x01, 0xF0, 0x0A, 0x05, 0x04, b'O', b'p', b'u', b's', 0x7F, 0x02, 0x80, 0x01,
        ]));
        let mut acc = 0;
        let mut payload = vec![0x7F, 0xE0, 3, 0xF8, 1, 2];
        payload.extend([0x7F, 0xE0, 2, 0xF8, 3]);
        ts.extend(packets(
            AUDIO_PID,
            &mut acc,
            &pes::tests::pes(0xBD, Some(500), None, &payload, true),
        ));
        let (frames, _) = demux_all(&ts, 188);
        assert_eq!(
            frames,
            vec![
                Frame::AudioConfig(AudioCodec::Opus { channels: 1 }),
                Frame::Audio(AudioFrame {
                    pts: 500,
                    data: Bytes::from_static(&[0xF8, 1, 2])
                }),
                Frame::Audio(AudioFrame {
                    pts: 2300,
                    data: Bytes::from_static(&[0xF8, 3])
                }),
            ]
        );
    }

    #[test]
    fn timestamps_keep_counting_across_the_33_bit_wrap() {
        let mut ts = headers();
        let mut vcc = 0;
        let wrap = 1u64 << 33;
        for (i, t) in [wrap - 3000, wrap, 3000].into_iter().enumerate() {
            let au = access_unit(&[&[if i == 0 { 0x65 } else { 0x41 }; 10]]);
            ts.extend(packets(
                VIDEO_PID,
                &mut vcc,
                &pes::tests::pes(0xE0, Some(t & (wrap - 1)), None, &au, true),
            ));
        }
        let (frames, _) = demux_all(&ts, 188);
        let pts: Vec<_> = frames
            .iter()
            .filter_map(|f| match f {
                Frame::Video(v) => Some(v.pts),
                _ => None,
            })
            .collect();
        let wrap = wrap as i64;
        assert_eq!(pts, vec![wrap - 3000, wrap, wrap + 3000]);
    }

    /// A valid stream: tables, then pictures and audio interleaved, some PES bounded and
    /// some not, with the tables repeated as muxers do.
    fn valid_stream(pictures: usize) -> Vec<u8> {
        let mut ts = Vec::new();
        let (mut vcc, mut acc) = (0, 0);
        for i in 0..pictures {
            if i % 5 == 0 {
                ts.extend(headers());
            }
            let t = 3000 * i as u64;
            let au = if i % 5 == 0 {
                access_unit(&[
                    &[0x67, 0x42, 0x00, 0x1E],
                    &[0x68, 0xCE],
                    &vec![0x65; 200 + i * 37],
                ])
            } else {
                access_unit(&[&vec![0x41; 100 + i * 53]])
            };
            ts.extend(packets(
                VIDEO_PID,
                &mut vcc,
                &pes::tests::pes(0xE0, Some(t + 3000), Some(t), &au, i % 2 == 0),
            ));
            let mut frames = adts::tests::adts(4, &vec![i as u8; 20 + i]);
            frames.extend(adts::tests::adts(4, &[0x21; 40]));
            ts.extend(packets(
                AUDIO_PID,
                &mut acc,
                &pes::tests::pes(0xC0, Some(t), None, &frames, true),
            ));
        }
        ts
    }

    /// What the demuxer may hold at most between pushes: a partial packet, two partial
    /// tables, a capped PES per stream, held parameter sets, a partial ADTS frame.
    const BOUND: usize = PACKET_LEN + 2 * 1024 + MAX_VIDEO_PES + 64 * 1024 + MAX_AUDIO_PES + 8192;

    fn push_split(demuxer: &mut TsDemuxer, data: &[u8], cuts: &[usize], out: &mut Vec<Frame>) {
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
        cuts.sort_unstable();
        let mut start = 0;
        for cut in cuts.into_iter().chain([data.len()]) {
            demuxer.push(&data[start..cut], out);
            start = cut;
            assert!(demuxer.buffered_bytes() <= BOUND);
        }
    }

    #[derive(Debug, Clone)]
    enum Damage {
        Overwrite(usize, u8),
        Delete(usize, usize),
        Insert(usize, Vec<u8>),
    }

    fn damage() -> impl Strategy<Value = Damage> {
        prop_oneof![
            (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Damage::Overwrite(i, b)),
            (any::<usize>(), 1usize..400).prop_map(|(i, n)| Damage::Delete(i, n)),
            (any::<usize>(), prop::collection::vec(any::<u8>(), 1..400))
                .prop_map(|(i, b)| Damage::Insert(i, b)),
        ]
    }

    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..6000), cuts in prop::collection::vec(any::<usize>(), 0..20)) {
            let mut demuxer = TsDemuxer::new();
            let mut out = Vec::new();
            push_split(&mut demuxer, &data, &cuts, &mut out);
            demuxer.flush(&mut out);
        }

        #[test]
        fn damaged_streams_never_panic(pictures in 1usize..30, damages in prop::collection::vec(damage(), 0..30), cuts in prop::collection::vec(any::<usize>(), 0..30)) {
            let mut data = valid_stream(pictures);
            for d in damages {
                match d {
                    Damage::Overwrite(i, b) => {
                        let i = i % data.len();
                        data[i] = b;
                    }
                    Damage::Delete(i, n) => {
                        let i = i % data.len();
                        let end = (i + n).min(data.len());
                        data.drain(i..end);
                    }
                    Damage::Insert(i, bytes) => {
                        let i = i % (data.len() + 1);
                        data.splice(i..i, bytes);
                    }
                }
                if data.is_empty() {
                    data.push(0x47);
                }
            }
            let mut demuxer = TsDemuxer::new();
            let mut out = Vec::new();
            push_split(&mut demuxer, &data, &cuts, &mut out);
            demuxer.flush(&mut out);
            for frame in &out {
                if let Frame::Video(v) = frame {
                    prop_assert!(v.nalus.iter().all(|n| !n.is_empty()));
                }
            }
        }

        #[test]
        fn valid_streams_demux_the_same_at_any_split(pictures in 1usize..20, cuts in prop::collection::vec(any::<usize>(), 0..40)) {
            let data = valid_stream(pictures);
            let mut whole = TsDemuxer::new();
            let mut expected = Vec::new();
            whole.push(&data, &mut expected);
            whole.flush(&mut expected);
            let mut split = TsDemuxer::new();
            let mut out = Vec::new();
            push_split(&mut split, &data, &cuts, &mut out);
            split.flush(&mut out);
            prop_assert_eq!(&out, &expected);
            let videos = expected.iter().filter(|f| matches!(f, Frame::Video(_))).count();
            prop_assert_eq!(videos, pictures);
            prop_assert_eq!(whole.stats().malformed + whole.stats().resyncs + whole.stats().dropped_pes, 0);
        }
    }
}
