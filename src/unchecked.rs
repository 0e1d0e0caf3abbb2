//! The crate's only `unsafe` code, kept to one function.
//!
//! `Utf8Bytes::as_str` used to re-validate its bytes on every call (the crate
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

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "invalid UTF-8")]
    fn invalid_bytes_are_caught_in_debug_builds() {
        let _ = str_from_validated(&[0xff, 0xfe]);
    }
}
