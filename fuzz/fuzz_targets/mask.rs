//! The crate's `unsafe` code (`src/unchecked.rs`): `extend_masked` writes
//! straight into a buffer's spare capacity and then sets its length; both
//! it and in-place masking have AVX2 loops behind run-time detection.
//!
//! Invariants, for any bytes, key, payload offset, existing buffer contents
//! and spare capacity (including none, and the source cut anywhere), with
//! the AVX2 loops allowed or not:
//! * the bytes already in the buffer are unchanged;
//! * exactly `src.len()` bytes are appended, equal to `src` masked byte by
//!   byte (`key[(offset + i) % 4]`, the RFC's definition);
//! * in-place masking (either loop) gives the same bytes, and masking them
//!   again gives `src` back.
#![no_main]

use arbitrary::Arbitrary;
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use wsproto::fuzzing::{apply_mask, extend_masked};

#[derive(Arbitrary, Debug)]
struct Input {
    prefix: Vec<u8>,
    spare: u16,
    key: [u8; 4],
    offset: usize,
    cut: u16,
    wide: bool,
    src: Vec<u8>,
}

fuzz_target!(|input: Input| {
    let mut buf = BytesMut::with_capacity(input.prefix.len() + input.spare as usize % 4096);
    buf.extend_from_slice(&input.prefix);
    let cut = (input.cut as usize).min(input.src.len());
    let (a, b) = input.src.split_at(cut);
    extend_masked(&mut buf, a, input.key, input.offset, input.wide);
    extend_masked(
        &mut buf,
        b,
        input.key,
        input.offset.wrapping_add(cut),
        !input.wide,
    );
    assert_eq!(
        &buf[..input.prefix.len()],
        &input.prefix[..],
        "prefix changed"
    );
    assert_eq!(buf.len(), input.prefix.len() + input.src.len(), "length");
    let expect: Vec<u8> = input
        .src
        .iter()
        .enumerate()
        .map(|(i, b)| b ^ input.key[input.offset.wrapping_add(i) % 4])
        .collect();
    assert_eq!(
        &buf[input.prefix.len()..],
        &expect[..],
        "differs from bytewise masking"
    );
    for wide in [false, true] {
        let mut in_place = input.src.clone();
        apply_mask(&mut in_place, input.key, input.offset, wide);
        assert_eq!(in_place, expect, "in-place masking differs (wide {wide})");
        let mut back = buf[input.prefix.len()..].to_vec();
        apply_mask(&mut back, input.key, input.offset, wide);
        assert_eq!(back, input.src, "masking twice is not the identity");
    }
});
