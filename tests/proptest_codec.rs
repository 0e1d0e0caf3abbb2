//! Property tests of the wire codec on its own: frame headers, whole frames,
//! close payloads and masking.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use wsproto::frame::{encode_frame, FrameDecoder, FrameHeader, OpCode};
use wsproto::{apply_mask, ApiMisuse, CloseCode, CloseFrame, ProtocolError, Role};

const ALL_OPCODES: [OpCode; 6] = [
    OpCode::Continuation,
    OpCode::Text,
    OpCode::Binary,
    OpCode::Close,
    OpCode::Ping,
    OpCode::Pong,
];

fn opcode() -> impl Strategy<Value = OpCode> {
    prop::sample::select(&ALL_OPCODES[..])
}

fn data_opcode() -> impl Strategy<Value = OpCode> {
    prop::sample::select(&[OpCode::Continuation, OpCode::Text, OpCode::Binary][..])
}

/// Payload lengths covering the three wire encodings and their boundaries.
fn header_len() -> impl Strategy<Value = u64> {
    prop_oneof![
        0u64..=125,
        126u64..=0xFFFF,
        0x1_0000u64..(1 << 63),
        prop::sample::select(
            &[
                0u64,
                1,
                125,
                126,
                127,
                0xFFFF,
                0x1_0000,
                0xFFFF_FFFF,
                0x1_0000_0000,
                (1 << 63) - 1
            ][..]
        ),
    ]
}

fn mask() -> impl Strategy<Value = Option<[u8; 4]>> {
    prop::option::of(any::<[u8; 4]>())
}

prop_compose! {
    fn any_header()(
        fin in any::<bool>(),
        rsv1 in any::<bool>(),
        rsv2 in any::<bool>(),
        rsv3 in any::<bool>(),
        opcode in opcode(),
        mask in mask(),
        payload_len in header_len(),
    ) -> FrameHeader {
        let mut h = FrameHeader::new(opcode, payload_len);
        h.fin = fin;
        h.rsv1 = rsv1;
        h.rsv2 = rsv2;
        h.rsv3 = rsv3;
        h.mask = mask;
        h
    }
}

/// A payload of `len` bytes derived from `seed` (cheap to generate even for
/// 64 KiB, unlike a `Vec<u8>` strategy).
fn payload(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 8) as u8)
        .collect()
}

fn payload_len_for(opcode: OpCode) -> BoxedStrategy<usize> {
    if opcode.is_control() {
        prop_oneof![0usize..=125, Just(125usize)].boxed()
    } else {
        prop_oneof![
            4 => 0usize..=300,
            1 => prop::sample::select(&[125usize, 126, 127, 0xFFFF, 0x1_0000, 0x1_0001][..]),
        ]
        .boxed()
    }
}

fn expected_len_field(len: u64) -> u8 {
    match len {
        0..=125 => len as u8,
        126..=0xFFFF => 126,
        _ => 127,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Encoding then parsing a header gives it back, uses the minimal length
    /// encoding, consumes exactly the encoded bytes, and every strict prefix
    /// is "need more" rather than an error.
    #[test]
    fn header_encode_parse_identity(h in any_header(), trailing in prop::collection::vec(any::<u8>(), 0..4)) {
        let mut out = [0u8; FrameHeader::MAX_LEN];
        let n = h.encode(&mut out);
        prop_assert_eq!(n, h.encoded_len());
        let base = match h.payload_len { 0..=125 => 2, 126..=0xFFFF => 4, _ => 10 };
        prop_assert_eq!(n, base + if h.mask.is_some() { 4 } else { 0 });
        prop_assert_eq!(out[0] & 0x0F, h.opcode.as_u8());
        prop_assert_eq!(out[0] >> 7 == 1, h.fin);
        prop_assert_eq!((out[0] >> 4) & 0b111, h.rsv_bits());
        prop_assert_eq!(out[1] & 0x80 != 0, h.mask.is_some());
        prop_assert_eq!(out[1] & 0x7F, expected_len_field(h.payload_len));

        let mut wire = out[..n].to_vec();
        for cut in 0..n {
            prop_assert_eq!(FrameHeader::parse(&wire[..cut]), Ok(None), "prefix {}", cut);
        }
        // bytes after the header (the payload) are not part of it
        wire.extend_from_slice(&trailing);
        let (parsed, used) = FrameHeader::parse(&wire).unwrap().unwrap();
        prop_assert_eq!(used, n);
        prop_assert_eq!(parsed, h);
    }

    /// `encode_frame` then `FrameDecoder::decode` gives back the header and
    /// the unmasked payload, for both receiving roles, whole or in two pieces.
    #[test]
    fn frame_encode_decode_identity(
        receiver in prop::sample::select(&[Role::Client, Role::Server][..]),
        (opcode, len) in opcode().prop_flat_map(|op| (Just(op), payload_len_for(op))),
        seed in any::<u8>(),
        fin in any::<bool>(),
        rsv in 0u8..8,
        key in any::<[u8; 4]>(),
        split in any::<prop::sample::Index>(),
    ) {
        let data = payload(len, seed);
        let mut h = FrameHeader::new(opcode, 0);
        if !opcode.is_control() {
            h.fin = fin;
            h.rsv1 = rsv & 0b100 != 0;
            h.rsv2 = rsv & 0b010 != 0;
            h.rsv3 = rsv & 0b001 != 0;
        }
        // frames travelling to a server are masked (§5.1)
        if receiver == Role::Server {
            h.mask = Some(key);
        }
        let mut wire = BytesMut::new();
        encode_frame(&mut wire, &h, &data);
        let mut expected = h;
        expected.payload_len = len as u64;
        prop_assert_eq!(wire.len(), expected.encoded_len() + len);
        if let Some(k) = h.mask {
            // the payload on the wire is masked with the key from offset 0
            let mut on_wire = wire[expected.encoded_len()..].to_vec();
            apply_mask(&mut on_wire, k, 0);
            prop_assert_eq!(&on_wire[..], &data[..]);
        } else {
            prop_assert_eq!(&wire[expected.encoded_len()..], &data[..]);
        }

        // whole
        let mut dec = FrameDecoder::new(receiver, 1 << 20);
        dec.set_allowed_rsv(0b111);
        let mut buf = wire.clone();
        let frame = dec.decode(&mut buf).unwrap().expect("a whole frame");
        prop_assert_eq!(frame.header, expected);
        prop_assert_eq!(&frame.payload[..], &data[..]);
        prop_assert!(buf.is_empty());

        // in two pieces, with a second frame right behind the first
        let cut = split.index(wire.len() + 1);
        let mut dec = FrameDecoder::new(receiver, 1 << 20);
        dec.set_allowed_rsv(0b111);
        let mut buf = BytesMut::from(&wire[..cut]);
        let mut got = dec.decode(&mut buf).unwrap();
        if cut < wire.len() {
            prop_assert!(got.is_none(), "a frame from {} of {} bytes", cut, wire.len());
            buf.extend_from_slice(&wire[cut..]);
            encode_frame(&mut buf, &h, b"next");
            got = dec.decode(&mut buf).unwrap();
        } else {
            encode_frame(&mut buf, &h, b"next");
        }
        let frame = got.expect("a whole frame");
        prop_assert_eq!(frame.header, expected);
        prop_assert_eq!(&frame.payload[..], &data[..]);
        let next = dec.decode(&mut buf).unwrap().expect("the second frame");
        prop_assert_eq!(&next.payload[..], b"next");
        prop_assert!(buf.is_empty());
    }

    /// Byte-at-a-time decoding of a data frame yields the frame exactly when
    /// its last byte arrives.
    #[test]
    fn frame_decode_byte_at_a_time(
        receiver in prop::sample::select(&[Role::Client, Role::Server][..]),
        opcode in data_opcode(),
        data in prop::collection::vec(any::<u8>(), 0..300),
        key in any::<[u8; 4]>(),
    ) {
        let mut h = FrameHeader::new(opcode, 0);
        if receiver == Role::Server {
            h.mask = Some(key);
        }
        let mut wire = BytesMut::new();
        encode_frame(&mut wire, &h, &data);
        let mut dec = FrameDecoder::new(receiver, 1 << 20);
        let mut buf = BytesMut::new();
        for (i, b) in wire.iter().enumerate() {
            buf.extend_from_slice(&[*b]);
            let got = dec.decode(&mut buf).unwrap();
            if i + 1 < wire.len() {
                prop_assert!(got.is_none(), "frame complete after {} of {} bytes", i + 1, wire.len());
            } else {
                let f = got.expect("complete");
                prop_assert_eq!(&f.payload[..], &data[..]);
            }
        }
    }

    /// A close payload with a sendable code and a reason of at most 123 bytes
    /// survives encode → parse unchanged.
    #[test]
    fn close_frame_encode_parse_identity(
        code in prop_oneof![1000u16..=1003, 1007u16..=1014, 3000u16..=4999],
        reason in any::<String>(),
        cut in any::<prop::sample::Index>(),
    ) {
        let reason = truncate_to_char_boundary(&reason, cut.index(CloseFrame::MAX_REASON_LEN + 1));
        prop_assert!(reason.len() <= CloseFrame::MAX_REASON_LEN);
        let frame = CloseFrame::new(code, reason.as_str());
        prop_assert!(frame.code.is_sendable());
        prop_assert_eq!(frame.validate(), Ok(()));
        let mut out = Vec::new();
        frame.encode(&mut out);
        prop_assert_eq!(out.len(), frame.encoded_len());
        prop_assert!(out.len() <= 125);
        prop_assert_eq!(&out[..2], &code.to_be_bytes()[..]);
        prop_assert_eq!(&out[2..], reason.as_bytes());
        let parsed = CloseFrame::parse(&Bytes::from(out)).unwrap();
        prop_assert_eq!(parsed, Some(frame));
    }

    /// Codes that may not appear on the wire are refused both ways.
    #[test]
    fn unsendable_close_codes_are_refused(
        code in prop_oneof![0u16..=999, 1004u16..=1006, Just(1015u16), 1016u16..=2999, 5000u16..=u16::MAX],
        reason in "[a-z]{0,10}",
    ) {
        let frame = CloseFrame::new(code, reason.as_str());
        prop_assert!(!CloseCode(code).is_sendable());
        prop_assert_eq!(frame.validate(), Err(ApiMisuse::InvalidCloseCode(code)));
        let mut out = Vec::new();
        frame.encode(&mut out);
        prop_assert_eq!(CloseFrame::parse(&Bytes::from(out)), Err(ProtocolError::InvalidCloseCode(code)));
    }

    /// A reason longer than 123 bytes cannot be sent.
    #[test]
    fn long_close_reasons_are_refused(extra in 1usize..200, code in 3000u16..=4999) {
        let frame = CloseFrame::new(code, "r".repeat(CloseFrame::MAX_REASON_LEN + extra));
        prop_assert_eq!(frame.validate(), Err(ApiMisuse::CloseReasonTooLong));
    }

    /// Masking is an involution and matches the byte-by-byte definition of
    /// RFC 6455 §5.3 for any starting offset.
    #[test]
    fn mask_twice_is_identity(
        data in prop::collection::vec(any::<u8>(), 0..200),
        key in any::<[u8; 4]>(),
        offset in 0usize..1000,
    ) {
        let mut masked = data.clone();
        apply_mask(&mut masked, key, offset);
        let reference: Vec<u8> = data
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ key[(offset + i) % 4])
            .collect();
        prop_assert_eq!(&masked, &reference);
        apply_mask(&mut masked, key, offset);
        prop_assert_eq!(masked, data);
    }

    /// Masking in arbitrary pieces, each with its payload offset, equals
    /// masking the whole at once.
    #[test]
    fn mask_in_pieces_equals_whole(
        data in prop::collection::vec(any::<u8>(), 0..300),
        key in any::<[u8; 4]>(),
        start in 0usize..16,
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let mut whole = data.clone();
        apply_mask(&mut whole, key, start);

        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(data.len() + 1)).collect();
        points.push(0);
        points.push(data.len());
        points.sort_unstable();
        let mut pieces = data.clone();
        for w in points.windows(2) {
            apply_mask(&mut pieces[w[0]..w[1]], key, start + w[0]);
        }
        prop_assert_eq!(pieces, whole);
    }
}

fn truncate_to_char_boundary(s: &str, max: usize) -> String {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

#[test]
fn header_length_boundaries_use_the_documented_encodings() {
    // RFC 6455 §5.2: 7-bit up to 125, 16-bit up to 65535, 64-bit beyond.
    let cases: &[(u64, &[u8])] = &[
        (0, &[0x82, 0x00]),
        (125, &[0x82, 0x7D]),
        (126, &[0x82, 0x7E, 0x00, 0x7E]),
        (0xFFFF, &[0x82, 0x7E, 0xFF, 0xFF]),
        (0x1_0000, &[0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00]),
        (
            (1 << 63) - 1,
            &[0x82, 0x7F, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF],
        ),
    ];
    for &(len, wire) in cases {
        let h = FrameHeader::new(OpCode::Binary, len);
        let mut out = [0u8; FrameHeader::MAX_LEN];
        let n = h.encode(&mut out);
        assert_eq!(&out[..n], wire, "length {len}");
        assert_eq!(FrameHeader::parse(wire), Ok(Some((h, wire.len()))));
    }
}

#[test]
fn non_minimal_and_msb_lengths_are_protocol_errors() {
    let cases: &[(&[u8], ProtocolError)] = &[
        (&[0x82, 0x7E, 0x00, 0x7D], ProtocolError::NonMinimalLength),
        (
            &[0x82, 0x7F, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF],
            ProtocolError::NonMinimalLength,
        ),
        (&[0x82, 0x7F, 0x80], ProtocolError::InvalidLength),
        (
            &[0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0],
            ProtocolError::InvalidLength,
        ),
    ];
    for &(wire, err) in cases {
        assert_eq!(FrameHeader::parse(wire), Err(err), "{wire:02x?}");
    }
}

/// Where std says `data[..=k]` can no longer be completed to UTF-8.
fn first_impossible_byte(data: &[u8]) -> Option<usize> {
    (0..data.len())
        .find(|&k| matches!(std::str::from_utf8(&data[..=k]), Err(e) if e.error_len().is_some()))
}

fn utf8ish() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        any::<String>().prop_map(String::into_bytes),
        prop::collection::vec(
            prop::sample::select(
                &[
                    0x41u8, 0x7F, 0x80, 0xBF, 0xC0, 0xC2, 0xDF, 0xE0, 0xE2, 0xED, 0xEF, 0xF0, 0xF4,
                    0xF5, 0xFF, 0x82, 0xAC, 0x9F, 0xA0, 0x90
                ][..]
            ),
            0..24
        ),
        (
            any::<String>(),
            prop::collection::vec(any::<u8>(), 0..4),
            any::<String>()
        )
            .prop_map(|(a, bad, b)| [a.into_bytes(), bad, b.into_bytes()].concat()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The public incremental validator agrees with std however the input is
    /// cut, and fails on exactly the piece holding the first impossible byte.
    #[test]
    fn utf8_validator_matches_std_in_any_pieces(
        data in utf8ish(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
    ) {
        use wsproto::message::Utf8Validator;
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(data.len() + 1)).collect();
        points.push(0);
        points.push(data.len());
        points.sort_unstable();
        let mut v = Utf8Validator::new();
        let mut failed_piece = None;
        for (i, w) in points.windows(2).enumerate() {
            if v.feed(&data[w[0]..w[1]]).is_err() {
                failed_piece = Some(i);
                break;
            }
        }
        let expected_piece = first_impossible_byte(&data)
            .map(|k| points.windows(2).position(|w| (w[0]..w[1]).contains(&k)).unwrap());
        prop_assert_eq!(failed_piece, expected_piece);
        if failed_piece.is_none() {
            prop_assert_eq!(v.finish().is_ok(), std::str::from_utf8(&data).is_ok());
        }
    }
}
