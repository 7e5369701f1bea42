//! DATA, BDAT and AUTH: the commands that switch the session to reading
//! something other than commands.

use super::*;

impl ServerSession {
    /// DATA, or the checks shared with BDAT (`bdat = Some((size, last))`).
    pub(super) fn cmd_data(
        &mut self,
        line: &str,
        was_rcpt: bool,
        bdat: Option<(u64, bool)>,
    ) -> Option<Event> {
        self.pipe_connect_ok = false;
        let name = if bdat.is_some() { "BDAT" } else { "DATA" };
        if self.rcpts == 0 {
            let mut lines = Vec::new();
            if self.rcpt_reply_same {
                if let Some(r) = &self.rcpt_reply {
                    lines.push("All RCPT commands were rejected with this error:".to_owned());
                    lines.push(r.clone());
                }
            }
            let ev = if self.adv.pipelining && was_rcpt {
                lines.push(format!("Valid RCPT command must precede {name}"));
                self.plain_error(
                    ErrorKind::Sequence,
                    Reply::from_lines(503, lines),
                    line,
                    "no valid recipients",
                )
            } else {
                let msg = format!("valid RCPT command must precede {name}");
                let mut ev = self.synprot(ErrorKind::Sequence, 503, None, &msg, line);
                if !lines.is_empty() {
                    // Prefix the summary lines to what synprot wrote.
                    if let Event::Error(e) = &mut ev {
                        let written = e.reply.to_bytes();
                        let new_len = self.out.len() - written.len();
                        self.out.truncate(new_len);
                        lines.append(&mut e.reply.text);
                        e.reply = Reply::from_lines(503, lines);
                        e.reply.write_to(&mut self.out);
                    }
                }
                ev
            };
            if let Some((size, _)) = bdat {
                if self.phase != Phase::Closed {
                    self.phase = Phase::Bdat {
                        remaining: size,
                        size,
                        last: false,
                        discard: true,
                    };
                }
            }
            return Some(ev);
        }
        if self.too_many && self.cfg.recipients_max_reject {
            self.mail = false;
            return Some(self.plain_error(
                ErrorKind::Limit,
                Reply::new(554, "Too many recipients"),
                line,
                "too many recipients",
            ));
        }
        match bdat {
            None => {
                self.set_pending(Pending::Data, Verb::Data);
                Some(Event::Data)
            }
            Some((size, last)) => {
                self.decoder = DataDecoder::bdat(self.cfg.data_line_ending, self.cfg.line_rules);
                self.bdat_sizes = Some((size, size));
                self.phase = Phase::Bdat {
                    remaining: size,
                    size,
                    last,
                    discard: false,
                };
                Some(Event::Bdat { size, last })
            }
        }
    }

    pub(super) fn cmd_bdat(&mut self, arg: &str, line: &str, was_rcpt: bool) -> Option<Event> {
        if !self.adv.chunking {
            return Some(self.synprot(
                ErrorKind::Sequence,
                503,
                None,
                "BDAT command used when CHUNKING not advertised",
                line,
            ));
        }
        let mut words = arg.split_ascii_whitespace();
        let size = words.next().and_then(|w| w.parse::<u64>().ok());
        let Some(size) = size else {
            return Some(self.synprot(
                ErrorKind::Syntax,
                501,
                None,
                "missing size for BDAT command",
                line,
            ));
        };
        let last = match (words.next(), words.next()) {
            (None, _) => false,
            (Some(w), None) if w.eq_ignore_ascii_case("LAST") => true,
            _ => {
                return Some(self.synprot(
                    ErrorKind::Syntax,
                    501,
                    None,
                    "unexpected argument data",
                    line,
                ));
            }
        };
        if self.phase == Phase::BdatNext {
            // A continuation chunk of the running transaction.
            if let Some((_, total)) = self.bdat_sizes {
                self.bdat_sizes = Some((size, total + size));
            }
            if size == 0 && !last {
                self.phase = Phase::RsetOnly;
                return Some(self.synprot(
                    ErrorKind::Syntax,
                    504,
                    None,
                    "zero size for BDAT command",
                    line,
                ));
            }
            self.phase = Phase::Bdat {
                remaining: size,
                size,
                last,
                discard: false,
            };
            return Some(Event::Bdat { size, last });
        }
        if size == 0 && !last && self.rcpts > 0 {
            self.phase = Phase::RsetOnly;
            return Some(self.synprot(
                ErrorKind::Syntax,
                504,
                None,
                "zero size for BDAT command",
                line,
            ));
        }
        self.cmd_data(line, was_rcpt, Some((size, last)))
    }

    pub(super) fn cmd_auth(&mut self, arg: String, line: &str) -> Option<Event> {
        if self.adv.auth.is_empty() && !self.cfg.allow_auth_unadvertised {
            return Some(self.synprot(
                ErrorKind::Sequence,
                503,
                None,
                "AUTH command used when not advertised",
                line,
            ));
        }
        if self.authenticated {
            return Some(self.synprot(
                ErrorKind::Sequence,
                503,
                None,
                "already authenticated",
                line,
            ));
        }
        if self.mail {
            return Some(self.synprot(
                ErrorKind::Sequence,
                503,
                None,
                "not permitted in mail transaction",
                line,
            ));
        }
        let (mech, initial) = match arg.split_once([' ', '\t']) {
            Some((m, rest)) => (
                m.to_owned(),
                Some(rest.trim_start().to_owned()).filter(|s| !s.is_empty()),
            ),
            None => (arg.clone(), None),
        };
        if !mech
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        {
            return Some(self.synprot(
                ErrorKind::Syntax,
                501,
                None,
                "invalid character in authentication mechanism name",
                line,
            ));
        }
        self.set_pending(Pending::Auth, Verb::Auth);
        Some(Event::Auth {
            mechanism: mech,
            initial,
        })
    }

    pub(super) fn poll_data(&mut self) -> Option<Event> {
        let avail = &self.inbuf[self.pos..];
        let mut out = Vec::with_capacity(avail.len());
        let before = self.decoder.summary().lines;
        let n = self.decoder.decode(avail, &mut out);
        self.lines_in += self.decoder.summary().lines - before;
        self.pos += n;
        if !out.is_empty() {
            return Some(Event::DataChunk(out));
        }
        if self.decoder.is_ended() {
            // The terminating "." line.
            self.lines_in += 1;
            self.phase = Phase::Command;
            self.pending = Some(Pending::DataEnd);
            self.pending_verb = None;
            return Some(Event::DataEnd(self.decoder.summary()));
        }
        None
    }

    pub(super) fn poll_bdat(&mut self) -> Option<Event> {
        let Phase::Bdat {
            remaining,
            size,
            last,
            discard,
        } = self.phase
        else {
            return None;
        };
        let avail = self.inbuf.len() - self.pos;
        let take = usize::try_from(remaining).map_or(avail, |r| r.min(avail));
        let chunk_range = self.pos..self.pos + take;
        self.pos += take;
        let remaining = remaining - take as u64;
        let mut out = Vec::new();
        if !discard && take > 0 {
            out.reserve(take);
            let before = self.decoder.summary().lines;
            self.decoder.decode(&self.inbuf[chunk_range], &mut out);
            self.lines_in += self.decoder.summary().lines - before;
        }
        if remaining > 0 {
            self.phase = Phase::Bdat {
                remaining,
                size,
                last,
                discard,
            };
            return (!out.is_empty()).then_some(Event::DataChunk(out));
        }
        // Chunk complete.
        if discard {
            self.phase = Phase::Command;
            return None;
        }
        if last {
            self.decoder.finish(&mut out);
            self.phase = Phase::Command;
            if !out.is_empty() {
                // Deliver the data first; DataEnd follows on the next poll.
                self.queued
                    .push_back(Event::DataEnd(self.decoder.summary()));
                self.pending = Some(Pending::DataEnd);
                self.pending_verb = None;
                return Some(Event::DataChunk(out));
            }
            self.pending = Some(Pending::DataEnd);
            self.pending_verb = None;
            return Some(Event::DataEnd(self.decoder.summary()));
        }
        let reply = Reply::new(250, format!("{size} byte chunk received"));
        self.write(&reply);
        self.phase = Phase::BdatNext;
        (!out.is_empty()).then_some(Event::DataChunk(out))
    }
}
