//! WebSocket framing (RFC 6455), server side: decode what clients send, encode what the
//! server sends.
//!
//! The chat owns its sockets (see [`crate::socket`]) so that a room can write one encoded
//! frame to every socket without waking a task per socket. That needs the framing here:
//! client frames are masked and may be fragmented; server frames are never masked, so one
//! encoded fan-out frame is the same bytes for every socket. No extension is negotiated, so
//! the reserved bits must be zero.

use bytes::{Buf, Bytes, BytesMut};

const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

/// A whole message or control frame from a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Incoming {
    /// A complete text message (valid UTF-8).
    Text(String),
    /// A complete binary message (its contents are not kept: the protocol is text only).
    Binary,
    /// A ping; its payload goes back in the pong.
    Ping(Bytes),
    Pong,
    /// A close frame and its status code, if it had one.
    Close(Option<u16>),
}

/// Why the client's bytes are not a valid WebSocket stream. Each maps to a close code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum WireError {
    #[error("client frames must be masked")]
    Unmasked,
    #[error("reserved bits set without an extension")]
    Reserved,
    #[error("unknown opcode {0:#x}")]
    Opcode(u8),
    #[error("control frames must be whole and at most 125 bytes")]
    BadControl,
    #[error("continuation frame without a message to continue, or a new message inside one")]
    Fragmentation,
    #[error("message over {0} bytes")]
    TooBig(usize),
    #[error("text message is not UTF-8")]
    NotUtf8,
}

impl WireError {
    /// The close code RFC 6455 gives this error.
    pub(crate) fn close_code(&self) -> u16 {
        match self {
            WireError::TooBig(_) => 1009,
            WireError::NotUtf8 => 1007,
            _ => 1002,
        }
    }
}

/// Incremental decoder of one client's byte stream.
#[derive(Debug)]
pub(crate) struct Decoder {
    max_message: usize,
    /// The data message being reassembled from fragments: (opcode, bytes so far).
    partial: Option<(u8, Vec<u8>)>,
    /// Payload bytes still to discard of a frame refused as too big, so that the frames after
    /// it (the client's close) can still be read.
    skip: u64,
}

impl Decoder {
    /// A decoder that refuses messages longer than `max_message` bytes.
    pub(crate) fn new(max_message: usize) -> Self {
        Decoder {
            max_message,
            partial: None,
            skip: 0,
        }
    }

    /// Take the next whole message or control frame out of `buf`; `Ok(None)` when more bytes
    /// are needed. After an error the stream is broken except for [`WireError::TooBig`], which
    /// skips the refused frame so the decoder can read on (to the client's close).
    pub(crate) fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Incoming>, WireError> {
        loop {
            if self.skip > 0 {
                let n = usize::try_from(self.skip).unwrap_or(usize::MAX).min(buf.len());
                buf.advance(n);
                self.skip -= n as u64;
                if self.skip > 0 {
                    return Ok(None);
                }
            }
            let Some(header) = Header::parse(buf)? else {
                return Ok(None);
            };
            let control = header.opcode & 0x8 != 0;
            if control {
                if !header.fin || header.len > 125 {
                    return Err(WireError::BadControl);
                }
            } else {
                let so_far = self.partial.as_ref().map_or(0, |(_, p)| p.len() as u64);
                if header.len.saturating_add(so_far) > self.max_message as u64 {
                    buf.advance(header.size);
                    self.skip = header.len;
                    self.partial = None;
                    return Err(WireError::TooBig(self.max_message));
                }
            }
            // `len` fits: it is at most 125 or at most `max_message`.
            let len = header.len as usize;
            if buf.len() < header.size + len {
                buf.reserve(header.size + len - buf.len());
                return Ok(None);
            }
            buf.advance(header.size);
            let mut payload = buf.split_to(len);
            unmask(&mut payload, header.mask);
            match header.opcode {
                OP_PING => return Ok(Some(Incoming::Ping(payload.freeze()))),
                OP_PONG => return Ok(Some(Incoming::Pong)),
                OP_CLOSE => {
                    let code = (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
                    return Ok(Some(Incoming::Close(code)));
                }
                OP_TEXT | OP_BINARY if self.partial.is_some() => {
                    return Err(WireError::Fragmentation);
                }
                OP_TEXT | OP_BINARY if header.fin => {
                    return finish(header.opcode, payload.to_vec()).map(Some);
                }
                OP_TEXT | OP_BINARY => self.partial = Some((header.opcode, payload.to_vec())),
                OP_CONTINUATION => {
                    let Some((opcode, mut data)) = self.partial.take() else {
                        return Err(WireError::Fragmentation);
                    };
                    data.extend_from_slice(&payload);
                    if header.fin {
                        return finish(opcode, data).map(Some);
                    }
                    self.partial = Some((opcode, data));
                }
                other => return Err(WireError::Opcode(other)),
            }
        }
    }
}

fn finish(opcode: u8, data: Vec<u8>) -> Result<Incoming, WireError> {
    if opcode == OP_BINARY {
        return Ok(Incoming::Binary);
    }
    String::from_utf8(data)
        .map(Incoming::Text)
        .map_err(|_| WireError::NotUtf8)
}

struct Header {
    fin: bool,
    opcode: u8,
    mask: [u8; 4],
    len: u64,
    /// Header bytes, mask included.
    size: usize,
}

impl Header {
    fn parse(buf: &[u8]) -> Result<Option<Header>, WireError> {
        let [b0, b1, ..] = *buf else {
            return Ok(None);
        };
        if b0 & 0x70 != 0 {
            return Err(WireError::Reserved);
        }
        let opcode = b0 & 0x0f;
        if !matches!(
            opcode,
            OP_CONTINUATION | OP_TEXT | OP_BINARY | OP_CLOSE | OP_PING | OP_PONG
        ) {
            return Err(WireError::Opcode(opcode));
        }
        if b1 & 0x80 == 0 {
            return Err(WireError::Unmasked);
        }
        let (len, ext) = match b1 & 0x7f {
            126 => match buf.get(2..4) {
                Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 2),
                None => return Ok(None),
            },
            127 => match buf.get(2..10) {
                Some(b) => (u64::from_be_bytes(b.try_into().expect("8 bytes")), 8),
                None => return Ok(None),
            },
            n => (u64::from(n), 0),
        };
        let Some(mask) = buf.get(2 + ext..6 + ext) else {
            return Ok(None);
        };
        Ok(Some(Header {
            fin: b0 & 0x80 != 0,
            opcode,
            mask: mask.try_into().expect("4 bytes"),
            len,
            size: 6 + ext,
        }))
    }
}

fn unmask(payload: &mut [u8], mask: [u8; 4]) {
    for (i, b) in payload.iter_mut().enumerate() {
        *b ^= mask[i & 3];
    }
}

/// One unmasked, unfragmented server frame.
fn frame(opcode: u8, payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(payload.len() + 10);
    out.extend_from_slice(&[0x80 | opcode]);
    match payload.len() {
        n @ 0..=125 => out.extend_from_slice(&[n as u8]),
        n @ 126..=0xffff => {
            out.extend_from_slice(&[126]);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.extend_from_slice(&[127]);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
    out.freeze()
}

/// A text frame, ready to write to any number of sockets.
pub(crate) fn text(payload: &str) -> Bytes {
    frame(OP_TEXT, payload.as_bytes())
}

/// A pong answering a ping's payload.
pub(crate) fn pong(payload: &[u8]) -> Bytes {
    frame(OP_PONG, payload)
}

/// A close frame with a status code and a short reason (cut to fit a control frame).
pub(crate) fn close(code: u16, reason: &str) -> Bytes {
    let mut payload = code.to_be_bytes().to_vec();
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    payload.extend_from_slice(&reason.as_bytes()[..end]);
    frame(OP_CLOSE, &payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client frame as a browser would send it.
    fn client(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        let mut out = vec![(if fin { 0x80 } else { 0 }) | opcode];
        match payload.len() {
            n @ 0..=125 => out.push(0x80 | n as u8),
            n @ 126..=0xffff => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
        out
    }

    fn decode_all(d: &mut Decoder, bytes: &[u8]) -> Vec<Result<Incoming, WireError>> {
        let mut buf = BytesMut::from(bytes);
        let mut out = Vec::new();
        loop {
            match d.decode(&mut buf) {
                Ok(Some(m)) => out.push(Ok(m)),
                Ok(None) => return out,
                Err(e) => {
                    let stop = e != WireError::TooBig(d.max_message);
                    out.push(Err(e));
                    if stop {
                        return out;
                    }
                }
            }
        }
    }

    #[test]
    fn whole_and_fragmented_messages_with_control_frames_between() {
        let mut bytes = client(true, OP_TEXT, "héllo".as_bytes());
        bytes.extend(client(false, OP_TEXT, b"par"));
        bytes.extend(client(true, OP_PING, b"p"));
        bytes.extend(client(false, OP_CONTINUATION, b"t"));
        bytes.extend(client(true, OP_CONTINUATION, b"s"));
        bytes.extend(client(true, OP_BINARY, &[1, 2, 3]));
        bytes.extend(client(true, OP_PONG, b""));
        bytes.extend(client(true, OP_CLOSE, &1000u16.to_be_bytes()));
        let got = decode_all(&mut Decoder::new(4096), &bytes);
        assert_eq!(
            got,
            vec![
                Ok(Incoming::Text("héllo".into())),
                Ok(Incoming::Ping(Bytes::from_static(b"p"))),
                Ok(Incoming::Text("parts".into())),
                Ok(Incoming::Binary),
                Ok(Incoming::Pong),
                Ok(Incoming::Close(Some(1000))),
            ]
        );
    }

    #[test]
    fn bytes_arriving_one_at_a_time_give_the_same_messages() {
        let text = "x".repeat(300);
        let mut bytes = client(true, OP_TEXT, text.as_bytes());
        bytes.extend(client(true, OP_CLOSE, b""));
        let mut d = Decoder::new(4096);
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for b in bytes {
            buf.extend_from_slice(&[b]);
            while let Some(m) = d.decode(&mut buf).expect("valid") {
                got.push(m);
            }
        }
        assert_eq!(got, vec![Incoming::Text(text), Incoming::Close(None)]);
    }

    #[test]
    fn a_message_over_the_limit_is_refused_and_skipped() {
        let mut bytes = client(false, OP_TEXT, &[b'a'; 3000]);
        bytes.extend(client(true, OP_CONTINUATION, &[b'a'; 2000]));
        bytes.extend(client(true, OP_CLOSE, &1000u16.to_be_bytes()));
        let got = decode_all(&mut Decoder::new(4096), &bytes);
        assert_eq!(
            got,
            vec![Err(WireError::TooBig(4096)), Ok(Incoming::Close(Some(1000)))]
        );
        // A 64-bit length is refused from its header alone.
        let mut huge = vec![0x81, 0x80 | 127];
        huge.extend_from_slice(&u64::MAX.to_be_bytes());
        huge.extend_from_slice(&[0; 4]);
        let mut d = Decoder::new(4096);
        assert_eq!(
            d.decode(&mut BytesMut::from(&huge[..])),
            Err(WireError::TooBig(4096))
        );
    }

    #[test]
    fn protocol_violations_have_their_close_codes() {
        let cases: Vec<(Vec<u8>, WireError)> = vec![
            (vec![0x81, 0x01, b'a'], WireError::Unmasked),
            (vec![0xC1, 0x80, 0, 0, 0, 0], WireError::Reserved),
            (vec![0x83, 0x80, 0, 0, 0, 0], WireError::Opcode(3)),
            (client(false, OP_PING, b""), WireError::BadControl),
            (client(true, OP_PING, &[0; 126]), WireError::BadControl),
            (client(true, OP_CONTINUATION, b"x"), WireError::Fragmentation),
            (
                [client(false, OP_TEXT, b"a"), client(true, OP_TEXT, b"b")].concat(),
                WireError::Fragmentation,
            ),
            (client(true, OP_TEXT, &[0xff, 0xfe]), WireError::NotUtf8),
        ];
        for (bytes, want) in cases {
            let got = decode_all(&mut Decoder::new(4096), &bytes);
            assert_eq!(got.last(), Some(&Err(want.clone())), "{bytes:?}");
        }
        assert_eq!(WireError::Unmasked.close_code(), 1002);
        assert_eq!(WireError::NotUtf8.close_code(), 1007);
        assert_eq!(WireError::TooBig(1).close_code(), 1009);
    }

    proptest::proptest! {
        /// Arbitrary bytes, cut anywhere, never panic the decoder and never make it spin:
        /// each call consumes bytes, yields a message, asks for more, or fails.
        #[test]
        fn arbitrary_bytes_in_arbitrary_chunks_never_panic(
            chunks in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..300), 0..20),
            limit in 0usize..5000,
        ) {
            let mut d = Decoder::new(limit);
            let mut buf = BytesMut::new();
            'feed: for chunk in chunks {
                buf.extend_from_slice(&chunk);
                loop {
                    let before = buf.len();
                    match d.decode(&mut buf) {
                        Ok(Some(Incoming::Text(t))) => proptest::prop_assert!(t.len() <= limit),
                        Ok(Some(_)) => {}
                        Ok(None) => break,
                        Err(WireError::TooBig(_)) => proptest::prop_assert!(buf.len() < before || d.skip > 0),
                        Err(_) => break 'feed,
                    }
                }
            }
        }

        /// Valid messages of any size and fragmentation come out whole, in order.
        #[test]
        fn fragmented_messages_come_out_whole(
            texts in proptest::collection::vec("\\PC{0,200}", 1..8),
            cuts in proptest::collection::vec(1usize..50, 1..8),
        ) {
            let mut bytes = Vec::new();
            for (text, cut) in texts.iter().zip(cuts.iter().cycle()) {
                let raw = text.as_bytes();
                let pieces: Vec<&[u8]> = if raw.is_empty() { vec![raw] } else { raw.chunks(*cut).collect() };
                for (i, piece) in pieces.iter().enumerate() {
                    let op = if i == 0 { OP_TEXT } else { OP_CONTINUATION };
                    bytes.extend(client(i + 1 == pieces.len(), op, piece));
                }
            }
            let got = decode_all(&mut Decoder::new(4096), &bytes);
            let want: Vec<_> = texts.into_iter().map(|t| Ok(Incoming::Text(t))).collect();
            proptest::prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn server_frames_carry_their_length_in_the_shortest_form() {
        assert_eq!(&text("hi")[..], &[0x81, 2, b'h', b'i']);
        let mid = text(&"a".repeat(300));
        assert_eq!(&mid[..4], &[0x81, 126, 1, 44]);
        assert_eq!(mid.len(), 304);
        let big = text(&"a".repeat(70_000));
        assert_eq!(&big[..2], &[0x81, 127]);
        assert_eq!(&big[2..10], &70_000u64.to_be_bytes());
        assert_eq!(&pong(b"p")[..], &[0x8A, 1, b'p']);
        // The reason is cut on a character boundary so the frame stays a control frame.
        let c = close(1008, &"é".repeat(100));
        assert_eq!(c[0], 0x88);
        assert!(usize::from(c[1]) <= 125);
        assert_eq!(&c[2..4], &1008u16.to_be_bytes());
        assert!(std::str::from_utf8(&c[4..]).is_ok());
    }
}
