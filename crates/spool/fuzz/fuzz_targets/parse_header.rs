//! `-H` parser: never panics, and whatever it accepts survives a
//! format/parse round trip unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxim_spool::{format_header, parse_header};

fuzz_target!(|data: &[u8]| {
    if let Ok((env, headers)) = parse_header(data) {
        let again = format_header(&env, &headers);
        let (env2, headers2) = parse_header(&again).expect("re-parse of formatted -H");
        assert_eq!(env, env2);
        assert_eq!(headers, headers2);
    }
});
