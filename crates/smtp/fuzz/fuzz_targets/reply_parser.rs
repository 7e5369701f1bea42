//! Arbitrary server bytes into the reply parser and the EHLO capability
//! parser: no panics, codes always in range.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxim_smtp::{EhloCapabilities, ReplyParser};

fuzz_target!(|data: &[u8]| {
    let mut p = ReplyParser::new();
    p.feed(data);
    for _ in 0..1000 {
        match p.next_reply() {
            Ok(Some(r)) => {
                assert!((200..600).contains(&r.code));
                let _ = EhloCapabilities::from_reply(&r);
                let _ = r.to_bytes();
            }
            Ok(None) => break,
            Err(_) => {}
        }
    }
});
