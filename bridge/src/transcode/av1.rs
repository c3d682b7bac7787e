//! AV1 over RTP into temporal units, in our code: GStreamer 1.22 has no AV1 depayloader.
//!
//! The AOMedia "RTP Payload Format for AV1" puts one aggregation header byte before the OBU
//! elements of each packet:
//!
//! ```text
//!  Z Y W W N - - -    Z: the first element continues an OBU of the previous packet
//!                     Y: the last element is continued in the next packet
//!                     W: 0 = every element has a LEB128 length; 1-3 = that many elements,
//!                        the last one without a length (it runs to the end of the packet)
//!                     N: the first packet of a coded video sequence (a keyframe)
//! ```
//!
//! A temporal unit (every OBU of one instant) ends at the RTP marker bit. [`Depacketizer`]
//! turns the packets of a track into temporal units in the low-overhead bitstream format
//! (GStreamer's `video/x-av1,stream-format=obu-stream,alignment=tu`): each starts with a
//! temporal delimiter, and every OBU carries its size (senders leave it out).
//!
//! Drive it with [`Depacketizer::push`] for every packet in sequence order, then
//! [`poll`](Depacketizer::poll) for finished units and
//! [`take_keyframe_request`](Depacketizer::take_keyframe_request): a lost packet (a gap in the
//! sequence numbers), a malformed payload or an oversized unit drops everything up to the next
//! keyframe, which must be asked for. No I/O and no clock: each unit carries the tag (its
//! time) that its first packet was pushed with.

use std::collections::VecDeque;

/// A temporal unit is dropped beyond this size (a 4K keyframe is well under it).
pub(crate) const MAX_UNIT: usize = 4 << 20;

/// OBU types (AV1 specification, 6.2.2).
mod obu_type {
    pub(super) const SEQUENCE_HEADER: u8 = 1;
    pub(super) const TEMPORAL_DELIMITER: u8 = 2;
    pub(super) const FRAME_HEADER: u8 = 3;
    pub(super) const TILE_GROUP: u8 = 4;
    pub(super) const METADATA: u8 = 5;
    pub(super) const FRAME: u8 = 6;
    pub(super) const REDUNDANT_FRAME_HEADER: u8 = 7;
    pub(super) const PADDING: u8 = 15;
}

/// A temporal delimiter OBU with its (zero) size. The AV1 specification (7.5) starts every
/// temporal unit of a low-overhead bitstream with one. av1parse 1.22 would do without it for
/// `alignment=tu` input (it takes each buffer as one unit; a delimiter only tells it where a
/// unit starts in `byte` or `obu` alignment), but a conforming stream costs two bytes.
const TEMPORAL_DELIMITER: [u8; 2] = [(obu_type::TEMPORAL_DELIMITER << 3) | 0x02, 0x00];

/// One RTP packet of an AV1 track.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Packet<'a> {
    /// Extended sequence number (no wrap).
    pub(crate) seq: u64,
    /// RTP timestamp: the same for every packet of a temporal unit.
    pub(crate) rtp_time: u32,
    /// The last packet of its temporal unit.
    pub(crate) marker: bool,
    /// The RTP payload: aggregation header and OBU elements.
    pub(crate) payload: &'a [u8],
}

/// A whole temporal unit, ready for `av1parse`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TemporalUnit<T> {
    /// OBUs with their sizes, a temporal delimiter first.
    pub(crate) data: Vec<u8>,
    /// It starts a coded video sequence (a keyframe, with its sequence header).
    pub(crate) keyframe: bool,
    /// The tag its first packet was pushed with.
    pub(crate) tag: T,
}

/// Where the depacketizer is in the stream.
#[derive(Debug)]
enum State<T> {
    /// Packets are dropped until a coded video sequence starts (N=1): the first packets, or
    /// those after a loss.
    AwaitingKeyframe,
    /// In sync, between temporal units.
    Between,
    /// Gathering a temporal unit.
    Within(Unit<T>),
}

/// A temporal unit being gathered.
#[derive(Debug)]
struct Unit<T> {
    rtp_time: u32,
    tag: T,
    keyframe: bool,
    /// The OBUs so far, in their output form.
    data: Vec<u8>,
    /// An OBU element whose end comes in the next packet (Y=1), as sent.
    fragment: Option<Vec<u8>>,
}

impl<T> Unit<T> {
    fn new(rtp_time: u32, tag: T, keyframe: bool) -> Self {
        Unit {
            rtp_time,
            tag,
            keyframe,
            data: TEMPORAL_DELIMITER.to_vec(),
            fragment: None,
        }
    }

    fn size(&self) -> usize {
        self.data.len() + self.fragment.as_ref().map_or(0, Vec::len)
    }

    /// Whether anything besides the temporal delimiter was gathered.
    fn has_obus(&self) -> bool {
        self.data.len() > TEMPORAL_DELIMITER.len()
    }
}

/// Why a packet cannot be used: everything to the next keyframe goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Broken {
    /// The payload does not parse.
    Malformed,
    /// A fragment's start or end is missing though no packet was lost.
    Fragment,
    /// The temporal unit grew past [`MAX_UNIT`].
    TooBig,
}

/// Turns one AV1 track's RTP packets into temporal units (see the module docs).
#[derive(Debug)]
pub(crate) struct Depacketizer<T> {
    state: State<T>,
    /// The sequence number the next packet should have.
    next_seq: Option<u64>,
    out: VecDeque<TemporalUnit<T>>,
    keyframe_wanted: bool,
}

impl<T> Default for Depacketizer<T> {
    fn default() -> Self {
        Depacketizer {
            state: State::AwaitingKeyframe,
            next_seq: None,
            out: VecDeque::new(),
            keyframe_wanted: false,
        }
    }
}

impl<T> Depacketizer<T> {
    /// Takes one packet; `tag` (its time) goes with the temporal unit it starts.
    pub(crate) fn push(&mut self, p: Packet<'_>, tag: T) {
        match self.next_seq {
            // A late or repeated packet: its place is gone.
            Some(next) if p.seq < next => return,
            Some(next) if p.seq > next => {
                tracing::debug!(lost = p.seq - next, "av1: packets lost, waiting for a keyframe");
                self.await_keyframe();
            }
            _ => {}
        }
        self.next_seq = Some(p.seq + 1);
        let Some((&header, elements)) = p.payload.split_first() else {
            return;
        };
        let continues = header & 0x80 != 0;
        let continued = header & 0x40 != 0;
        let count = (header >> 4) & 0x03;
        let new_sequence = header & 0x08 != 0;

        // A new coded video sequence starts here: in sync from it, whatever came before.
        if new_sequence && !continues {
            match std::mem::replace(&mut self.state, State::Between) {
                State::Within(unit) if unit.rtp_time != p.rtp_time && unit.fragment.is_none() => {
                    self.finish(unit);
                }
                _ => {}
            }
        }
        let mut unit = match std::mem::replace(&mut self.state, State::Between) {
            State::AwaitingKeyframe => {
                // Every packet dropped asks again: a lost request must not stall the stream
                // (the room's throttle makes a burst of them one PLI).
                self.keyframe_wanted = true;
                self.state = State::AwaitingKeyframe;
                return;
            }
            State::Between => Unit::new(p.rtp_time, tag, new_sequence),
            State::Within(unit) if unit.rtp_time == p.rtp_time => unit,
            // The previous unit ended without a marker (the marker is a SHOULD).
            State::Within(unit) => {
                if unit.fragment.is_some() {
                    self.broken(Broken::Fragment);
                    return;
                }
                self.finish(unit);
                Unit::new(p.rtp_time, tag, new_sequence)
            }
        };
        match add_elements(&mut unit, elements, continues, continued, count) {
            Ok(()) if p.marker => {
                if unit.fragment.is_some() {
                    self.broken(Broken::Fragment);
                } else {
                    self.finish(unit);
                }
            }
            Ok(()) => self.state = State::Within(unit),
            Err(why) => self.broken(why),
        }
    }

    /// The next finished temporal unit.
    pub(crate) fn poll(&mut self) -> Option<TemporalUnit<T>> {
        self.out.pop_front()
    }

    /// Whether a keyframe is needed since the last call (packets were lost or unusable).
    pub(crate) fn take_keyframe_request(&mut self) -> bool {
        std::mem::take(&mut self.keyframe_wanted)
    }

    fn finish(&mut self, unit: Unit<T>) {
        self.state = State::Between;
        if unit.has_obus() {
            self.out.push_back(TemporalUnit {
                data: unit.data,
                keyframe: unit.keyframe,
                tag: unit.tag,
            });
        }
    }

    fn broken(&mut self, why: Broken) {
        tracing::debug!(?why, "av1: unusable packet, waiting for a keyframe");
        self.await_keyframe();
    }

    /// The unit being gathered goes, and so does everything that refers to it.
    fn await_keyframe(&mut self) {
        self.state = State::AwaitingKeyframe;
        self.keyframe_wanted = true;
    }
}

/// Adds a packet's OBU elements (after the aggregation header) to `unit`.
fn add_elements<T>(
    unit: &mut Unit<T>,
    rest: &[u8],
    continues: bool,
    continued: bool,
    count: u8,
) -> Result<(), Broken> {
    if !continues && unit.fragment.is_some() {
        // The fragment's end never came.
        return Err(Broken::Fragment);
    }
    let mut elements = Elements::new(rest, count);
    while let Some(element) = elements.next() {
        let element = element.ok_or(Broken::Malformed)?;
        let first = elements.taken == 1;
        let last = elements.rest.is_empty();
        if first && continues {
            let Some(mut fragment) = unit.fragment.take() else {
                // Its start never came.
                return Err(Broken::Fragment);
            };
            fragment.extend_from_slice(element);
            if last && continued {
                unit.fragment = Some(fragment);
            } else {
                add_obu(&mut unit.data, &fragment)?;
            }
        } else if last && continued {
            unit.fragment = Some(element.to_vec());
        } else {
            add_obu(&mut unit.data, element)?;
        }
        if unit.size() > MAX_UNIT {
            return Err(Broken::TooBig);
        }
    }
    if (count != 0 && elements.taken < count) || (continues && elements.taken == 0) {
        // Fewer elements than W says, or nothing to continue a fragment with.
        return Err(Broken::Malformed);
    }
    Ok(())
}

/// The OBU elements of a packet, after its aggregation header: with W (`count`) 0 each has a
/// LEB128 length; otherwise the last of `count` runs to the end of the payload. An element
/// that does not parse is `None`, and nothing follows it.
struct Elements<'a> {
    rest: &'a [u8],
    count: u8,
    /// How many elements were taken.
    taken: u8,
}

impl<'a> Elements<'a> {
    fn new(rest: &'a [u8], count: u8) -> Self {
        Elements {
            rest,
            count,
            taken: 0,
        }
    }
}

impl<'a> Iterator for Elements<'a> {
    type Item = Option<&'a [u8]>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        self.taken = self.taken.saturating_add(1);
        if self.count != 0 && self.taken == self.count {
            return Some(Some(std::mem::take(&mut self.rest)));
        }
        let rest = self.rest;
        let parsed = leb128(rest).and_then(|(len, used)| {
            let end = used.checked_add(usize::try_from(len).ok()?)?;
            Some((rest.get(used..end)?, end))
        });
        let Some((element, end)) = parsed else {
            self.rest = &[];
            return Some(None);
        };
        self.rest = &rest[end..];
        Some(Some(element))
    }
}

/// Appends one OBU as sent (its size field optional) with its size field, unless it is of a
/// type a receiver ignores.
fn add_obu(data: &mut Vec<u8>, obu: &[u8]) -> Result<(), Broken> {
    let &header = obu.first().ok_or(Broken::Malformed)?;
    if header & 0x80 != 0 {
        return Err(Broken::Malformed); // obu_forbidden_bit
    }
    let kind = (header >> 3) & 0x0f;
    let extension = header & 0x04 != 0;
    let has_size = header & 0x02 != 0;
    let header_len = 1 + usize::from(extension);
    let mut payload = obu.get(header_len..).ok_or(Broken::Malformed)?;
    if has_size {
        let (size, used) = leb128(payload).ok_or(Broken::Malformed)?;
        let size = usize::try_from(size).map_err(|_| Broken::Malformed)?;
        payload = payload
            .get(used..used.checked_add(size).ok_or(Broken::Malformed)?)
            .ok_or(Broken::Malformed)?;
    }
    // Temporal delimiters are ours to write, tile lists are not for RTP (the payload format
    // says receivers ignore both), and av1parse fails a unit on a reserved type.
    if !matches!(
        kind,
        obu_type::SEQUENCE_HEADER
            | obu_type::FRAME_HEADER
            | obu_type::TILE_GROUP
            | obu_type::METADATA
            | obu_type::FRAME
            | obu_type::REDUNDANT_FRAME_HEADER
            | obu_type::PADDING
    ) {
        return Ok(());
    }
    data.push(header | 0x02);
    if extension {
        data.push(obu[1]);
    }
    write_leb128(data, payload.len() as u64);
    data.extend_from_slice(payload);
    Ok(())
}

/// The payload of the sequence header OBU that a packet's elements start (a keyframe's first
/// packet carries it), for its picture size. Stops at the first malformed element.
pub(crate) fn sequence_header(payload: &[u8]) -> Option<&[u8]> {
    let (&header, rest) = payload.split_first()?;
    let continues = header & 0x80 != 0;
    let mut elements = Elements::new(rest, (header >> 4) & 0x03);
    while let Some(element) = elements.next() {
        let element = element?;
        let fragment = elements.taken == 1 && continues;
        let Some(&obu) = element.first() else { continue };
        if fragment || (obu >> 3) & 0x0f != obu_type::SEQUENCE_HEADER {
            continue;
        }
        let mut body = element.get(1 + usize::from(obu & 0x04 != 0)..)?;
        if obu & 0x02 != 0 {
            // Its own size: the header may still be whole though the element is cut.
            let (_, used) = leb128(body)?;
            body = &body[used..];
        }
        return Some(body);
    }
    None
}

/// A LEB128 number and the bytes it took; `None` when cut short or over 8 bytes / 32 bits
/// (the AV1 specification's limits, 4.10.5).
pub(crate) fn leb128(data: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, &byte) in data.iter().take(8).enumerate() {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return (value <= u64::from(u32::MAX)).then_some((value, i + 1));
        }
    }
    None
}

fn write_leb128(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An OBU header byte of `kind` without a size field.
    fn header(kind: u8) -> u8 {
        kind << 3
    }

    /// An OBU as sent: header, no size field, `len` bytes of payload.
    fn obu(kind: u8, len: usize, fill: u8) -> Vec<u8> {
        let mut o = vec![header(kind)];
        o.extend(std::iter::repeat_n(fill, len));
        o
    }

    /// The same OBU as it comes out: size field set.
    fn out_obu(kind: u8, len: usize, fill: u8) -> Vec<u8> {
        let mut o = vec![header(kind) | 0x02];
        write_leb128(&mut o, len as u64);
        o.extend(std::iter::repeat_n(fill, len));
        o
    }

    fn unit(obus: &[Vec<u8>]) -> Vec<u8> {
        let mut data = TEMPORAL_DELIMITER.to_vec();
        for o in obus {
            data.extend_from_slice(o);
        }
        data
    }

    /// A payload: aggregation header, then the elements (all with lengths when `w` is 0,
    /// else the last without).
    fn payload(z: bool, y: bool, w: u8, n: bool, elements: &[&[u8]]) -> Vec<u8> {
        let mut p = vec![(u8::from(z) << 7) | (u8::from(y) << 6) | (w << 4) | (u8::from(n) << 3)];
        for (i, e) in elements.iter().enumerate() {
            if w == 0 || i + 1 < elements.len() {
                write_leb128(&mut p, e.len() as u64);
            }
            p.extend_from_slice(e);
        }
        p
    }

    fn packet(seq: u64, rtp_time: u32, marker: bool, payload: &[u8]) -> Packet<'_> {
        Packet {
            seq,
            rtp_time,
            marker,
            payload,
        }
    }

    fn drain(d: &mut Depacketizer<u32>) -> Vec<TemporalUnit<u32>> {
        std::iter::from_fn(|| d.poll()).collect()
    }

    #[test]
    fn a_keyframe_in_one_packet() {
        let seq = obu(obu_type::SEQUENCE_HEADER, 11, 0xaa);
        let frame = obu(obu_type::FRAME, 300, 0x55);
        // A sender that kept the temporal delimiter: it is ours to write, not twice.
        let td = obu(obu_type::TEMPORAL_DELIMITER, 0, 0);
        let mut d = Depacketizer::default();
        d.push(
            packet(
                7,
                3000,
                true,
                &payload(false, false, 0, true, &[&td, &seq, &frame]),
            ),
            1,
        );
        let units = drain(&mut d);
        assert_eq!(units.len(), 1);
        assert!(units[0].keyframe);
        assert_eq!(units[0].tag, 1);
        assert_eq!(
            units[0].data,
            unit(&[
                out_obu(obu_type::SEQUENCE_HEADER, 11, 0xaa),
                out_obu(obu_type::FRAME, 300, 0x55)
            ])
        );
        assert!(!d.take_keyframe_request());

        // The next frame, in one packet: W=1, no length.
        d.push(
            packet(8, 6000, true, &payload(false, false, 1, false, &[&frame])),
            2,
        );
        let units = drain(&mut d);
        assert_eq!(units.len(), 1);
        assert!(!units[0].keyframe);
        assert_eq!(units[0].data, unit(&[out_obu(obu_type::FRAME, 300, 0x55)]));
    }

    #[test]
    fn an_obu_fragmented_across_three_packets() {
        let seq = obu(obu_type::SEQUENCE_HEADER, 11, 0xaa);
        let frame = obu(obu_type::FRAME, 2500, 0x55);
        let (a, rest) = frame.split_at(1000);
        let (b, c) = rest.split_at(1000);
        let mut d = Depacketizer::default();
        d.push(
            packet(1, 90, false, &payload(false, true, 2, true, &[&seq, a])),
            1,
        );
        d.push(packet(2, 90, false, &payload(true, true, 1, false, &[b])), 2);
        assert!(d.poll().is_none(), "not whole yet");
        d.push(packet(3, 90, true, &payload(true, false, 0, false, &[c])), 3);
        let units = drain(&mut d);
        assert_eq!(units.len(), 1);
        assert_eq!(units[0].tag, 1, "the first packet's tag");
        assert_eq!(
            units[0].data,
            unit(&[
                out_obu(obu_type::SEQUENCE_HEADER, 11, 0xaa),
                out_obu(obu_type::FRAME, 2500, 0x55)
            ])
        );
        assert!(!d.take_keyframe_request());
    }

    #[test]
    fn two_elements_with_w_2_and_sizes_and_extensions_kept() {
        let mut d = Depacketizer::default();
        // A frame header with an extension byte and its own size field, then a tile group.
        let fh = [(obu_type::FRAME_HEADER << 3) | 0x06, 0x28, 0x03, 1, 2, 3];
        let tg = obu(obu_type::TILE_GROUP, 200, 0x11);
        d.push(
            packet(1, 90, true, &payload(false, false, 2, true, &[&fh, &tg])),
            0,
        );
        let units = drain(&mut d);
        assert_eq!(units.len(), 1);
        let mut expected = TEMPORAL_DELIMITER.to_vec();
        expected.extend_from_slice(&fh);
        expected.extend_from_slice(&out_obu(obu_type::TILE_GROUP, 200, 0x11));
        assert_eq!(units[0].data, expected);
    }

    #[test]
    fn a_gap_drops_to_the_next_new_sequence_and_asks_for_it() {
        let frame = obu(obu_type::FRAME, 50, 0x55);
        let seq = obu(obu_type::SEQUENCE_HEADER, 11, 0xaa);
        let mut d = Depacketizer::default();
        d.push(
            packet(10, 0, true, &payload(false, false, 2, true, &[&seq, &frame])),
            0,
        );
        assert_eq!(drain(&mut d).len(), 1);
        // A frame's first packet, then one lost.
        d.push(
            packet(11, 3000, false, &payload(false, true, 1, false, &[&frame[..20]])),
            1,
        );
        d.push(
            packet(13, 3000, true, &payload(true, false, 1, false, &[&frame[40..]])),
            1,
        );
        assert!(d.take_keyframe_request());
        assert!(d.poll().is_none(), "the broken unit is dropped");
        // Later frames refer to what was lost: dropped, and asked again.
        d.push(
            packet(14, 6000, true, &payload(false, false, 1, false, &[&frame])),
            2,
        );
        assert!(d.poll().is_none());
        assert!(d.take_keyframe_request());
        // The keyframe.
        d.push(
            packet(15, 9000, true, &payload(false, false, 2, true, &[&seq, &frame])),
            3,
        );
        let units = drain(&mut d);
        assert_eq!(units.len(), 1);
        assert!(units[0].keyframe);
        assert_eq!(units[0].tag, 3);
        assert!(!d.take_keyframe_request());
        // A late packet from before is ignored.
        d.push(
            packet(12, 3000, false, &payload(false, false, 1, false, &[&frame])),
            9,
        );
        assert!(d.poll().is_none() && !d.take_keyframe_request());
    }

    #[test]
    fn a_stream_joined_mid_sequence_waits_for_a_keyframe() {
        let frame = obu(obu_type::FRAME, 50, 0x55);
        let mut d = Depacketizer::default();
        d.push(packet(1, 0, true, &payload(false, false, 1, false, &[&frame])), 0);
        assert!(d.poll().is_none());
        assert!(d.take_keyframe_request());
    }

    #[test]
    fn a_unit_without_a_marker_ends_at_the_next_timestamp() {
        let frame = obu(obu_type::FRAME, 50, 0x55);
        let mut d = Depacketizer::default();
        d.push(packet(1, 0, false, &payload(false, false, 1, true, &[&frame])), 0);
        assert!(d.poll().is_none());
        d.push(
            packet(2, 3000, true, &payload(false, false, 1, false, &[&frame])),
            1,
        );
        let tags: Vec<u32> = drain(&mut d).iter().map(|u| u.tag).collect();
        assert_eq!(tags, [0, 1]);
    }

    #[test]
    fn a_unit_past_the_cap_is_dropped() {
        let mut d = Depacketizer::default();
        let big = vec![0x55; 1200];
        let first = {
            let mut f = vec![header(obu_type::FRAME)];
            f.extend_from_slice(&big);
            f
        };
        d.push(packet(0, 0, false, &payload(false, true, 1, true, &[&first])), 0);
        let mut seq = 1;
        while seq < (MAX_UNIT / big.len()) as u64 + 2 {
            d.push(packet(seq, 0, false, &payload(true, true, 1, false, &[&big])), 0);
            seq += 1;
        }
        d.push(packet(seq, 0, true, &payload(true, false, 1, false, &[&big])), 0);
        assert!(d.poll().is_none());
        assert!(d.take_keyframe_request());
    }

    #[test]
    fn malformed_payloads_are_a_loss_never_a_panic() {
        let mut d = Depacketizer::<u32>::default();
        let seq = obu(obu_type::SEQUENCE_HEADER, 4, 0xaa);
        let bad: [&[u8]; 6] = [
            // A length past the end.
            &[0x08, 0x7f, 0x08],
            // A LEB128 that never ends.
            &[0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            // W=3 with one element's worth of bytes.
            &[0x38, 0x02, 0x08, 0x00],
            // The forbidden bit.
            &[0x18, 0x80, 0x00],
            // A continuation with nothing before it.
            &[0x80, 0x01, 0x30],
            // An OBU whose own size runs past the element.
            &[0x18, 0x32, 0x09],
        ];
        for (i, p) in bad.iter().enumerate() {
            d.push(
                packet(
                    i as u64 * 2,
                    i as u32,
                    true,
                    &payload(false, false, 1, true, &[&seq]),
                ),
                0,
            );
            assert_eq!(drain(&mut d).len(), 1, "in sync before case {i}");
            d.push(packet(i as u64 * 2 + 1, i as u32 + 100, true, p), 0);
            assert!(d.poll().is_none(), "case {i} gave a unit");
            assert!(d.take_keyframe_request(), "case {i} did not ask for a keyframe");
        }
    }

    #[test]
    fn leb128_limits() {
        assert_eq!(leb128(&[0x00]), Some((0, 1)));
        assert_eq!(leb128(&[0xe5, 0x8e, 0x26]), Some((624_485, 3)));
        // Padded forms are allowed.
        assert_eq!(leb128(&[0x80, 0x80, 0x00]), Some((0, 3)));
        assert_eq!(leb128(&[0x80]), None);
        assert_eq!(leb128(&[0xff, 0xff, 0xff, 0xff, 0x1f]), None, "over 32 bits");
        let mut out = Vec::new();
        write_leb128(&mut out, 624_485);
        assert_eq!(out, [0xe5, 0x8e, 0x26]);
    }

    /// Random bytes in random order (a fixed seed): no panic, and every unit out is well
    /// formed.
    #[test]
    fn random_packets_never_panic() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut units = 0;
        for _ in 0..200 {
            let mut d = Depacketizer::default();
            let mut seq = 0;
            for _ in 0..40 {
                let r = next();
                seq += r % 3;
                let len = (r >> 8) as usize % 48;
                // Mostly plausible aggregation headers, with random bytes after them.
                let mut payload: Vec<u8> = (0..len).map(|_| next() as u8).collect();
                if let Some(h) = payload.first_mut()
                    && r & 0x1000 != 0
                {
                    *h &= 0xf8;
                }
                let p = Packet {
                    seq,
                    rtp_time: (r >> 20) as u32 % 3,
                    marker: r & 0x10_0000_0000 != 0,
                    payload: &payload,
                };
                d.push(p, seq);
                while let Some(unit) = d.poll() {
                    units += 1;
                    assert!(unit.data.starts_with(&TEMPORAL_DELIMITER));
                    assert!(unit.data.len() <= MAX_UNIT);
                    // Every OBU out has its size, and the sizes add up.
                    let mut rest = &unit.data[..];
                    while let Some((&h, after)) = rest.split_first() {
                        assert!(h & 0x02 != 0, "an OBU without its size");
                        let after = if h & 0x04 != 0 { &after[1..] } else { after };
                        let (size, used) = leb128(after).expect("a size");
                        rest = &after[used + size as usize..];
                    }
                }
                let _ = d.take_keyframe_request();
            }
        }
        assert!(
            units > 0,
            "random input never made a unit: the checks above saw nothing"
        );
    }
}
