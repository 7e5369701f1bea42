//! MAIL FROM and RCPT TO: parsing, parameters and the envelope limits.

use super::*;

impl ServerSession {
    /// The ESMTP parameters after a MAIL or RCPT address. Exim only looks
    /// for them after EHLO; otherwise anything there is trailing junk.
    fn esmtp_params(
        &self,
        rest: &str,
    ) -> Result<Vec<(Param, usize, usize)>, crate::address::BadParam> {
        if self.esmtp {
            parse_params(rest)
        } else if rest.is_empty() {
            Ok(Vec::new())
        } else {
            Err(crate::address::BadParam {
                offset: 0,
                end: rest.len(),
            })
        }
    }

    pub(super) fn cmd_mail(&mut self, arg: String, line: &str) -> Option<Event> {
        // Reset when the MAIL is accepted.
        self.last_was_rej_mail = true;
        if self.cfg.helo_required && !self.helo_seen {
            return Some(self.plain_error(
                ErrorKind::Sequence,
                Reply::new(503, "HELO or EHLO required"),
                line,
                "no HELO/EHLO given",
            ));
        }
        if self.mail {
            return Some(self.synprot(
                ErrorKind::Sequence,
                503,
                None,
                "sender already given",
                line,
            ));
        }
        if arg.is_empty() {
            return Some(self.synprot(
                ErrorKind::Syntax,
                501,
                None,
                "MAIL must have an address operand",
                line,
            ));
        }
        // Any new MAIL abandons the previous transaction.
        self.reset_transaction();
        let parsed = match parse_path_arg(&arg, true) {
            Ok(p) if self.literal_refused(Ok(&p.path)) => {
                return Some(self.literal_not_allowed(&arg, line));
            }
            Err(e) if self.literal_refused(Err(&e)) => {
                return Some(self.literal_not_allowed(&arg, line));
            }
            Ok(p) => p,
            Err(e) => {
                return Some(self.synprot(
                    ErrorKind::Syntax,
                    501,
                    Some(&arg),
                    &e.to_string(),
                    line,
                ));
            }
        };
        let path_text = parsed.path_text.to_owned();
        let rest = parsed.rest;
        let rest_off = arg.len() - rest.len();
        let mut mf = MailFrom {
            from: parsed.path.address().to_owned(),
            params: Vec::new(),
            size: None,
            body: None,
            smtputf8: false,
            raw: arg.clone(),
        };
        let unqualified = !parsed.path.is_null() && parsed.path.domain().is_none();
        let params = match self.esmtp_params(rest) {
            Ok(p) => p,
            Err(bad) => {
                return Some(self.bad_param(&arg, &path_text, rest_off, bad.end, line));
            }
        };
        let mut ret_seen = false;
        let mut envid_seen = false;
        for ((k, v), _s, e) in &params {
            let value = v.as_deref();
            let ok = match (k.as_str(), value) {
                ("SIZE", Some(v)) => match size_param(v) {
                    Some(n) => {
                        mf.size = Some(n);
                        true
                    }
                    None => false,
                },
                ("BODY", Some(v)) if self.adv.eight_bit_mime => match BodyType::parse(v) {
                    Some(b) => {
                        mf.body = Some(b);
                        true
                    }
                    None => {
                        return Some(self.synprot(
                            ErrorKind::Syntax,
                            501,
                            None,
                            "invalid data for BODY",
                            line,
                        ));
                    }
                },
                ("RET", Some(v)) => {
                    if self.adv.dsn {
                        if ret_seen {
                            return Some(self.synprot(
                                ErrorKind::Syntax,
                                501,
                                None,
                                "RET can be specified once only",
                                line,
                            ));
                        }
                        ret_seen = true;
                        if !v.eq_ignore_ascii_case("HDRS") && !v.eq_ignore_ascii_case("FULL") {
                            return Some(self.synprot(
                                ErrorKind::Syntax,
                                501,
                                None,
                                "Value for RET is invalid",
                                line,
                            ));
                        }
                    }
                    true
                }
                ("ENVID", Some(_)) => {
                    if self.adv.dsn {
                        if envid_seen {
                            return Some(self.synprot(
                                ErrorKind::Syntax,
                                501,
                                None,
                                "ENVID can be specified once only",
                                line,
                            ));
                        }
                        envid_seen = true;
                    }
                    true
                }
                ("AUTH", Some(_)) => true,
                // Accepted whether advertised or not (as Exim), but only
                // asked for when it was.
                ("PRDR", None) => {
                    self.prdr = self.adv.prdr;
                    true
                }
                ("SMTPUTF8", None) => {
                    if !self.adv.smtputf8 {
                        return Some(self.synprot(
                            ErrorKind::Syntax,
                            501,
                            None,
                            "SMTPUTF8 used when not advertised",
                            line,
                        ));
                    }
                    mf.smtputf8 = true;
                    true
                }
                _ => false,
            };
            if !ok {
                // Exim stops extracting options at the first bad one from
                // the end and then fails on the address.
                let last_bad = params
                    .iter()
                    .rev()
                    .find(|((k2, v2), _, _)| !self.mail_param_known(k2, v2.as_deref()))
                    .map_or(*e, |(_, _, e2)| *e2);
                return Some(self.bad_param(&arg, &path_text, rest_off, last_bad, line));
            }
        }
        mf.params = params.into_iter().map(|(kv, _, _)| kv).collect();
        if unqualified && !self.cfg.allow_unqualified_sender {
            return Some(self.plain_error(
                ErrorKind::Syntax,
                Reply::new(
                    501,
                    format!("{path_text}: sender address must contain a domain"),
                ),
                line,
                "unqualified sender rejected",
            ));
        }
        if let (Some(n), Some(limit)) = (mf.size, self.adv.size) {
            if n > limit {
                return Some(self.plain_error(
                    ErrorKind::Limit,
                    Reply::new(552, "Message size exceeds maximum permitted"),
                    line,
                    "message too big",
                ));
            }
        }
        self.set_pending(Pending::Mail, Verb::Mail);
        Some(Event::Mail(mf))
    }

    /// A domain literal (well-formed or not) where they are not allowed.
    pub(super) fn literal_refused(
        &self,
        parsed: Result<&crate::address::Path, &AddressError>,
    ) -> bool {
        !self.cfg.allow_domain_literals
            && match parsed {
                Ok(p) => p.domain().is_some_and(|d| d.starts_with('[')),
                Err(e) => matches!(e, AddressError::MalformedLiteral),
            }
    }

    pub(super) fn literal_not_allowed(&mut self, arg: &str, line: &str) -> Event {
        self.synprot(
            ErrorKind::Syntax,
            501,
            Some(arg),
            "domain literals not allowed",
            line,
        )
    }

    pub(super) fn mail_param_known(&self, k: &str, v: Option<&str>) -> bool {
        match (k, v) {
            ("SIZE", Some(v)) => size_param(v).is_some(),
            ("BODY", Some(_)) => self.adv.eight_bit_mime,
            ("RET" | "ENVID" | "AUTH", Some(_)) | ("PRDR" | "SMTPUTF8", None) => true,
            _ => false,
        }
    }

    /// Exim-style failure for an option it could not use: the option text
    /// ends up after the address and fails address parsing.
    pub(super) fn bad_param(
        &mut self,
        arg: &str,
        path_text: &str,
        rest_off: usize,
        bad_end: usize,
        line: &str,
    ) -> Event {
        let data = arg[..(rest_off + bad_end).min(arg.len())].trim_end();
        let junk: String = arg[rest_off..data.len().max(rest_off)]
            .chars()
            .take(32)
            .collect();
        let msg = format!("malformed address: {junk} may not follow {path_text}");
        self.synprot(ErrorKind::Syntax, 501, Some(data), &msg, line)
    }

    pub(super) fn cmd_rcpt(
        &mut self,
        arg: String,
        line: &str,
        was_rej_mail: bool,
    ) -> Option<Event> {
        self.rcpt_count += 1;
        if !self.mail {
            let ev = if self.adv.pipelining && was_rej_mail {
                self.last_was_rej_mail = true;
                self.plain_error(
                    ErrorKind::Sequence,
                    Reply::new(503, "sender not yet given"),
                    line,
                    "sender not yet given",
                )
            } else {
                // Not a valid RCPT for the purposes of the DATA reply.
                self.last_was_rcpt = false;
                self.synprot(ErrorKind::Sequence, 503, None, "sender not yet given", line)
            };
            if let Event::Error(e) = &ev {
                let r = e.reply.clone();
                self.note_rcpt_reply(&r);
            }
            return Some(ev);
        }
        if arg.is_empty() {
            let ev = self.synprot(
                ErrorKind::Syntax,
                501,
                None,
                "RCPT must have an address operand",
                line,
            );
            self.note_error_reply(&ev);
            return Some(ev);
        }
        let parsed = match parse_path_arg(&arg, false) {
            Ok(p) if self.literal_refused(Ok(&p.path)) => {
                let ev = self.literal_not_allowed(&arg, line);
                self.note_error_reply(&ev);
                return Some(ev);
            }
            Err(e) if self.literal_refused(Err(&e)) => {
                let ev = self.literal_not_allowed(&arg, line);
                self.note_error_reply(&ev);
                return Some(ev);
            }
            Ok(p) => p,
            Err(e) => {
                let ev = self.synprot(ErrorKind::Syntax, 501, Some(&arg), &e.to_string(), line);
                self.note_error_reply(&ev);
                return Some(ev);
            }
        };
        let path_text = parsed.path_text.to_owned();
        let rest = parsed.rest;
        let rest_off = arg.len() - rest.len();
        let params = match self.esmtp_params(rest) {
            Ok(p) => p,
            Err(bad) => {
                let ev = self.bad_param(&arg, &path_text, rest_off, bad.end, line);
                self.note_error_reply(&ev);
                return Some(ev);
            }
        };
        let (mut notify_seen, mut orcpt_seen) = (false, false);
        for ((k, v), _, e) in &params {
            let dsn = self.adv.dsn;
            let res: Result<(), &str> = match (k.as_str(), v.as_deref()) {
                ("NOTIFY", Some(v)) if dsn => {
                    if notify_seen {
                        Err("NOTIFY can be specified once only")
                    } else {
                        notify_seen = true;
                        let valid = v.eq_ignore_ascii_case("NEVER")
                            || v.split(',').all(|w| {
                                ["SUCCESS", "FAILURE", "DELAY"]
                                    .iter()
                                    .any(|k| w.eq_ignore_ascii_case(k))
                            });
                        if valid {
                            Ok(())
                        } else {
                            Err("Invalid value for NOTIFY parameter")
                        }
                    }
                }
                ("ORCPT", Some(_)) if dsn => {
                    if orcpt_seen {
                        Err("ORCPT can be specified once only")
                    } else {
                        orcpt_seen = true;
                        Ok(())
                    }
                }
                _ => {
                    let ev = self.bad_param(&arg, &path_text, rest_off, *e, line);
                    self.note_error_reply(&ev);
                    return Some(ev);
                }
            };
            if let Err(msg) = res {
                let ev = self.synprot(ErrorKind::Syntax, 501, None, msg, line);
                self.note_error_reply(&ev);
                return Some(ev);
            }
        }
        let to = parsed.path.address().to_owned();
        if parsed.path.domain().is_none()
            && !to.eq_ignore_ascii_case("postmaster")
            && !self.cfg.allow_unqualified_recipient
        {
            let ev = self.plain_error(
                ErrorKind::Syntax,
                Reply::new(
                    501,
                    format!("{path_text}: recipient address must contain a domain"),
                ),
                line,
                "unqualified recipient rejected",
            );
            self.note_error_reply(&ev);
            return Some(ev);
        }
        if self.cfg.recipients_max > 0 && self.rcpt_count > self.cfg.recipients_max {
            self.too_many = true;
            let reply = if self.cfg.recipients_max_reject {
                Reply::new(552, "too many recipients")
            } else {
                Reply::new(452, "too many recipients")
            };
            let ev = self.plain_error(ErrorKind::Limit, reply, line, "too many recipients");
            self.note_error_reply(&ev);
            return Some(ev);
        }
        self.set_pending(Pending::Rcpt, Verb::Rcpt);
        Some(Event::Rcpt(RcptTo {
            to,
            params: params.into_iter().map(|(kv, _, _)| kv).collect(),
            raw: arg,
        }))
    }

    pub(super) fn note_error_reply(&mut self, ev: &Event) {
        if let Event::Error(e) = ev {
            let r = e.reply.clone();
            self.note_rcpt_reply(&r);
        }
    }
}

/// Exim's reading of `SIZE=`: an optionally signed decimal number; a value
/// that overflows, is negative or is past `INT_MAX` counts as `INT_MAX`
/// (so a huge or negative size is "too big", never wrapped round).
/// Anything else is not a SIZE value.
pub(super) fn size_param(v: &str) -> Option<u64> {
    pub(super) const INT_MAX: u64 = i32::MAX as u64;
    let (negative, digits) = match v.as_bytes().first() {
        Some(b'-') => (true, &v[1..]),
        Some(b'+') => (false, &v[1..]),
        _ => (false, v),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = digits.parse::<u64>().unwrap_or(u64::MAX);
    if negative && n != 0 {
        return Some(INT_MAX);
    }
    Some(n.min(INT_MAX))
}
