//! The client session: against the server session in memory (with
//! synchronisation enforced on the server) in every combination of
//! PIPELINING and CHUNKING, and byte-exact transcripts of what the smtp
//! transport sends for each reply (greeting, EHLO/HELO, STARTTLS, early
//! pipelining, the transaction in the SYN, refusals).

mod common;

use common::{exim_extensions, Driver};
use oxim_smtp::client::{
    ClientConfig, ClientEvent, ClientSession, Envelope, RcptVerdict, Step, TransactionResult,
    Verdict,
};
use oxim_smtp::{EhloCapabilities, Extensions, Reply, ServerConfig};

struct Outcome {
    result: TransactionResult,
    server: Driver,
    /// Number of client writes (flights).
    flights: usize,
}

/// Run one transaction (then QUIT) against the in-memory server.
fn converse(ext: Extensions, env: Envelope, body: &[u8]) -> Outcome {
    let mut d = Driver::new(ServerConfig::default(), ext);
    d.drain(); // the banner
    let mut c = ClientSession::new(ClientConfig::new("client.example"));
    let mut result = None;
    let mut flights = 0;
    let mut env = Some(env);
    for _ in 0..100 {
        match c.next_step() {
            Step::Write { bytes, .. } => {
                flights += 1;
                d.feed(&bytes);
            }
            Step::Read => {
                let out = std::mem::take(&mut d.out);
                assert!(!out.is_empty(), "client waits for a reply never coming");
                c.input(&out);
            }
            Step::Event(ClientEvent::Ehlo { caps, .. }) => {
                assert_eq!(caps.pipelining, d.ext.pipelining);
            }
            Step::Event(ClientEvent::Ready) => {
                assert!(c.transaction(env.take().expect("one transaction"), &[body]));
            }
            Step::Event(ClientEvent::Done(r)) => {
                result = Some(r);
                let q = c.quit();
                assert_eq!(q, b"QUIT\r\n");
                flights += 1;
                d.feed(&q);
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
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
            // BDAT only with PIPELINING (the transport's rule): DATA.
            "chunking only",
            Extensions {
                pipelining: false,
                chunking: true,
                ..base
            },
            7,
        ),
    ]
}

fn code(v: &RcptVerdict) -> u16 {
    match v {
        RcptVerdict::Refused(r) | RcptVerdict::Final(r) => r.code,
        RcptVerdict::NoReply => 0,
    }
}

fn rcpt_codes(r: &TransactionResult) -> Vec<u16> {
    match r.verdict() {
        Verdict::Recipients(v) => v.iter().map(code).collect(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn delivers_in_every_mode() {
    for (name, ext, flights) in variants() {
        let o = converse(ext, env(&["a@x.example", "b@x.example"]), BODY);
        assert_eq!(o.result.delivered(), vec![0, 1], "{name}");
        assert_eq!(o.server.seen.body, BODY, "{name}");
        assert_eq!(o.flights, flights, "{name}");
        assert!(!o.result.needs_rset, "{name}");
        let last = o.result.final_reply.as_ref().unwrap().text.last().unwrap();
        assert!(last.starts_with("OK id="), "{name}");
    }
}

#[test]
fn partial_rejection() {
    for (name, ext, _) in variants() {
        let o = converse(ext, env(&["bad@x.example", "b@x.example"]), BODY);
        assert_eq!(o.result.delivered(), vec![1], "{name}");
        assert_eq!(rcpt_codes(&o.result), [550, 250], "{name}");
        assert_eq!(o.server.seen.body, BODY, "{name}");
    }
}

#[test]
fn all_recipients_rejected() {
    for (name, ext, _) in variants() {
        let o = converse(
            ext.clone(),
            env(&["bad1@x.example", "bad2@x.example"]),
            BODY,
        );
        assert!(o.result.delivered().is_empty(), "{name}");
        assert_eq!(rcpt_codes(&o.result), [550, 550], "{name}");
        if !ext.chunking || !ext.pipelining {
            assert!(o.server.seen.body.is_empty(), "{name}");
        }
        assert!(
            !o.server
                .seen
                .events
                .iter()
                .any(|e| e.starts_with("DataEnd")),
            "{name}: {:?}",
            o.server.seen.events
        );
    }
}

#[test]
fn sender_rejected() {
    for (name, ext, _) in variants() {
        let mut e = env(&["a@x.example"]);
        e.from = "reject@x.example".into();
        let o = converse(ext, e, BODY);
        assert!(o.result.delivered().is_empty(), "{name}");
        match o.result.verdict() {
            Verdict::Mail(r) => {
                assert_eq!((r.code, r.text[0].as_str()), (550, "sender rejected"))
            }
            other => panic!("{name}: {other:?}"),
        }
        assert!(o.result.needs_rset, "{name}");
        assert!(o.server.seen.body.is_empty(), "{name}");
    }
}

/// A hand-driven session: each call gives the server's bytes for the
/// reply the session reads next and returns what it wrote meanwhile and
/// the events it reported, up to the next read or idle.
struct Manual {
    c: ClientSession,
    written: Vec<String>,
    events: Vec<ClientEvent>,
}

impl Manual {
    fn new(cfg: ClientConfig) -> Self {
        Manual {
            c: ClientSession::new(cfg),
            written: Vec::new(),
            events: Vec::new(),
        }
    }

    /// Run until the session reads or idles; `true` if it wants to read.
    fn run(&mut self) -> bool {
        loop {
            match self.c.next_step() {
                Step::Write { bytes, data } => self.written.push(format!(
                    "{}{}",
                    if data { "[data]" } else { "" },
                    String::from_utf8_lossy(&bytes)
                )),
                Step::Read => return true,
                Step::Idle => return false,
                Step::Event(e) => self.events.push(e),
            }
        }
    }

    /// Feed `server` and run; returns (writes, events) since the last call.
    fn reply(&mut self, server: &str) -> (Vec<String>, Vec<ClientEvent>) {
        self.c.input(server.as_bytes());
        self.run();
        (
            std::mem::take(&mut self.written),
            std::mem::take(&mut self.events),
        )
    }

    fn after(&self) -> (String, bool) {
        let a = self.c.awaiting().expect("awaiting a reply");
        (a.after, a.pipelined)
    }
}

fn ready(server_hello: &str) -> Manual {
    let mut m = Manual::new(ClientConfig::new("me"));
    assert!(m.run());
    let (w, _) = m.reply("220 hi\r\n");
    assert_eq!(w, ["EHLO me\r\n"]);
    let (_, ev) = m.reply(server_hello);
    assert_eq!(ev.last(), Some(&ClientEvent::Ready), "{ev:?}");
    m
}

#[test]
fn helo_fallback_refusals_and_garbage() {
    // EHLO refused (any non-2xx): HELO; after HELO nothing is offered.
    let mut m = Manual::new(ClientConfig::new("me"));
    assert!(m.run());
    assert_eq!(m.after(), ("initial connection".into(), false));
    m.reply("220 hi\r\n");
    assert_eq!(m.after(), ("EHLO me".into(), false));
    let (w, ev) = m.reply("421 later\r\n");
    assert_eq!((w, ev), (vec!["HELO me\r\n".to_string()], vec![]));
    assert!(m.c.closing(), "a 421 is noted");
    let (_, ev) = m.reply("250 ok\r\n");
    assert_eq!(ev, [ClientEvent::Ready]);
    assert_eq!(m.c.capabilities(), &EhloCapabilities::default());
    assert_eq!(m.c.sequence(), "eh");
    // HELO refused too.
    let mut m = Manual::new(ClientConfig::new("me"));
    m.run();
    m.reply("220 hi\r\n");
    m.reply("550 no\r\n");
    let (_, ev) = m.reply("550 still no\r\n");
    assert!(
        matches!(&ev[..], [ClientEvent::Refused { reply, after, early: false }]
            if reply.code == 550 && after == "HELO me"),
        "{ev:?}"
    );
    assert_eq!(m.c.next_step(), Step::Idle);
    // A refusing greeting.
    let mut m = Manual::new(ClientConfig::new("me"));
    m.run();
    let (w, ev) = m.reply("554 go away\r\n");
    assert!(w.is_empty());
    assert!(
        matches!(&ev[..], [ClientEvent::Refused { reply, after, .. }]
            if reply.code == 554 && after == "initial connection"),
        "{ev:?}"
    );
    assert_eq!(m.c.quit(), b"QUIT\r\n");
    // Garbage from the server.
    let mut m = Manual::new(ClientConfig::new("me"));
    m.run();
    let (_, ev) = m.reply("hello\r\n");
    assert!(matches!(&ev[..], [ClientEvent::Malformed(_)]), "{ev:?}");
    assert_eq!(m.c.awaiting().unwrap().after, "initial connection");
}

#[test]
fn unwanted_354_is_closed_with_a_lone_dot() {
    let mut m = ready("250-mx\r\n250 PIPELINING\r\n");
    assert!(m.c.transaction(env(&["a@b"]), &[b"x\n"]));
    m.run();
    assert_eq!(
        std::mem::take(&mut m.written),
        ["MAIL FROM:<sender@example.org>\r\nRCPT TO:<a@b>\r\nDATA\r\n"],
        "SIZE only when offered"
    );
    assert_eq!(m.after(), ("MAIL FROM:<sender@example.org>".into(), true));
    m.reply("250 OK\r\n");
    assert_eq!(m.after(), ("RCPT TO:<a@b>".into(), false));
    m.reply("550 no\r\n");
    assert_eq!(m.after(), ("DATA".into(), true));
    let (w, ev) = m.reply("354 go ahead\r\n");
    assert_eq!((w, ev), (vec!["[data].\r\n".to_string()], vec![]));
    let a = m.c.awaiting().unwrap();
    assert!(a.final_reply && a.after == "end of data");
    let (_, ev) = m.reply("250 OK id=1\r\n");
    match &ev[..] {
        [ClientEvent::Done(r)] => {
            assert!(r.delivered().is_empty());
            assert_eq!(rcpt_codes(r), [550]);
            assert!(!r.needs_rset, "the dot ended the transaction");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn data_refused_leaves_rset_for_the_next_transaction() {
    let mut m = ready("250 mx\r\n");
    assert!(m.c.transaction(env(&["a@b"]), &[b"x\n"]));
    m.run();
    assert_eq!(
        std::mem::take(&mut m.written),
        ["MAIL FROM:<sender@example.org>\r\n"]
    );
    assert_eq!(m.after(), ("MAIL FROM:<sender@example.org>".into(), false));
    let (w, _) = m.reply("250 OK\r\n");
    assert_eq!(w, ["RCPT TO:<a@b>\r\n"]);
    let (w, _) = m.reply("250 Accepted\r\n");
    assert_eq!(w, ["DATA\r\n"]);
    assert_eq!(m.after(), ("DATA".into(), false));
    let (w, ev) = m.reply("554 no data for you\r\n");
    assert!(w.is_empty(), "no RSET now: {w:?}");
    match &ev[..] {
        [ClientEvent::Done(r)] => {
            assert!(matches!(r.verdict(), Verdict::Data(d) if d.code == 554));
            assert!(r.needs_rset && !r.data_pipelined);
        }
        other => panic!("{other:?}"),
    }
    assert!(m.c.needs_rset());
    assert!(m.c.rset());
    m.run();
    assert_eq!(std::mem::take(&mut m.written), ["RSET\r\n"]);
    let (_, ev) = m.reply("250 Reset OK\r\n");
    assert!(matches!(&ev[..], [ClientEvent::Reply(r)] if r.code == 250));
    assert!(!m.c.needs_rset());
}

#[test]
fn bdat_transaction_and_its_replies() {
    let mut m = ready("250-mx\r\n250-SIZE\r\n250-8BITMIME\r\n250-PIPELINING\r\n250 CHUNKING\r\n");
    let mut e = env(&["a@b", "c@d"]);
    e.body = Some(oxim_smtp::BodyType::EightBitMime);
    e.auth = Some("x y@z".into());
    assert!(m.c.transaction(e, &[b"H: v\n", b"\n", b"x\n"]));
    m.run();
    assert_eq!(
        m.written,
        [
            "[data]MAIL FROM:<sender@example.org> SIZE=100 BODY=8BITMIME AUTH=x+20y@z\r\n\
          RCPT TO:<a@b>\r\nRCPT TO:<c@d>\r\nBDAT 11 LAST\r\nH: v\r\n\r\nx\r\n"
        ]
    );
    m.written.clear();
    assert!(m.after().1, "MAIL is pipelined");
    m.reply("250 OK\r\n");
    assert_eq!(m.after(), ("RCPT TO:<a@b>".into(), false));
    m.reply("250 OK\r\n452 full\r\n");
    assert!(m.c.awaiting().unwrap().final_reply);
    let (_, ev) = m.reply("250- 11 byte chunk, total 11\r\n250 OK id=X\r\n");
    match &ev[..] {
        [ClientEvent::Done(r)] => {
            assert_eq!(r.delivered(), [0]);
            assert_eq!(rcpt_codes(r), [250, 452]);
            assert!(r.chunking && !r.needs_rset);
        }
        other => panic!("{other:?}"),
    }
    // MAIL refused: every reply is still read, the verdict is MAIL's.
    assert!(m.c.transaction(env(&["a@b"]), &[b"x\n"]));
    m.run();
    m.reply("550 sender no\r\n503 no MAIL\r\n");
    let (_, ev) = m.reply("503 no MAIL\r\n");
    match &ev[..] {
        [ClientEvent::Done(r)] => {
            assert!(matches!(r.verdict(), Verdict::Mail(m) if m.code == 550));
            assert!(r.needs_rset);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn refused_pipelined_mail_drains_the_rest() {
    let mut m = ready("250-mx\r\n250 PIPELINING\r\n");
    assert!(m.c.transaction(env(&["a@b", "c@d"]), &[b"x\n"]));
    m.run();
    m.reply("451 try later\r\n");
    let a = m.c.awaiting().unwrap();
    assert!(
        a.draining && a.pipelined && a.after == "RCPT TO:<a@b>",
        "{a:?}"
    );
    // A read failure while draining: the outcome is MAIL's refusal.
    let r = m.c.abandon();
    assert!(matches!(r.verdict(), Verdict::Mail(m) if m.code == 451));
    assert_eq!(m.c.next_step(), Step::Idle);
    // Drained to the end.
    let mut m = ready("250-mx\r\n250 PIPELINING\r\n");
    assert!(m.c.transaction(env(&["a@b"]), &[b"x\n"]));
    m.run();
    m.reply("451 try later\r\n503 no\r\n");
    assert_eq!(m.after(), ("DATA".into(), true));
    let (w, ev) = m.reply("503 no\r\n");
    assert!(w.is_empty());
    assert!(
        matches!(&ev[..], [ClientEvent::Done(r)] if r.needs_rset && r.mail_pipelined),
        "{ev:?}"
    );
}

fn tls_cfg(require: bool) -> ClientConfig {
    ClientConfig {
        starttls: Some(require),
        ..ClientConfig::new("me")
    }
}

#[test]
fn starttls_and_ehlo_again() {
    let mut m = Manual::new(tls_cfg(false));
    m.run();
    m.reply("220 hi\r\n");
    let (w, ev) = m.reply("250-mx\r\n250-PIPELINING\r\n250 STARTTLS\r\n");
    assert_eq!(w, ["STARTTLS\r\n"]);
    assert!(matches!(
        &ev[..],
        [ClientEvent::Ehlo {
            tls: false,
            early: None,
            ..
        }]
    ));
    let (w, ev) = m.reply("220 go ahead\r\n");
    assert!(w.is_empty());
    assert_eq!(ev, [ClientEvent::StartTls { injected: false }]);
    m.c.tls_started();
    assert!(m.c.capabilities().starttls.eq(&false));
    m.run();
    assert_eq!(std::mem::take(&mut m.written), ["EHLO me\r\n"]);
    let (_, ev) = m.reply("250-mx\r\n250 PIPELINING\r\n");
    assert!(
        matches!(
            &ev[..],
            [ClientEvent::Ehlo { tls: true, .. }, ClientEvent::Ready]
        ),
        "{ev:?}"
    );
    assert_eq!(m.c.sequence(), "ese");
    // Replies pipelined behind the 220 are reported.
    let mut m = Manual::new(tls_cfg(false));
    m.run();
    m.reply("220 hi\r\n");
    m.reply("250-mx\r\n250 STARTTLS\r\n");
    let (_, ev) = m.reply("220 go ahead\r\n250 injected\r\n");
    assert_eq!(ev, [ClientEvent::StartTls { injected: true }]);
    // Refused: fine unless required.
    let mut m = Manual::new(tls_cfg(false));
    m.run();
    m.reply("220 hi\r\n");
    m.reply("250-mx\r\n250 STARTTLS\r\n");
    let (_, ev) = m.reply("454 not now\r\n");
    assert_eq!(ev, [ClientEvent::Ready]);
    let mut m = Manual::new(tls_cfg(true));
    m.run();
    m.reply("220 hi\r\n");
    m.reply("250-mx\r\n250 STARTTLS\r\n");
    let (_, ev) = m.reply("454 not now\r\n");
    assert!(matches!(&ev[..], [ClientEvent::StartTlsRefused(r)] if r.code == 454));
    // Required and not offered.
    let mut m = Manual::new(tls_cfg(true));
    m.run();
    m.reply("220 hi\r\n");
    let (w, ev) = m.reply("250-mx\r\n250 PIPELINING\r\n");
    assert!(w.is_empty());
    assert!(matches!(
        &ev[..],
        [ClientEvent::Ehlo { .. }, ClientEvent::TlsNotOffered]
    ));
}

fn cached(lines: &[&str]) -> EhloCapabilities {
    let mut text = vec!["mx"];
    text.extend_from_slice(lines);
    EhloCapabilities::from_reply(&Reply::from_lines(250, text))
}

#[test]
fn early_pipelining_transcript() {
    let mut m = Manual::new(ClientConfig::new("me"));
    assert!(m
        .c
        .start_early(cached(&["PIPELINING", "PIPECONNECT", "CHUNKING"]), None));
    assert!(m.c.is_early());
    assert!(!m.run(), "nothing is read before the transaction");
    assert_eq!(std::mem::take(&mut m.events), [ClientEvent::Ready]);
    assert!(m.written.is_empty(), "the EHLO waits for the transaction");
    assert!(m.c.transaction(env(&["a@b"]), &[b"x\n"]));
    assert!(m.run());
    assert_eq!(
        std::mem::take(&mut m.written),
        ["[data]EHLO me\r\nMAIL FROM:<sender@example.org>\r\nRCPT TO:<a@b>\r\nBDAT 3 LAST\r\nx\r\n"]
    );
    let a = m.c.awaiting().unwrap();
    assert!(a.early && a.pipelined && a.after == "initial connection");
    m.reply("220 mx ESMTP\r\n");
    let a = m.c.awaiting().unwrap();
    assert!(a.early && a.pipelined && a.after == "EHLO me");
    // The answer changed (CHUNKING gone): reported, and used from now on.
    let (_, ev) = m.reply("250-mx\r\n250-PIPELINING\r\n250 PIPECONNECT\r\n");
    assert!(
        matches!(
            &ev[..],
            [ClientEvent::Ehlo {
                early: Some(false),
                ..
            }]
        ),
        "{ev:?}"
    );
    assert!(!m.c.capabilities().chunking);
    let (_, ev) = m.reply("250 OK\r\n250 OK\r\n250 OK id=1\r\n");
    assert!(matches!(&ev[..], [ClientEvent::Done(r)] if r.delivered() == [0]));
    assert_eq!(m.c.sequence(), "e");
    // A refused banner ends the session; the cache is to be dropped.
    let mut m = Manual::new(ClientConfig::new("me"));
    assert!(m
        .c
        .start_early(cached(&["PIPELINING", "PIPECONNECT"]), None));
    m.run();
    m.events.clear();
    assert!(m.c.transaction(env(&["a@b"]), &[b"x\n"]));
    m.run();
    assert_eq!(
        m.written.last().unwrap(),
        "EHLO me\r\nMAIL FROM:<sender@example.org>\r\nRCPT TO:<a@b>\r\nDATA\r\n"
    );
    let (_, ev) = m.reply("554 no service\r\n");
    assert!(
        matches!(&ev[..], [ClientEvent::Refused { reply, early: true, .. }] if reply.code == 554),
        "{ev:?}"
    );
    assert_eq!(m.c.next_step(), Step::Idle);
    // Not without PIPECONNECT (nor after input).
    let mut c = ClientSession::new(ClientConfig::new("me"));
    assert!(!c.start_early(cached(&["PIPELINING"]), None));
    c.input(b"220 hi\r\n");
    assert!(!c.start_early(cached(&["PIPELINING", "PIPECONNECT"]), None));
}

#[test]
fn early_pipelining_with_starttls_waits_for_tls() {
    let mut m = Manual::new(tls_cfg(false));
    let caps = cached(&[
        "PIPELINING",
        "PIPECONNECT",
        "STARTTLS",
        "CHUNKING",
        "XOXIM-TXID",
    ]);
    assert!(!m.c.syn_transaction_possible(&caps));
    assert!(m.c.start_early(caps, Some("t".repeat(32))));
    assert!(m.run(), "the answers are needed now");
    assert_eq!(std::mem::take(&mut m.written), ["EHLO me\r\nSTARTTLS\r\n"]);
    m.reply("220 mx\r\n");
    let (_, ev) = m.reply("250-mx\r\n250-PIPELINING\r\n250-PIPECONNECT\r\n250 STARTTLS\r\n");
    assert!(
        matches!(
            &ev[..],
            [ClientEvent::Ehlo {
                early: Some(false),
                ..
            }]
        ),
        "{ev:?}"
    );
    assert_eq!(m.c.awaiting().unwrap().after, "STARTTLS");
    let (_, ev) = m.reply("220 TLS go ahead\r\n");
    assert_eq!(ev, [ClientEvent::StartTls { injected: false }]);
    m.c.tls_started();
    m.run();
    assert_eq!(std::mem::take(&mut m.written), ["EHLO me\r\n"]);
    let (_, ev) = m.reply("250-mx\r\n250 PIPELINING\r\n");
    assert!(matches!(
        &ev[..],
        [ClientEvent::Ehlo { tls: true, .. }, ClientEvent::Ready]
    ));
    assert_eq!(m.c.sequence(), "ese");
    // With AUTH to do, the early EHLO is answered before the session is ready.
    let mut m = Manual::new(ClientConfig {
        auth: true,
        ..ClientConfig::new("me")
    });
    assert!(m
        .c
        .start_early(cached(&["PIPELINING", "PIPECONNECT"]), None));
    assert!(m.run());
    assert_eq!(std::mem::take(&mut m.written), ["EHLO me\r\n"]);
    m.reply("220 mx\r\n");
    let (_, ev) = m.reply("250-mx\r\n250-PIPELINING\r\n250 PIPECONNECT\r\n");
    assert!(matches!(
        &ev[..],
        [
            ClientEvent::Ehlo {
                early: Some(true),
                ..
            },
            ClientEvent::Ready
        ]
    ));
}

#[test]
fn transaction_in_the_syn_carries_a_token_when_it_fits() {
    let caps = cached(&["PIPELINING", "PIPECONNECT", "CHUNKING", "XOXIM-TXID"]);
    let token = "0123456789abcdef0123456789abcdef".to_string();
    let mut m = Manual::new(ClientConfig::new("me"));
    assert!(m.c.syn_transaction_possible(&caps));
    assert!(m.c.start_early(caps.clone(), Some(token.clone())));
    m.run();
    assert!(m.c.transaction(env(&["a@b"]), &[b"x\n"]));
    m.run();
    assert_eq!(
        m.written,
        [format!(
            "[data]EHLO me\r\nMAIL FROM:<sender@example.org> XOXIM-TXID={token}\r\n\
             RCPT TO:<a@b>\r\nBDAT 3 LAST\r\nx\r\n"
        )]
    );
    m.reply("220 mx\r\n250-mx\r\n250-PIPELINING\r\n250-PIPECONNECT\r\n250-CHUNKING\r\n250 XOXIM-TXID\r\n");
    let a = m.c.awaiting().unwrap();
    assert!(a.after.ends_with(&token) && a.pipelined, "{a:?}");
    // Too big for the SYN: the EHLO goes alone (it makes the connection),
    // the transaction follows without a token.
    let mut m = Manual::new(ClientConfig::new("me"));
    assert!(m.c.start_early(caps, Some(token)));
    m.run();
    let big = vec![b'x'; oxim_smtp::SYN_DATA_MAX];
    assert!(m.c.transaction(env(&["a@b"]), &[&big]));
    m.run();
    assert_eq!(m.written[0], "EHLO me\r\n");
    assert!(m.written[1].starts_with("[data]MAIL FROM:<sender@example.org>\r\nRCPT"));
}

/// Exim's PIPECONNECT with CHUNKING against the server session: with
/// cached capabilities the whole transaction (EHLO, MAIL, RCPT, BDAT LAST
/// and the body) leaves in the first flight, before the greeting arrives.
#[test]
fn early_pipelining_against_the_server_session() {
    let ext = Extensions {
        chunking: true,
        pipe_connect: true,
        ..exim_extensions()
    };
    let cfg = ServerConfig {
        pipe_connect: true,
        ..ServerConfig::default()
    };
    let cached = EhloCapabilities::from_reply(&oxim_smtp::ehlo_reply("mx", "Hello", &ext));
    assert!(cached.pipe_connect && cached.chunking && cached.pipelining);
    let mut c = ClientSession::new(ClientConfig::new("client.example"));
    assert!(c.start_early(cached, None));
    assert_eq!(c.next_step(), Step::Event(ClientEvent::Ready));
    assert!(c.transaction(env(&["a@x.example", "bad@x.example"]), &[BODY]));
    let Step::Write {
        bytes: first_flight,
        data: true,
    } = c.next_step()
    else {
        panic!("one write")
    };
    assert_eq!(c.next_step(), Step::Read);
    let text = String::from_utf8_lossy(&first_flight).into_owned();
    assert!(
        text.starts_with("EHLO client.example\r\nMAIL FROM:<sender@example.org> SIZE=100\r\n"),
        "{text}"
    );
    let crlf_len = BODY.len() + BODY.iter().filter(|&&b| b == b'\n').count();
    assert!(
        text.contains(&format!("BDAT {crlf_len} LAST\r\n")),
        "{text}"
    );

    // The server receives the flight before it has even greeted (TFO SYN data).
    let mut s = oxim_smtp::ServerSession::new(cfg);
    s.handle_input(&first_flight);
    s.greet(Reply::new(220, "mx ESMTP")).unwrap();
    let mut body = Vec::new();
    while let Some(ev) = s.poll_event() {
        match ev {
            oxim_smtp::Event::Helo { .. } => s.accept_ehlo("mx", "Hello", &ext).unwrap(),
            oxim_smtp::Event::Mail(_) => s.accept_mail().unwrap(),
            oxim_smtp::Event::Rcpt(r) if r.to.starts_with("bad") => {
                s.reject(Reply::new(550, "no")).unwrap()
            }
            oxim_smtp::Event::Rcpt(_) => s.accept_rcpt().unwrap(),
            oxim_smtp::Event::DataChunk(b) => body.extend_from_slice(&b),
            oxim_smtp::Event::DataEnd(_) => s.accept_message("X").unwrap(),
            oxim_smtp::Event::Bdat { .. } => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(body, BODY);
    c.input(&s.take_output());
    assert!(matches!(
        c.next_step(),
        Step::Event(ClientEvent::Ehlo {
            early: Some(true),
            ..
        })
    ));
    match c.next_step() {
        Step::Event(ClientEvent::Done(r)) => {
            assert_eq!(r.delivered(), vec![0]);
            assert_eq!(rcpt_codes(&r), [250, 550]);
            let text = r.final_reply.unwrap().text;
            assert_eq!(text.last().unwrap(), "OK id=X");
            assert!(text[0].contains(" byte chunk, total "), "{text:?}");
        }
        other => panic!("{other:?}"),
    }

    // Without early pipelining on the server, the same flight is a sync error.
    let mut s = oxim_smtp::ServerSession::new(ServerConfig::default());
    s.handle_input(&first_flight);
    s.greet(Reply::new(220, "mx ESMTP")).unwrap();
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
