//! Internals reachable by the fuzz targets only (built with `cfg(fuzzing)`,
//! which cargo-fuzz sets). Not part of the public API.

/// The end of an HTTP head in `buf`, scanning from `from` (see the handshake
/// parsers).
pub fn find_head_end(buf: &[u8], from: usize) -> Option<usize> {
    crate::handshake::find_head_end(buf, from)
}

/// Whether `data` is valid UTF-8 according to the crate's bulk validator.
pub fn utf8_is_valid(data: &[u8]) -> bool {
    crate::message::utf8::is_valid(data)
}

/// Append `src` to `buf` masked with `key` from payload position `offset`
/// (the one-pass copy of `src/unchecked.rs`), with its loops allowed up to
/// `width` (0 portable, 1 AVX2, 2 or more AVX-512F; each taken only when the
/// CPU has it).
pub fn extend_masked(
    buf: &mut bytes::BytesMut,
    src: &[u8],
    key: [u8; 4],
    offset: usize,
    width: u8,
) {
    let k64 = crate::mask::key_pattern(key, offset);
    crate::unchecked::extend_xor_with(buf, src, k64, max_width(width))
}

/// `apply_mask` with its loops allowed up to `width` (as for
/// `extend_masked`).
pub fn apply_mask(data: &mut [u8], key: [u8; 4], offset: usize, width: u8) {
    let k64 = crate::mask::key_pattern(key, offset);
    crate::unchecked::xor_in_place_with(data, k64, max_width(width))
}

fn max_width(width: u8) -> crate::unchecked::Width {
    use crate::unchecked::Width;
    match width {
        0 => Width::Portable,
        1 => Width::Avx2,
        _ => Width::Avx512,
    }
}
