//! Fuzzes string expansion: arbitrary expansion strings must expand or
//! fail with an `ExpandError`, never panic or hang.
//!
//! Run from `crates/conf/fuzz` (stable toolchain, no sanitizer):
//!     cargo fuzz run -s none expand -- -max_total_time=60
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxim_conf::{expand, expand_bool, expand_with_config, Config, ListKind, MapContext};

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let ctx = MapContext::new()
        .var("local_part", "user")
        .var("domain", "example.com")
        .var("h_subject:", "hello")
        .var("evil", "${if eq{a}{a}{x}}")
        .file("/f", "a: b\n*.w.ex: w\n*: star\n");
    let _ = expand(&s, &ctx);
    let _ = expand_bool(&s, &ctx);
    let mut cfg = Config::default();
    cfg.named_lists.insert(ListKind::Domain, "d", "a.ex : *.b.ex : +d");
    let _ = expand_with_config(&s, &ctx, &cfg);
});
