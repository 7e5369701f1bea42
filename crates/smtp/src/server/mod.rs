//! The server side: [`ServerSession`], a sans-I/O SMTP receiver.
//!
//! The caller (daemon, `-bs`) moves bytes; the session parses commands,
//! enforces sequencing and syntax with Exim's reply texts, and hands policy
//! decisions to the caller as [`Event`]s:
//!
//! ```
//! use oxim_smtp::{Event, Reply, ServerConfig, ServerSession};
//!
//! // Like `exim -bs`: local input, no synchronisation checks.
//! let cfg = ServerConfig { enforce_sync: false, ..ServerConfig::default() };
//! let mut s = ServerSession::new(cfg);
//! s.greet(Reply::new(220, "mx.example ESMTP")).unwrap();
//! s.handle_input(b"HELO client.example\r\nMAIL FROM:<a@b.example>\r\n");
//! while let Some(ev) = s.poll_event() {
//!     match ev {
//!         Event::Helo { .. } => s.respond(Reply::new(250, "mx.example Hello client.example")).unwrap(),
//!         Event::Mail(_) => s.accept_mail().unwrap(),
//!         other => panic!("unexpected {other:?}"),
//!     }
//! }
//! assert_eq!(s.take_output(), b"220 mx.example ESMTP\r\n250 mx.example Hello client.example\r\n250 OK\r\n");
//! ```
//!
//! Events for which [`Event::needs_response`] is true (commands that need a
//! policy decision) block further parsing until [`ServerSession::respond`]
//! (or one of its helpers) is called; the reply code decides the transition
//! (a `2xx` to `MAIL` opens the transaction, `354` to `DATA` starts the body,
//! and so on). The other events are informational: the session has already
//! written its reply.

use std::collections::VecDeque;

use crate::address::{parse_params, parse_path_arg, Param};
use crate::client::{BodyType, EhloCapabilities};
use crate::data::{DataDecoder, DataSummary, LineEnding, LineRules};
use crate::error::{AddressError, SessionError};
use crate::reply::Reply;

mod body;
mod commands;
mod config;
mod envelope;
mod events;
mod replies;
#[cfg(test)]
mod tests;
mod verbs;

pub use config::{Extensions, PipeliningUse, ServerConfig, DEFAULT_MAX_LINE_LEN};
pub use events::{ErrorKind, Event, MailFrom, ProtocolError, RcptTo, SessionState};
pub use replies::{ehlo_reply, hello_text, help_reply};

use commands::Line;
use verbs::{identify, Pending, Phase, Verb};

/// How many recent commands the `C=` history keeps (as Exim).
const HISTORY_LEN: usize = 20;

/// A sans-I/O SMTP server session. See the [module docs](self).
#[derive(Debug)]
pub struct ServerSession {
    cfg: ServerConfig,
    inbuf: Vec<u8>,
    pos: usize,
    out: Vec<u8>,
    /// The last command line read, as sent (Exim's `$smtp_command`).
    last_command: String,
    /// Length of the reply just written on its own for the last command
    /// (RSET, NOOP), which [`ServerSession::drop_instead`] can take back.
    auto_reply: Option<usize>,
    phase: Phase,
    pending: Option<Pending>,
    pending_verb: Option<Verb>,
    queued: VecDeque<Event>,
    discarding_long_line: bool,
    long_line_start: String,
    // Connection state.
    helo_name: Option<String>,
    pending_helo: Option<String>,
    helo_seen: bool,
    /// Early pipelining still allowed (until the first DATA/BDAT).
    pipe_connect_ok: bool,
    /// What the log's `L` flag reports (see [`PipeliningUse`]).
    pipelining_use: PipeliningUse,
    /// The transaction's body came by BDAT: the last chunk's size and the
    /// total so far (for Exim's final reply).
    bdat_sizes: Option<(u64, u64)>,
    esmtp: bool,
    adv: EhloCapabilities,
    authenticated: bool,
    tls: bool,
    synprot_errors: u32,
    unknown_commands: u32,
    // Transaction state.
    mail: bool,
    /// The pending or accepted MAIL asked for PRDR (RFC draft, Exim's
    /// `prdr_enable`), and PRDR was advertised.
    prdr: bool,
    rcpts: usize,
    rcpt_count: usize,
    too_many: bool,
    rcpt_reply: Option<String>,
    rcpt_reply_same: bool,
    /// The reply being sent is a policy refusal ([`ServerSession::reject`]).
    policy_reply: bool,
    last_was_rej_mail: bool,
    last_was_rcpt: bool,
    /// The last [`HISTORY_LEN`] commands (their names), for Exim's `C=`.
    history: std::collections::VecDeque<&'static str>,
    /// More commands came than `history` holds.
    history_wrapped: bool,
    /// MAIL commands received (accepted or not).
    mail_commands: u32,
    decoder: DataDecoder,
    /// Complete input lines so far (commands and body lines).
    lines_in: u64,
}

impl ServerSession {
    /// A new session; call [`ServerSession::greet`] to send the banner.
    pub fn new(cfg: ServerConfig) -> Self {
        let decoder = DataDecoder::data(cfg.data_line_ending, cfg.line_rules);
        let pipe_connect_ok = cfg.pipe_connect;
        Self {
            cfg,
            inbuf: Vec::new(),
            pos: 0,
            out: Vec::new(),
            last_command: String::new(),
            auto_reply: None,
            phase: Phase::PreGreeting,
            pending: None,
            pending_verb: None,
            queued: VecDeque::new(),
            discarding_long_line: false,
            long_line_start: String::new(),
            helo_name: None,
            pending_helo: None,
            helo_seen: false,
            pipe_connect_ok,
            pipelining_use: PipeliningUse::default(),
            bdat_sizes: None,
            esmtp: false,
            adv: EhloCapabilities::default(),
            authenticated: false,
            tls: false,
            synprot_errors: 0,
            unknown_commands: 0,
            mail: false,
            prdr: false,
            rcpts: 0,
            rcpt_count: 0,
            too_many: false,
            rcpt_reply: None,
            rcpt_reply_same: true,
            policy_reply: false,
            last_was_rej_mail: false,
            last_was_rcpt: false,
            history: std::collections::VecDeque::new(),
            history_wrapped: false,
            mail_commands: 0,
            decoder,
            lines_in: 0,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.cfg
    }

    /// The recent commands as Exim's `C=` item lists them (`EHLO,MAIL`,
    /// with a leading `...` once older ones have been dropped); empty
    /// before the first command.
    pub fn command_history(&self) -> String {
        let names: Vec<&str> = self.history.iter().copied().collect();
        let list = names.join(",");
        if self.history_wrapped {
            format!("...{list}")
        } else {
            list
        }
    }

    /// How many MAIL commands the client sent (Exim logs a session with
    /// none under `+smtp_no_mail`).
    pub fn mail_commands(&self) -> u32 {
        self.mail_commands
    }

    pub(super) fn note_command(&mut self, name: &'static str) {
        if self.history.len() == HISTORY_LEN {
            self.history.pop_front();
            self.history_wrapped = true;
        }
        self.history.push_back(name);
        if name == "MAIL" {
            self.mail_commands += 1;
        }
    }

    /// Accept `AUTH` even when it was not advertised (Exim's
    /// `control = allow_auth_unadvertised`).
    pub fn set_allow_auth_unadvertised(&mut self, allow: bool) {
        self.cfg.allow_auth_unadvertised = allow;
    }

    /// Turns synchronization checking on or off for the rest of the
    /// session (Exim's `control = enforce_sync` / `no_enforce_sync`).
    pub fn set_enforce_sync(&mut self, on: bool) {
        self.cfg.enforce_sync = on;
    }

    // ----- output ---------------------------------------------------------

    /// Take everything written so far.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// Text for the person at the terminal, written between replies as it
    /// is (Exim's `-bh` notes such as "that is not a real message id").
    pub fn note(&mut self, text: &str) {
        self.out.extend_from_slice(text.as_bytes());
    }

    /// The command line behind the event just polled, as the client sent
    /// it (non-printing characters shown as `?`).
    pub fn last_command(&self) -> &str {
        &self.last_command
    }

    /// Bytes waiting to be written.
    pub fn output(&self) -> &[u8] {
        &self.out
    }

    /// Drop `n` written bytes from the front of [`ServerSession::output`].
    pub fn consume_output(&mut self, n: usize) {
        let n = n.min(self.out.len());
        self.out.drain(..n);
    }

    /// True if there is output to write.
    pub fn has_output(&self) -> bool {
        !self.out.is_empty()
    }

    // ----- state ----------------------------------------------------------

    /// Coarse state.
    pub fn state(&self) -> SessionState {
        match self.phase {
            Phase::PreGreeting => SessionState::PreGreeting,
            Phase::Command | Phase::BdatNext | Phase::RsetOnly => SessionState::Command,
            Phase::Data | Phase::Bdat { .. } => SessionState::Data,
            Phase::AuthContinue => SessionState::Auth,
            Phase::Closed => SessionState::Closed,
        }
    }

    /// True once the session is over (after QUIT, a fatal error or
    /// [`ServerSession::shutdown`]): write the remaining output and close.
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// True while an event waits for [`ServerSession::respond`].
    pub fn awaiting_response(&self) -> bool {
        self.pending.is_some()
    }

    /// The accepted HELO/EHLO name, if any.
    pub fn helo_name(&self) -> Option<&str> {
        self.helo_name.as_deref()
    }

    /// True after an accepted EHLO.
    pub fn is_esmtp(&self) -> bool {
        self.esmtp
    }

    /// What the last accepted EHLO reply advertised.
    pub fn advertised(&self) -> &EhloCapabilities {
        &self.adv
    }

    /// True after a `235` to AUTH.
    pub fn is_authenticated(&self) -> bool {
        self.authenticated
    }

    /// True after a `220` to STARTTLS.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// True between an accepted MAIL and the end of the transaction.
    pub fn in_transaction(&self) -> bool {
        self.mail
    }

    /// Recipients accepted in the current transaction.
    pub fn accepted_recipients(&self) -> usize {
        self.rcpts
    }

    /// Bytes received but not yet processed.
    pub fn buffered_input(&self) -> usize {
        self.inbuf.len() - self.pos
    }

    /// Complete input lines processed so far: command lines, body lines and
    /// the terminating `.` line. With [`ServerSession::mid_line`] it lets the
    /// caller time each line from its first byte (`smtp_receive_timeout`).
    pub fn lines_received(&self) -> u64 {
        self.lines_in
    }

    /// True when part of a line has arrived and the rest has not (checked
    /// after [`ServerSession::poll_event`] returned `None`).
    pub fn mid_line(&self) -> bool {
        match self.phase {
            Phase::Data | Phase::Bdat { .. } => !self.decoder.at_line_start(),
            Phase::Closed => false,
            _ => self.discarding_long_line || self.buffered_input() > 0,
        }
    }

    // ----- input ----------------------------------------------------------

    /// Buffer bytes received from the client. Never blocks; call
    /// [`ServerSession::poll_event`] afterwards.
    pub fn handle_input(&mut self, bytes: &[u8]) {
        if self.phase == Phase::Closed {
            return;
        }
        if self.pos == self.inbuf.len() {
            self.inbuf.clear();
            self.pos = 0;
        } else if self.pos >= 8192 && self.pos * 2 >= self.inbuf.len() {
            self.inbuf.drain(..self.pos);
            self.pos = 0;
        }
        self.inbuf.extend_from_slice(bytes);
    }

    /// Send the greeting. With [`ServerConfig::enforce_sync`], input that
    /// arrived before the greeting gets `554 SMTP synchronization error`
    /// instead (reported as an [`Event::Error`]) and the session closes. A
    /// non-2xx greeting (e.g. `554` from the connect ACL) closes the session.
    pub fn greet(&mut self, reply: Reply) -> Result<(), SessionError> {
        if self.phase != Phase::PreGreeting {
            return Err(SessionError::AlreadyGreeted);
        }
        if self.cfg.enforce_sync && !self.pipe_connect_ok && self.buffered_input() > 0 {
            let ev = self.sync_failure(None, true);
            self.queued.push_back(ev);
            return Ok(());
        }
        if self.pipe_connect_ok && self.buffered_input() > 0 {
            self.pipelining_use.early_used = true;
        }
        reply.write_to(&mut self.out);
        self.phase = if reply.is_positive() {
            Phase::Command
        } else {
            Phase::Closed
        };
        Ok(())
    }

    /// Closes the session with `reply` in place of the answer the session
    /// gave by itself to the last command (RSET, NOOP), when the caller
    /// decides that command is one too many (Exim's
    /// `smtp_accept_max_nonmail`). Otherwise as [`ServerSession::shutdown`].
    /// The refused command never ran, so it leaves the `C=` history.
    pub fn drop_instead(&mut self, reply: Reply) {
        if self.history.pop_back() == Some("MAIL") {
            self.mail_commands -= 1;
        }
        if let Some(n) = self.auto_reply.take() {
            let len = self.out.len();
            if n <= len {
                self.out.truncate(len - n);
            }
        }
        self.shutdown(reply);
    }

    /// Write an unsolicited reply (e.g. `421 ... shutting down`) and close.
    pub fn shutdown(&mut self, reply: Reply) {
        if self.phase != Phase::Closed {
            reply.write_to(&mut self.out);
            self.phase = Phase::Closed;
            self.pending = None;
        }
    }

    /// Produce the next event, or `None` when more input (or a response to
    /// the previous event) is needed.
    pub fn poll_event(&mut self) -> Option<Event> {
        if let Some(ev) = self.queued.pop_front() {
            return Some(ev);
        }
        loop {
            if self.pending.is_some() {
                return None;
            }
            match self.phase {
                Phase::PreGreeting | Phase::Closed => return None,
                Phase::Data => return self.poll_data(),
                Phase::Bdat { .. } => {
                    if let Some(ev) = self.poll_bdat() {
                        return Some(ev);
                    }
                    if matches!(self.phase, Phase::Bdat { .. }) {
                        return None;
                    }
                }
                Phase::Command | Phase::BdatNext | Phase::RsetOnly | Phase::AuthContinue => {
                    let ev = match self.next_line()? {
                        Line::Text(line) => self.process_line(line),
                        Line::TooLong(start) => {
                            self.last_was_rcpt = false;
                            if self.phase == Phase::AuthContinue {
                                // An over-long SASL response ends the
                                // exchange; the caller answers it.
                                self.phase = Phase::Command;
                                self.pending = Some(Pending::Auth);
                                self.pending_verb = None;
                                return Some(Event::AuthResponseTooLong);
                            }
                            Some(self.synprot(
                                ErrorKind::LineTooLong,
                                500,
                                None,
                                "Command line too long",
                                &start,
                            ))
                        }
                    };
                    if let Some(ev) = ev {
                        return Some(ev);
                    }
                }
            }
        }
    }

    // ----- responses ------------------------------------------------------

    /// Answer the event that is waiting. The reply code decides the state
    /// transition (see [`Event`]).
    pub fn respond(&mut self, reply: Reply) -> Result<(), SessionError> {
        if self.phase == Phase::Closed {
            return Err(SessionError::Closed);
        }
        let pending = self.pending.take().ok_or(SessionError::NothingPending)?;
        let verb = self.pending_verb.take();
        // Exim re-checks synchronisation after a (possibly slow) ACL accepted
        // a command that must be the last in its group.
        if reply.is_positive() || reply.code == 354 {
            if let Some(v) = verb {
                if self.sync_violated(v) {
                    let ev = self.sync_failure(Some(format!("{v:?}").to_ascii_uppercase()), false);
                    self.queued.push_back(ev);
                    return Ok(());
                }
            }
        }
        match pending {
            Pending::Helo { ehlo } => {
                if reply.is_positive() {
                    self.esmtp = ehlo;
                    self.adv = if ehlo {
                        EhloCapabilities::from_reply(&reply)
                    } else {
                        EhloCapabilities::default()
                    };
                    self.pipelining_use.advertised |= self.adv.pipelining;
                    if self.adv.pipelining && self.adv.pipe_connect {
                        self.pipelining_use.early_advertised = true;
                        // Exim: more input already waiting behind the first
                        // EHLO means the client did not wait for its reply.
                        if !self.helo_seen && self.pipe_connect_ok && self.buffered_input() > 0 {
                            self.pipelining_use.early_used = true;
                        }
                    }
                    self.helo_seen = true;
                    self.helo_name = self.pending_helo.take();
                    self.reset_transaction();
                } else {
                    // As Exim: a refused HELO forgets the previous name too.
                    self.pending_helo = None;
                    self.helo_name = None;
                }
            }
            Pending::Mail => {
                if reply.is_positive() {
                    self.mail = true;
                    self.last_was_rej_mail = false;
                } else {
                    self.last_was_rej_mail = true;
                }
            }
            Pending::Rcpt => {
                self.note_rcpt_reply(&reply);
                if reply.is_positive() {
                    self.rcpts += 1;
                }
            }
            Pending::Data => {
                if reply.code == 354 {
                    self.decoder =
                        DataDecoder::data(self.cfg.data_line_ending, self.cfg.line_rules);
                    self.phase = Phase::Data;
                }
            }
            Pending::DataEnd => {
                self.reset_transaction();
                if self.phase != Phase::Closed {
                    self.phase = Phase::Command;
                }
            }
            Pending::Quit => {
                reply.write_to(&mut self.out);
                self.phase = Phase::Closed;
                return Ok(());
            }
            Pending::StartTls => {
                if reply.is_positive() {
                    // Anything pipelined after STARTTLS was sent in clear and
                    // must not be treated as part of the TLS session.
                    self.pos = self.inbuf.len();
                    self.tls = true;
                    self.helo_name = None;
                    self.helo_seen = false;
                    self.esmtp = false;
                    self.adv = EhloCapabilities::default();
                    self.authenticated = false;
                    self.reset_transaction();
                }
            }
            Pending::Auth => {
                if reply.is_intermediate() {
                    self.phase = Phase::AuthContinue;
                } else {
                    if reply.is_positive() {
                        self.authenticated = true;
                    }
                    self.phase = Phase::Command;
                }
            }
            Pending::Other => {}
        }
        // Exim's pipeline_response(): a reply written while the client's
        // next command is already here means the client pipelined.
        if self.adv.pipelining && self.buffered_input() > 0 {
            self.pipelining_use.used = true;
        }
        reply.write_to(&mut self.out);
        Ok(())
    }

    /// Whether PIPECONNECT may be advertised now: the host is in
    /// `pipelining_connect_advertise_hosts` and no DATA/BDAT has been seen.
    pub fn pipe_connect_acceptable(&self) -> bool {
        self.pipe_connect_ok
    }

    /// What the client did with PIPELINING and PIPECONNECT so far (the
    /// `L` flag of Exim's `<=` line with `+pipelining`).
    pub fn pipelining_use(&self) -> PipeliningUse {
        self.pipelining_use
    }

    /// Accept HELO/EHLO with Exim's reply: for EHLO the multi-line
    /// [`ehlo_reply`], for HELO `250 hostname greeting`.
    pub fn accept_ehlo(
        &mut self,
        hostname: &str,
        greeting: &str,
        ext: &Extensions,
    ) -> Result<(), SessionError> {
        match self.pending {
            Some(Pending::Helo { ehlo: true }) => self.respond(ehlo_reply(hostname, greeting, ext)),
            Some(Pending::Helo { ehlo: false }) => self.accept_helo(hostname, greeting),
            _ => Err(SessionError::NothingPending),
        }
    }

    /// Accept HELO (or EHLO without extensions): `250 hostname greeting`.
    pub fn accept_helo(&mut self, hostname: &str, greeting: &str) -> Result<(), SessionError> {
        self.respond(Reply::from_lines(250, [format!("{hostname} {greeting}")]))
    }

    /// `250 OK` to MAIL (`250 OK, PRDR Requested` when the client asked
    /// for PRDR and it was advertised).
    pub fn accept_mail(&mut self) -> Result<(), SessionError> {
        let text = if self.prdr {
            "OK, PRDR Requested"
        } else {
            "OK"
        };
        self.respond(Reply::new(250, text))
    }

    /// The current transaction's MAIL asked for PRDR, which was advertised:
    /// the end of its data may be answered per recipient
    /// ([`ServerSession::prdr_reply`]).
    pub fn prdr_requested(&self) -> bool {
        self.prdr
    }

    /// PRDR: one of the replies that come before the final answer to the
    /// end of the data (the `353` that starts them, then one per
    /// recipient, in RCPT order). The data's own answer is still due.
    pub fn prdr_reply(&mut self, reply: Reply) -> Result<(), SessionError> {
        if self.phase == Phase::Closed {
            return Err(SessionError::Closed);
        }
        if self.pending != Some(Pending::DataEnd) || !self.prdr {
            return Err(SessionError::NothingPending);
        }
        reply.write_to(&mut self.out);
        Ok(())
    }

    /// `250 Accepted` to RCPT.
    pub fn accept_rcpt(&mut self) -> Result<(), SessionError> {
        self.respond(Reply::new(250, "Accepted"))
    }

    /// `354 Enter message, ending with "." on a line by itself` to DATA.
    pub fn start_data(&mut self) -> Result<(), SessionError> {
        self.respond(Reply::new(
            354,
            "Enter message, ending with \".\" on a line by itself",
        ))
    }

    /// `250 OK id=<id>` at the end of the body; after BDAT, as Exim,
    /// preceded by a line acknowledging the last chunk and the total.
    pub fn accept_message(&mut self, id: &str) -> Result<(), SessionError> {
        match self.bdat_sizes {
            Some((chunk, total)) => self.respond(Reply::from_lines(
                250,
                [
                    format!(" {chunk} byte chunk, total {total}"),
                    format!("OK id={id}"),
                ],
            )),
            None => self.respond(Reply::new(250, format!("OK id={id}"))),
        }
    }

    /// `221 <hostname> closing connection` to QUIT.
    pub fn accept_quit(&mut self, hostname: &str) -> Result<(), SessionError> {
        self.respond(Reply::new(221, format!("{hostname} closing connection")))
    }

    /// Reject the waiting command with `reply` (same as
    /// [`ServerSession::respond`]; reads better at call sites).
    /// A refusal by policy: as in Exim (which sends these with
    /// `smtp_respond`), the `All RCPT commands were rejected` summary
    /// repeats its text without the code.
    pub fn reject(&mut self, reply: Reply) -> Result<(), SessionError> {
        self.policy_reply = true;
        let r = self.respond(reply);
        self.policy_reply = false;
        r
    }

    /// Refuse the pending command, sending first `preamble` as
    /// continuation lines with the reply's code (Exim's details of a
    /// failed sender verification). Only `reply` counts as the command's
    /// answer (e.g. in the `All RCPT commands were rejected` summary).
    pub fn reject_with_preamble(
        &mut self,
        preamble: &[String],
        reply: Reply,
    ) -> Result<(), SessionError> {
        if self.pending.is_some() && self.phase != Phase::Closed {
            for line in preamble {
                self.out
                    .extend_from_slice(format!("{:03}-{line}\r\n", reply.code).as_bytes());
            }
        }
        self.reject(reply)
    }
}
