//! Fuzzes the configuration reader (preprocessor, sections, option
//! parsing, ACLs, retry and rewrite rules): it must never panic.
//!
//! Run from `crates/conf/fuzz` (stable toolchain, no sanitizer):
//!     cargo fuzz run -s none parse_config -- -max_total_time=60
//! With AddressSanitizer: `RUSTC_BOOTSTRAP=1 cargo fuzz run parse_config`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxim_conf::{parse_str, MemFs};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // A second file so that `.include /inc` is exercised too.
    let fs = MemFs::new().with("/inc", "qualify_domain = x\nA_MACRO = 1\n");
    let defines = vec![("SERVER".to_string(), "server".to_string())];
    if let Ok(cfg) = parse_str(&text, "/fuzz/configure", &defines, &fs) {
        // Rendering every option must not panic either.
        let _ = cfg.print_item("all", None, false);
        let _ = cfg.print_item("routers", None, false);
        for acl in ["accept", "deny", &text] {
            let _ = cfg.resolve_acl(acl);
        }
    }
});
