//! Reading command lines: framing, synchronisation, HELO/EHLO and the
//! dispatch to one handler per verb.

use super::*;

impl ServerSession {
    // ----- internals ------------------------------------------------------

    pub(super) fn reset_transaction(&mut self) {
        self.bdat_sizes = None;
        self.mail = false;
        self.prdr = false;
        self.rcpts = 0;
        self.rcpt_count = 0;
        self.too_many = false;
        self.rcpt_reply = None;
        self.rcpt_reply_same = true;
    }

    pub(super) fn note_rcpt_reply(&mut self, reply: &Reply) {
        let line = if self.policy_reply {
            reply.text.first().cloned().unwrap_or_default()
        } else {
            reply.first_line()
        };
        match &self.rcpt_reply {
            None => self.rcpt_reply = Some(line),
            Some(prev) if *prev != line => self.rcpt_reply_same = false,
            Some(_) => {}
        }
    }

    pub(super) fn write(&mut self, reply: &Reply) {
        reply.write_to(&mut self.out);
    }

    /// [`Self::write`] for a reply the caller may take back.
    fn write_auto(&mut self, reply: &Reply) {
        let before = self.out.len();
        reply.write_to(&mut self.out);
        self.auto_reply = Some(self.out.len() - before);
    }

    /// Is there input beyond the current command that the client should not
    /// have sent yet?
    pub(super) fn sync_violated(&self, verb: Verb) -> bool {
        self.cfg.enforce_sync && self.buffered_input() > 0 && self.verb_needs_sync(verb)
    }

    pub(super) fn verb_needs_sync(&self, verb: Verb) -> bool {
        let early = self.pipe_connect_ok && matches!(verb, Verb::Helo | Verb::Ehlo);
        !early && verb.needs_sync(self.adv.pipelining)
    }

    pub(super) fn sync_failure(&mut self, line: Option<String>, before_greeting: bool) -> Event {
        let avail = &self.inbuf[self.pos..];
        let next_input = printable(&avail[..avail.len().min(150)]);
        let reply = Reply::new(554, "SMTP synchronization error");
        self.write(&reply);
        self.phase = Phase::Closed;
        self.pending = None;
        Event::Error(ProtocolError {
            kind: ErrorKind::Synchronization {
                before_greeting,
                next_input,
            },
            line: line.unwrap_or_default(),
            detail: if before_greeting {
                "input sent without waiting for greeting".into()
            } else {
                format!(
                    "next input sent too soon: pipelining was{} advertised",
                    if self.adv.pipelining { "" } else { " not" }
                )
            },
            reply,
            closing: true,
            synprot: false,
        })
    }

    /// Next complete line (without the LF), handling over-long lines.
    pub(super) fn next_line(&mut self) -> Option<Line> {
        let avail = &self.inbuf[self.pos..];
        // At most what is certainly buffered when a line is found too long,
        // so the logged text does not depend on how the input was split.
        let keep = LONG_LINE_LOGGED.min(self.cfg.max_line_len.saturating_add(2));
        match memchr::memchr(b'\n', avail) {
            None => {
                if self.discarding_long_line || avail.len() > self.cfg.max_line_len + 1 {
                    if !self.discarding_long_line {
                        self.long_line_start = printable(&avail[..avail.len().min(keep)]);
                    }
                    self.discarding_long_line = true;
                    self.pos = self.inbuf.len();
                }
                None
            }
            Some(nl) => {
                let too_long = self.discarding_long_line || nl > self.cfg.max_line_len + 1;
                let line = if too_long {
                    let start = if self.discarding_long_line {
                        std::mem::take(&mut self.long_line_start)
                    } else {
                        printable(&avail[..nl.min(keep)])
                    };
                    Line::TooLong(start)
                } else {
                    Line::Text(avail[..nl].to_vec())
                };
                self.pos += nl + 1;
                self.discarding_long_line = false;
                self.lines_in += 1;
                Some(line)
            }
        }
    }

    /// Count a syntax/protocol error and write `code data: errmess`, adding
    /// Exim's "Too many syntax or protocol errors" when over the limit.
    pub(super) fn synprot(
        &mut self,
        kind: ErrorKind,
        code: u16,
        data: Option<&str>,
        errmess: &str,
        line: &str,
    ) -> Event {
        self.synprot_errors += 1;
        let closing = self.synprot_errors > self.cfg.max_synprot_errors;
        let text = match data {
            Some(d) => format!("{d}: {errmess}"),
            None => errmess.to_owned(),
        };
        let mut reply = Reply::from_lines(code, [text]);
        if closing {
            reply.text.push("Too many syntax or protocol errors".into());
            self.phase = Phase::Closed;
        }
        self.write(&reply);
        Event::Error(ProtocolError {
            kind,
            line: line.to_owned(),
            detail: errmess.to_owned(),
            reply,
            closing,
            synprot: true,
        })
    }

    /// Write a reply that does not count as a protocol error.
    pub(super) fn plain_error(
        &mut self,
        kind: ErrorKind,
        reply: Reply,
        line: &str,
        detail: &str,
    ) -> Event {
        self.write(&reply);
        Event::Error(ProtocolError {
            kind,
            line: line.to_owned(),
            detail: detail.to_owned(),
            reply,
            closing: false,
            synprot: false,
        })
    }

    pub(super) fn set_pending(&mut self, p: Pending, verb: Verb) {
        self.pending = Some(p);
        self.pending_verb = Some(verb);
    }

    pub(super) fn process_line(&mut self, raw: Vec<u8>) -> Option<Event> {
        if self.phase == Phase::AuthContinue {
            let l = raw.strip_suffix(b"\r").unwrap_or(&raw);
            self.pending = Some(Pending::Auth);
            self.pending_verb = None;
            self.phase = Phase::Command;
            return Some(Event::AuthResponse(String::from_utf8_lossy(l).into_owned()));
        }
        let mut end = raw.len();
        while end > 0 && raw[end - 1].is_ascii_whitespace() {
            end -= 1;
        }
        let bytes = &raw[..end];
        let had_nul = memchr::memchr(0, bytes).is_some();
        let line = printable(bytes);
        self.last_command.clone_from(&line);
        self.auto_reply = None;
        if had_nul {
            self.last_was_rcpt = false;
            self.synprot_errors += 1;
            let closing = self.synprot_errors > self.cfg.max_synprot_errors;
            let reply = Reply::new(501, "NUL characters are not allowed in SMTP commands");
            self.write(&reply);
            if closing {
                self.phase = Phase::Closed;
            }
            return Some(Event::Error(ProtocolError {
                kind: ErrorKind::NulCharacter,
                line,
                detail: "NUL character(s) present (shown as '?')".into(),
                reply,
                closing,
                synprot: false,
            }));
        }
        let ident = identify(bytes);
        let sync_verb_needed = match ident {
            Some((v, _, _)) => self.verb_needs_sync(v),
            None => true,
        };
        if self.cfg.enforce_sync && sync_verb_needed && self.buffered_input() > 0 {
            return Some(self.sync_failure(Some(line), false));
        }
        let was_rcpt = self.last_was_rcpt;
        let was_rej_mail = self.last_was_rej_mail;
        self.last_was_rcpt = false;
        self.last_was_rej_mail = false;
        let Some((verb, has_arg, n)) = ident else {
            return Some(self.unknown(&line));
        };
        let arg_start = bytes[n..]
            .iter()
            .position(|c| !c.is_ascii_whitespace())
            .map_or(bytes.len(), |p| n + p);
        let arg = String::from_utf8_lossy(&bytes[arg_start..]).into_owned();
        if !has_arg && !arg.is_empty() {
            return Some(self.synprot(
                ErrorKind::Syntax,
                501,
                None,
                "unexpected argument data",
                &line,
            ));
        }
        match self.phase {
            Phase::BdatNext => match verb {
                Verb::Bdat | Verb::Quit | Verb::Rset | Verb::Noop => {}
                _ => {
                    self.phase = Phase::RsetOnly;
                    return Some(self.synprot(
                        ErrorKind::Sequence,
                        503,
                        None,
                        "only BDAT permissible after non-LAST BDAT",
                        &line,
                    ));
                }
            },
            Phase::RsetOnly => match verb {
                Verb::Quit | Verb::Rset => {}
                _ => {
                    return Some(self.synprot(
                        ErrorKind::Sequence,
                        503,
                        None,
                        "only RSET accepted now",
                        &line,
                    ));
                }
            },
            _ => {}
        }
        self.note_command(verb.history_name());
        match verb {
            Verb::Helo | Verb::Ehlo => self.cmd_helo(verb, arg, &line),
            Verb::Mail => self.cmd_mail(arg, &line),
            Verb::Rcpt => {
                self.last_was_rcpt = true;
                self.cmd_rcpt(arg, &line, was_rej_mail)
            }
            Verb::Data => self.cmd_data(&line, was_rcpt, None),
            Verb::Bdat => self.cmd_bdat(&arg, &line, was_rcpt),
            Verb::Rset => {
                self.reset_transaction();
                self.phase = Phase::Command;
                self.write_auto(&Reply::new(250, "Reset OK"));
                Some(Event::Rset)
            }
            Verb::Noop => {
                self.write_auto(&Reply::new(250, "OK"));
                Some(Event::Noop)
            }
            Verb::Quit => {
                self.set_pending(Pending::Quit, verb);
                Some(Event::Quit)
            }
            Verb::Vrfy => {
                self.set_pending(Pending::Other, verb);
                Some(Event::Vrfy(arg))
            }
            Verb::Expn => {
                self.set_pending(Pending::Other, verb);
                Some(Event::Expn(arg))
            }
            Verb::Help => {
                self.set_pending(Pending::Other, verb);
                Some(Event::Help(arg))
            }
            Verb::Etrn => {
                if self.mail {
                    return Some(self.synprot(
                        ErrorKind::Sequence,
                        503,
                        None,
                        "ETRN is not permitted inside a transaction",
                        &line,
                    ));
                }
                self.set_pending(Pending::Other, verb);
                Some(Event::Etrn(arg))
            }
            Verb::StartTls => {
                if !self.adv.starttls || self.tls {
                    return Some(self.synprot(
                        ErrorKind::Sequence,
                        503,
                        None,
                        "STARTTLS command used when not advertised",
                        &line,
                    ));
                }
                self.set_pending(Pending::StartTls, verb);
                Some(Event::StartTls)
            }
            Verb::Auth => self.cmd_auth(arg, &line),
        }
    }

    pub(super) fn unknown(&mut self, line: &str) -> Event {
        self.unknown_commands += 1;
        if self.unknown_commands > self.cfg.max_unknown_commands {
            let reply = Reply::new(500, "Too many unrecognized commands");
            self.write(&reply);
            self.phase = Phase::Closed;
            return Event::Error(ProtocolError {
                kind: ErrorKind::UnknownCommand,
                line: line.to_owned(),
                detail: "unrecognized command".into(),
                reply,
                closing: true,
                synprot: false,
            });
        }
        self.synprot(
            ErrorKind::UnknownCommand,
            500,
            None,
            "unrecognized command",
            line,
        )
    }

    pub(super) fn cmd_helo(&mut self, verb: Verb, arg: String, line: &str) -> Option<Event> {
        let ehlo = verb == Verb::Ehlo;
        if !self.check_helo(&arg) {
            let hello = if ehlo { "EHLO" } else { "HELO" };
            self.synprot_errors += 1;
            let closing = self.synprot_errors > self.cfg.max_synprot_errors;
            if closing {
                self.phase = Phase::Closed;
            }
            let reply = Reply::new(501, format!("Syntactically invalid {hello} argument(s)"));
            self.write(&reply);
            return Some(Event::Error(ProtocolError {
                kind: ErrorKind::Syntax,
                line: line.to_owned(),
                detail: "syntactically invalid argument(s)".into(),
                reply,
                closing,
                synprot: false,
            }));
        }
        self.pending_helo = Some(arg.clone());
        self.set_pending(Pending::Helo { ehlo }, verb);
        Some(Event::Helo { ehlo, name: arg })
    }

    pub(super) fn check_helo(&self, s: &str) -> bool {
        if self.cfg.helo_accept_junk {
            return true;
        }
        if let Some(inner) = s.strip_prefix('[') {
            let Some(inner) = inner.strip_suffix(']') else {
                return false;
            };
            let lower = inner.get(..5).map(str::to_ascii_lowercase);
            return match lower.as_deref() {
                Some("ipv6:") => inner[5..].parse::<std::net::Ipv6Addr>().is_ok(),
                Some("ipv4:") => inner[5..].parse::<std::net::Ipv4Addr>().is_ok(),
                _ => inner.parse::<std::net::IpAddr>().is_ok(),
            };
        }
        !s.is_empty()
            && s.chars().all(|c| {
                c.is_ascii_alphanumeric()
                    || c == '.'
                    || c == '-'
                    || self.cfg.helo_allow_chars.contains(c)
            })
    }
}

/// One input line, or the marker for a discarded over-long line.
pub(super) enum Line {
    Text(Vec<u8>),
    /// The first [`LONG_LINE_LOGGED`] bytes of the discarded line.
    TooLong(String),
}

/// How much of an over-long command line is kept for the log.
pub(super) const LONG_LINE_LOGGED: usize = 100;

/// Lossy, printable rendering of client input for logs: NUL becomes `?`.
pub(super) fn printable(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).replace('\0', "?")
}
