//! The client side: [`ClientSession`] (the smtp transport's conversation,
//! sans I/O), EHLO capability parsing and command formatting. Replies are
//! parsed with [`crate::ReplyParser`] and bodies encoded with
//! [`crate::DotStuffer`].

use std::io::Write;

use crate::reply::Reply;

mod session;
mod steps;
mod transaction;

pub use session::ClientSession;
pub use steps::{Awaiting, ClientConfig, ClientEvent, Step, SYN_DATA_MAX};
pub use transaction::{Envelope, RcptVerdict, TransactionResult, Verdict};

/// Body type of `MAIL FROM: ... BODY=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyType {
    /// `BODY=7BIT`
    SevenBit,
    /// `BODY=8BITMIME`
    EightBitMime,
}

impl BodyType {
    /// The parameter value.
    pub fn as_str(self) -> &'static str {
        match self {
            BodyType::SevenBit => "7BIT",
            BodyType::EightBitMime => "8BITMIME",
        }
    }

    /// Parse a `BODY=` value (case-insensitive).
    pub fn parse(v: &str) -> Option<Self> {
        if v.eq_ignore_ascii_case("8BITMIME") {
            Some(BodyType::EightBitMime)
        } else if v.eq_ignore_ascii_case("7BIT") {
            Some(BodyType::SevenBit)
        } else {
            None
        }
    }
}

/// What a server advertised in its EHLO reply (keywords are matched
/// case-insensitively; the greeting line is skipped).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EhloCapabilities {
    /// `SIZE` was advertised.
    pub size_advertised: bool,
    /// The `SIZE` limit, when a non-zero number was given.
    pub size: Option<u64>,
    /// `PIPELINING` (RFC 2920).
    pub pipelining: bool,
    /// `8BITMIME` (RFC 6152).
    pub eight_bit_mime: bool,
    /// `CHUNKING` (RFC 3030, BDAT).
    pub chunking: bool,
    /// `STARTTLS` (RFC 3207).
    pub starttls: bool,
    /// `SMTPUTF8` (RFC 6531).
    pub smtputf8: bool,
    /// `DSN` (RFC 3461).
    pub dsn: bool,
    /// `ENHANCEDSTATUSCODES` (RFC 2034).
    pub enhanced_status_codes: bool,
    /// `PRDR`.
    pub prdr: bool,
    /// `ETRN`.
    pub etrn: bool,
    /// `VRFY`.
    pub vrfy: bool,
    /// `EXPN`.
    pub expn: bool,
    /// `HELP`.
    pub help: bool,
    /// Exim's early pipelining, `PIPECONNECT`.
    pub pipe_connect: bool,
    /// oxim's replay-safe transactions ([`TX_TOKEN_KEYWORD`]): the server
    /// remembers the token a client gives in `MAIL` and answers a replayed
    /// copy of that transaction (a duplicated TCP Fast Open SYN carrying it)
    /// with its first answer instead of taking the message twice.
    pub tx_token: bool,
    /// SASL mechanisms from `AUTH ...` (upper-cased).
    pub auth: Vec<String>,
    /// Any other keyword lines, as given.
    pub other: Vec<String>,
}

/// oxim's own ESMTP extension: the EHLO keyword a server offers when it
/// takes a client-chosen transaction token, and the `MAIL` parameter
/// (`XOXIM-TXID=<token>`) that carries it. A client puts a whole
/// transaction into a TCP Fast Open SYN only for a server that offered it.
pub const TX_TOKEN_KEYWORD: &str = "XOXIM-TXID";

/// Whether `t` is a well-formed transaction token: 16 to 64 characters of
/// letters, digits, `-` and `_`.
pub fn valid_tx_token(t: &str) -> bool {
    (16..=64).contains(&t.len())
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl EhloCapabilities {
    /// Parse a (positive) EHLO reply. The first line is the greeting and is
    /// ignored; a non-2xx reply yields no capabilities.
    pub fn from_reply(reply: &Reply) -> Self {
        let mut caps = Self::default();
        if !reply.is_positive() {
            return caps;
        }
        for line in reply.text.iter().skip(1) {
            caps.add_line(line);
        }
        caps
    }

    fn add_line(&mut self, line: &str) {
        let mut words = line.split_ascii_whitespace();
        let Some(kw) = words.next() else { return };
        let kw_up = kw.to_ascii_uppercase();
        match kw_up.as_str() {
            "SIZE" => {
                self.size_advertised = true;
                self.size = words.next().and_then(|n| n.parse().ok()).filter(|&n| n > 0);
            }
            "PIPELINING" => self.pipelining = true,
            "8BITMIME" => self.eight_bit_mime = true,
            "CHUNKING" => self.chunking = true,
            "STARTTLS" => self.starttls = true,
            "SMTPUTF8" => self.smtputf8 = true,
            "DSN" => self.dsn = true,
            "ENHANCEDSTATUSCODES" => self.enhanced_status_codes = true,
            "PRDR" => self.prdr = true,
            "ETRN" => self.etrn = true,
            "VRFY" => self.vrfy = true,
            "EXPN" => self.expn = true,
            "HELP" => self.help = true,
            // Exim 4.94 renamed its experimental X_PIPE_CONNECT.
            "PIPECONNECT" | "X_PIPE_CONNECT" => self.pipe_connect = true,
            TX_TOKEN_KEYWORD => self.tx_token = true,
            "AUTH" => self.auth.extend(words.map(|m| m.to_ascii_uppercase())),
            _ => {
                // Old servers write "AUTH=LOGIN PLAIN".
                if let Some(mechs) = kw_up.strip_prefix("AUTH=") {
                    self.auth.extend(
                        std::iter::once(mechs.to_owned())
                            .chain(words.map(|m| m.to_ascii_uppercase()))
                            .filter(|m| !m.is_empty()),
                    );
                } else {
                    self.other.push(line.to_owned());
                }
            }
        }
        self.auth.dedup();
    }

    /// Whether `other` offers the same as `self` in the parts whose change
    /// invalidates what a client sent on the strength of a cached answer
    /// (as Exim compares them); SIZE's value and the greeting do not count.
    pub fn same_offer(&self, other: &EhloCapabilities) -> bool {
        let k = |c: &EhloCapabilities| {
            (
                c.starttls,
                c.chunking,
                c.prdr,
                c.dsn,
                c.pipelining,
                c.size_advertised,
                c.smtputf8,
                c.pipe_connect,
                c.auth.clone(),
            )
        };
        k(self) == k(other)
    }

    /// True if the server offers the SASL mechanism (case-insensitive).
    pub fn has_auth(&self, mechanism: &str) -> bool {
        self.auth.iter().any(|m| m.eq_ignore_ascii_case(mechanism))
    }
}

/// Append `EHLO name\r\n`.
pub fn ehlo(out: &mut Vec<u8>, name: &str) {
    let _ = write!(out, "EHLO {name}\r\n");
}

/// Append `HELO name\r\n`.
pub fn helo(out: &mut Vec<u8>, name: &str) {
    let _ = write!(out, "HELO {name}\r\n");
}

/// Append `MAIL FROM:<from>` with parameters, e.g. `SIZE=n`, `BODY=8BITMIME`,
/// `SMTPUTF8` (value `None`). `from` is the address without brackets (empty
/// for the null sender).
pub fn mail_from(out: &mut Vec<u8>, from: &str, params: &[(&str, Option<&str>)]) {
    let _ = write!(out, "MAIL FROM:<{from}>");
    write_params(out, params);
}

/// Append `MAIL FROM:<from>` with the common parameters.
pub fn mail_from_with(
    out: &mut Vec<u8>,
    from: &str,
    size: Option<u64>,
    body: Option<BodyType>,
    smtputf8: bool,
) {
    let _ = write!(out, "MAIL FROM:<{from}>");
    if let Some(n) = size {
        let _ = write!(out, " SIZE={n}");
    }
    if let Some(b) = body {
        let _ = write!(out, " BODY={}", b.as_str());
    }
    if smtputf8 {
        out.extend_from_slice(b" SMTPUTF8");
    }
    out.extend_from_slice(b"\r\n");
}

/// Append `RCPT TO:<to>` with parameters.
pub fn rcpt_to(out: &mut Vec<u8>, to: &str, params: &[(&str, Option<&str>)]) {
    let _ = write!(out, "RCPT TO:<{to}>");
    write_params(out, params);
}

fn write_params(out: &mut Vec<u8>, params: &[(&str, Option<&str>)]) {
    for (k, v) in params {
        match v {
            Some(v) => {
                let _ = write!(out, " {k}={v}");
            }
            None => {
                let _ = write!(out, " {k}");
            }
        }
    }
    out.extend_from_slice(b"\r\n");
}

/// Append `DATA\r\n`.
pub fn data(out: &mut Vec<u8>) {
    out.extend_from_slice(b"DATA\r\n");
}

/// Append `BDAT size[ LAST]\r\n` (the chunk itself follows unmodified).
pub fn bdat(out: &mut Vec<u8>, size: u64, last: bool) {
    let _ = write!(out, "BDAT {size}{}\r\n", if last { " LAST" } else { "" });
}

/// Append `RSET\r\n`.
pub fn rset(out: &mut Vec<u8>) {
    out.extend_from_slice(b"RSET\r\n");
}

/// Append `QUIT\r\n`.
pub fn quit(out: &mut Vec<u8>) {
    out.extend_from_slice(b"QUIT\r\n");
}

/// Append `STARTTLS\r\n`.
pub fn starttls(out: &mut Vec<u8>) {
    out.extend_from_slice(b"STARTTLS\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exim_ehlo() {
        let r = Reply::from_lines(
            250,
            [
                "myhost.test.ex Hello abcd [127.0.0.1]",
                "SIZE 52428800",
                "8BITMIME",
                "pipelining",
                "AUTH plain LOGIN",
                "AUTH=CRAM-MD5",
                "CHUNKING",
                "STARTTLS",
                "X-UNKNOWN 1",
                "HELP",
            ],
        );
        let c = EhloCapabilities::from_reply(&r);
        assert!(c.size_advertised && c.size == Some(52_428_800));
        assert!(c.eight_bit_mime && c.pipelining && c.chunking && c.starttls && c.help);
        assert!(!c.smtputf8 && !c.dsn);
        assert_eq!(c.auth, ["PLAIN", "LOGIN", "CRAM-MD5"]);
        assert!(c.has_auth("login"));
        assert_eq!(c.other, ["X-UNKNOWN 1"]);
        let bare = EhloCapabilities::from_reply(&Reply::from_lines(250, ["h", "SIZE"]));
        assert!(bare.size_advertised && bare.size.is_none());
        assert_eq!(
            EhloCapabilities::from_reply(&Reply::from_lines(550, ["h", "PIPELINING"])),
            EhloCapabilities::default()
        );
    }

    #[test]
    fn formats_commands() {
        let mut out = Vec::new();
        mail_from_with(
            &mut out,
            "a@b",
            Some(1234),
            Some(BodyType::EightBitMime),
            true,
        );
        mail_from(&mut out, "", &[]);
        rcpt_to(&mut out, "c@d", &[("NOTIFY", Some("NEVER"))]);
        bdat(&mut out, 10, true);
        data(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "MAIL FROM:<a@b> SIZE=1234 BODY=8BITMIME SMTPUTF8\r\nMAIL FROM:<>\r\n\
             RCPT TO:<c@d> NOTIFY=NEVER\r\nBDAT 10 LAST\r\nDATA\r\n"
        );
    }
}
