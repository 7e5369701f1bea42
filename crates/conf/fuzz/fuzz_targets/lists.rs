//! Fuzzes list matching (domain, host, address, local part lists).
//!
//! Run from `crates/conf/fuzz` (stable toolchain, no sanitizer):
//!     cargo fuzz run -s none lists -- -max_total_time=60
#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use oxim_conf::{match_address, match_domain, match_host, match_local_part, Config, MapContext};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // First line: the list; second line: the subject.
    let (list, subject) = text.split_once('\n').unwrap_or((&text, "a@b.ex"));
    let cfg = Config::default();
    let ctx = MapContext::new().file("/l", "a.ex\n!b.ex\n*.c.ex\n");
    let ip: IpAddr = subject.parse().unwrap_or(IpAddr::from([192, 0, 2, 1]));
    let _ = match_domain(list, subject, &cfg, &ctx);
    let _ = match_local_part(list, subject, &cfg, &ctx);
    let _ = match_address(list, subject, &cfg, &ctx);
    let _ = match_host(list, ip, Some(subject), &cfg, &ctx);
});
