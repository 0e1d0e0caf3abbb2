//! Helpers shared by the integration tests (public API only).
#![allow(dead_code)]

use bytes::BytesMut;
use wsproto::frame::{encode_frame, Frame, FrameDecoder, FrameHeader, OpCode};
use wsproto::{CloseFrame, Config, Connection, Error, Event, MaskSource, Role};

/// A deterministic masking-key source so client output is reproducible.
pub fn test_masks() -> Box<dyn MaskSource> {
    let mut state: u32 = 0x9E37_79B9;
    Box::new(move |buf: &mut [u8]| {
        for b in buf {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            *b = (state >> 24) as u8;
        }
    })
}

/// A connection for `role`; clients get deterministic masking keys.
pub fn endpoint(role: Role, config: Config) -> Connection {
    match role {
        Role::Client => Connection::client_with_masks(config, test_masks()),
        Role::Server => Connection::server(config),
    }
}

/// Everything the connection has queued for the wire.
pub fn drain(conn: &mut Connection) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(chunk) = conn.poll_transmit() {
        out.extend_from_slice(&chunk);
    }
    out
}

/// Poll events until `Ok(None)` or an error.
pub fn poll_all(conn: &mut Connection) -> Result<Vec<Event>, Error> {
    let mut events = Vec::new();
    while let Some(ev) = conn.poll_event()? {
        events.push(ev);
    }
    Ok(events)
}

/// Encode one frame as `sender` would put it on the wire (masked with a fixed
/// key when the sender is a client).
pub fn frame(sender: Role, opcode: OpCode, fin: bool, payload: &[u8]) -> Vec<u8> {
    let key = (sender == Role::Client).then_some([0x37, 0xfa, 0x21, 0x3d]);
    frame_with_mask(opcode, fin, payload, key)
}

/// Encode one frame masked with `key` (`None`: unmasked).
pub fn frame_with_mask(opcode: OpCode, fin: bool, payload: &[u8], key: Option<[u8; 4]>) -> Vec<u8> {
    let mut h = FrameHeader::new(opcode, payload.len() as u64);
    h.fin = fin;
    h.mask = key;
    let mut out = BytesMut::new();
    encode_frame(&mut out, &h, payload);
    out.to_vec()
}

/// Decode every frame in `wire`, which `sender` wrote. Panics on anything
/// that is not a sequence of complete, valid frames.
pub fn decode_all(wire: &[u8], sender: Role) -> Vec<Frame> {
    decode_all_rsv(wire, sender, 0)
}

/// [`decode_all`] allowing the RSV bits in `rsv` (0b100: RSV1, claimed by
/// permessage-deflate).
pub fn decode_all_rsv(wire: &[u8], sender: Role, rsv: u8) -> Vec<Frame> {
    let mut dec = FrameDecoder::new(sender.peer(), usize::MAX);
    dec.set_allowed_rsv(rsv);
    let mut buf = BytesMut::from(wire);
    let mut frames = Vec::new();
    while !buf.is_empty() {
        match dec.decode(&mut buf) {
            Ok(Some(f)) => frames.push(f),
            Ok(None) => panic!("truncated frame at the end of {wire:02x?}"),
            Err(e) => panic!("invalid frame on the wire: {e}: {wire:02x?}"),
        }
    }
    frames
}

/// The close frames in `wire` (written by `sender`), parsed. `None` entries
/// are close frames without a status code.
pub fn close_frames(wire: &[u8], sender: Role) -> Vec<Option<CloseFrame>> {
    decode_all(wire, sender)
        .into_iter()
        .filter(|f| f.header.opcode == OpCode::Close)
        .map(|f| CloseFrame::parse(&f.payload).expect("a valid close payload"))
        .collect()
}

/// The status code of the single close frame `sender` wrote, which must be
/// the last frame on the wire.
pub fn sole_close_code(wire: &[u8], sender: Role) -> u16 {
    let frames = decode_all(wire, sender);
    let closes: Vec<_> = frames
        .iter()
        .filter(|f| f.header.opcode == OpCode::Close)
        .collect();
    assert_eq!(closes.len(), 1, "exactly one close frame in {wire:02x?}");
    assert_eq!(
        frames.last().unwrap().header.opcode,
        OpCode::Close,
        "nothing follows a close frame"
    );
    let frame = CloseFrame::parse(&closes[0].payload)
        .expect("valid close payload")
        .expect("close frame carries a status code");
    frame.code.0
}
