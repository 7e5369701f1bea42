//! Transcript tables: client input -> exact server output, with Exim's texts.

mod common;

use common::{exim_extensions, transcript};
use oxim_smtp::{Reply, ServerConfig};

#[test]
fn exim_0579_quoted_local_part() {
    let (out, d) = transcript(
        ServerConfig::default(),
        exim_extensions(),
        &[
            "EHLO test\r\n",
            "MAIL FROM:<>\r\n",
            "RCPT TO:<\"name with spaces\"@test.ex>\r\n",
            "DATA\r\n",
            "Subject: test\r\n\r\nbody\r\n.\r\n",
            "QUIT\r\n",
        ],
    );
    assert_eq!(
        out,
        "250-myhost.test.ex Hello test [127.0.0.1]\r\n\
         250-SIZE 52428800\r\n\
         250-8BITMIME\r\n\
         250-PIPELINING\r\n\
         250 HELP\r\n\
         250 OK\r\n\
         250 Accepted\r\n\
         354 Enter message, ending with \".\" on a line by itself\r\n\
         250 OK id=10HmaX-000000005vi-0000\r\n\
         221 myhost.test.ex closing connection\r\n"
    );
    assert_eq!(d.seen.body, b"Subject: test\n\nbody\n");
    assert!(d.s.is_closed());
}

fn cfg() -> ServerConfig {
    ServerConfig::default()
}

const EHLO_REPLY: &str = "250-myhost.test.ex Hello x [127.0.0.1]\r\n\
                          250-SIZE 52428800\r\n\
                          250-8BITMIME\r\n\
                          250-PIPELINING\r\n\
                          250 HELP\r\n";

/// Run `lines` after an accepted `EHLO x`, return the output after the EHLO
/// reply.
fn after_ehlo(cfg: ServerConfig, lines: &[&str]) -> (String, common::Driver) {
    let mut all = vec!["EHLO x\r\n"];
    all.extend_from_slice(lines);
    let (out, d) = transcript(cfg, exim_extensions(), &all);
    let rest = out
        .strip_prefix(EHLO_REPLY)
        .unwrap_or_else(|| panic!("no EHLO reply in {out:?}"))
        .to_owned();
    (rest, d)
}

/// Table of (client lines, expected server output after the EHLO reply).
#[test]
fn bad_input_table() {
    let long = format!("NOOP {}\r\n", "x".repeat(20000));
    let cases: Vec<(Vec<&str>, &str)> = vec![
        // 1 unknown command
        (vec!["FOO bar\r\n"], "500 unrecognized command\r\n"),
        // 2 over-long line
        (
            vec![long.as_str(), "NOOP\r\n"],
            "500 Command line too long\r\n250 OK\r\n",
        ),
        // 3 RCPT before MAIL
        (vec!["RCPT TO:<a@b>\r\n"], "503 sender not yet given\r\n"),
        // 4 DATA without RCPT
        (
            vec!["MAIL FROM:<a@b>\r\n", "DATA\r\n"],
            "250 OK\r\n503 valid RCPT command must precede DATA\r\n",
        ),
        // 5 DATA with nothing at all
        (
            vec!["DATA\r\n"],
            "503 valid RCPT command must precede DATA\r\n",
        ),
        // 6 second MAIL
        (
            vec!["MAIL FROM:<a@b>\r\n", "MAIL FROM:<c@d>\r\n"],
            "250 OK\r\n503 sender already given\r\n",
        ),
        // 7 malformed domain
        (
            vec!["MAIL FROM:<bad@>\r\n"],
            "501 <bad@>: domain missing or malformed\r\n",
        ),
        // 8 missing operand
        (
            vec!["MAIL FROM:\r\n"],
            "501 MAIL must have an address operand\r\n",
        ),
        // 9 RCPT without operand
        (
            vec!["MAIL FROM:<a@b>\r\n", "RCPT TO:\r\n"],
            "250 OK\r\n501 RCPT must have an address operand\r\n",
        ),
        // 10 null recipient
        (
            vec!["MAIL FROM:<a@b>\r\n", "RCPT TO:<>\r\n"],
            "250 OK\r\n501 <>: empty address\r\n",
        ),
        // 11 NUL in a command
        (
            vec!["NOOP a\0b\r\n"],
            "501 NUL characters are not allowed in SMTP commands\r\n",
        ),
        // 12 HELO without argument
        (
            vec!["HELO\r\n"],
            "501 Syntactically invalid HELO argument(s)\r\n",
        ),
        // 13 EHLO with a bad character
        (
            vec!["EHLO foo_bar\r\n"],
            "501 Syntactically invalid EHLO argument(s)\r\n",
        ),
        // 14 EHLO with a bad literal
        (
            vec!["EHLO [1.2.3]\r\n"],
            "501 Syntactically invalid EHLO argument(s)\r\n",
        ),
        // 15 DATA with an argument
        (vec!["DATA now\r\n"], "501 unexpected argument data\r\n"),
        // 16 QUIT with an argument
        (vec!["QUIT now\r\n"], "501 unexpected argument data\r\n"),
        // 17 unknown MAIL parameter
        (
            vec!["MAIL FROM:<a@b> FOO=bar\r\n"],
            "501 <a@b> FOO=bar: malformed address: FOO=bar may not follow <a@b>\r\n",
        ),
        // 18 bad SIZE value
        (
            vec!["MAIL FROM:<a@b> SIZE=big\r\n"],
            "501 <a@b> SIZE=big: malformed address: SIZE=big may not follow <a@b>\r\n",
        ),
        // 19 SIZE over the advertised limit
        (
            vec!["MAIL FROM:<a@b> SIZE=52428801\r\n"],
            "552 Message size exceeds maximum permitted\r\n",
        ),
        // 20 bad BODY value
        (
            vec!["MAIL FROM:<a@b> BODY=9BIT\r\n"],
            "501 invalid data for BODY\r\n",
        ),
        // 21 SMTPUTF8 not advertised
        (
            vec!["MAIL FROM:<a@b> SMTPUTF8\r\n"],
            "501 SMTPUTF8 used when not advertised\r\n",
        ),
        // 22 unqualified sender
        (
            vec!["MAIL FROM:<abc>\r\n"],
            "501 <abc>: sender address must contain a domain\r\n",
        ),
        // 23 unqualified recipient; postmaster is fine
        (
            vec![
                "MAIL FROM:<>\r\n",
                "RCPT TO:<abc>\r\n",
                "RCPT TO:<Postmaster>\r\n",
            ],
            "250 OK\r\n501 <abc>: recipient address must contain a domain\r\n250 Accepted\r\n",
        ),
        // 24 missing '>'
        (
            vec!["MAIL FROM:<a@b\r\n"],
            "501 <a@b: '>' missing at end of address\r\n",
        ),
        // 25 junk after the address
        (
            vec!["MAIL FROM:<a@b>junk\r\n"],
            "501 <a@b>junk: malformed address: junk may not follow <a@b>\r\n",
        ),
        // 26 STARTTLS not advertised
        (
            vec!["STARTTLS\r\n"],
            "503 STARTTLS command used when not advertised\r\n",
        ),
        // 27 AUTH not advertised
        (
            vec!["AUTH PLAIN\r\n"],
            "503 AUTH command used when not advertised\r\n",
        ),
        // 28 BDAT not advertised
        (
            vec!["BDAT 10 LAST\r\n"],
            "503 BDAT command used when CHUNKING not advertised\r\n",
        ),
        // 29 ETRN inside a transaction
        (
            vec!["MAIL FROM:<a@b>\r\n", "ETRN #x\r\n"],
            "250 OK\r\n503 ETRN is not permitted inside a transaction\r\n",
        ),
        // 30 RSET ends the transaction
        (
            vec!["MAIL FROM:<a@b>\r\n", "RSET\r\n", "RCPT TO:<c@d>\r\n"],
            "250 OK\r\n250 Reset OK\r\n503 sender not yet given\r\n",
        ),
        // 31 bad quoted local part
        (
            vec!["MAIL FROM:<\"abc@d>\r\n"],
            "501 <\"abc@d>: unmatched doublequote in local part\r\n",
        ),
        // 32 MAIL without the colon is not a MAIL command
        (vec!["MAIL <a@b>\r\n"], "500 unrecognized command\r\n"),
        // 33 a rejected sender makes pipelined RCPTs fail quietly
        (
            vec![
                "MAIL FROM:<reject@b>\r\n",
                "RCPT TO:<c@d>\r\n",
                "RCPT TO:<e@f>\r\n",
            ],
            "550 sender rejected\r\n503 sender not yet given\r\n503 sender not yet given\r\n",
        ),
        // 34 all RCPTs rejected the same way
        (
            vec![
                "MAIL FROM:<a@b>\r\n",
                "RCPT TO:<bad1@x>\r\n",
                "RCPT TO:<bad2@x>\r\n",
                "DATA\r\n",
            ],
            "250 OK\r\n550 relay not permitted\r\n550 relay not permitted\r\n\
             503-All RCPT commands were rejected with this error:\r\n\
             503-relay not permitted\r\n\
             503 Valid RCPT command must precede DATA\r\n",
        ),
        // 35 commands are case-insensitive, bare LF is accepted
        (
            vec!["mail from:<a@b>\n", "rcpt to:<c@d>\n", "noop\n"],
            "250 OK\r\n250 Accepted\r\n250 OK\r\n",
        ),
    ];
    for (i, (lines, expected)) in cases.iter().enumerate() {
        let (out, _) = after_ehlo(cfg(), lines);
        assert_eq!(out, *expected, "case {} ({:?})", i + 1, lines);
    }
}

#[test]
fn helo_required_and_helo_mode() {
    let c = ServerConfig {
        helo_required: true,
        ..cfg()
    };
    let (out, _) = transcript(
        c,
        exim_extensions(),
        &["MAIL FROM:<a@b>\r\n", "HELO x.y\r\n", "MAIL FROM:<a@b>\r\n"],
    );
    assert_eq!(
        out,
        "503 HELO or EHLO required\r\n250 myhost.test.ex Hello x.y [127.0.0.1]\r\n250 OK\r\n"
    );
    // Without EHLO, ESMTP parameters are not recognised.
    let (out, _) = transcript(
        cfg(),
        exim_extensions(),
        &["HELO x\r\n", "MAIL FROM:<a@b> SIZE=10\r\n"],
    );
    assert!(
        out.ends_with("501 <a@b> SIZE=10: malformed address: SIZE=10 may not follow <a@b>\r\n"),
        "{out}"
    );
    // Without helo_required, MAIL first is fine.
    let (out, _) = transcript(cfg(), exim_extensions(), &["MAIL FROM:<a@b>\r\n"]);
    assert_eq!(out, "250 OK\r\n");
}

#[test]
fn too_many_unknown_commands_closes() {
    let (out, d) = after_ehlo(cfg(), &["A\r\n", "B\r\n", "C\r\n", "D\r\n", "NOOP\r\n"]);
    assert_eq!(
        out,
        "500 unrecognized command\r\n500 unrecognized command\r\n500 unrecognized command\r\n\
         500 Too many unrecognized commands\r\n"
    );
    assert!(d.s.is_closed());
}

#[test]
fn too_many_protocol_errors_closes() {
    // As in Exim, a DATA after only failed RCPTs repeats their common error,
    // and a RCPT after a rejected MAIL is not counted when pipelining.
    let (out, d) = after_ehlo(
        cfg(),
        &[
            "RCPT TO:<a@b>\r\n",
            "DATA\r\n",
            "MAIL FROM:<x@>\r\n",
            "RCPT TO:<a@b>\r\n",
            "FOO\r\n",
            "NOOP\r\n",
        ],
    );
    assert_eq!(
        out,
        "503 sender not yet given\r\n\
         503-All RCPT commands were rejected with this error:\r\n\
         503-503 sender not yet given\r\n\
         503 valid RCPT command must precede DATA\r\n\
         501 <x@>: domain missing or malformed\r\n\
         503 sender not yet given\r\n\
         500-unrecognized command\r\n500 Too many syntax or protocol errors\r\n"
    );
    assert!(d.s.is_closed());
}

#[test]
fn synchronization_errors() {
    // Pipelined MAIL+RCPT without PIPELINING advertised.
    let ext = oxim_smtp::Extensions {
        pipelining: false,
        ..exim_extensions()
    };
    let (out, d) = transcript(
        cfg(),
        ext,
        &["EHLO x\r\n", "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n"],
    );
    assert!(
        out.ends_with("250 HELP\r\n554 SMTP synchronization error\r\n"),
        "{out}"
    );
    assert!(d.s.is_closed());
    assert!(d.seen.events.iter().any(|e| e.contains("Synchronization")));
    // With PIPELINING, MAIL/RCPT/DATA may be sent together, but not EHLO+MAIL.
    let (out, _) = after_ehlo(cfg(), &["MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n"]);
    assert_eq!(
        out,
        "250 OK\r\n250 Accepted\r\n354 Enter message, ending with \".\" on a line by itself\r\n"
    );
    let (out, _) = transcript(cfg(), exim_extensions(), &["EHLO x\r\nMAIL FROM:<a@b>\r\n"]);
    assert_eq!(out, "554 SMTP synchronization error\r\n");
    // Input before the greeting.
    let mut s = oxim_smtp::ServerSession::new(cfg());
    s.handle_input(b"EHLO early\r\n");
    s.greet(oxim_smtp::Reply::new(220, "hi")).unwrap();
    assert_eq!(s.take_output(), b"554 SMTP synchronization error\r\n");
    match s.poll_event() {
        Some(oxim_smtp::Event::Error(e)) => {
            assert!(e.closing);
            assert_eq!(
                e.kind,
                oxim_smtp::ErrorKind::Synchronization {
                    before_greeting: true,
                    next_input: "EHLO early\r\n".into()
                }
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(s.is_closed());
}

#[test]
fn data_body_unstuffing_and_pipelined_quit() {
    let c = ServerConfig {
        enforce_sync: false,
        ..cfg()
    };
    let (out, d) = after_ehlo(
        c,
        &[
            "MAIL FROM:<a@b> SIZE=100 BODY=8BITMIME\r\nRCPT TO:<c@d>\r\nDATA\r\n",
            "..dot\r\nbare\nline\r\n.\r\nQUIT\r\n",
        ],
    );
    assert_eq!(
        out,
        "250 OK\r\n250 Accepted\r\n354 Enter message, ending with \".\" on a line by itself\r\n\
         250 OK id=10HmaX-000000005vi-0000\r\n221 myhost.test.ex closing connection\r\n"
    );
    // The first line ended in CRLF, so the bare LF does not end the line
    // (Exim 4.97.1): still in the header section, it is folded.
    assert_eq!(d.seen.body, b".dot\nbare\n line\n");
    let end = d
        .seen
        .events
        .iter()
        .find(|e| e.starts_with("DataEnd"))
        .unwrap();
    assert!(
        end.contains("bare_lf: true") && end.contains("lines: 3"),
        "{end}"
    );
    let mail = d
        .seen
        .events
        .iter()
        .find(|e| e.starts_with("Mail"))
        .unwrap();
    assert!(
        mail.contains("size: Some(100)") && mail.contains("EightBitMime"),
        "{mail}"
    );
}

#[test]
fn recipients_max() {
    let c = ServerConfig {
        recipients_max: 1,
        ..cfg()
    };
    let (out, _) = after_ehlo(
        c.clone(),
        &[
            "MAIL FROM:<a@b>\r\n",
            "RCPT TO:<c@d>\r\n",
            "RCPT TO:<e@f>\r\n",
        ],
    );
    assert_eq!(out, "250 OK\r\n250 Accepted\r\n452 too many recipients\r\n");
    let c = ServerConfig {
        recipients_max_reject: true,
        ..c
    };
    let (out, _) = after_ehlo(
        c,
        &[
            "MAIL FROM:<a@b>\r\n",
            "RCPT TO:<c@d>\r\n",
            "RCPT TO:<e@f>\r\n",
            "DATA\r\n",
            "MAIL FROM:<a@b>\r\n",
        ],
    );
    assert_eq!(
        out,
        "250 OK\r\n250 Accepted\r\n552 too many recipients\r\n554 Too many recipients\r\n250 OK\r\n"
    );
}

#[test]
fn misc_commands() {
    let (out, d) = after_ehlo(
        cfg(),
        &[
            "NOOP\r\n",
            "HELP\r\n",
            "VRFY a@b\r\n",
            "EXPN list\r\n",
            "ETRN #x\r\n",
        ],
    );
    assert_eq!(
        out,
        "250 OK\r\n214-Commands supported:\r\n\
         214 AUTH HELO EHLO MAIL RCPT DATA BDAT NOOP QUIT RSET HELP\r\n\
         252 Administrative prohibition\r\n252 Administrative prohibition\r\n\
         252 Administrative prohibition\r\n"
    );
    assert!(d.seen.events.contains(&"Vrfy(\"a@b\")".to_owned()));
}

fn full_ext() -> oxim_smtp::Extensions {
    oxim_smtp::Extensions {
        chunking: true,
        starttls: true,
        auth: vec!["plain".into()],
        smtputf8: true,
        dsn: true,
        ..exim_extensions()
    }
}

#[test]
fn ehlo_reply_layout_in_exim_order() {
    let r = oxim_smtp::ehlo_reply(
        "mx",
        "Hello a [1.2.3.4]",
        &oxim_smtp::Extensions {
            etrn: true,
            vrfy: true,
            expn: true,
            prdr: true,
            size: Some(0),
            ..full_ext()
        },
    );
    assert_eq!(
        String::from_utf8(r.to_bytes()).unwrap(),
        "250-mx Hello a [1.2.3.4]\r\n250-SIZE\r\n250-8BITMIME\r\n250-DSN\r\n250-ETRN\r\n\
         250-VRFY\r\n250-EXPN\r\n250-PIPELINING\r\n250-AUTH PLAIN\r\n250-CHUNKING\r\n\
         250-STARTTLS\r\n250-PRDR\r\n250-SMTPUTF8\r\n250 HELP\r\n"
    );
}

#[test]
fn bdat_flows() {
    let (out, d) = transcript(
        cfg(),
        full_ext(),
        &[
            "EHLO x\r\n",
            "MAIL FROM:<a@b> SMTPUTF8\r\nRCPT TO:<c@d>\r\nBDAT 7\r\nhello\r\n",
            "BDAT 4 LAST\r\n.\r\nx",
            "QUIT\r\n",
        ],
    );
    let tail = out.split("250 HELP\r\n").nth(1).unwrap();
    assert_eq!(
        tail,
        "250 OK\r\n250 Accepted\r\n250 7 byte chunk received\r\n\
         250- 4 byte chunk, total 11\r\n\
         250 OK id=10HmaX-000000005vi-0000\r\n221 myhost.test.ex closing connection\r\n"
    );
    assert_eq!(d.seen.body, b"hello\n.\nx");

    // BDAT without a valid recipient: error, chunk skipped, session goes on.
    let (out, _) = transcript(
        cfg(),
        full_ext(),
        &[
            "EHLO x\r\n",
            "MAIL FROM:<a@b>\r\nBDAT 6 LAST\r\nNOOP\r\n",
            "NOOP\r\n",
        ],
    );
    let tail = out.split("250 HELP\r\n").nth(1).unwrap();
    assert_eq!(
        tail,
        "250 OK\r\n503 valid RCPT command must precede BDAT\r\n250 OK\r\n"
    );

    // After a non-LAST chunk only BDAT/RSET/NOOP/QUIT; then only RSET.
    let (out, _) = transcript(
        cfg(),
        full_ext(),
        &[
            "EHLO x\r\n",
            "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nBDAT 1\r\nx",
            "DATA\r\n",
            "NOOP\r\n",
            "RSET\r\n",
            "MAIL FROM:<a@b>\r\n",
        ],
    );
    let tail = out.split("250 HELP\r\n").nth(1).unwrap();
    assert_eq!(
        tail,
        "250 OK\r\n250 Accepted\r\n250 1 byte chunk received\r\n\
         503 only BDAT permissible after non-LAST BDAT\r\n503 only RSET accepted now\r\n\
         250 Reset OK\r\n250 OK\r\n"
    );

    // Zero-size non-last chunk.
    let (out, _) = transcript(
        cfg(),
        full_ext(),
        &[
            "EHLO x\r\n",
            "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nBDAT 0\r\n",
        ],
    );
    assert!(
        out.ends_with("250 Accepted\r\n504 zero size for BDAT command\r\n"),
        "{out}"
    );
    // Missing size.
    let (out, _) = transcript(cfg(), full_ext(), &["EHLO x\r\n", "BDAT LAST\r\n"]);
    assert!(
        out.ends_with("501 missing size for BDAT command\r\n"),
        "{out}"
    );
}

#[test]
fn starttls_discards_pipelined_plaintext() {
    let c = ServerConfig {
        enforce_sync: false,
        ..cfg()
    };
    let (out, d) = transcript(
        c,
        full_ext(),
        &["EHLO x\r\n", "STARTTLS\r\nMAIL FROM:<evil@x>\r\n"],
    );
    assert!(out.ends_with("250 HELP\r\n220 TLS go ahead\r\n"), "{out}");
    assert!(d.s.is_tls() && !d.s.is_esmtp() && d.s.helo_name().is_none());
    assert!(!d.seen.events.iter().any(|e| e.contains("evil")));
    // A second STARTTLS inside TLS is refused.
    let mut d = d;
    d.out.clear();
    d.feed(b"EHLO x\r\n");
    d.out.clear();
    d.feed(b"STARTTLS\r\n");
    assert_eq!(
        d.output(),
        "503 STARTTLS command used when not advertised\r\n"
    );
}

#[test]
fn auth_exchange() {
    let (out, d) = transcript(
        cfg(),
        full_ext(),
        &[
            "EHLO x\r\n",
            "AUTH PLAIN\r\n",
            "AGFAYg==\r\n",
            "AUTH PLAIN\r\n",
            "MAIL FROM:<a@b>\r\n",
            "AUTH LOGIN\r\n",
        ],
    );
    let tail = out.split("250 HELP\r\n").nth(1).unwrap();
    assert_eq!(
        tail,
        "334 \r\n235 Authentication succeeded\r\n503 already authenticated\r\n250 OK\r\n\
         503 already authenticated\r\n"
    );
    assert!(d.s.is_authenticated());
    assert!(d
        .seen
        .events
        .contains(&"AuthResponse(\"AGFAYg==\")".to_owned()));
    // Cancel and a bad mechanism name.
    let (out, d) = transcript(
        cfg(),
        full_ext(),
        &["EHLO x\r\n", "AUTH PLAIN\r\n", "*\r\n", "AUTH PL@IN\r\n"],
    );
    let tail = out.split("250 HELP\r\n").nth(1).unwrap();
    assert_eq!(
        tail,
        "334 \r\n501 Authentication cancelled\r\n501 invalid character in authentication mechanism name\r\n"
    );
    assert!(!d.s.is_authenticated());
}

#[test]
fn dsn_parameters() {
    let (out, d) = transcript(
        cfg(),
        full_ext(),
        &[
            "EHLO x\r\n",
            "MAIL FROM:<a@b> RET=HDRS ENVID=abc\r\n",
            "RCPT TO:<c@d> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;c@d\r\n",
            "RCPT TO:<e@f> NOTIFY=SOMETIMES\r\n",
            "RSET\r\n",
            "MAIL FROM:<a@b> RET=ALL\r\n",
        ],
    );
    let tail = out.split("250 HELP\r\n").nth(1).unwrap();
    assert_eq!(
        tail,
        "250 OK\r\n250 Accepted\r\n501 Invalid value for NOTIFY parameter\r\n250 Reset OK\r\n\
         501 Value for RET is invalid\r\n"
    );
    let rcpt = d
        .seen
        .events
        .iter()
        .find(|e| e.starts_with("Rcpt"))
        .unwrap();
    assert!(
        rcpt.contains("ORCPT") && rcpt.contains("rfc822;c@d"),
        "{rcpt}"
    );
}

#[test]
fn respond_without_pending_is_an_error() {
    let mut s = oxim_smtp::ServerSession::new(cfg());
    assert_eq!(
        s.respond(oxim_smtp::Reply::new(250, "OK")),
        Err(oxim_smtp::SessionError::NothingPending)
    );
    s.greet(oxim_smtp::Reply::new(220, "x")).unwrap();
    assert_eq!(
        s.greet(oxim_smtp::Reply::new(220, "x")),
        Err(oxim_smtp::SessionError::AlreadyGreeted)
    );
    // A refusing banner closes the session.
    let mut s = oxim_smtp::ServerSession::new(cfg());
    s.greet(oxim_smtp::Reply::new(554, "SMTP service not available"))
        .unwrap();
    assert!(s.is_closed());
    assert_eq!(s.take_output(), b"554 SMTP service not available\r\n");
}

#[test]
fn long_line_is_reported_with_its_start() {
    let mut d = common::Driver::new(cfg(), exim_extensions());
    d.drain();
    let long = format!("MAIL FROM:<{}@x>\r\n", "a".repeat(20000));
    for piece in long.as_bytes().chunks(1000) {
        d.feed(piece);
    }
    let err = d
        .seen
        .events
        .iter()
        .find(|e| e.contains("LineTooLong"))
        .unwrap();
    assert!(err.contains("line: \"MAIL FROM:<aaaa"), "{err}");
    assert!(d.output().ends_with("500 Command line too long\r\n"));
}

/// SMTP smuggling (CVE-2023-51766, CVE-2023-51764, CVE-2023-51765): the
/// transcript of issue 18. `<LF>.<CR><LF>` inside the body does not end it,
/// so the "smuggled" MAIL is body text and only one message is received.
#[test]
fn smuggled_message_stays_in_the_first_body() {
    let c = ServerConfig {
        enforce_sync: false,
        ..cfg()
    };
    for eod in ["\n.\r\n", "\r\n.\n", "\n.\n", "\r.\r", "\r\n.\r", "\r.\n"] {
        let body = format!(
            "Subject: first\r\n\r\nhello\r\n{}MAIL FROM:<smuggled@localhost>\r\n\
             RCPT TO:<you@localhost>\r\nDATA\r\nSubject: smuggled\r\n\r\nevil\r\n.\r\n",
            eod.trim_start_matches("\r\n")
        );
        let (out, d) = after_ehlo(
            c.clone(),
            &[
                "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n",
                &body,
                "QUIT\r\n",
            ],
        );
        assert_eq!(
            out,
            "250 OK\r\n250 Accepted\r\n354 Enter message, ending with \".\" on a line by itself\r\n\
             250 OK id=10HmaX-000000005vi-0000\r\n221 myhost.test.ex closing connection\r\n",
            "{eod:?}"
        );
        let ends = d
            .seen
            .events
            .iter()
            .filter(|e| e.starts_with("DataEnd"))
            .count();
        let mails = d
            .seen
            .events
            .iter()
            .filter(|e| e.starts_with("Mail"))
            .count();
        assert_eq!((ends, mails), (1, 1), "{eod:?}: {:?}", d.seen.events);
        let body = String::from_utf8_lossy(&d.seen.body);
        assert!(
            body.contains("MAIL FROM:<smuggled@localhost>"),
            "{eod:?}: {body:?}"
        );
    }
}

/// PRDR: asked for in MAIL (and so acknowledged) only when advertised; the
/// end of the data then gets the 353, the per-recipient lines and the final
/// reply; outside that moment no PRDR line can be sent.
#[test]
fn prdr_replies_only_when_advertised_and_asked_for() {
    let mut ext = exim_extensions();
    ext.prdr = true;
    let lines = [
        "EHLO x\r\n",
        "MAIL FROM:<> PRDR\r\n",
        "RCPT TO:<a@b>\r\n",
        "DATA\r\n",
        "Subject: s\r\n\r\nbody\r\n.\r\n",
        "MAIL FROM:<>\r\n",
    ];
    let (out, mut d) = transcript(cfg(), ext, &lines);
    let replies = out.split("250 HELP\r\n").nth(1).expect("EHLO reply");
    assert!(out.contains("250-PRDR\r\n"), "{out}");
    assert_eq!(
        replies,
        "250 OK, PRDR Requested\r\n\
         250 Accepted\r\n\
         354 Enter message, ending with \".\" on a line by itself\r\n\
         353 PRDR content analysis beginning\r\n\
         250 PRDR R=<a@b> acceptance\r\n\
         250 id=10HmaX-000000005vi-0000 message accepted\r\n\
         250 OK\r\n"
    );
    assert!(!d.s.prdr_requested());
    assert!(d.s.prdr_reply(Reply::new(250, "x")).is_err());

    // Not advertised: the keyword is accepted but nothing changes.
    let (out, _) = after_ehlo(cfg(), &lines[1..5]);
    assert_eq!(
        out,
        "250 OK\r\n\
         250 Accepted\r\n\
         354 Enter message, ending with \".\" on a line by itself\r\n\
         250 OK id=10HmaX-000000005vi-0000\r\n"
    );
}

#[test]
fn prdr_with_bdat_last() {
    let mut ext = exim_extensions();
    ext.prdr = true;
    ext.chunking = true;
    let lines = [
        "EHLO x\r\n",
        "MAIL FROM:<> PRDR\r\n",
        "RCPT TO:<a@b>\r\n",
        "BDAT 9 LAST\r\nSubject: ",
    ];
    let (out, _) = transcript(cfg(), ext, &lines);
    assert!(out.ends_with("353 PRDR content analysis beginning\r\n250 PRDR R=<a@b> acceptance\r\n250 id=10HmaX-000000005vi-0000 message accepted\r\n"), "{out}");
}
