use super::envelope::size_param;

/// SIZE= is bounded as Exim bounds it (CVE-2020-28017 class: no
/// wrap-round): huge and negative sizes are too big, junk is no size.
#[test]
fn size_parameter_bounds() {
    let max = i32::MAX as u64;
    assert_eq!(size_param("1000"), Some(1000));
    assert_eq!(size_param("+7"), Some(7));
    assert_eq!(size_param("-0"), Some(0));
    assert_eq!(size_param("-1"), Some(max));
    assert_eq!(size_param("99999999999999999999999"), Some(max));
    assert_eq!(size_param("18446744073709551617"), Some(max));
    assert_eq!(size_param("4294967296"), Some(max));
    for junk in ["", "-", "0x10", "1e9", "12 ", " 12", "1-2"] {
        assert_eq!(size_param(junk), None, "{junk:?}");
    }
}
use super::*;

#[test]
fn identifies_commands_like_exim() {
    assert_eq!(identify(b"MAIL FROM:<a@b>").map(|v| v.0), Some(Verb::Mail));
    assert_eq!(identify(b"mail from: <a@b>").map(|v| v.0), Some(Verb::Mail));
    assert_eq!(
        identify(b"mail from:x").map(|v| (v.0, v.2)),
        Some((Verb::Mail, 10))
    );
    assert_eq!(identify(b"MAIL  FROM:<a@b>"), None);
    assert_eq!(identify(b"DATA").map(|v| v.0), Some(Verb::Data));
    assert_eq!(identify(b"DATAX"), None);
    assert_eq!(
        identify(b"data x").map(|v| (v.0, v.1)),
        Some((Verb::Data, false))
    );
    assert_eq!(identify(b"STARTTLS").map(|v| v.0), Some(Verb::StartTls));
    assert_eq!(identify(b"QUI"), None);
    assert_eq!(identify(b""), None);
}

#[test]
fn sync_rules_follow_pipelining() {
    for v in [
        Verb::Helo,
        Verb::Ehlo,
        Verb::Data,
        Verb::Noop,
        Verb::StartTls,
    ] {
        assert!(v.needs_sync(true) && v.needs_sync(false), "{v:?}");
    }
    for v in [Verb::Mail, Verb::Rcpt, Verb::Rset] {
        assert!(!v.needs_sync(true) && v.needs_sync(false), "{v:?}");
    }
    for v in [Verb::Quit, Verb::Auth, Verb::Help, Verb::Bdat] {
        assert!(!v.needs_sync(true) && !v.needs_sync(false), "{v:?}");
    }
}

#[test]
fn helo_argument_check() {
    let s = ServerSession::new(ServerConfig {
        helo_allow_chars: "_".into(),
        ..ServerConfig::default()
    });
    for ok in [
        "a.b-c",
        "A1",
        "x_y",
        "[127.0.0.1]",
        "[IPv6:::1]",
        "[ipv4:1.2.3.4]",
        "[::1]",
    ] {
        assert!(s.check_helo(ok), "{ok}");
    }
    for bad in [
        "",
        "a b",
        "a@b",
        "[1.2.3]",
        "[IPv6:1.2.3.4]",
        "[1.2.3.4",
        "ü",
    ] {
        assert!(!s.check_helo(bad), "{bad}");
    }
    let junk = ServerSession::new(ServerConfig {
        helo_accept_junk: true,
        ..ServerConfig::default()
    });
    assert!(junk.check_helo("any thing @ all"));
}

#[test]
fn hello_text_forms() {
    assert_eq!(
        hello_text("abcd", None, None, Some("127.0.0.1")),
        "Hello abcd [127.0.0.1]"
    );
    assert_eq!(
        hello_text("abcd", Some("localhost"), Some("u"), Some("::1")),
        "Hello u at localhost [::1]"
    );
    assert_eq!(hello_text("x", None, None, None), "Hello x");
}

#[test]
fn output_can_be_consumed_partially() {
    let mut s = ServerSession::new(ServerConfig::default());
    s.greet(Reply::new(220, "hi")).unwrap();
    assert!(s.has_output());
    s.consume_output(4);
    assert_eq!(s.output(), b"hi\r\n");
    s.consume_output(100);
    assert!(!s.has_output());
}

/// Feed `bytes`, answer every event that needs it (354 to DATA, 250
/// otherwise), and report (lines received, mid-line).
fn feed(s: &mut ServerSession, bytes: &[u8]) -> (u64, bool) {
    s.handle_input(bytes);
    while let Some(ev) = s.poll_event() {
        if ev.needs_response() {
            let code = if matches!(ev, Event::Data) { 354 } else { 250 };
            s.respond(Reply::new(code, "OK")).unwrap();
        }
    }
    (s.lines_received(), s.mid_line())
}

#[test]
fn partial_lines_are_visible_for_line_timeouts() {
    let mut s = ServerSession::new(ServerConfig {
        enforce_sync: false,
        ..ServerConfig::default()
    });
    s.greet(Reply::new(220, "hi")).unwrap();
    assert_eq!(feed(&mut s, b""), (0, false));
    assert_eq!(feed(&mut s, b"NO"), (0, true));
    assert_eq!(feed(&mut s, b"OP\r\nNO"), (1, true));
    assert_eq!(feed(&mut s, b"OP\r\n"), (2, false));
    // An over-long line being discarded is still a partial line.
    assert_eq!(feed(&mut s, &[b'x'; 20_000]), (2, true));
    assert_eq!(feed(&mut s, b"\r\n"), (3, false));
    // Body lines count too, a CR waiting for its LF is mid-line, and so
    // is a lone dot that may turn out to be the terminator.
    feed(&mut s, b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n");
    assert_eq!(feed(&mut s, b""), (6, false));
    assert_eq!(feed(&mut s, b"Subject: x\r"), (6, true));
    assert_eq!(feed(&mut s, b"\n\r\nbody"), (8, true));
    assert_eq!(feed(&mut s, b"\r\n"), (9, false));
    assert_eq!(feed(&mut s, b"."), (9, true));
    assert_eq!(feed(&mut s, b"\r\n"), (10, false));
    assert_eq!(s.state(), SessionState::Command);
    assert_eq!(feed(&mut s, b"QU"), (10, true));
}
