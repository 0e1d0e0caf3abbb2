//! The crate's `unsafe` code (`src/unchecked.rs`): `extend_masked` writes
//! straight into a buffer's spare capacity and then sets its length.
//!
//! Invariants, for any bytes, key, payload offset, existing buffer contents
//! and spare capacity (including none, and the source cut anywhere):
//! * the bytes already in the buffer are unchanged;
//! * exactly `src.len()` bytes are appended, equal to `src` masked with
//!   `apply_mask` at the same offset (the safe reference);
//! * masking the appended bytes again gives `src` back.
#![no_main]

use arbitrary::Arbitrary;
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use wsproto::apply_mask;
use wsproto::fuzzing::extend_masked;

#[derive(Arbitrary, Debug)]
struct Input {
    prefix: Vec<u8>,
    spare: u16,
    key: [u8; 4],
    offset: usize,
    cut: u16,
    src: Vec<u8>,
}

fuzz_target!(|input: Input| {
    let mut buf = BytesMut::with_capacity(input.prefix.len() + input.spare as usize % 4096);
    buf.extend_from_slice(&input.prefix);
    let cut = (input.cut as usize).min(input.src.len());
    let (a, b) = input.src.split_at(cut);
    extend_masked(&mut buf, a, input.key, input.offset);
    extend_masked(&mut buf, b, input.key, input.offset.wrapping_add(cut));
    assert_eq!(
        &buf[..input.prefix.len()],
        &input.prefix[..],
        "prefix changed"
    );
    assert_eq!(buf.len(), input.prefix.len() + input.src.len(), "length");
    let mut expect = input.src.clone();
    apply_mask(&mut expect, input.key, input.offset);
    assert_eq!(
        &buf[input.prefix.len()..],
        &expect[..],
        "differs from apply_mask"
    );
    let mut back = buf[input.prefix.len()..].to_vec();
    apply_mask(&mut back, input.key, input.offset);
    assert_eq!(back, input.src, "masking twice is not the identity");
});
