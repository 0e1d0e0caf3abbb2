//! The crate's `unsafe` code (`src/unchecked.rs`): `extend_masked` writes
//! straight into a buffer's spare capacity and then sets its length; both
//! it and in-place masking have AVX2 and AVX-512F loops behind run-time
//! detection (the in-place ones align their stores from 512 bytes up).
//!
//! Invariants, for any bytes, key, payload offset, existing buffer contents
//! and spare capacity (including none, and the source cut anywhere), with
//! each loop width allowed (the two pieces of the copy take different ones):
//! * the bytes already in the buffer are unchanged;
//! * exactly `src.len()` bytes are appended, equal to `src` masked byte by
//!   byte (`key[(offset + i) % 4]`, the RFC's definition);
//! * in-place masking (every loop) gives the same bytes, and masking them
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
    width: u8,
    src: Vec<u8>,
}

fuzz_target!(|input: Input| {
    let mut buf = BytesMut::with_capacity(input.prefix.len() + input.spare as usize % 4096);
    buf.extend_from_slice(&input.prefix);
    let cut = (input.cut as usize).min(input.src.len());
    let (a, b) = input.src.split_at(cut);
    extend_masked(&mut buf, a, input.key, input.offset, input.width % 3);
    extend_masked(
        &mut buf,
        b,
        input.key,
        input.offset.wrapping_add(cut),
        (input.width / 3) % 3,
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
    for width in 0..3 {
        // at every start within a cache line (the aligned wide loops)
        let skew = usize::from(input.width) % 64;
        let mut in_place = vec![0; skew];
        in_place.extend_from_slice(&input.src);
        apply_mask(&mut in_place[skew..], input.key, input.offset, width);
        assert_eq!(
            in_place[skew..],
            expect[..],
            "in-place masking differs (width {width})"
        );
        let mut back = buf[input.prefix.len()..].to_vec();
        apply_mask(&mut back, input.key, input.offset, width);
        assert_eq!(back, input.src, "masking twice is not the identity");
    }
});
