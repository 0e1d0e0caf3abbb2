//! Payload masking (RFC 6455 §5.3) and the entropy it needs.
//!
//! The core draws no randomness of its own: a client connection takes its
//! masking keys from a [`MaskSource`]. With the `std` feature,
//! [`OsMaskSource`] (the default for clients) provides keys from the
//! operating system's CSPRNG, as §10.3 requires ("unpredictable").

use alloc::boxed::Box;

/// XOR `data` with the 4-byte masking `key`, where `data` starts `offset`
/// bytes into the frame's payload (so a payload can be unmasked in pieces as
/// it arrives). Masking and unmasking are the same operation.
///
/// ```
/// let key = [1, 2, 3, 4];
/// let mut whole = *b"Hello, world";
/// wsproto::apply_mask(&mut whole, key, 0);
/// // the same result in two pieces:
/// let mut pieces = *b"Hello, world";
/// let (a, b) = pieces.split_at_mut(5);
/// wsproto::apply_mask(a, key, 0);
/// wsproto::apply_mask(b, key, 5);
/// assert_eq!(whole, pieces);
/// ```
pub fn apply_mask(data: &mut [u8], key: [u8; 4], offset: usize) {
    if key == [0; 4] {
        // XOR with zero: nothing to do (the connection zeroes the key of a
        // frame it unmasked while buffering it)
        return;
    }
    crate::unchecked::xor_in_place(data, key_pattern(key, offset));
}

/// `data ^= k64`, repeated (the portable body of `xor_in_place`).
#[inline(always)]
pub(crate) fn xor_words(data: &mut [u8], k64: u64) {
    // 32-byte blocks of four independent words: the compiler turns these
    // into SIMD XORs (checked in benches/core.rs `unmask`).
    let mut blocks = data.chunks_exact_mut(32);
    for block in &mut blocks {
        for word in block.chunks_exact_mut(8) {
            let v = u64::from_le_bytes(word.try_into().expect("8 bytes")) ^ k64;
            word.copy_from_slice(&v.to_le_bytes());
        }
    }
    let mut words = blocks.into_remainder().chunks_exact_mut(8);
    for word in &mut words {
        let v = u64::from_le_bytes(word.try_into().expect("8 bytes")) ^ k64;
        word.copy_from_slice(&v.to_le_bytes());
    }
    for (b, k) in words.into_remainder().iter_mut().zip(k64.to_le_bytes()) {
        *b ^= k;
    }
}

/// The key twice as a little-endian word, rotated so that its first byte
/// masks the byte at payload position `offset`: byte order is fixed, so this
/// is endian-independent.
pub(crate) fn key_pattern(key: [u8; 4], offset: usize) -> u64 {
    let k32 = u32::from_le_bytes(key).rotate_right(8 * (offset % 4) as u32);
    u64::from(k32) | (u64::from(k32) << 32)
}

/// Append `src` to `buf` masked (or unmasked: the same XOR) with `key`
/// from payload position `offset`, in one pass (see `src/unchecked.rs`).
pub(crate) fn extend_masked(buf: &mut bytes::BytesMut, src: &[u8], key: [u8; 4], offset: usize) {
    crate::unchecked::extend_xor(buf, src, key_pattern(key, offset));
}

/// A source of unpredictable bytes for masking keys and handshake nonces.
///
/// Implemented for any `FnMut(&mut [u8]) + Send` closure, which is handy for
/// deterministic tests:
///
/// ```
/// use wsproto::MaskSource;
/// let mut counter = 0u8;
/// let mut src = move |buf: &mut [u8]| {
///     for b in buf { counter = counter.wrapping_add(1); *b = counter; }
/// };
/// assert_eq!(src.next_mask(), [1, 2, 3, 4]);
/// ```
pub trait MaskSource: Send {
    /// Fill `dest` with unpredictable bytes.
    fn fill(&mut self, dest: &mut [u8]);

    /// A fresh masking key.
    fn next_mask(&mut self) -> [u8; 4] {
        let mut key = [0u8; 4];
        self.fill(&mut key);
        key
    }
}

impl<F: FnMut(&mut [u8]) + Send> MaskSource for F {
    fn fill(&mut self, dest: &mut [u8]) {
        self(dest)
    }
}

impl MaskSource for Box<dyn MaskSource> {
    fn fill(&mut self, dest: &mut [u8]) {
        (**self).fill(dest)
    }

    fn next_mask(&mut self) -> [u8; 4] {
        (**self).next_mask()
    }
}

/// Masking keys from a cryptographically secure generator seeded by the
/// operating system: `rand`'s thread-local generator (ChaCha12, reseeded
/// from the OS every 64 KiB of output), as §10.3 asks ("derived from a
/// strong source of entropy").
///
/// Asking the OS for every key (or even for 64 at a time) is slow: a
/// `getrandom` call of 256 bytes took ~720 ns here, 11 ns per key, more
/// than masking a 1 KiB payload. The generator hands a key out in a few
/// nanoseconds and keeps nothing per connection. Like any user-space
/// generator it is not reseeded by a `fork`: a process that forks while
/// clients are open should give the child's clients a new source.
///
/// ```
/// use wsproto::{MaskSource, OsMaskSource};
/// let mut src = OsMaskSource::new();
/// let (a, b) = (src.next_mask(), src.next_mask());
/// # let _ = (a, b);
/// ```
#[cfg(feature = "std")]
#[derive(Clone, Copy, Default)]
pub struct OsMaskSource {
    _private: (),
}

#[cfg(feature = "std")]
impl OsMaskSource {
    /// A new source (the thread's generator is seeded on first use).
    pub fn new() -> Self {
        OsMaskSource { _private: () }
    }
}

#[cfg(feature = "std")]
impl core::fmt::Debug for OsMaskSource {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("OsMaskSource")
    }
}

#[cfg(feature = "std")]
impl MaskSource for OsMaskSource {
    fn fill(&mut self, dest: &mut [u8]) {
        // Per call, not kept: the handle is not `Send` and connections
        // move between threads. An OS without a working RNG cannot run a
        // secure client at all: seeding panics, there is no predictable
        // fallback.
        rand::Rng::fill_bytes(&mut rand::rng(), dest);
    }

    fn next_mask(&mut self) -> [u8; 4] {
        // one word from the generator's block, not a byte-slice fill
        rand::Rng::next_u32(&mut rand::rng()).to_le_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(data: &mut [u8], key: [u8; 4], offset: usize) {
        for (i, b) in data.iter_mut().enumerate() {
            *b ^= key[(offset + i) % 4];
        }
    }

    #[test]
    fn matches_naive_for_all_offsets_and_lengths() {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        for len in 0..40 {
            for offset in 0..8 {
                let orig: alloc::vec::Vec<u8> = (0..len as u8).collect();
                let mut a = orig.clone();
                let mut b = orig.clone();
                apply_mask(&mut a, key, offset);
                naive(&mut b, key, offset);
                assert_eq!(a, b, "len {len} offset {offset}");
            }
        }
    }

    #[test]
    fn rfc_example_masked_hello() {
        // RFC 6455 §5.7: "Hello" masked with 37 fa 21 3d.
        let mut data = *b"Hello";
        apply_mask(&mut data, [0x37, 0xfa, 0x21, 0x3d], 0);
        assert_eq!(data, [0x7f, 0x9f, 0x4d, 0x51, 0x58]);
    }

    #[cfg(feature = "std")]
    #[test]
    fn os_source_differs_between_calls() {
        let mut src = OsMaskSource::new();
        let keys: std::collections::HashSet<[u8; 4]> = (0..200).map(|_| src.next_mask()).collect();
        // 200 draws from 2^32 values: a collision is ~5e-6 likely; many equal
        // keys would mean the buffer is not being refilled or advanced.
        assert!(keys.len() >= 198);
    }
}
