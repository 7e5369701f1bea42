//! Dot-stuff arbitrary bytes and decode them again: the decoder must see the
//! end exactly at the terminator and return the CRLF-canonical body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxim_smtp::{DataDecoder, DotStuffer, LineEnding};

fuzz_target!(|body: &[u8]| {
    let wire = DotStuffer::stuff_all(body);
    let mut d = DataDecoder::dot_terminated(LineEnding::Crlf, true);
    let mut out = Vec::new();
    assert_eq!(d.decode(&wire, &mut out), wire.len());
    assert!(d.is_ended());
    let mut canon = Vec::new();
    let mut c = DotStuffer::crlf_only();
    c.encode(body, &mut canon);
    c.finish(&mut canon);
    assert_eq!(out, canon);
});
