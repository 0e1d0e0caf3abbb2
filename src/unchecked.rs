//! The crate's only `unsafe` code, each piece measured to pay.
//!
//! **`extend_xor`** copies and masks in one pass, writing into a buffer's
//! spare capacity (a safe copy-then-mask reads and writes every byte twice):
//! in `benches/core.rs` it took `decode_binary/1MiB` from 43 to 28 µs and
//! `encode_client/64KiB` from 2.66 to 1.47 µs. It is fuzzed by the `mask`
//! target against the safe `apply_mask`, with and without AVX2.
//!
//! **AVX2 and AVX-512 masking**: `extend_xor` and `xor_in_place` (behind
//! `apply_mask`) run the same safe loops compiled for AVX2 or AVX-512F when
//! std's run-time detection finds them (calling a `target_feature` function
//! is `unsafe`); the gains are at `width`.
//!
//! **`str_from_validated`**: `Utf8Bytes::as_str` used to re-validate its
//! bytes on every call (the crate was `forbid(unsafe_code)`); `benches/core.rs` (`decode_text`, member
//! `wsproto_as_str`) showed that doing so costs applications that read their
//! text about 1.6x the whole decode time from 1 KiB up (152 µs -> 243 µs per
//! MiB of mixed-script text), so the validation done on receipt is trusted.
//!
//! Every `Utf8Bytes` is built through a path that validates: `TryFrom`
//! (simdutf8), `From<String>`/`From<&str>` (already `str`), the connection
//! (incremental validation of every byte of the message, finished at its
//! end, or `simdutf8` on a whole small message), close-frame parsing and
//! `Arbitrary` (from a `String`). `Connection::poll_event_ref` lends text
//! read in place through it too: the lent bytes are the message's, validated
//! as they were unmasked and not touched again until the borrow ends. The
//! fuzz targets run with debug assertions, so the check below re-validates
//! there on every call.

#![allow(unsafe_code)]

use core::mem::MaybeUninit;

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
    extend_xor_with(buf, src, k64, Width::Avx512)
}

/// The widest masking loop allowed: tests and the fuzz target run each.
/// The loop taken is the narrower of this and what the CPU has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
// without run-time detection only the tests ask for the wide loops
#[cfg_attr(not(all(feature = "std", target_arch = "x86_64")), allow(dead_code))]
pub(crate) enum Width {
    /// The portable loop (which the compiler vectorizes for the baseline
    /// target, SSE2 on x86-64).
    Portable,
    /// The same loop compiled for AVX2.
    Avx2,
    /// The same loop compiled for AVX-512F.
    Avx512,
}

/// `extend_xor`, with the loops allowed up to `max`.
pub(crate) fn extend_xor_with(buf: &mut BytesMut, src: &[u8], k64: u64, max: Width) {
    buf.reserve(src.len());
    let dst = &mut buf.spare_capacity_mut()[..src.len()];
    match width(src.len()).min(max) {
        // SAFETY: `width` saw the CPU support AVX-512F.
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        Width::Avx512 => unsafe { xor_into_avx512(dst, src, k64) },
        // SAFETY: `width` saw the CPU support AVX2.
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        Width::Avx2 => unsafe { xor_into_avx2(dst, src, k64) },
        _ => xor_into(dst, src, k64),
    }
    // SAFETY: `xor_into` wrote every one of the first `src.len()` spare
    // bytes (see there), and `reserve` made them part of the allocation.
    unsafe { buf.set_len(buf.len() + src.len()) }
}

/// `data ^= k64`, the pattern repeated.
pub(crate) fn xor_in_place(data: &mut [u8], k64: u64) {
    xor_in_place_with(data, k64, Width::Avx512)
}

/// `xor_in_place`, with the loops allowed up to `max`.
pub(crate) fn xor_in_place_with(data: &mut [u8], k64: u64, max: Width) {
    match width(data.len()).min(max) {
        // SAFETY: `width` saw the CPU support AVX-512F.
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        Width::Avx512 => unsafe { xor_in_place_avx512(data, k64) },
        // SAFETY: `width` saw the CPU support AVX2.
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        Width::Avx2 => unsafe { xor_in_place_avx2(data, k64) },
        _ => crate::mask::xor_words(data, k64),
    }
}

/// The widest loop to take for `len` bytes: what the CPU has (detected at
/// run time by std, which caches it), for data long enough to pay for the
/// check. `benches/core.rs`: AVX2 took `encode_client/16KiB` 410 -> 320 ns,
/// `unmask/64KiB` 1.14 -> 0.84 us, `unmask/1KiB` 18.3 -> 15.1 ns (AMD
/// EPYC); AVX-512 took in-place masking of 16 KiB 97 -> 67 ns (Xeon, see
/// docs/performance.md).
#[cfg(all(feature = "std", target_arch = "x86_64"))]
fn width(len: usize) -> Width {
    if len < 128 {
        Width::Portable
    } else if std::is_x86_feature_detected!("avx512f") {
        Width::Avx512
    } else if std::is_x86_feature_detected!("avx2") {
        Width::Avx2
    } else {
        Width::Portable
    }
}

/// Without std (no run-time detection) or off x86-64: the portable loop.
#[cfg(not(all(feature = "std", target_arch = "x86_64")))]
fn width(_len: usize) -> Width {
    Width::Portable
}

/// `xor_into` compiled for AVX2: the same code, twice as wide.
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[target_feature(enable = "avx2")]
unsafe fn xor_into_avx2(dst: &mut [MaybeUninit<u8>], src: &[u8], k64: u64) {
    xor_into(dst, src, k64)
}

/// `xor_into` compiled for AVX-512F: four times as wide.
///
/// # Safety
/// The CPU must support AVX-512F.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[target_feature(enable = "avx512f")]
unsafe fn xor_into_avx512(dst: &mut [MaybeUninit<u8>], src: &[u8], k64: u64) {
    xor_into(dst, src, k64)
}

/// `xor_words` compiled for AVX2, its stores aligned.
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[target_feature(enable = "avx2")]
unsafe fn xor_in_place_avx2(data: &mut [u8], k64: u64) {
    xor_in_place_aligned(data, k64)
}

/// `xor_words` compiled for AVX-512F, its stores aligned.
///
/// # Safety
/// The CPU must support AVX-512F.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[target_feature(enable = "avx512f")]
unsafe fn xor_in_place_avx512(data: &mut [u8], k64: u64) {
    xor_in_place_aligned(data, k64)
}

/// `xor_words` from the first 64-byte boundary on, when the data is long
/// enough for straddling stores to matter (a buffer from the allocator is
/// 16-byte aligned; in-place masking of 64 KiB at 16 bytes off: 595 -> 410
/// ns aligned).
#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[inline(always)]
fn xor_in_place_aligned(data: &mut [u8], k64: u64) {
    let lead = if data.len() >= 512 {
        (data.as_ptr() as usize).wrapping_neg() % 64
    } else {
        0
    };
    // in place, the lead cannot be an overlapping block (XOR twice undoes)
    let (head, data) = data.split_at_mut(lead);
    crate::mask::xor_words(head, k64);
    crate::mask::xor_words(data, phase(k64, lead))
}

/// Write `src ^ k64` into `dst`: every byte of `dst`, which must be as long
/// as `src`. Safe code; `extend_xor_with` relies on it writing everything.
#[inline(always)]
fn xor_into(dst: &mut [MaybeUninit<u8>], src: &[u8], k64: u64) {
    assert_eq!(dst.len(), src.len());
    let len = src.len();
    if len < 128 {
        return xor_words_into(dst, src, k64);
    }
    // Wide stores that straddle cache lines cost twice, so the body is
    // stored from the destination's first 64-byte boundary (a frame header
    // in front of the payload leaves it 2 to 14 bytes off). The bytes before
    // it and after the body's last whole line are one unaligned 64-byte
    // block each, overlapping the body: writing a byte twice with the same
    // value is harmless here, and a byte loop over the up to 63 bytes of
    // lead cost as much as the whole 16 KiB body's stores did
    // (`encode_client/16KiB`, see docs/performance.md).
    let lead = (dst.as_ptr() as usize).wrapping_neg() % 64;
    if lead > 0 {
        xor_words_into(&mut dst[..64], &src[..64], k64);
    }
    let end = lead + (len - lead) / 64 * 64;
    xor_words_into(&mut dst[lead..end], &src[lead..end], phase(k64, lead));
    if end < len {
        let start = len - 64;
        xor_words_into(&mut dst[start..], &src[start..], phase(k64, start));
    }
}

/// The pattern `k64` (aligned to payload position 0) as seen from byte `at`.
#[inline(always)]
fn phase(k64: u64, at: usize) -> u64 {
    k64.rotate_right(8 * (at % 4) as u32)
}

/// `xor_into` without the alignment: word by word (which the compiler
/// vectorizes), then the last bytes.
#[inline(always)]
fn xor_words_into(dst: &mut [MaybeUninit<u8>], src: &[u8], k64: u64) {
    let mut dst_words = dst.chunks_exact_mut(8);
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
        .zip(k64.to_le_bytes())
    {
        d.write(s ^ k);
    }
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

    /// Every loop, every length 0..=300 (under and over the wide-loop
    /// threshold, every tail), every key phase, and bytes already in the
    /// buffer (a buffer that must grow, and one that need not with the
    /// destination 0, 1 and 63 bytes short of a cache line): the same as
    /// copying and then masking byte by byte.
    #[test]
    fn extend_xor_matches_bytewise_mask() {
        let src: alloc::vec::Vec<u8> = (0..300u32).map(|i| (i * 37) as u8 ^ 0x5a).collect();
        let key = [0x12, 0x34, 0x56, 0x78];
        for max in [Width::Portable, Width::Avx2, Width::Avx512] {
            for len in 0..=src.len() {
                for offset in 0..4 {
                    let grows = [0, 1, 2, 5, 8, 14, 31, 33, 60, 63].map(|pre| (pre, None));
                    let leads = [0, 1, 63].map(|lead| (0, Some(lead)));
                    for (pre, lead) in grows.into_iter().chain(leads) {
                        let (mut buf, pre) = match lead {
                            None => (BytesMut::with_capacity(pre + len / 2), pre),
                            Some(lead) => {
                                let buf = BytesMut::with_capacity(64 + len);
                                let base = buf.as_ptr() as usize % 64;
                                (buf, (128 - lead - base) % 64)
                            }
                        };
                        buf.extend_from_slice(&src[..pre]);
                        if let Some(lead) = lead {
                            let dst = buf.as_ptr() as usize + pre;
                            assert_eq!(dst.wrapping_neg() % 64, lead, "no reallocation");
                        }
                        let k64 = crate::mask::key_pattern(key, offset);
                        extend_xor_with(&mut buf, &src[..len], k64, max);
                        let expect: alloc::vec::Vec<u8> = src[..len]
                            .iter()
                            .enumerate()
                            .map(|(i, b)| b ^ key[(i + offset) % 4])
                            .collect();
                        assert_eq!(&buf[..pre], &src[..pre]);
                        assert_eq!(&buf[pre..], &expect[..], "len {len} offset {offset}");
                    }
                }
            }
        }
    }

    /// Every in-place loop, every length 0..=300 and some over 512 (where
    /// the wide loops align their stores), every key phase, every start
    /// alignment within a cache line.
    #[test]
    fn xor_in_place_matches_bytewise_mask() {
        let src: alloc::vec::Vec<u8> = (0..1200u32).map(|i| (i * 91) as u8 ^ 0xa5).collect();
        let key = [0xde, 0xad, 0xbe, 0xef];
        let lens = (0..=300).chain([511, 512, 513, 700, 1000, 1099]);
        for max in [Width::Portable, Width::Avx2, Width::Avx512] {
            for len in lens.clone() {
                for offset in 0..4 {
                    for start in [0, 1, 2, 3, 5, 8, 15, 16, 31, 47, 63, 64, 100] {
                        let mut data = src[start..start + len].to_vec();
                        xor_in_place_with(&mut data, crate::mask::key_pattern(key, offset), max);
                        for (i, (d, s)) in data.iter().zip(&src[start..]).enumerate() {
                            assert_eq!(*d, s ^ key[(i + offset) % 4], "len {len} at {i}");
                        }
                    }
                }
            }
        }
    }

    /// On a CPU with AVX2 or AVX-512F (and std), long inputs take the
    /// widest loop it has; short ones never do.
    #[test]
    fn the_wide_loop_is_taken_where_it_should_be() {
        assert_eq!(width(127), Width::Portable);
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        assert_eq!(
            width(128),
            if std::is_x86_feature_detected!("avx512f") {
                Width::Avx512
            } else if std::is_x86_feature_detected!("avx2") {
                Width::Avx2
            } else {
                Width::Portable
            }
        );
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "invalid UTF-8")]
    fn invalid_bytes_are_caught_in_debug_builds() {
        let _ = str_from_validated(&[0xff, 0xfe]);
    }
}
