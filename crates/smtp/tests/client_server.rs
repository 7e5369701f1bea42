//! The client session talking to the server session, in memory, with
//! synchronisation enforced on the server: every combination of PIPELINING
//! and CHUNKING, acceptances and rejections.

mod common;

use common::{exim_extensions, Driver};
use oxim_smtp::client::{ClientConfig, ClientEvent, ClientSession, Envelope, TransactionResult};
use oxim_smtp::{Extensions, ServerConfig};

struct Outcome {
    result: TransactionResult,
    server: Driver,
    /// Number of client writes (flights).
    flights: usize,
    quit: bool,
}

fn converse(ext: Extensions, env: Envelope, body: &[u8]) -> Outcome {
    let mut d = Driver::new(ServerConfig::default(), ext);
    d.drain(); // the banner
    let mut c = ClientSession::new(ClientConfig::new("client.example"));
    let mut result = None;
    let mut flights = 0;
    let mut quit = false;
    let mut env = Some(env);
    for _ in 0..50 {
        let server_out = std::mem::take(&mut d.out);
        c.handle_input(&server_out);
        while let Some(ev) = c.poll_event() {
            match ev {
                ClientEvent::Ready { caps, .. } => {
                    assert_eq!(caps.pipelining, d.ext.pipelining);
                    assert!(c.send_envelope(env.take().expect("one transaction")));
                }
                ClientEvent::SendBody => {
                    // Send in two pieces to exercise chunking.
                    let (a, b) = body.split_at(body.len() / 2);
                    assert!(c.send_body(a));
                    assert!(c.send_body(b));
                    assert!(c.finish_body());
                }
                ClientEvent::TransactionDone(r) => {
                    result = Some(r);
                    c.quit();
                }
                ClientEvent::Closed(r) => {
                    assert_eq!(r.code, 221);
                    quit = true;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        let out = c.take_output();
        if out.is_empty() {
            break;
        }
        flights += 1;
        d.feed(&out);
        assert!(
            !d.seen.events.iter().any(|e| e.contains("Synchronization")),
            "client broke synchronisation: {:?}",
            d.seen.events
        );
    }
    Outcome {
        result: result.expect("transaction finished"),
        server: d,
        flights,
        quit,
    }
}

fn env(rcpts: &[&str]) -> Envelope {
    Envelope {
        from: "sender@example.org".into(),
        rcpts: rcpts.iter().map(|s| s.to_string()).collect(),
        size: Some(100),
        ..Envelope::default()
    }
}

const BODY: &[u8] = b"Subject: hi\n\n.leading dot\nline two\n";

fn variants() -> Vec<(&'static str, Extensions, usize)> {
    let base = exim_extensions();
    vec![
        // (name, server extensions, expected client flights)
        (
            "pipelining+chunking",
            Extensions {
                chunking: true,
                ..base.clone()
            },
            3, // EHLO | MAIL RCPT BDAT+body | QUIT
        ),
        ("pipelining", base.clone(), 4), // EHLO | MAIL RCPT DATA | body | QUIT
        (
            "plain",
            Extensions {
                pipelining: false,
                ..base.clone()
            },
            7, // EHLO | MAIL | RCPT | RCPT | DATA | body | QUIT
        ),
        (
            "chunking only",
            Extensions {
                pipelining: false,
                chunking: true,
                ..base
            },
            6, // EHLO | MAIL | RCPT | RCPT | BDAT+body | QUIT
        ),
    ]
}

#[test]
fn delivers_in_every_mode() {
    for (name, ext, flights) in variants() {
        let o = converse(ext, env(&["a@x.example", "b@x.example"]), BODY);
        assert_eq!(o.result.delivered(), vec![0, 1], "{name}");
        assert_eq!(o.server.seen.body, BODY, "{name}");
        assert_eq!(o.flights, flights, "{name}");
        assert!(o.quit, "{name}");
        // After BDAT, Exim's reply acknowledges the last chunk first.
        let last = o.result.final_reply.as_ref().unwrap().text.last().unwrap();
        assert!(last.starts_with("OK id="), "{name}");
    }
}

#[test]
fn partial_rejection() {
    for (name, ext, _) in variants() {
        let o = converse(ext, env(&["bad@x.example", "b@x.example"]), BODY);
        assert_eq!(o.result.delivered(), vec![1], "{name}");
        assert_eq!(o.result.reply_for(0).unwrap().code, 550, "{name}");
        assert_eq!(o.result.reply_for(1).unwrap().code, 250, "{name}");
        assert_eq!(o.server.seen.body, BODY, "{name}");
    }
}

#[test]
fn all_recipients_rejected() {
    for (name, ext, _) in variants() {
        let o = converse(ext, env(&["bad1@x.example", "bad2@x.example"]), BODY);
        assert!(o.result.delivered().is_empty(), "{name}");
        assert_eq!(o.result.reply_for(0).unwrap().code, 550, "{name}");
        assert!(o.server.seen.body.is_empty(), "{name}");
        assert!(
            !o.server
                .seen
                .events
                .iter()
                .any(|e| e.starts_with("DataEnd")),
            "{name}: {:?}",
            o.server.seen.events
        );
        assert!(o.quit, "{name}");
    }
}

#[test]
fn sender_rejected() {
    for (name, ext, _) in variants() {
        let mut e = env(&["a@x.example"]);
        e.from = "reject@x.example".into();
        let o = converse(ext, e, BODY);
        assert!(o.result.delivered().is_empty(), "{name}");
        assert_eq!(o.result.reply_for(0).unwrap().code, 550, "{name}");
        assert_eq!(
            o.result.reply_for(0).unwrap().text[0],
            "sender rejected",
            "{name}"
        );
        assert!(o.server.seen.body.is_empty(), "{name}");
        assert!(o.quit, "{name}");
    }
}

#[test]
fn helo_fallback_and_refusal() {
    // A server that refuses EHLO: the client falls back to HELO.
    let mut c = ClientSession::new(ClientConfig::new("me"));
    c.handle_input(b"220 hi\r\n");
    assert_eq!(c.poll_event(), None);
    assert_eq!(c.take_output(), b"EHLO me\r\n");
    c.handle_input(b"500 what\r\n");
    assert_eq!(c.poll_event(), None);
    assert_eq!(c.take_output(), b"HELO me\r\n");
    c.handle_input(b"250 ok\r\n");
    assert!(matches!(c.poll_event(), Some(ClientEvent::Ready { .. })));
    assert!(!c.is_esmtp());
    // A refusing greeting.
    let mut c = ClientSession::new(ClientConfig::new("me"));
    c.handle_input(b"554 go away\r\n");
    assert!(matches!(c.poll_event(), Some(ClientEvent::Refused(r)) if r.code == 554));
    c.quit();
    assert_eq!(c.take_output(), b"QUIT\r\n");
    // Garbage from the server.
    let mut c = ClientSession::new(ClientConfig::new("me"));
    c.handle_input(b"hello\r\n");
    assert!(matches!(
        c.poll_event(),
        Some(ClientEvent::ProtocolError(_))
    ));
    assert!(c.is_closed());
}

#[test]
fn unwanted_354_is_closed_with_a_lone_dot() {
    let mut c = ClientSession::new(ClientConfig::new("me"));
    c.handle_input(b"220 hi\r\n250-mx\r\n250 PIPELINING\r\n");
    assert!(matches!(c.poll_event(), Some(ClientEvent::Ready { .. })));
    c.take_output();
    assert!(c.send_envelope(env(&["a@b"])));
    assert_eq!(
        c.take_output(),
        b"MAIL FROM:<sender@example.org>\r\nRCPT TO:<a@b>\r\nDATA\r\n"
    );
    c.handle_input(b"250 OK\r\n550 no\r\n354 go ahead\r\n");
    assert_eq!(c.poll_event(), None);
    assert_eq!(c.take_output(), b".\r\n");
    assert!(!c.send_body(b"x"), "no body may be sent");
    c.handle_input(b"250 OK id=1\r\n");
    match c.poll_event() {
        Some(ClientEvent::TransactionDone(r)) => {
            assert!(r.delivered().is_empty());
            assert_eq!(r.reply_for(0).unwrap().code, 550);
        }
        other => panic!("{other:?}"),
    }
    // The server still holds MAIL: the client resets it.
    assert_eq!(c.take_output(), b"RSET\r\n");
    assert!(c.is_ready());
    // SIZE is not sent when the server did not offer it.
    assert!(c.send_envelope(env(&["a@b"])));
    assert!(!String::from_utf8(c.take_output()).unwrap().contains("SIZE"));
}

/// Exim's PIPECONNECT with CHUNKING: with cached capabilities the whole
/// transaction (EHLO, MAIL, RCPT, BDAT LAST + body) leaves in the first
/// flight, even before the greeting arrives; QUIT is the second flight.
#[test]
fn early_pipelining_sends_everything_in_one_flight() {
    let ext = Extensions {
        chunking: true,
        pipe_connect: true,
        ..exim_extensions()
    };
    let cfg = ServerConfig {
        pipe_connect: true,
        ..ServerConfig::default()
    };
    // Learn the capabilities once (as a transport would cache them).
    let cached =
        oxim_smtp::EhloCapabilities::from_reply(&oxim_smtp::ehlo_reply("mx", "Hello", &ext));
    assert!(cached.pipe_connect && cached.chunking && cached.pipelining);

    let mut c = ClientSession::new(ClientConfig::new("client.example"));
    assert!(c.start_early(cached));
    assert!(c.send_envelope(env(&["a@x.example", "bad@x.example"])));
    assert_eq!(c.poll_event(), Some(ClientEvent::SendBody));
    assert!(c.send_body(BODY));
    assert!(c.finish_body());
    let first_flight = c.take_output();
    let text = String::from_utf8_lossy(&first_flight).into_owned();
    assert!(
        text.starts_with("EHLO client.example\r\nMAIL FROM:<sender@example.org> SIZE=100\r\n"),
        "{text}"
    );
    // One chunk, LAST, sized after LF -> CRLF conversion.
    let crlf_len = BODY.len() + BODY.iter().filter(|&&b| b == b'\n').count();
    assert!(
        text.contains(&format!("BDAT {crlf_len} LAST\r\n")),
        "{text}"
    );
    assert_eq!(text.matches("BDAT").count(), 1, "{text}");

    // The server receives the flight before it has even greeted (TFO SYN data).
    let mut s = oxim_smtp::ServerSession::new(cfg);
    s.handle_input(&first_flight);
    s.greet(oxim_smtp::Reply::new(220, "mx ESMTP")).unwrap();
    let mut body = Vec::new();
    while let Some(ev) = s.poll_event() {
        match ev {
            oxim_smtp::Event::Helo { .. } => s.accept_ehlo("mx", "Hello", &ext).unwrap(),
            oxim_smtp::Event::Mail(_) => s.accept_mail().unwrap(),
            oxim_smtp::Event::Rcpt(r) if r.to.starts_with("bad") => {
                s.reject(oxim_smtp::Reply::new(550, "no")).unwrap()
            }
            oxim_smtp::Event::Rcpt(_) => s.accept_rcpt().unwrap(),
            oxim_smtp::Event::DataChunk(b) => body.extend_from_slice(&b),
            oxim_smtp::Event::DataEnd(_) => s.accept_message("X").unwrap(),
            oxim_smtp::Event::Bdat { .. } => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(body, BODY);
    let server_out = s.take_output();
    c.handle_input(&server_out);
    match c.poll_event() {
        Some(ClientEvent::TransactionDone(r)) => {
            assert_eq!(r.delivered(), vec![0]);
            assert_eq!(r.reply_for(1).unwrap().code, 550);
            let text = r.final_reply.unwrap().text;
            assert_eq!(text.last().unwrap(), "OK id=X");
            assert!(text[0].contains(" byte chunk, total "), "{text:?}");
        }
        other => panic!("{other:?}"),
    }
    assert!(c.capabilities().pipe_connect);

    // Without early pipelining on the server, the same flight is a sync error.
    let mut s = oxim_smtp::ServerSession::new(ServerConfig::default());
    s.handle_input(&first_flight);
    s.greet(oxim_smtp::Reply::new(220, "mx ESMTP")).unwrap();
    assert_eq!(s.take_output(), b"554 SMTP synchronization error\r\n");
}

#[test]
fn early_pipelining_ends_at_first_data() {
    let ext = Extensions {
        pipe_connect: true,
        ..exim_extensions()
    };
    let cfg = ServerConfig {
        pipe_connect: true,
        ..ServerConfig::default()
    };
    let mut d = Driver::new(cfg, ext);
    d.drain();
    d.out.clear();
    // EHLO may be followed by MAIL at once...
    d.feed(b"EHLO a\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n");
    assert!(d.output().contains("250-PIPECONNECT\r\n"), "{}", d.output());
    assert!(d
        .output()
        .ends_with("354 Enter message, ending with \".\" on a line by itself\r\n"));
    d.feed(b"x\r\n.\r\n");
    d.out.clear();
    // ...but after the first DATA, EHLO must be synchronised again.
    d.feed(b"EHLO a\r\nNOOP\r\n");
    assert_eq!(d.output(), "554 SMTP synchronization error\r\n");
}

#[test]
fn early_start_is_refused_without_pipe_connect() {
    let mut c = ClientSession::new(ClientConfig::new("me"));
    let caps = oxim_smtp::EhloCapabilities {
        pipelining: true,
        ..Default::default()
    };
    assert!(!c.start_early(caps));
    assert!(!c.has_output());
    // A greeting refusal after an early start is reported once.
    let mut c = ClientSession::new(ClientConfig::new("me"));
    let caps = oxim_smtp::EhloCapabilities {
        pipelining: true,
        pipe_connect: true,
        ..Default::default()
    };
    assert!(c.start_early(caps));
    assert!(c.send_envelope(env(&["a@b"])));
    c.take_output();
    c.handle_input(b"554 no service\r\n");
    assert!(matches!(c.poll_event(), Some(ClientEvent::Refused(r)) if r.code == 554));
    assert_eq!(c.poll_event(), None);
}

/// Drive a client by hand: greeting + EHLO reply given, then the envelope.
fn manual(ehlo: &[u8]) -> ClientSession {
    let mut c = ClientSession::new(ClientConfig::new("me"));
    c.handle_input(b"220 hi\r\n");
    assert_eq!(c.poll_event(), None);
    c.handle_input(ehlo);
    assert!(matches!(c.poll_event(), Some(ClientEvent::Ready { .. })));
    c.take_output();
    c
}

#[test]
fn data_refused_without_pipelining_resets_before_reporting() {
    let mut c = manual(b"250 mx\r\n");
    assert!(c.send_envelope(env(&["a@b"])));
    assert_eq!(c.take_output(), b"MAIL FROM:<sender@example.org>\r\n");
    c.handle_input(b"250 OK\r\n");
    assert_eq!(c.poll_event(), None);
    assert_eq!(c.take_output(), b"RCPT TO:<a@b>\r\n");
    c.handle_input(b"250 Accepted\r\n");
    assert_eq!(c.poll_event(), None);
    assert_eq!(c.take_output(), b"DATA\r\n");
    c.handle_input(b"554 no data for you\r\n");
    assert_eq!(c.poll_event(), None, "waits for the RSET reply first");
    assert_eq!(c.take_output(), b"RSET\r\n");
    c.handle_input(b"250 Reset OK\r\n");
    match c.poll_event() {
        Some(ClientEvent::TransactionDone(r)) => {
            assert!(r.delivered().is_empty());
            assert_eq!(r.reply_for(0).unwrap().code, 554);
        }
        other => panic!("{other:?}"),
    }
    assert!(c.is_ready());
}

#[test]
fn bdat_failures() {
    // The LAST chunk refused: the transaction is over, no RSET.
    let mut c = manual(b"250-mx\r\n250-PIPELINING\r\n250 CHUNKING\r\n");
    assert!(c.send_envelope(env(&["a@b"])));
    assert_eq!(c.poll_event(), Some(ClientEvent::SendBody));
    assert!(c.send_body(b"x\n") && c.finish_body());
    assert_eq!(
        c.take_output(),
        b"MAIL FROM:<sender@example.org>\r\nRCPT TO:<a@b>\r\nBDAT 3 LAST\r\nx\r\n"
    );
    c.handle_input(b"250 OK\r\n250 Accepted\r\n550 content rejected\r\n");
    match c.poll_event() {
        Some(ClientEvent::TransactionDone(r)) => {
            assert!(r.delivered().is_empty());
            assert_eq!(r.reply_for(0).unwrap().text[0], "content rejected");
        }
        other => panic!("{other:?}"),
    }
    assert!(!c.has_output());
    // An intermediate chunk refused: the first failure counts, then RSET.
    let mut c = manual(b"250-mx\r\n250-PIPELINING\r\n250 CHUNKING\r\n");
    assert!(c.send_envelope(env(&["a@b"])));
    assert_eq!(c.poll_event(), Some(ClientEvent::SendBody));
    assert!(c.send_body(b"part1\n") && c.send_body(b"part2\n") && c.finish_body());
    let out = String::from_utf8(c.take_output()).unwrap();
    assert!(
        out.ends_with("BDAT 7\r\npart1\r\nBDAT 7 LAST\r\npart2\r\n"),
        "{out}"
    );
    c.handle_input(b"250 OK\r\n250 Accepted\r\n452 disk full\r\n503 only RSET accepted now\r\n");
    match c.poll_event() {
        Some(ClientEvent::TransactionDone(r)) => {
            assert_eq!(r.final_reply.unwrap().code, 452);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(c.take_output(), b"RSET\r\n");
}
