//! `FrameDecoder` for the client role (it receives unmasked server frames) on any
//! bytes, fed in chunks whose sizes come from the input. See
//! `wsproto_fuzz::decoder_target` for the input layout and the invariants.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsproto::Role;

fuzz_target!(|data: &[u8]| {
    wsproto_fuzz::decoder_target(Role::Client, data);
});
