//! An AV1 RTP packetizer for the test publisher (GStreamer 1.22 has no `rtpav1pay`), written
//! from the AOMedia "RTP Payload Format for AV1" as a browser sends it: OBUs without their
//! size fields, no temporal delimiters, an aggregation header per packet (Z, Y, W, N).
//! Test code only; the bridge's depacketizer is `bridge::transcode::av1`.

/// OBU types the payload format says a sender leaves out: temporal delimiters, tile lists.
const TEMPORAL_DELIMITER: u8 = 2;
const TILE_LIST: u8 = 8;
const SEQUENCE_HEADER: u8 = 1;

/// The OBU elements of a low-overhead (`obu-stream`) temporal unit: each OBU without its
/// size field, the ones a sender leaves out left out.
pub fn obu_elements(unit: &[u8]) -> Vec<Vec<u8>> {
    let mut elements = Vec::new();
    let mut rest = unit;
    while let Some((&header, after)) = rest.split_first() {
        let (extension, after) = if header & 0x04 != 0 {
            (
                after.first().copied(),
                after.get(1..).expect("the extension byte"),
            )
        } else {
            (None, after)
        };
        let (size, after) = if header & 0x02 != 0 {
            let (size, used) = leb128(after);
            (size, &after[used..])
        } else {
            (after.len(), after)
        };
        let (payload, next) = after.split_at(size);
        rest = next;
        let kind = (header >> 3) & 0x0f;
        if kind == TEMPORAL_DELIMITER || kind == TILE_LIST {
            continue;
        }
        let mut element = vec![header & !0x02];
        element.extend(extension);
        element.extend_from_slice(payload);
        elements.push(element);
    }
    elements
}

/// Whether a temporal unit's elements start a coded video sequence (libaom writes a
/// sequence header before every keyframe).
pub fn starts_sequence(elements: &[Vec<u8>]) -> bool {
    elements.iter().any(|e| (e[0] >> 3) & 0x0f == SEQUENCE_HEADER)
}

/// The RTP payloads of one temporal unit, each at most `mtu` bytes: elements packed in
/// order, split across packets where they do not fit (Z and Y say so); W is the element
/// count where it is 1-3 (the last element then has no length), else 0; N is set on the
/// first packet of a keyframe.
pub fn packetize(elements: &[Vec<u8>], keyframe: bool, mtu: usize) -> Vec<Vec<u8>> {
    assert!((16..16_384).contains(&mtu), "lengths fit in two LEB128 bytes");
    // (continues a fragment, elements, continued in the next)
    let mut packets: Vec<(bool, Vec<&[u8]>, bool)> = Vec::new();
    let mut current: Vec<&[u8]> = Vec::new();
    let mut used = 1;
    let mut continues = false;
    for element in elements {
        let mut rest: &[u8] = element;
        loop {
            // Room for a length (at most two bytes) and at least a byte of the element.
            let room = mtu - used;
            if room <= 3 {
                packets.push((continues, std::mem::take(&mut current), false));
                used = 1;
                continues = false;
                continue;
            }
            let fits = room - 2;
            if rest.len() <= fits {
                current.push(rest);
                used += leb128_len(rest.len()) + rest.len();
                break;
            }
            let (head, tail) = rest.split_at(fits);
            current.push(head);
            rest = tail;
            packets.push((continues, std::mem::take(&mut current), true));
            used = 1;
            continues = true;
        }
    }
    if !current.is_empty() {
        packets.push((continues, current, false));
    }
    packets
        .into_iter()
        .enumerate()
        .map(|(i, (z, elements, y))| {
            let w = if elements.len() <= 3 {
                elements.len() as u8
            } else {
                0
            };
            let n = keyframe && i == 0;
            let mut p = vec![(u8::from(z) << 7) | (u8::from(y) << 6) | (w << 4) | (u8::from(n) << 3)];
            for (j, e) in elements.iter().enumerate() {
                if w == 0 || j + 1 < elements.len() {
                    write_leb128(&mut p, e.len());
                }
                p.extend_from_slice(e);
            }
            assert!(p.len() <= mtu, "a payload of {} bytes", p.len());
            p
        })
        .collect()
}

fn leb128(data: &[u8]) -> (usize, usize) {
    let mut value = 0usize;
    for (i, &byte) in data.iter().enumerate() {
        value |= usize::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return (value, i + 1);
        }
    }
    panic!("a LEB128 cut short in the encoder's output");
}

fn leb128_len(mut value: usize) -> usize {
    let mut len = 1;
    while value >= 0x80 {
        value >>= 7;
        len += 1;
    }
    len
}

fn write_leb128(out: &mut Vec<u8>, mut value: usize) {
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
