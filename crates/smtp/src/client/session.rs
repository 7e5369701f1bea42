//! [`ClientSession`]: the smtp transport's side of an SMTP conversation,
//! sans I/O. Every wire decision is made here: what goes next, which
//! commands travel together, what a reply answers and what it means for
//! the session; the caller only moves bytes and runs the TLS handshake.

use std::collections::VecDeque;

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Greeting,
    Ehlo,
    Helo,
    StartTls,
    Command,
    Mail,
    Rcpt(usize),
    Data,
    /// The final reply after a body (`.` or `BDAT n LAST`).
    Final,
    /// The reply to a lone dot ending a DATA nobody wanted.
    DotIgnored,
    /// Replies drained after a refused pipelined MAIL.
    Drain,
}

#[derive(Debug, Clone)]
struct Pending {
    expect: Expect,
    after: String,
    pipelined: bool,
    early: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Greeting, hello, STARTTLS.
    Opening,
    Ready,
    /// A command or transaction is under way.
    Busy,
    /// Over (refused, failed, or QUIT said).
    Closed,
}

/// Sans-I/O SMTP client: the smtp transport's conversation. Call
/// [`ClientSession::next_step`] in a loop: write what it says, read when it
/// says, and act on its events; start transactions with
/// [`ClientSession::transaction`] and single commands with
/// [`ClientSession::command`] when it is [`ClientEvent::Ready`].
///
/// With PIPELINING and CHUNKING, `MAIL`, every `RCPT` and `BDAT n LAST`
/// with the body leave in one write; with PIPELINING alone `MAIL`, the
/// `RCPT`s and `DATA` do, and the body follows the `354`; without it one
/// command at a time. With early pipelining (Exim's PIPECONNECT,
/// [`ClientSession::start_early`]) the EHLO goes with the first transaction,
/// and the banner and EHLO replies are read before its replies.
#[derive(Debug)]
pub struct ClientSession {
    cfg: ClientConfig,
    parser: crate::reply::ReplyParser,
    out: VecDeque<(Vec<u8>, bool)>,
    /// Commands that go out with the next write (the early EHLO).
    held: Vec<u8>,
    expect: VecDeque<Pending>,
    events: VecDeque<ClientEvent>,
    state: State,
    caps: EhloCapabilities,
    tls: bool,
    early: Option<EhloCapabilities>,
    /// The early session waits for its hello replies before being ready.
    early_wait: bool,
    early_started: bool,
    /// The transaction token for a transaction in the SYN.
    syn_token: Option<String>,
    result: TransactionResult,
    /// The body, ready to go after the 354.
    body: Vec<u8>,
    pipelined: bool,
    needs_rset: bool,
    bdat: bool,
    replies: u64,
    closing: bool,
    sequence: String,
}

impl ClientSession {
    /// A session waiting for the server's greeting (after the TLS handshake
    /// with `tls_on_connect`).
    pub fn new(cfg: ClientConfig) -> Self {
        let parser = crate::reply::ReplyParser::with_limits(cfg.reply_limits);
        let tls = cfg.tls_on_connect;
        let mut s = Self {
            cfg,
            parser,
            out: VecDeque::new(),
            held: Vec::new(),
            expect: VecDeque::new(),
            events: VecDeque::new(),
            state: State::Opening,
            caps: EhloCapabilities::default(),
            tls,
            early: None,
            early_wait: false,
            early_started: false,
            syn_token: None,
            result: TransactionResult::default(),
            body: Vec::new(),
            pipelined: false,
            needs_rset: false,
            bdat: false,
            replies: 0,
            closing: false,
            sequence: String::new(),
        };
        s.expect_reply(Expect::Greeting, "initial connection".into(), false);
        s
    }

    /// Early pipelining (Exim's `PIPECONNECT`): EHLO goes without waiting
    /// for the greeting, on the strength of `cached` (the server's answer
    /// last time, which must offer PIPECONNECT and PIPELINING), with
    /// STARTTLS behind it when the cached answer offers it and TLS is
    /// wanted. The EHLO is held back to travel with the first transaction;
    /// the session is ready at once unless something must be answered
    /// before a transaction (STARTTLS, TLS required, AUTH).
    ///
    /// `syn_token`: the connection is not made yet and the first write goes
    /// into a TCP Fast Open SYN ([`ClientConfig::syn_transaction_possible`]):
    /// when the first transaction fits into [`SYN_DATA_MAX`] bytes with
    /// the EHLO, its MAIL carries `XOXIM-TXID=<token>`; otherwise the EHLO
    /// goes alone first.
    ///
    /// Returns `false` (and does nothing) after any input or with a cache
    /// that does not allow it.
    pub fn start_early(&mut self, cached: EhloCapabilities, syn_token: Option<String>) -> bool {
        if self.state != State::Opening
            || self.replies > 0
            || self.parser.buffered() > 0
            || self.tls
            || !cached.pipe_connect
            || !cached.pipelining
            || !self.cfg.use_pipelining
        {
            return false;
        }
        let name = self.cfg.helo_name.clone();
        self.expect.clear();
        self.expect_reply(Expect::Greeting, "initial connection".into(), true);
        self.expect.back_mut().expect("just pushed").early = true;
        ehlo(&mut self.held, &name);
        self.sequence.push('e');
        self.expect_reply(Expect::Ehlo, format!("EHLO {name}"), true);
        self.expect.back_mut().expect("just pushed").early = true;
        let starttls = cached.starttls && self.cfg.starttls.is_some();
        if starttls {
            starttls_cmd(&mut self.held);
            self.sequence.push('s');
            self.expect_reply(Expect::StartTls, "STARTTLS".into(), false);
        }
        self.early_wait = starttls || self.cfg.auth || self.cfg.starttls == Some(true);
        self.syn_token =
            syn_token.filter(|_| !self.early_wait && self.cfg.syn_transaction_possible(&cached));
        self.caps = cached.clone();
        self.early = Some(cached);
        self.early_started = true;
        if !self.early_wait {
            self.state = State::Ready;
            self.events.push_back(ClientEvent::Ready);
        }
        true
    }

    fn expect_reply(&mut self, expect: Expect, after: String, pipelined: bool) {
        self.expect.push_back(Pending {
            expect,
            after,
            pipelined,
            early: false,
        });
    }

    fn write(&mut self, bytes: Vec<u8>, data: bool) {
        self.out.push_back((bytes, data));
    }

    /// What to do next.
    pub fn next_step(&mut self) -> Step {
        loop {
            if let Some((mut bytes, data)) = self.out.pop_front() {
                if !self.held.is_empty() {
                    let mut all = std::mem::take(&mut self.held);
                    all.append(&mut bytes);
                    bytes = all;
                }
                return Step::Write { bytes, data };
            }
            if let Some(ev) = self.events.pop_front() {
                return Step::Event(ev);
            }
            if self.expect.is_empty() || self.state == State::Closed {
                return Step::Idle;
            }
            if self.early_wait && !self.held.is_empty() {
                // The early EHLO's answer is needed before anything else.
                return Step::Write {
                    bytes: std::mem::take(&mut self.held),
                    data: false,
                };
            }
            if self.early.is_some() && self.state == State::Ready {
                // Early replies owed but nothing sent yet to reap them with.
                return Step::Idle;
            }
            match self.parser.next_reply() {
                Ok(Some(reply)) => {
                    self.replies += 1;
                    if reply.code == 421 {
                        self.closing = true;
                    }
                    let p = self.expect.pop_front().expect("checked non-empty");
                    self.on_reply(p, reply);
                }
                Ok(None) => return Step::Read,
                Err(e) => {
                    self.state = State::Closed;
                    return Step::Event(ClientEvent::Malformed(e));
                }
            }
        }
    }

    /// Bytes received from the server.
    pub fn input(&mut self, bytes: &[u8]) {
        self.parser.feed(bytes);
    }

    /// The reply the session waits for (`None` when it waits for none).
    pub fn awaiting(&self) -> Option<Awaiting> {
        self.expect.front().map(|p| Awaiting {
            after: p.after.clone(),
            pipelined: p.pipelined,
            final_reply: matches!(p.expect, Expect::Final | Expect::DotIgnored),
            early: p.early,
            draining: p.expect == Expect::Drain,
        })
    }

    /// What the server offers (the cached answer until an early EHLO is
    /// answered).
    pub fn capabilities(&self) -> &EhloCapabilities {
        &self.caps
    }

    /// Whether a whole transaction may ride in a TCP Fast Open SYN with
    /// this session's policy and the server's cached EHLO answer
    /// ([`ClientConfig::syn_transaction_possible`]).
    pub fn syn_transaction_possible(&self, cached: &EhloCapabilities) -> bool {
        self.cfg.syn_transaction_possible(cached)
    }

    /// The session started with early pipelining.
    pub fn is_early(&self) -> bool {
        self.early_started
    }

    /// Replies read so far.
    pub fn replies(&self) -> u64 {
        self.replies
    }

    /// The server said 421: it is closing the connection.
    pub fn closing(&self) -> bool {
        self.closing
    }

    /// The last transaction started sends its body with BDAT.
    pub fn transaction_uses_bdat(&self) -> bool {
        self.bdat
    }

    /// A transaction may still be open on the server: RSET before MAIL.
    pub fn needs_rset(&self) -> bool {
        self.needs_rset
    }

    /// How the session started, as Exim's `PS=` shows it: `e` EHLO, `h`
    /// HELO, `s` STARTTLS, `a` each authentication attempt.
    pub fn sequence(&self) -> &str {
        &self.sequence
    }

    /// Record an authentication attempt for [`ClientSession::sequence`].
    pub fn note_auth_attempt(&mut self) {
        self.sequence.push('a');
    }

    /// Whether the session is up over TLS.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// The TLS handshake after [`ClientEvent::StartTls`] succeeded:
    /// everything learnt in clear is forgotten and EHLO is said again.
    pub fn tls_started(&mut self) {
        self.tls = true;
        self.caps = EhloCapabilities::default();
        self.say_ehlo();
    }

    fn say_ehlo(&mut self) {
        let name = self.cfg.helo_name.clone();
        let mut b = Vec::new();
        ehlo(&mut b, &name);
        self.write(b, false);
        self.sequence.push('e');
        self.expect_reply(Expect::Ehlo, format!("EHLO {name}"), false);
    }

    /// Send one command line (without CRLF) and report its reply as
    /// [`ClientEvent::Reply`]; `after` names it in errors. Only when ready.
    pub fn command(&mut self, line: &str, after: &str) -> bool {
        if self.state != State::Ready {
            return false;
        }
        self.write(format!("{line}\r\n").into_bytes(), false);
        self.expect_reply(Expect::Command, after.to_string(), false);
        self.state = State::Busy;
        true
    }

    /// `RSET` (reported as [`ClientEvent::Reply`]); clears
    /// [`ClientSession::needs_rset`] when positive.
    pub fn rset(&mut self) -> bool {
        self.command("RSET", "RSET")
    }

    /// The bytes of `QUIT`; the session is over (its reply does not
    /// matter and is not read).
    pub fn quit(&mut self) -> Vec<u8> {
        self.state = State::Closed;
        self.expect.clear();
        let mut b = std::mem::take(&mut self.held);
        quit(&mut b);
        b
    }

    /// Start a transaction with `message` (the header and body parts, LF
    /// or CRLF line ends, as stored in the spool; dot-stuffed or chunked
    /// here). Returns `false` (and does nothing) unless the session is
    /// ready and the envelope has recipients.
    pub fn transaction(&mut self, env: Envelope, message: &[&[u8]]) -> bool {
        if self.state != State::Ready || env.rcpts.is_empty() {
            return false;
        }
        self.state = State::Busy;
        let caps = &self.caps;
        self.pipelined = self.cfg.use_pipelining && caps.pipelining;
        let chunked = self.pipelined && self.cfg.use_chunking && caps.chunking;
        self.bdat = chunked;
        let mut mail = format!("MAIL FROM:<{}>", env.from);
        if let Some(n) = env.size.filter(|_| caps.size_advertised) {
            mail.push_str(&format!(" SIZE={n}"));
        }
        if let Some(b) = env.body.filter(|_| caps.eight_bit_mime) {
            mail.push_str(&format!(" BODY={}", b.as_str()));
        }
        if env.smtputf8 && caps.smtputf8 {
            mail.push_str(" SMTPUTF8");
        }
        if let Some(a) = &env.auth {
            mail.push_str(&format!(" AUTH={}", crate::sasl::xtext_encode(a)));
        }
        let rcpt_commands: Vec<String> =
            env.rcpts.iter().map(|r| format!("RCPT TO:<{r}>")).collect();
        let n = rcpt_commands.len();
        self.result = TransactionResult {
            rcpts: vec![None; n],
            mail_pipelined: self.pipelined,
            data_pipelined: self.pipelined && !chunked,
            chunking: chunked,
            // Until the end of the data says otherwise, the server may
            // hold an open transaction.
            needs_rset: true,
            ..TransactionResult::default()
        };
        let mut body = Vec::new();
        let mut stuffer = if chunked {
            crate::data::DotStuffer::crlf_only()
        } else {
            crate::data::DotStuffer::new()
        };
        let size: usize = message.iter().map(|p| p.len()).sum();
        body.reserve(size + size / 32 + 16);
        for part in message {
            stuffer.encode(part, &mut body);
        }
        stuffer.finish(&mut body);
        if chunked {
            if let Some(token) = self.syn_token.take() {
                let token = format!(" {TX_TOKEN_KEYWORD}={token}");
                let flight = self.held.len()
                    + mail.len()
                    + token.len()
                    + rcpt_commands.iter().map(|c| c.len() + 2).sum::<usize>()
                    + body.len()
                    + 24;
                if flight <= SYN_DATA_MAX {
                    mail.push_str(&token);
                } else {
                    // Only the EHLO rides in the SYN.
                    let held = std::mem::take(&mut self.held);
                    self.write(held, false);
                }
            }
            let mut wire = Vec::with_capacity(body.len() + 64 + 40 * n);
            wire.extend_from_slice(mail.as_bytes());
            wire.extend_from_slice(b"\r\n");
            for c in &rcpt_commands {
                wire.extend_from_slice(c.as_bytes());
                wire.extend_from_slice(b"\r\n");
            }
            bdat(&mut wire, body.len() as u64, true);
            wire.append(&mut body);
            self.write(wire, true);
            self.expect_reply(Expect::Mail, mail.clone(), true);
            for (i, c) in rcpt_commands.iter().enumerate() {
                self.expect_reply(Expect::Rcpt(i), c.clone(), false);
            }
            self.expect_reply(Expect::Final, "end of data".into(), false);
        } else if self.pipelined {
            let mut wire = Vec::with_capacity(64 + 40 * n);
            wire.extend_from_slice(mail.as_bytes());
            wire.extend_from_slice(b"\r\n");
            for c in &rcpt_commands {
                wire.extend_from_slice(c.as_bytes());
                wire.extend_from_slice(b"\r\n");
            }
            data(&mut wire);
            self.write(wire, false);
            self.expect_reply(Expect::Mail, mail.clone(), true);
            for (i, c) in rcpt_commands.iter().enumerate() {
                self.expect_reply(Expect::Rcpt(i), c.clone(), false);
            }
            self.expect_reply(Expect::Data, "DATA".into(), true);
            self.body = body;
        } else {
            self.write(format!("{mail}\r\n").into_bytes(), false);
            self.expect_reply(Expect::Mail, mail.clone(), false);
            self.body = body;
        }
        self.result.mail_command = mail;
        self.result.rcpt_commands = rcpt_commands;
        true
    }

    /// Give up on a transaction whose outcome is known while replies are
    /// still being drained (a refused pipelined MAIL, see
    /// [`Awaiting::draining`]): its result so far. The session is over.
    pub fn abandon(&mut self) -> TransactionResult {
        self.state = State::Closed;
        self.expect.clear();
        std::mem::take(&mut self.result)
    }

    fn any_rcpt_ok(&self) -> bool {
        self.result.rcpts.iter().flatten().any(Reply::is_positive)
    }

    fn done(&mut self, mut needs_rset: bool) {
        // A refused transaction (MAIL, or DATA after an accepted RCPT) is
        // reset before the next one.
        if matches!(self.result.verdict(), Verdict::Mail(_) | Verdict::Data(_)) {
            needs_rset = true;
        }
        self.result.needs_rset = needs_rset;
        self.needs_rset = needs_rset;
        self.body.clear();
        self.state = State::Ready;
        let r = std::mem::take(&mut self.result);
        self.events.push_back(ClientEvent::Done(r));
    }

    fn end(&mut self, ev: ClientEvent) {
        self.state = State::Closed;
        self.expect.clear();
        self.held.clear();
        self.out.clear();
        self.events.push_back(ev);
    }

    fn refused(&mut self, reply: Reply, p: &Pending) {
        self.end(ClientEvent::Refused {
            reply,
            after: p.after.clone(),
            early: p.early,
        });
    }

    /// After a positive hello: STARTTLS when wanted, else ready.
    fn secure(&mut self) {
        if let Some(require) = self.cfg.starttls.filter(|_| !self.tls) {
            if self.expect.iter().any(|p| p.expect == Expect::StartTls) {
                // Pipelined behind the early EHLO: its reply is read even
                // when the fresh answer no longer offers it.
                return;
            }
            if self.caps.starttls {
                let mut b = Vec::new();
                starttls_cmd(&mut b);
                self.write(b, false);
                self.sequence.push('s');
                self.expect_reply(Expect::StartTls, "STARTTLS".into(), false);
                return;
            }
            if require {
                self.end(ClientEvent::TlsNotOffered);
                return;
            }
        }
        self.state = State::Ready;
        self.events.push_back(ClientEvent::Ready);
    }

    fn on_reply(&mut self, p: Pending, reply: Reply) {
        match p.expect {
            Expect::Greeting if !reply.is_positive() => self.refused(reply, &p),
            Expect::Greeting if p.early => {}
            Expect::Greeting => self.say_ehlo(),
            Expect::Ehlo if reply.is_positive() => {
                let caps = EhloCapabilities::from_reply(&reply);
                let early = if p.early {
                    let cached = self.early.take().unwrap_or_default();
                    Some(caps.same_offer(&cached))
                } else {
                    None
                };
                self.caps = caps.clone();
                self.events.push_back(ClientEvent::Ehlo {
                    reply,
                    caps,
                    tls: self.tls,
                    early,
                });
                if early.is_none() || self.early_wait {
                    self.early_wait = false;
                    self.secure();
                }
            }
            Expect::Ehlo if p.early => self.refused(reply, &p),
            Expect::Ehlo => {
                let name = self.cfg.helo_name.clone();
                let mut b = Vec::new();
                helo(&mut b, &name);
                self.write(b, false);
                self.sequence.push('h');
                self.expect_reply(Expect::Helo, format!("HELO {name}"), false);
            }
            Expect::Helo if reply.is_positive() => {
                self.caps = EhloCapabilities::default();
                self.secure();
            }
            Expect::Helo => self.refused(reply, &p),
            Expect::StartTls if reply.code == 220 => {
                let injected = self.parser.buffered() > 0;
                self.events.push_back(ClientEvent::StartTls { injected });
            }
            Expect::StartTls if self.cfg.starttls == Some(true) => {
                self.end(ClientEvent::StartTlsRefused(reply))
            }
            Expect::StartTls => {
                self.state = State::Ready;
                self.events.push_back(ClientEvent::Ready);
            }
            Expect::Command => {
                if p.after == "RSET" && reply.is_positive() {
                    self.needs_rset = false;
                }
                self.state = State::Ready;
                self.events.push_back(ClientEvent::Reply(reply));
            }
            Expect::Mail => {
                let ok = reply.is_positive();
                self.result.mail = Some(reply);
                if ok && !self.pipelined {
                    self.send_rcpt(0);
                } else if !ok && self.pipelined && !self.result.chunking {
                    // The replies to the RCPTs and DATA behind it are only
                    // drained: the outcome is the MAIL refusal.
                    for q in self.expect.iter_mut() {
                        q.expect = Expect::Drain;
                        q.pipelined = true;
                    }
                    if self.expect.is_empty() {
                        self.done(true);
                    }
                } else if !ok && !self.pipelined {
                    self.done(true);
                }
            }
            Expect::Drain => {
                if self.expect.is_empty() {
                    self.done(true);
                }
            }
            Expect::Rcpt(i) => {
                if let Some(slot) = self.result.rcpts.get_mut(i) {
                    *slot = Some(reply);
                }
                if self.pipelined {
                    return;
                }
                if i + 1 < self.result.rcpts.len() {
                    self.send_rcpt(i + 1);
                } else if !self.any_rcpt_ok() {
                    self.done(true);
                } else {
                    let mut b = Vec::new();
                    data(&mut b);
                    self.write(b, false);
                    self.expect_reply(Expect::Data, "DATA".into(), false);
                }
            }
            Expect::Data => {
                let go = reply.class() == 3;
                self.result.data = Some(reply);
                let any = self.any_rcpt_ok();
                if go && any {
                    let body = std::mem::take(&mut self.body);
                    self.write(body, true);
                    self.expect_reply(Expect::Final, "end of data".into(), false);
                } else if go {
                    // The server wants a body nobody will get: end it.
                    self.write(b".\r\n".to_vec(), true);
                    self.expect_reply(Expect::DotIgnored, "end of data".into(), false);
                } else {
                    self.done(true);
                }
            }
            Expect::DotIgnored => self.done(false),
            Expect::Final => {
                self.result.final_reply = Some(reply);
                self.done(false);
            }
        }
    }

    fn send_rcpt(&mut self, i: usize) {
        if let Some(c) = self.result.rcpt_commands.get(i).cloned() {
            self.write(format!("{c}\r\n").into_bytes(), false);
            self.expect_reply(Expect::Rcpt(i), c, false);
        }
    }
}

fn starttls_cmd(out: &mut Vec<u8>) {
    starttls(out);
}
