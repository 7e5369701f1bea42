//! Rejections and the ends of SMTP sessions.

use std::fmt::Write as _;

use crate::selector::LogSelector;

use super::*;

/// Where in the SMTP dialogue a rejection happened, and its object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectWhat<'a> {
    /// `rejected connection` (connect ACL).
    Connection,
    /// `rejected EHLO or HELO <name>`.
    Helo(&'a str),
    /// `rejected MAIL <sender>`.
    Mail(&'a str),
    /// `rejected RCPT <recipient>`.
    Rcpt(&'a str),
    /// `rejected after DATA`.
    AfterData,
    /// `rejected VRFY <address>`.
    Vrfy(&'a str),
    /// Any other text after `rejected `.
    Other(&'a str),
}

/// `H=... [F=<sender>] rejected RCPT <x>: reason` (main and reject log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected<'a> {
    /// Message id, when a message was being received (after DATA).
    pub id: Option<&'a str>,
    /// The client; `None` for a local (`-bs`) session, logged by its
    /// `U=` alone.
    pub host: Option<SenderHost<'a>>,
    /// `U=`: ident.
    pub ident: Option<&'a str>,
    /// ` X=...` (and the other TLS fields their selectors ask for) after
    /// the client: the connection is encrypted.
    pub tls: Option<TlsLog<'a>>,
    /// `F=<...>`: the envelope sender, once MAIL was accepted.
    pub sender: Option<&'a str>,
    /// ` A=name[:id]` after the sender: the client authenticated.
    pub auth: Option<&'a str>,
    /// What was rejected.
    pub what: RejectWhat<'a>,
    /// A temporary rejection (4xx): `temporarily rejected`.
    pub temporary: bool,
    /// The reason (ACL `log_message`/`message`).
    pub reason: Option<&'a str>,
}

/// What the reject log shows of a rejected message after its line:
///
/// ```text
/// Envelope-from: <sender>
/// Envelope-to: <rcpt1>
///     <rcpt2>
/// P Received: ...
///   Subject: ...
/// ```
///
/// Each header line is preceded by its spool type character (see
/// `oxim-spool`'s header kinds; a space for other headers) and a space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RejectedHeaders<'a> {
    /// Envelope sender (empty for `<>`), if MAIL had been accepted.
    pub envelope_from: Option<&'a str>,
    /// Envelope recipients accepted so far.
    pub envelope_to: &'a [&'a str],
    /// Header lines as `(type character, full text including newline)`.
    pub headers: &'a [(char, &'a str)],
}

impl RejectedHeaders<'_> {
    pub(crate) fn render(&self, out: &mut String) {
        if let Some(f) = self.envelope_from {
            let _ = writeln!(out, "Envelope-from: <{f}>");
        }
        for (i, r) in self.envelope_to.iter().enumerate() {
            if i == 0 {
                let _ = writeln!(out, "Envelope-to: <{r}>");
            } else {
                let _ = writeln!(out, "    <{r}>");
            }
        }
        for (kind, text) in self.headers {
            out.push(*kind);
            out.push(' ');
            out.push_str(text);
            if !text.ends_with('\n') {
                out.push('\n');
            }
        }
    }
}

impl Rejected<'_> {
    pub(crate) fn render_body(&self, sel: &LogSelector, out: &mut String) {
        if let Some(h) = &self.host {
            out.push_str("H=");
            h.render(sel, out);
        }
        if let Some(u) = self.ident {
            if self.host.is_some() {
                out.push(' ');
            }
            let _ = write!(out, "U={u}");
        }
        if let Some(h) = &self.host {
            h.render_conn_id(sel, out);
        }
        if let Some(tls) = &self.tls {
            tls.render(sel, out);
        }
        if let Some(s) = self.sender {
            // A message from no client and no user (the non-SMTP ACL's
            // refusal) starts with its sender.
            if self.host.is_some() || self.ident.is_some() {
                out.push(' ');
            }
            let _ = write!(out, "F=<{s}>");
            if let Some(a) = self.auth {
                let _ = write!(out, " A={a}");
            }
        }
        out.push_str(if self.temporary {
            " temporarily rejected "
        } else {
            " rejected "
        });
        match self.what {
            RejectWhat::Connection => out.push_str("connection in \"connect\" ACL"),
            RejectWhat::Helo(h) => {
                let _ = write!(out, "EHLO or HELO {}", printing(h, false));
            }
            RejectWhat::Mail(s) => {
                let _ = write!(out, "MAIL <{s}>");
            }
            RejectWhat::Rcpt(r) => {
                let _ = write!(out, "RCPT <{r}>");
            }
            RejectWhat::AfterData => out.push_str("after DATA"),
            RejectWhat::Vrfy(a) => {
                let _ = write!(out, "VRFY <{a}>");
            }
            RejectWhat::Other(t) => out.push_str(t),
        }
        if let Some(r) = self.reason {
            let _ = write!(out, ": {}", printing(r, false));
        }
    }
}

/// How an incoming SMTP connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpEnd<'a> {
    /// `SMTP connection from H [D=..] closed by QUIT` (`+smtp_connection`).
    Quit,
    /// `SMTP connection from H [D=..] closed by DROP in ACL`
    /// (`+smtp_connection`).
    Drop,
    /// `unexpected disconnection while reading SMTP command from H [D=..]`
    /// (`+lost_incoming_connection`, default on).
    Lost,
    /// `SMTP command timeout on connection from H [D=..]`
    /// (`+lost_incoming_connection`).
    Timeout,
    /// `SMTP data timeout (message abandoned) on connection from H
    /// F=<sender> [D=..]` (`+lost_incoming_connection`).
    DataTimeout {
        /// The envelope sender of the abandoned message.
        sender: &'a str,
    },
    /// oxim's `smtp_session_max_time`: `SMTP session time limit exceeded on
    /// connection from H [D=..]` (`+lost_incoming_connection`).
    SessionTimeLimit,
    /// `SMTP connection from H [D=..] <text>` (`+smtp_connection`).
    Other(&'a str),
}
