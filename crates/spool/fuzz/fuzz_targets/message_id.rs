//! Message id parser: never panics; accepted ids print back identically.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxim_spool::MessageId;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(id) = s.parse::<MessageId>() {
            assert_eq!(id.to_string(), s);
        }
    }
});
