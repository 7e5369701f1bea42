//! [`ClientSession`]: one SMTP client conversation, sans I/O.

use super::*;

/// Something the client session reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// Greeting and EHLO (or HELO) accepted; transactions may start.
    Ready {
        /// The greeting.
        greeting: Reply,
        /// The EHLO (or HELO) reply.
        hello: Reply,
        /// What the server offers (empty after HELO).
        caps: EhloCapabilities,
    },
    /// The greeting or EHLO/HELO was refused; call
    /// [`ClientSession::quit`] or drop the connection.
    Refused(Reply),
    /// The body may be sent now ([`ClientSession::send_body`] then
    /// [`ClientSession::finish_body`]).
    SendBody,
    /// The transaction is over (successfully or not).
    TransactionDone(TransactionResult),
    /// Reply to QUIT; the session is closed.
    Closed(Reply),
    /// The server sent something unparseable or unexpected; give up on the
    /// connection.
    ProtocolError(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Expect {
    Greeting,
    Ehlo,
    Helo,
    Mail,
    Rcpt(usize),
    Data,
    Dot,
    /// Reply to a dot sent only to close a DATA nobody wanted.
    DotIgnored,
    Bdat {
        last: bool,
    },
    Rset,
    Quit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CState {
    Connecting,
    Ready,
    Envelope,
    Body,
    Closing,
    Closed,
}

/// Sans-I/O SMTP client for the smtp transport: EHLO, pipelined envelope,
/// DATA or BDAT body, QUIT. Feed server bytes with
/// [`ClientSession::handle_input`], drain [`ClientSession::poll_event`], and
/// write [`ClientSession::take_output`] to the socket.
///
/// With PIPELINING (and CHUNKING), `MAIL`, every `RCPT` and `BDAT n LAST` with
/// the body can leave in one write; with PIPELINING alone `MAIL`, `RCPT`s and
/// `DATA` do, and the body follows the `354`.
#[derive(Debug)]
pub struct ClientSession {
    cfg: ClientConfig,
    parser: crate::reply::ReplyParser,
    out: Vec<u8>,
    expect: std::collections::VecDeque<Expect>,
    state: CState,
    greeting: Option<Reply>,
    caps: EhloCapabilities,
    esmtp: bool,
    // Transaction.
    env: Envelope,
    result: TransactionResult,
    pipelined: bool,
    chunked: bool,
    next_rcpt: usize,
    stuffer: crate::data::DotStuffer,
    pending_chunk: Vec<u8>,
    bdat_failed: bool,
    body_allowed: bool,
    body_started: bool,
    queued: Option<ClientEvent>,
    after_rset: Option<TransactionResult>,
    early: bool,
}

impl ClientSession {
    /// A session waiting for the server's greeting.
    pub fn new(cfg: ClientConfig) -> Self {
        let parser = crate::reply::ReplyParser::with_limits(cfg.reply_limits);
        Self {
            cfg,
            parser,
            out: Vec::new(),
            expect: [Expect::Greeting].into(),
            state: CState::Connecting,
            greeting: None,
            caps: EhloCapabilities::default(),
            esmtp: false,
            env: Envelope::default(),
            result: TransactionResult::default(),
            pipelined: false,
            chunked: false,
            next_rcpt: 0,
            stuffer: crate::data::DotStuffer::new(),
            pending_chunk: Vec::new(),
            bdat_failed: false,
            body_allowed: false,
            body_started: false,
            queued: None,
            after_rset: None,
            early: false,
        }
    }

    /// Early pipelining (Exim's `PIPECONNECT`): send EHLO now, without
    /// waiting for the greeting, and become ready at once with `cached`
    /// (the capabilities the server advertised last time, which must include
    /// `PIPECONNECT`). [`ClientSession::send_envelope`] may follow
    /// immediately, so with TCP Fast Open EHLO, MAIL, RCPT and (with CHUNKING)
    /// `BDAT n LAST` plus the body can all travel in the SYN.
    ///
    /// Returns `false` (and does nothing) if input was already received or
    /// `cached` lacks `PIPECONNECT` or PIPELINING. The greeting and EHLO
    /// replies are checked when they arrive: a refusal is reported as
    /// [`ClientEvent::Refused`]; no [`ClientEvent::Ready`] is sent.
    pub fn start_early(&mut self, cached: EhloCapabilities) -> bool {
        if self.state != CState::Connecting
            || self.parser.buffered() > 0
            || !cached.pipe_connect
            || !cached.pipelining
        {
            return false;
        }
        let name = self.cfg.helo_name.clone();
        ehlo(&mut self.out, &name);
        self.expect.push_back(Expect::Ehlo);
        self.caps = cached;
        self.esmtp = true;
        self.early = true;
        self.state = CState::Ready;
        true
    }

    /// True if the session was started with [`ClientSession::start_early`].
    pub fn is_early(&self) -> bool {
        self.early
    }

    /// Bytes to write to the server.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// True if there is output to write.
    pub fn has_output(&self) -> bool {
        !self.out.is_empty()
    }

    /// Server capabilities (after [`ClientEvent::Ready`]).
    pub fn capabilities(&self) -> &EhloCapabilities {
        &self.caps
    }

    /// True after an accepted EHLO.
    pub fn is_esmtp(&self) -> bool {
        self.esmtp
    }

    /// True when a new transaction may be started.
    pub fn is_ready(&self) -> bool {
        self.state == CState::Ready
    }

    /// True after the QUIT reply (or a fatal protocol error).
    pub fn is_closed(&self) -> bool {
        self.state == CState::Closed
    }

    /// Buffer bytes received from the server.
    pub fn handle_input(&mut self, bytes: &[u8]) {
        self.parser.feed(bytes);
    }

    /// Start a transaction. Returns `false` (and does nothing) unless the
    /// session is ready or the envelope has no recipients.
    pub fn send_envelope(&mut self, env: Envelope) -> bool {
        if self.state != CState::Ready || env.rcpts.is_empty() {
            return false;
        }
        self.pipelined = self.cfg.use_pipelining && self.caps.pipelining;
        self.chunked = self.cfg.use_chunking && self.caps.chunking;
        self.result = TransactionResult {
            rcpts: vec![None; env.rcpts.len()],
            ..TransactionResult::default()
        };
        self.env = env;
        self.next_rcpt = 0;
        self.bdat_failed = false;
        self.body_allowed = false;
        self.body_started = false;
        self.pending_chunk.clear();
        self.stuffer = if self.chunked {
            crate::data::DotStuffer::crlf_only()
        } else {
            crate::data::DotStuffer::new()
        };
        self.state = CState::Envelope;
        self.write_mail();
        if self.pipelined {
            for i in 0..self.env.rcpts.len() {
                self.write_rcpt(i);
            }
            self.next_rcpt = self.env.rcpts.len();
            if self.chunked {
                // No go-ahead needed for BDAT: the body may follow at once.
                self.body_allowed = true;
                self.state = CState::Body;
                self.queued = Some(ClientEvent::SendBody);
            } else {
                data(&mut self.out);
                self.expect.push_back(Expect::Data);
            }
        }
        true
    }

    pub(super) fn write_mail(&mut self) {
        let size = self.env.size.filter(|_| self.caps.size_advertised);
        let body = self.env.body.filter(|_| self.caps.eight_bit_mime);
        let utf8 = self.env.smtputf8 && self.caps.smtputf8;
        let from = self.env.from.clone();
        mail_from_with(&mut self.out, &from, size, body, utf8);
        self.expect.push_back(Expect::Mail);
    }

    pub(super) fn write_rcpt(&mut self, i: usize) {
        if let Some(to) = self.env.rcpts.get(i).cloned() {
            rcpt_to(&mut self.out, &to, &[]);
            self.expect.push_back(Expect::Rcpt(i));
        }
    }

    /// Send body bytes (LF or CRLF line endings, as stored in the spool).
    /// Only valid after [`ClientEvent::SendBody`]; returns `false` (and sends
    /// nothing) otherwise, e.g. when every recipient was refused before the
    /// body started.
    pub fn send_body(&mut self, chunk: &[u8]) -> bool {
        if !self.body_allowed {
            return false;
        }
        self.body_started = true;
        if self.chunked {
            // Keep one chunk back so the final one can carry LAST.
            if !self.pending_chunk.is_empty() {
                let prev = std::mem::take(&mut self.pending_chunk);
                bdat(&mut self.out, prev.len() as u64, false);
                self.out.extend_from_slice(&prev);
                self.expect.push_back(Expect::Bdat { last: false });
            }
            self.stuffer.encode(chunk, &mut self.pending_chunk);
        } else {
            self.stuffer.encode(chunk, &mut self.out);
        }
        true
    }

    /// End the body (`.` or `BDAT n LAST`).
    pub fn finish_body(&mut self) -> bool {
        if !self.body_allowed {
            return false;
        }
        self.body_allowed = false;
        self.body_started = true;
        if self.chunked {
            let mut last = std::mem::take(&mut self.pending_chunk);
            self.stuffer.finish(&mut last);
            bdat(&mut self.out, last.len() as u64, true);
            self.out.extend_from_slice(&last);
            self.expect.push_back(Expect::Bdat { last: true });
        } else {
            self.stuffer.finish(&mut self.out);
            self.expect.push_back(Expect::Dot);
        }
        true
    }

    /// Send QUIT (when ready, refused, or after a transaction).
    pub fn quit(&mut self) {
        if !matches!(self.state, CState::Closing | CState::Closed) {
            quit(&mut self.out);
            self.expect.push_back(Expect::Quit);
            self.state = CState::Closing;
        }
    }

    /// Next event, or `None` when more server input is needed.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        if let Some(ev) = self.queued.take() {
            return Some(ev);
        }
        loop {
            if self.state == CState::Closed {
                return None;
            }
            let reply = match self.parser.next_reply() {
                Ok(Some(r)) => r,
                Ok(None) => return None,
                Err(e) => return Some(self.fail(e.to_string())),
            };
            let Some(exp) = self.expect.pop_front() else {
                return Some(self.fail(format!("unexpected reply: {reply}")));
            };
            if let Some(ev) = self.on_reply(exp, reply) {
                return Some(ev);
            }
        }
    }

    pub(super) fn fail(&mut self, msg: String) -> ClientEvent {
        self.state = CState::Closed;
        self.expect.clear();
        ClientEvent::ProtocolError(msg)
    }

    pub(super) fn any_rcpt_ok(&self) -> bool {
        self.result.rcpts.iter().flatten().any(Reply::is_positive)
    }

    pub(super) fn mail_ok(&self) -> bool {
        self.result.mail.as_ref().is_some_and(Reply::is_positive)
    }

    /// Finish the transaction: RSET if the server still holds an open
    /// transaction, then report.
    pub(super) fn done(&mut self, needs_rset: bool) -> Option<ClientEvent> {
        self.body_allowed = false;
        let result = std::mem::take(&mut self.result);
        if needs_rset {
            rset(&mut self.out);
            self.expect.push_back(Expect::Rset);
            if !self.pipelined {
                // Without PIPELINING nothing may follow RSET before its reply.
                self.after_rset = Some(result);
                return None;
            }
        }
        self.state = CState::Ready;
        Some(ClientEvent::TransactionDone(result))
    }

    pub(super) fn on_reply(&mut self, exp: Expect, reply: Reply) -> Option<ClientEvent> {
        match exp {
            Expect::Greeting => {
                if !reply.is_positive() {
                    return Some(self.refused(reply));
                }
                self.greeting = Some(reply);
                if self.early {
                    // EHLO is already on its way.
                    return None;
                }
                let name = self.cfg.helo_name.clone();
                ehlo(&mut self.out, &name);
                self.expect.push_back(Expect::Ehlo);
                None
            }
            Expect::Ehlo if reply.is_positive() => {
                self.caps = EhloCapabilities::from_reply(&reply);
                self.esmtp = true;
                if self.early {
                    return None;
                }
                self.ready(reply)
            }
            Expect::Ehlo if self.early => Some(self.refused(reply)),
            Expect::Ehlo if reply.is_permanent() && self.cfg.helo_fallback => {
                let name = self.cfg.helo_name.clone();
                helo(&mut self.out, &name);
                self.expect.push_back(Expect::Helo);
                None
            }
            Expect::Helo if reply.is_positive() => {
                self.caps = EhloCapabilities::default();
                self.ready(reply)
            }
            Expect::Ehlo | Expect::Helo => Some(self.refused(reply)),
            Expect::Mail => {
                let ok = reply.is_positive();
                self.result.mail = Some(reply);
                if !ok && !self.pipelined {
                    return self.done(false);
                }
                if ok && !self.pipelined {
                    self.write_rcpt(0);
                    self.next_rcpt = 1;
                }
                None
            }
            Expect::Rcpt(i) => {
                if let Some(slot) = self.result.rcpts.get_mut(i) {
                    *slot = Some(reply);
                }
                if self.pipelined {
                    let last = i + 1 == self.env.rcpts.len();
                    if last && self.chunked && !self.body_started && !self.any_rcpt_ok() {
                        // Nobody to deliver to and no body sent yet: stop.
                        let open = self.mail_ok();
                        return self.done(open);
                    }
                    return None;
                }
                if self.next_rcpt < self.env.rcpts.len() {
                    let n = self.next_rcpt;
                    self.write_rcpt(n);
                    self.next_rcpt += 1;
                    return None;
                }
                if !self.any_rcpt_ok() {
                    return self.done(true);
                }
                if self.chunked {
                    self.body_allowed = true;
                    self.state = CState::Body;
                    return Some(ClientEvent::SendBody);
                }
                data(&mut self.out);
                self.expect.push_back(Expect::Data);
                None
            }
            Expect::Data => {
                let go = reply.code == 354;
                self.result.data = Some(reply);
                if go && self.mail_ok() && self.any_rcpt_ok() {
                    self.body_allowed = true;
                    self.state = CState::Body;
                    return Some(ClientEvent::SendBody);
                }
                if go {
                    // The server wants a body nobody will deliver: end it.
                    self.out.extend_from_slice(b".\r\n");
                    self.expect.push_back(Expect::DotIgnored);
                    return None;
                }
                let open = self.mail_ok();
                self.done(open)
            }
            Expect::DotIgnored => {
                let open = self.mail_ok();
                self.done(open)
            }
            Expect::Dot => {
                self.result.final_reply = Some(reply);
                self.done(false)
            }
            Expect::Bdat { last } => {
                let failed_before = self.bdat_failed;
                if !reply.is_positive() && !self.bdat_failed {
                    self.bdat_failed = true;
                    self.result.final_reply = Some(reply.clone());
                }
                if !last {
                    return None;
                }
                if !self.bdat_failed {
                    self.result.final_reply = Some(reply);
                }
                // A failed intermediate chunk leaves the server waiting for
                // RSET; a reply to the LAST chunk ends the transaction.
                let open = failed_before && self.mail_ok() && self.any_rcpt_ok();
                self.done(open)
            }
            Expect::Rset => self.after_rset.take().map(|r| {
                self.state = CState::Ready;
                ClientEvent::TransactionDone(r)
            }),
            Expect::Quit => {
                self.state = CState::Closed;
                Some(ClientEvent::Closed(reply))
            }
        }
    }

    /// The server refused the session. Anything pipelined early will not
    /// be answered in order, so forget it.
    pub(super) fn refused(&mut self, reply: Reply) -> ClientEvent {
        if self.early {
            self.expect.clear();
            self.result = TransactionResult::default();
            self.body_allowed = false;
            self.state = CState::Connecting;
        }
        ClientEvent::Refused(reply)
    }

    pub(super) fn ready(&mut self, hello: Reply) -> Option<ClientEvent> {
        self.state = CState::Ready;
        Some(ClientEvent::Ready {
            greeting: self.greeting.clone().unwrap_or_else(|| Reply::new(220, "")),
            hello,
            caps: self.caps.clone(),
        })
    }
}
