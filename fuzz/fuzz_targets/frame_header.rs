//! `FrameHeader::parse` on any bytes.
//!
//! Invariants:
//! * never panics;
//! * `Ok(None)` only while fewer than `FrameHeader::MAX_LEN` bytes are given;
//! * on `Ok(Some((h, n)))`: `n <= len`, `n == h.encoded_len()`, re-encoding
//!   `h` gives exactly the first `n` bytes (minimal length encoding makes
//!   this an identity), parsing exactly those `n` bytes gives the same
//!   result, and every strict prefix of them is `Ok(None)`;
//! * on `Err(e)`: every prefix is `Ok(None)` or the very same `Err(e)`, and
//!   once a prefix fails every longer one fails the same way (so a split
//!   input fails the same way as a whole one);
//! * the reference parser in `wsproto_fuzz::reference_step` agrees on which
//!   outcome (need more / error / header) and on the header;
//! * the other way round: an arbitrary header (with a legal length) encodes
//!   to bytes that parse back to itself.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use wsproto::frame::FrameHeader;
use wsproto::{Error, Role};
use wsproto_fuzz::{reference_step, RefStep};

fuzz_target!(|data: &[u8]| {
    let whole = FrameHeader::parse(data);
    // Prefix behaviour (headers are at most 14 bytes; longer prefixes see
    // the same first 14 bytes).
    let limit = data.len().min(FrameHeader::MAX_LEN + 1);
    let mut first_err = None;
    for cut in 0..=limit {
        let r = FrameHeader::parse(&data[..cut]);
        match (&r, &first_err) {
            (Err(e), None) => first_err = Some(*e),
            (Err(e), Some(f)) => assert_eq!(e, f, "error changed at prefix {cut}"),
            (Ok(_), Some(f)) => panic!("prefix {cut} parses after an earlier error {f:?}"),
            (Ok(_), None) => {}
        }
        if let Ok(Some((_, n))) = r {
            // the first complete prefix is exactly the header
            assert_eq!(n, cut, "a header completed before its last byte");
            break;
        }
    }
    match whole {
        Ok(None) => {
            assert!(data.len() < FrameHeader::MAX_LEN, "14 bytes always decide");
            assert!(first_err.is_none());
        }
        Ok(Some((h, n))) => {
            assert!(n <= data.len());
            assert!((2..=FrameHeader::MAX_LEN).contains(&n));
            assert_eq!(n, h.encoded_len());
            assert!(h.payload_len < 1 << 63);
            let mut out = [0u8; FrameHeader::MAX_LEN];
            let m = h.encode(&mut out);
            assert_eq!(&out[..m], &data[..n], "re-encoding {h:?}");
            assert_eq!(FrameHeader::parse(&data[..n]), Ok(Some((h, n))));
            for cut in 0..n {
                assert_eq!(FrameHeader::parse(&data[..cut]), Ok(None), "prefix {cut}");
            }
            // bits as on the wire
            assert_eq!(h.fin, data[0] & 0x80 != 0);
            assert_eq!(h.rsv_bits(), (data[0] >> 4) & 7);
            assert_eq!(h.opcode.as_u8(), data[0] & 0x0F);
            assert_eq!(h.mask.is_some(), data[1] & 0x80 != 0);
        }
        Err(e) => {
            assert_eq!(
                first_err,
                Some(e),
                "the whole input fails like its prefixes"
            );
        }
    }

    // Reference parser: with the decoder-level rules switched off (a server
    // role and the mask bit decide masking, an unbounded limit), only
    // header-level violations remain comparable.
    match reference_step(data, Role::Server, u64::MAX) {
        RefStep::NeedHeader => assert_eq!(whole, Ok(None)),
        RefStep::Fail(errs) => {
            let header_level: Vec<_> = errs
                .iter()
                .filter_map(|e| match e {
                    Error::Protocol(p) => Some(*p),
                    _ => None,
                })
                .collect();
            match whole {
                Err(e) => assert!(header_level.contains(&e), "{e:?} not in {errs:?}"),
                // only decoder-level rules broken: the header itself parses
                Ok(Some((h, _))) => {
                    use wsproto::ProtocolError::*;
                    assert!(
                        errs.iter().all(|e| matches!(
                            e,
                            Error::Protocol(
                                ReservedBits
                                    | UnmaskedFrame
                                    | ControlFrameTooLong
                                    | FragmentedControlFrame
                            )
                        )),
                        "{h:?} parsed but the reference says {errs:?}"
                    );
                }
                Ok(None) => panic!("reference says {errs:?}, parse needs more"),
            }
        }
        RefStep::Header { header, len, .. } => {
            assert_eq!(whole, Ok(Some((header, len))));
        }
    }

    // Encode -> parse round trip for an arbitrary header.
    let mut u = Unstructured::new(data);
    if let Ok(mut h) = FrameHeader::arbitrary(&mut u) {
        h.payload_len &= (1 << 63) - 1;
        let mut out = [0u8; FrameHeader::MAX_LEN];
        let n = h.encode(&mut out);
        assert_eq!(n, h.encoded_len());
        assert_eq!(FrameHeader::parse(&out[..n]), Ok(Some((h, n))));
    }
});
