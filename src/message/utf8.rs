//! Incremental, fail-fast UTF-8 validation.
//!
//! RFC 6455 §8.1 requires failing the connection on invalid UTF-8 text. The
//! Autobahn suite (6.4.*) also checks that an endpoint fails *fast*: at the
//! first byte that can no longer be part of valid UTF-8, even if the message,
//! or the frame, is not complete yet. So the validator is fed payload pieces as
//! they arrive and carries an incomplete code point (at most 3 bytes) across
//! pieces and frames.

use core::str;

/// `data` is valid UTF-8 (bulk check with `simdutf8`).
pub(crate) fn is_valid(data: &[u8]) -> bool {
    simdutf8::basic::from_utf8(data).is_ok()
}

/// The text is not UTF-8 at some byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Utf8Error;

/// Validates a UTF-8 stream fed in pieces of any size.
///
/// ```
/// use wsproto::message::Utf8Validator;
/// let mut v = Utf8Validator::new();
/// let euro = "€".as_bytes(); // e2 82 ac
/// v.feed(&euro[..1]).unwrap();
/// assert_eq!(v.pending(), 1); // an incomplete code point is carried over
/// v.feed(&euro[1..]).unwrap();
/// v.finish().unwrap();
/// // fail-fast: 0xC0 can never start a valid sequence
/// assert!(Utf8Validator::new().feed(&[b'a', 0xC0]).is_err());
/// ```
#[derive(Debug, Clone, Default)]
pub struct Utf8Validator {
    partial: [u8; 4],
    len: u8,
}

/// Length of the sequence a lead byte announces (only called on bytes that
/// `str::from_utf8` accepted as a valid prefix, so 0xC2..=0xF4).
fn sequence_len(lead: u8) -> usize {
    match lead {
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
}

/// Where a code point that may continue past the end of `data` starts:
/// the last lead byte among the final three, if it announces more bytes
/// than are left; else `data.len()`.
fn incomplete_tail_start(data: &[u8]) -> usize {
    let n = data.len();
    for back in 1..=n.min(3) {
        let b = data[n - back];
        if b & 0xC0 == 0x80 {
            continue; // a continuation byte: look further back
        }
        if b >= 0xC0 && sequence_len(b) > back {
            return n - back;
        }
        break;
    }
    n
}

impl Utf8Validator {
    /// A validator at the start of a text.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forget any carried bytes (start of a new message).
    pub fn reset(&mut self) {
        self.len = 0;
    }

    /// Bytes of an incomplete code point at the end of what was fed so far.
    pub fn pending(&self) -> usize {
        self.len as usize
    }

    /// Validate the next piece. Fails as soon as a byte makes the stream
    /// impossible to complete as UTF-8.
    pub fn feed(&mut self, mut data: &[u8]) -> Result<(), Utf8Error> {
        if self.len > 0 {
            let have = self.len as usize;
            let need = sequence_len(self.partial[0]) - have;
            let take = need.min(data.len());
            self.partial[have..have + take].copy_from_slice(&data[..take]);
            let total = have + take;
            match str::from_utf8(&self.partial[..total]) {
                Ok(_) => {}
                // still a valid prefix: more bytes needed
                Err(e) if e.error_len().is_none() => {}
                Err(_) => return Err(Utf8Error),
            }
            if take < need {
                self.len = total as u8;
                return Ok(());
            }
            self.len = 0;
            data = &data[take..];
        }
        // Fast path: `basic` validation (the faster of simdutf8's two) of
        // everything before a code point that may continue in the next piece;
        // `compat` only when that fails, to tell "incomplete" from "invalid".
        let cut = incomplete_tail_start(data);
        if simdutf8::basic::from_utf8(&data[..cut]).is_ok() {
            let tail = &data[cut..];
            if tail.is_empty() {
                return Ok(());
            }
            // a lead byte and fewer continuation bytes than it needs: still
            // a valid prefix, or already impossible (e.g. F5.., ED A0..)
            return match str::from_utf8(tail) {
                Err(e) if e.error_len().is_none() => {
                    self.keep_partial(tail);
                    Ok(())
                }
                _ => Err(Utf8Error),
            };
        }
        match simdutf8::compat::from_utf8(data) {
            Ok(_) => Ok(()),
            // `error_len() == None` means the input ended inside a sequence
            // that is valid so far; anything else is a definite error.
            Err(e) if e.error_len().is_none() => {
                self.keep_partial(&data[e.valid_up_to()..]);
                Ok(())
            }
            Err(_) => Err(Utf8Error),
        }
    }

    /// Hold the start of a code point (at most 3 bytes) that the next piece
    /// continues.
    fn keep_partial(&mut self, tail: &[u8]) {
        self.partial[..tail.len()].copy_from_slice(tail);
        self.len = tail.len() as u8;
    }

    /// End of the text: an incomplete code point is an error.
    pub fn finish(&mut self) -> Result<(), Utf8Error> {
        let ok = self.len == 0;
        self.len = 0;
        if ok {
            Ok(())
        } else {
            Err(Utf8Error)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn check_all_splits(data: &[u8]) -> bool {
        let expect = str::from_utf8(data).is_ok();
        // every single split point, and byte-at-a-time
        for cut in 0..=data.len() {
            let mut v = Utf8Validator::new();
            let ok =
                v.feed(&data[..cut]).is_ok() && v.feed(&data[cut..]).is_ok() && v.finish().is_ok();
            assert_eq!(ok, expect, "split at {cut} of {data:02x?}");
        }
        let mut v = Utf8Validator::new();
        let ok = data.iter().all(|b| v.feed(&[*b]).is_ok()) && v.finish().is_ok();
        assert_eq!(ok, expect, "bytewise {data:02x?}");
        expect
    }

    #[test]
    fn valid_texts() {
        for s in [
            "",
            "abc",
            "κόσμε",
            "€",
            "𝄞 music",
            "\u{10FFFF}",
            "ascii then 한국어",
        ] {
            assert!(check_all_splits(s.as_bytes()));
        }
    }

    #[test]
    fn invalid_texts() {
        let cases: &[&[u8]] = &[
            &[0xC0, 0x80],             // overlong
            &[0xED, 0xA0, 0x80],       // surrogate
            &[0xF4, 0x90, 0x80, 0x80], // > U+10FFFF
            &[0xFF],
            &[0xE2, 0x82], // truncated at end
            &[b'a', 0x80],
            &[
                0xCE, 0xBA, 0xE1, 0xBD, 0xB9, 0xCF, 0x83, 0xCE, 0xBC, 0xCE, 0xB5, 0xED, 0xA0, 0x80,
                0x65, 0x64, 0x69, 0x74, 0x65, 0x64,
            ],
        ];
        for c in cases {
            assert!(!check_all_splits(c));
        }
    }

    #[test]
    fn fails_at_the_first_impossible_byte() {
        // Autobahn 6.4.1-style: valid text, then F4 90 (> U+10FFFF) — the
        // error must surface on the piece holding 0x90, before the rest.
        let mut v = Utf8Validator::new();
        v.feed("κόσμε".as_bytes()).unwrap();
        v.feed(&[0xF4]).unwrap();
        assert_eq!(v.feed(&[0x90]), Err(Utf8Error));
    }

    #[test]
    fn exhaustive_two_byte_sequences() {
        for a in 0u8..=255 {
            for b in 0u8..=255 {
                let data = [a, b];
                let expect = str::from_utf8(&data).is_ok();
                let mut v = Utf8Validator::new();
                let ok = v.feed(&[a]).is_ok() && v.feed(&[b]).is_ok() && v.finish().is_ok();
                assert_eq!(ok, expect, "{data:02x?}");
            }
        }
    }

    /// The index of the first byte after which `data[..=k]` can no longer
    /// be completed to valid UTF-8, computed from std prefix by prefix.
    fn first_impossible_byte(data: &[u8]) -> Option<usize> {
        (0..data.len())
            .find(|&k| matches!(str::from_utf8(&data[..=k]), Err(e) if e.error_len().is_some()))
    }

    #[test]
    fn exhaustive_three_byte_inputs_fail_exactly_at_the_first_impossible_byte() {
        let mut buf = Vec::with_capacity(3);
        let interesting = [
            0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC2, 0xE0, 0xED, 0xF0,
            0xF4, 0xF5, 0xFF,
        ];
        for a in 0u8..=255 {
            for b in interesting {
                for c in interesting {
                    buf.clear();
                    buf.extend_from_slice(&[a, b, c]);
                    let mut v = Utf8Validator::new();
                    let ours = buf.iter().position(|x| v.feed(&[*x]).is_err());
                    assert_eq!(ours, first_impossible_byte(&buf), "{buf:02x?}");
                    // fed whole, the verdict is the same
                    let mut w = Utf8Validator::new();
                    assert_eq!(w.feed(&buf).is_err(), ours.is_some(), "{buf:02x?}");
                }
            }
        }
    }
}
