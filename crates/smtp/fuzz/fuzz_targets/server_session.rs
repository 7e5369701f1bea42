//! Arbitrary client bytes, split at a fuzzer-chosen point, against a server
//! session that accepts everything: must not panic, and must only ever write
//! well-formed replies.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxim_smtp::{Event, Extensions, Reply, ReplyParser, ServerConfig, ServerSession};

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, input)) = data.split_first() else { return };
    let cfg = ServerConfig {
        enforce_sync: ctl & 1 != 0,
        max_line_len: 64,
        ..ServerConfig::default()
    };
    let ext = Extensions {
        pipelining: true,
        chunking: ctl & 2 != 0,
        starttls: true,
        auth: vec!["PLAIN".into()],
        size: Some(1000),
        eight_bit_mime: true,
        dsn: true,
        smtputf8: true,
        help: true,
        ..Extensions::default()
    };
    let mut s = ServerSession::new(cfg);
    let _ = s.greet(Reply::new(220, "mx"));
    let cut = usize::from(ctl >> 2) % (input.len() + 1);
    let mut out = s.take_output();
    for part in [&input[..cut], &input[cut..]] {
        s.handle_input(part);
        while let Some(ev) = s.poll_event() {
            let _ = match ev {
                Event::Helo { .. } => s.accept_ehlo("mx", "Hello", &ext),
                Event::Auth { .. } => s.respond(Reply::new(334, "")),
                ev if ev.needs_response() => s.respond(Reply::new(250, "OK")),
                _ => Ok(()),
            };
        }
        out.extend(s.take_output());
    }
    let mut p = ReplyParser::new();
    p.feed(&out);
    while let Some(_) = p.next_reply().expect("server output must parse") {}
    assert_eq!(p.buffered(), 0);
});
