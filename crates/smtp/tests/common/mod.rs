//! A tiny in-memory "integrator" driving a ServerSession with a fixed policy.
#![allow(dead_code)]

use oxim_smtp::{hello_text, help_reply, Event, Extensions, Reply, ServerConfig, ServerSession};

pub const HOST: &str = "myhost.test.ex";

pub fn exim_extensions() -> Extensions {
    Extensions {
        size: Some(52_428_800),
        eight_bit_mime: true,
        pipelining: true,
        help: true,
        ..Extensions::default()
    }
}

/// What the policy saw.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Seen {
    pub events: Vec<String>,
    pub body: Vec<u8>,
}

pub struct Driver {
    pub s: ServerSession,
    pub ext: Extensions,
    pub seen: Seen,
    pub out: Vec<u8>,
}

impl Driver {
    pub fn new(cfg: ServerConfig, ext: Extensions) -> Self {
        let mut s = ServerSession::new(cfg);
        s.greet(Reply::new(220, format!("{HOST} ESMTP Exim x.yz")))
            .expect("greet");
        Self {
            s,
            ext,
            seen: Seen::default(),
            out: Vec::new(),
        }
    }

    pub fn feed(&mut self, bytes: &[u8]) {
        self.s.handle_input(bytes);
        self.drain();
    }

    pub fn drain(&mut self) {
        while let Some(ev) = self.s.poll_event() {
            let needs = ev.needs_response();
            match &ev {
                Event::DataChunk(b) => self.seen.body.extend_from_slice(b),
                other => self.seen.events.push(format!("{other:?}")),
            }
            let r = match ev {
                Event::Helo { ehlo: true, name } => self.s.accept_ehlo(
                    HOST,
                    &hello_text(&name, None, None, Some("127.0.0.1")),
                    &self.ext.clone(),
                ),
                Event::Helo { ehlo: false, name } => self
                    .s
                    .accept_helo(HOST, &hello_text(&name, None, None, Some("127.0.0.1"))),
                Event::Mail(m) if m.from.contains("reject") => {
                    self.s.reject(Reply::new(550, "sender rejected"))
                }
                Event::Mail(_) => self.s.accept_mail(),
                Event::Rcpt(r) if r.to.starts_with("bad") => {
                    self.s.reject(Reply::new(550, "relay not permitted"))
                }
                Event::Rcpt(_) => self.s.accept_rcpt(),
                Event::Data => self.s.start_data(),
                Event::DataEnd(_) if self.s.prdr_requested() => {
                    // A PRDR policy: the 353, one line per recipient, then
                    // the final answer.
                    self.s
                        .prdr_reply(Reply::new(353, "PRDR content analysis beginning"))
                        .expect("353");
                    self.s
                        .prdr_reply(Reply::new(250, "PRDR R=<a@b> acceptance"))
                        .expect("per-recipient reply");
                    self.s.respond(Reply::new(
                        250,
                        "id=10HmaX-000000005vi-0000 message accepted",
                    ))
                }
                Event::DataEnd(_) => self.s.accept_message("10HmaX-000000005vi-0000"),
                Event::Quit => self.s.accept_quit(HOST),
                Event::Help(_) => self.s.respond(help_reply(false, &[])),
                Event::Vrfy(_) | Event::Expn(_) | Event::Etrn(_) => self
                    .s
                    .respond(Reply::new(252, "Administrative prohibition")),
                Event::StartTls => self.s.respond(Reply::new(220, "TLS go ahead")),
                Event::Auth { .. } => self.s.respond(Reply::new(334, "")),
                Event::AuthResponse(l) if l == "*" => {
                    self.s.respond(Reply::new(501, "Authentication cancelled"))
                }
                Event::AuthResponseTooLong => {
                    self.s.respond(Reply::new(501, "Invalid base64 data"))
                }
                Event::AuthResponse(_) => {
                    self.s.respond(Reply::new(235, "Authentication succeeded"))
                }
                _ => {
                    assert!(!needs, "unhandled event needing a response");
                    Ok(())
                }
            };
            r.expect("respond");
        }
        let o = self.s.take_output();
        self.out.extend_from_slice(&o);
    }

    pub fn output(&self) -> String {
        String::from_utf8_lossy(&self.out).into_owned()
    }
}

/// Run a transcript where each element is sent separately (the client waits
/// for replies), return everything the server wrote after the banner.
pub fn transcript(cfg: ServerConfig, ext: Extensions, lines: &[&str]) -> (String, Driver) {
    let mut d = Driver::new(cfg, ext);
    d.drain();
    d.out.clear();
    for l in lines {
        d.feed(l.as_bytes());
    }
    (d.output(), d)
}
