//! The crate's only `unsafe` code: two functions, each measured to pay.
//!
//! **`extend_xor`** copies and masks in one pass, writing into a buffer's
//! spare capacity (a safe copy-then-mask reads and writes every byte twice):
//! in `benches/core.rs` it took `decode_binary/1MiB` from 43 to 28 µs and
//! `encode_client/64KiB` from 2.66 to 1.47 µs. It is fuzzed by the `mask`
//! target against the safe `apply_mask`.
//!
//! **`str_from_validated`**: `Utf8Bytes::as_str` used to re-validate its bytes on every call (the crate
//! was `forbid(unsafe_code)`); `benches/core.rs` (`decode_text`, member
//! `wsproto_as_str`) showed that doing so costs applications that read their
//! text about 1.6x the whole decode time from 1 KiB up (152 µs -> 243 µs per
//! MiB of mixed-script text), so the validation done on receipt is trusted.
//!
//! Every `Utf8Bytes` is built through a path that validates: `TryFrom`
//! (simdutf8), `From<String>`/`From<&str>` (already `str`), the connection
//! (incremental validation of every byte of the message, finished at its
//! end, or `simdutf8` on a whole small message), close-frame parsing and
//! `Arbitrary` (from a `String`). The fuzz targets run with debug assertions,
//! so the check below re-validates there on every call.

#![allow(unsafe_code)]

use bytes::BytesMut;

/// `bytes` as `str`, trusting that the caller's type invariant holds.
///
/// Callers must only pass bytes that were validated as UTF-8 and have not
/// changed since (`Utf8Bytes` is immutable and its field private).
pub(crate) fn str_from_validated(bytes: &[u8]) -> &str {
    debug_assert!(
        core::str::from_utf8(bytes).is_ok(),
        "Utf8Bytes holds invalid UTF-8"
    );
    // SAFETY: every constructor of `Utf8Bytes` (the only caller) validates
    // its bytes as UTF-8 or takes them from a `str`, and `Utf8Bytes` gives
    // no mutable access to them (see the module comment for the list).
    unsafe { core::str::from_utf8_unchecked(bytes) }
}

/// Append `src` to `buf` XORed with the 8-byte pattern `k64` (a masking key
/// twice, already rotated to the payload position), in one pass: each byte
/// is read once and written once, straight into `buf`'s spare capacity.
pub(crate) fn extend_xor(buf: &mut BytesMut, src: &[u8], k64: u64) {
    buf.reserve(src.len());
    let spare = &mut buf.spare_capacity_mut()[..src.len()];
    let key = k64.to_le_bytes();
    let mut dst_words = spare.chunks_exact_mut(8);
    let mut src_words = src.chunks_exact(8);
    for (d, s) in (&mut dst_words).zip(&mut src_words) {
        let v = (u64::from_le_bytes(s.try_into().expect("8 bytes")) ^ k64).to_le_bytes();
        for (d, v) in d.iter_mut().zip(v) {
            d.write(v);
        }
    }
    for ((d, s), k) in dst_words
        .into_remainder()
        .iter_mut()
        .zip(src_words.remainder())
        .zip(key)
    {
        d.write(s ^ k);
    }
    // SAFETY: the loops above wrote every one of the first `src.len()`
    // spare bytes (`spare` is exactly that long: the word loop covers
    // `src.len() / 8 * 8` bytes, the remainder loop the rest, as `src` and
    // `spare` have the same length), and `reserve` made them part of the
    // allocation.
    unsafe { buf.set_len(buf.len() + src.len()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_the_same_text() {
        for s in ["", "a", "héllo", "😀 mixed ✓ text"] {
            let t = str_from_validated(s.as_bytes());
            assert_eq!(t, s);
            assert_eq!(t.as_ptr(), s.as_ptr(), "no copy");
        }
    }

    /// Every length 0..=40 (the word loop, the remainder loop, both, none),
    /// every offset phase, with and without spare capacity and with bytes
    /// already in the buffer: the same as copying and then `apply_mask`.
    #[test]
    fn extend_xor_matches_copy_then_mask() {
        let src: alloc::vec::Vec<u8> = (0..40u8).map(|i| i.wrapping_mul(37) ^ 0x5a).collect();
        let key = [0x12, 0x34, 0x56, 0x78];
        for len in 0..=src.len() {
            for offset in 0..4 {
                for spare in [0, 3, 64] {
                    let mut buf = BytesMut::with_capacity(2 + spare);
                    buf.extend_from_slice(b"hd");
                    crate::mask::extend_masked(&mut buf, &src[..len], key, offset);
                    let mut expect = src[..len].to_vec();
                    crate::mask::apply_mask(&mut expect, key, offset);
                    assert_eq!(&buf[..2], b"hd");
                    assert_eq!(&buf[2..], &expect[..], "len {len} offset {offset}");
                }
            }
        }
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "invalid UTF-8")]
    fn invalid_bytes_are_caught_in_debug_builds() {
        let _ = str_from_validated(&[0xff, 0xfe]);
    }
}
