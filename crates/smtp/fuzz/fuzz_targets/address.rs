//! Arbitrary MAIL/RCPT arguments: no panics; a parsed path re-parses to the
//! same address.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxim_smtp::parse_path_arg;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(p) = parse_path_arg(s, true) {
        let again = format!("<{}>", p.path.address());
        if !p.path.is_null() {
            let q = parse_path_arg(&again, false).expect("re-parse");
            assert_eq!(q.path.address(), p.path.address());
        }
    }
});
