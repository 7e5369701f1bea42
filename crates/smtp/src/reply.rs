//! SMTP replies: the [`Reply`] value, its wire rendering, and the incremental
//! [`ReplyParser`] used on the client side.

use std::fmt;

use crate::error::ReplyError;

/// An RFC 3463 enhanced status code such as `5.1.1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EnhancedCode {
    /// Class: 2, 4 or 5.
    pub class: u8,
    /// Subject (0..=999).
    pub subject: u16,
    /// Detail (0..=999).
    pub detail: u16,
}

impl EnhancedCode {
    /// Build an enhanced code from its three parts.
    pub const fn new(class: u8, subject: u16, detail: u16) -> Self {
        Self {
            class,
            subject,
            detail,
        }
    }

    /// Parse a leading `c.sss.ddd` from `text`; returns the code and the rest of
    /// the text after the following space (if any).
    pub fn parse_prefix(text: &str) -> Option<(Self, &str)> {
        let (token, rest) = match text.find(' ') {
            Some(i) => (&text[..i], &text[i + 1..]),
            None => (text, ""),
        };
        let mut parts = token.split('.');
        let class = parts.next()?;
        let subject = parts.next()?;
        let detail = parts.next()?;
        if parts.next().is_some()
            || class.len() != 1
            || !(1..=3).contains(&subject.len())
            || !(1..=3).contains(&detail.len())
        {
            return None;
        }
        let class: u8 = parse_digits(class)?.try_into().ok()?;
        if !matches!(class, 2 | 4 | 5) {
            return None;
        }
        Some((
            Self::new(class, parse_digits(subject)?, parse_digits(detail)?),
            rest,
        ))
    }
}

fn parse_digits(s: &str) -> Option<u16> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl fmt::Display for EnhancedCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

/// An SMTP reply: a three-digit code, an optional enhanced status code and one
/// or more lines of text.
///
/// Rejections are data: an ACL `deny` is a `Reply`, not an error. Rendering
/// writes every line as `code-text` except the last, which is `code text`; the
/// enhanced code, when present, prefixes every line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reply {
    /// The three-digit reply code (200..=599 in practice).
    pub code: u16,
    /// Optional enhanced status code, rendered after the code on each line.
    pub enhanced: Option<EnhancedCode>,
    /// The text lines, without code or line ending. Never empty once built by
    /// the constructors (a reply with no text has one empty line).
    pub text: Vec<String>,
}

impl Reply {
    /// A reply whose text is split on `\n` into lines (a trailing `\r` on each
    /// line is dropped), so `"a\nb"` renders as `250-a` / `250 b`.
    pub fn new(code: u16, text: impl AsRef<str>) -> Self {
        let text = text
            .as_ref()
            .split('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l).to_owned())
            .collect();
        Self {
            code,
            enhanced: None,
            text,
        }
    }

    /// A reply from explicit lines.
    pub fn from_lines<I, S>(code: u16, lines: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut text: Vec<String> = lines.into_iter().map(Into::into).collect();
        if text.is_empty() {
            text.push(String::new());
        }
        Self {
            code,
            enhanced: None,
            text,
        }
    }

    /// Set the enhanced status code.
    #[must_use]
    pub fn with_enhanced(mut self, code: EnhancedCode) -> Self {
        self.enhanced = Some(code);
        self
    }

    /// The first digit of the code (2 = success, 3 = intermediate, 4 =
    /// temporary failure, 5 = permanent failure).
    pub fn class(&self) -> u16 {
        self.code / 100
    }

    /// `2yz`: the command was accepted.
    pub fn is_positive(&self) -> bool {
        self.class() == 2
    }

    /// `3yz`: more input is expected (e.g. `354` after DATA, `334` in AUTH).
    pub fn is_intermediate(&self) -> bool {
        self.class() == 3
    }

    /// `4yz`: temporary failure.
    pub fn is_transient(&self) -> bool {
        self.class() == 4
    }

    /// `5yz`: permanent failure.
    pub fn is_permanent(&self) -> bool {
        self.class() == 5
    }

    /// All text lines joined with `\n` (for logs).
    pub fn joined_text(&self) -> String {
        self.text.join("\n")
    }

    /// Append the wire form (`CRLF` line endings) to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let last = self.text.len().saturating_sub(1);
        if self.text.is_empty() {
            self.write_line(out, "", ' ');
            return;
        }
        for (i, line) in self.text.iter().enumerate() {
            self.write_line(out, line, if i == last { ' ' } else { '-' });
        }
    }

    fn write_line(&self, out: &mut Vec<u8>, line: &str, sep: char) {
        use std::io::Write;
        // Writing to a Vec<u8> cannot fail.
        let _ = write!(out, "{:03}{}", self.code, sep);
        if let Some(e) = self.enhanced {
            let _ = write!(out, "{e} ");
        }
        // Never let a stray CR or LF inside a line break the framing.
        for &b in line.as_bytes() {
            out.push(if b == b'\r' || b == b'\n' { b' ' } else { b });
        }
        out.extend_from_slice(b"\r\n");
    }

    /// The wire form as a new vector.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(16 + self.text.iter().map(|t| t.len() + 8).sum::<usize>());
        self.write_to(&mut v);
        v
    }

    /// The first line as it appears on the wire without its CRLF, e.g.
    /// `550 relay not permitted` (used by Exim's "All RCPT commands were
    /// rejected" summary and by log lines).
    pub fn first_line(&self) -> String {
        let mut s = format!("{:03} ", self.code);
        if let Some(e) = self.enhanced {
            s.push_str(&e.to_string());
            s.push(' ');
        }
        s.push_str(self.text.first().map(String::as_str).unwrap_or(""));
        s
    }
}

impl fmt::Display for Reply {
    /// Lines as on the wire but separated by `\n` and without a final newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let last = self.text.len().saturating_sub(1);
        for (i, line) in self.text.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{:03}{}", self.code, if i == last { ' ' } else { '-' })?;
            if let Some(e) = self.enhanced {
                write!(f, "{e} ")?;
            }
            f.write_str(line)?;
        }
        Ok(())
    }
}

/// Limits for [`ReplyParser`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyLimits {
    /// Longest accepted reply line, excluding the line ending.
    pub max_line_len: usize,
    /// Most lines accepted in one (multi-line) reply.
    pub max_lines: usize,
}

impl Default for ReplyLimits {
    fn default() -> Self {
        // RFC 5321 says 512 octets per reply line; real servers exceed it, so
        // be generous while still bounding memory.
        Self {
            max_line_len: 8192,
            max_lines: 1024,
        }
    }
}

/// Incremental parser for server replies (client side).
///
/// Feed bytes as they arrive with [`ReplyParser::feed`], then call
/// [`ReplyParser::next_reply`] until it returns `Ok(None)`. Lines may end in
/// CRLF or a bare LF. A reply line is `ddd`, `ddd text`, or `ddd-text` (more
/// lines follow); all lines of one reply must carry the same code. The
/// enhanced status code is left in the text (use
/// [`EnhancedCode::parse_prefix`] when the server advertised
/// `ENHANCEDSTATUSCODES`).
#[derive(Debug, Default)]
pub struct ReplyParser {
    buf: Vec<u8>,
    pos: usize,
    limits: ReplyLimits,
    partial: Option<Reply>,
}

impl ReplyParser {
    /// A parser with default limits.
    pub fn new() -> Self {
        Self::default()
    }

    /// A parser with explicit limits.
    pub fn with_limits(limits: ReplyLimits) -> Self {
        Self {
            limits,
            ..Self::default()
        }
    }

    /// Buffer more bytes received from the server.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > 4096 && self.pos * 2 > self.buf.len() {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes buffered but not yet consumed by a complete reply line.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// True when a multi-line reply has started but not finished.
    pub fn in_reply(&self) -> bool {
        self.partial.is_some()
    }

    /// Return the next complete reply, `Ok(None)` when more input is needed,
    /// or an error for malformed input (the offending line is consumed and any
    /// partial reply discarded, so parsing can continue if the caller wishes).
    pub fn next_reply(&mut self) -> Result<Option<Reply>, ReplyError> {
        loop {
            let avail = &self.buf[self.pos..];
            let Some(nl) = memchr::memchr(b'\n', avail) else {
                if avail.len() > self.limits.max_line_len + 1 {
                    self.pos = self.buf.len();
                    self.partial = None;
                    return Err(ReplyError::LineTooLong {
                        limit: self.limits.max_line_len,
                    });
                }
                return Ok(None);
            };
            let mut line = &avail[..nl];
            self.pos += nl + 1;
            if let Some(l) = line.strip_suffix(b"\r") {
                line = l;
            }
            if line.len() > self.limits.max_line_len {
                self.partial = None;
                return Err(ReplyError::LineTooLong {
                    limit: self.limits.max_line_len,
                });
            }
            let (code, more, text) = match parse_reply_line(line) {
                Ok(v) => v,
                Err(e) => {
                    self.partial = None;
                    return Err(e);
                }
            };
            match self.partial.as_mut() {
                Some(p) if p.code != code => {
                    let expected = p.code;
                    self.partial = None;
                    return Err(ReplyError::CodeMismatch {
                        expected,
                        found: code,
                    });
                }
                Some(p) => {
                    if p.text.len() >= self.limits.max_lines {
                        self.partial = None;
                        return Err(ReplyError::TooManyLines {
                            limit: self.limits.max_lines,
                        });
                    }
                    p.text.push(text);
                }
                None => {
                    self.partial = Some(Reply {
                        code,
                        enhanced: None,
                        text: vec![text],
                    });
                }
            }
            if !more {
                return Ok(self.partial.take());
            }
        }
    }
}

fn parse_reply_line(line: &[u8]) -> Result<(u16, bool, String), ReplyError> {
    let bad = || ReplyError::Malformed {
        line: String::from_utf8_lossy(&line[..line.len().min(80)]).into_owned(),
    };
    if line.len() < 3 || !line[..3].iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    let code = u16::from(line[0] - b'0') * 100
        + u16::from(line[1] - b'0') * 10
        + u16::from(line[2] - b'0');
    if !(2..=5).contains(&(code / 100)) {
        return Err(bad());
    }
    let (more, text) = match line.get(3) {
        None => (false, &line[3..]),
        Some(b' ') => (false, &line[4..]),
        Some(b'-') => (true, &line[4..]),
        Some(_) => return Err(bad()),
    };
    Ok((code, more, String::from_utf8_lossy(text).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_multiline_with_enhanced() {
        let r = Reply::new(550, "one\ntwo").with_enhanced(EnhancedCode::new(5, 1, 1));
        assert_eq!(r.to_bytes(), b"550-5.1.1 one\r\n550 5.1.1 two\r\n");
        assert_eq!(r.to_string(), "550-5.1.1 one\n550 5.1.1 two");
        assert_eq!(r.first_line(), "550 5.1.1 one");
    }

    #[test]
    fn renders_empty_text() {
        assert_eq!(Reply::new(220, "").to_bytes(), b"220 \r\n");
        assert_eq!(
            Reply::from_lines(220, Vec::<String>::new()).to_bytes(),
            b"220 \r\n"
        );
    }

    #[test]
    fn embedded_cr_cannot_break_framing() {
        let r = Reply::from_lines(250, ["a\rb"]);
        assert_eq!(r.to_bytes(), b"250 a b\r\n");
    }

    #[test]
    fn parses_multiline_and_bare_lf() {
        let mut p = ReplyParser::new();
        p.feed(b"250-mx Hello\r\n250-SIZE 10\n250 HELP\r\n220");
        let r = p.next_reply().unwrap().unwrap();
        assert_eq!(r.code, 250);
        assert_eq!(r.text, vec!["mx Hello", "SIZE 10", "HELP"]);
        assert_eq!(p.next_reply().unwrap(), None);
        p.feed(b"\r\n");
        let r = p.next_reply().unwrap().unwrap();
        assert_eq!((r.code, r.text.clone()), (220, vec![String::new()]));
    }

    #[test]
    fn rejects_bad_lines() {
        for bad in [
            &b"25 x\r\n"[..],
            b"2x0 x\r\n",
            b"250x\r\n",
            b"650 x\r\n",
            b"\r\n",
        ] {
            let mut p = ReplyParser::new();
            p.feed(bad);
            assert!(
                matches!(p.next_reply(), Err(ReplyError::Malformed { .. })),
                "{bad:?}"
            );
        }
        let mut p = ReplyParser::new();
        p.feed(b"250-a\r\n251 b\r\n");
        assert_eq!(
            p.next_reply(),
            Err(ReplyError::CodeMismatch {
                expected: 250,
                found: 251
            })
        );
    }

    #[test]
    fn limits_are_enforced() {
        let mut p = ReplyParser::with_limits(ReplyLimits {
            max_line_len: 10,
            max_lines: 2,
        });
        p.feed(b"250 0123456789abc");
        assert!(matches!(
            p.next_reply(),
            Err(ReplyError::LineTooLong { .. })
        ));
        p.feed(b"250-a\r\n250-b\r\n250 c\r\n");
        assert!(matches!(
            p.next_reply(),
            Err(ReplyError::TooManyLines { .. })
        ));
    }

    #[test]
    fn enhanced_prefix() {
        assert_eq!(
            EnhancedCode::parse_prefix("5.7.1 relay denied"),
            Some((EnhancedCode::new(5, 7, 1), "relay denied"))
        );
        assert_eq!(EnhancedCode::parse_prefix("OK id=x"), None);
        assert_eq!(EnhancedCode::parse_prefix("3.1.1 x"), None);
        assert_eq!(EnhancedCode::parse_prefix("5.1234.1 x"), None);
    }
}
