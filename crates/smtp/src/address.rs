//! RFC 5321 paths and ESMTP parameters: the arguments of `MAIL FROM:` and
//! `RCPT TO:`.
//!
//! The parser is deliberately close to what Exim accepts on the wire: the
//! angle brackets may be omitted, a source route (`<@a,@b:user@c>`) is accepted
//! and dropped, quoted local parts (`"a b"@x`) are kept with their quotes,
//! domain literals (`[1.2.3.4]`, `[IPv6:::1]`) are checked, and UTF-8 is
//! allowed in local parts and domains (RFC 6531). Error texts follow Exim.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::error::AddressError;

/// Longest accepted local part in octets. RFC 5321 says 64, but real VERP
/// and SRS addresses exceed that and Exim imposes no limit; we bound memory
/// while staying lenient.
pub const MAX_LOCAL_PART: usize = 256;
/// Longest accepted domain in octets (the DNS limit).
pub const MAX_DOMAIN: usize = 255;
/// Longest accepted domain label in octets (the DNS limit).
pub const MAX_LABEL: usize = 63;

/// A parsed path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Path {
    address: String,
    at: Option<usize>,
    route: Vec<String>,
}

impl Path {
    /// The null reverse path `<>`.
    pub fn null() -> Self {
        Self {
            address: String::new(),
            at: None,
            route: Vec::new(),
        }
    }

    /// The address as `local@domain` (`local` when unqualified, empty for
    /// `<>`). Quoted local parts keep their quotes.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Consume into the address string.
    pub fn into_address(self) -> String {
        self.address
    }

    /// True for `<>`.
    pub fn is_null(&self) -> bool {
        self.address.is_empty()
    }

    /// The local part (with quotes if it was quoted).
    pub fn local_part(&self) -> &str {
        match self.at {
            Some(i) => &self.address[..i],
            None => &self.address,
        }
    }

    /// The domain, if the address is qualified.
    pub fn domain(&self) -> Option<&str> {
        self.at.map(|i| &self.address[i + 1..])
    }

    /// Domains of an (ignored) source route, in order.
    pub fn source_route(&self) -> &[String] {
        &self.route
    }
}

/// A path together with where it sits in the command argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedArg<'a> {
    /// The parsed path.
    pub path: Path,
    /// The path as written, e.g. `<a@b>` (used in Exim-style replies).
    pub path_text: &'a str,
    /// Everything after the path, leading whitespace removed (the ESMTP
    /// parameters).
    pub rest: &'a str,
}

/// Parse the argument of `MAIL FROM:` (`allow_null = true`) or `RCPT TO:`
/// (`allow_null = false`). Leading whitespace is skipped; anything after the
/// path must be separated by whitespace and is returned in
/// [`ParsedArg::rest`].
pub fn parse_path_arg(arg: &str, allow_null: bool) -> Result<ParsedArg<'_>, AddressError> {
    let b = arg.as_bytes();
    let start = skip_ws(b, 0);
    let mut p = Parser { b, i: start };
    if p.i >= b.len() {
        return Err(AddressError::Empty);
    }
    let path = if b[p.i] == b'<' {
        p.i += 1;
        let route = if p.peek() == Some(b'@') {
            p.route()?
        } else {
            Vec::new()
        };
        if p.peek() == Some(b'>') {
            if allow_null && route.is_empty() {
                p.i += 1;
                let end = p.i;
                return finish(arg, start, end, Path::null());
            }
            return Err(if route.is_empty() {
                AddressError::Empty
            } else {
                AddressError::MalformedRoute
            });
        }
        let mut path = p.addr_spec(|c| c == b'>')?;
        if !route.is_empty() && path.at.is_none() {
            return Err(AddressError::MalformedRoute);
        }
        path.route = route;
        match p.peek() {
            Some(b'>') => p.i += 1,
            None => return Err(AddressError::MissingCloseBracket),
            Some(_) => {
                return Err(trailing(&arg[p.i..], &arg[start..p.i]));
            }
        }
        path
    } else {
        p.addr_spec(is_ws)?
    };
    finish(arg, start, p.i, path)
}

fn finish(arg: &str, start: usize, end: usize, path: Path) -> Result<ParsedArg<'_>, AddressError> {
    let after = &arg[end..];
    if let Some(c) = after.bytes().next() {
        if !is_ws(c) {
            return Err(trailing(after, &arg[start..end]));
        }
    }
    Ok(ParsedArg {
        path,
        path_text: &arg[start..end],
        rest: after.trim_start_matches([' ', '\t']),
    })
}

fn trailing(after: &str, path: &str) -> AddressError {
    AddressError::TrailingJunk {
        trailing: after.trim().chars().take(32).collect(),
        path: path.to_owned(),
    }
}

fn is_ws(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && is_ws(b[i]) {
        i += 1;
    }
    i
}

/// RFC 5322 `atext`, plus any non-ASCII byte (RFC 6531 UTF-8).
fn is_atext(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&c) || c >= 0x80
}

fn is_label_char(c: u8) -> bool {
    // Underscore is not legal in host names but common in the wild (and Exim
    // accepts it in addresses).
    c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c >= 0x80
}

struct Parser<'a> {
    b: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn route(&mut self) -> Result<Vec<String>, AddressError> {
        let mut route = Vec::new();
        loop {
            if self.peek() != Some(b'@') {
                return Err(AddressError::MalformedRoute);
            }
            self.i += 1;
            let d = self.domain().map_err(|_| AddressError::MalformedRoute)?;
            route.push(d);
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b':') => {
                    self.i += 1;
                    return Ok(route);
                }
                _ => return Err(AddressError::MalformedRoute),
            }
        }
    }

    fn addr_spec(&mut self, is_end: impl Fn(u8) -> bool) -> Result<Path, AddressError> {
        let start = self.i;
        self.local_part()?;
        let local_len = self.i - start;
        if local_len > MAX_LOCAL_PART {
            return Err(AddressError::LocalPartTooLong);
        }
        let local = String::from_utf8_lossy(&self.b[start..self.i]).into_owned();
        match self.peek() {
            Some(b'@') => {
                self.i += 1;
                let domain = self.domain()?;
                let at = local.len();
                let mut address = local;
                address.push('@');
                address.push_str(&domain);
                Ok(Path {
                    address,
                    at: Some(at),
                    route: Vec::new(),
                })
            }
            None => Ok(Path {
                address: local,
                at: None,
                route: Vec::new(),
            }),
            Some(c) if is_end(c) => Ok(Path {
                address: local,
                at: None,
                route: Vec::new(),
            }),
            Some(_) => Err(AddressError::MalformedLocalPart),
        }
    }

    fn local_part(&mut self) -> Result<(), AddressError> {
        if self.peek() == Some(b'"') {
            self.i += 1;
            loop {
                match self.peek() {
                    None | Some(b'\r') | Some(b'\n') => {
                        return Err(AddressError::UnterminatedQuote)
                    }
                    Some(b'"') => {
                        self.i += 1;
                        return Ok(());
                    }
                    Some(b'\\') => {
                        self.i += 1;
                        match self.peek() {
                            None => return Err(AddressError::UnterminatedQuote),
                            Some(_) => self.i += 1,
                        }
                    }
                    Some(_) => self.i += 1,
                }
            }
        }
        // dot-string: atom *("." atom)
        loop {
            let s = self.i;
            while self.peek().is_some_and(is_atext) {
                self.i += 1;
            }
            if self.i == s {
                return Err(AddressError::MalformedLocalPart);
            }
            if self.peek() == Some(b'.') {
                self.i += 1;
            } else {
                return Ok(());
            }
        }
    }

    fn domain(&mut self) -> Result<String, AddressError> {
        let start = self.i;
        if self.peek() == Some(b'[') {
            let close = self.b[start..]
                .iter()
                .position(|&c| c == b']')
                .ok_or(AddressError::MalformedLiteral)?;
            let inner = &self.b[start + 1..start + close];
            if !valid_literal(inner) {
                return Err(AddressError::MalformedLiteral);
            }
            self.i = start + close + 1;
            return Ok(String::from_utf8_lossy(&self.b[start..self.i]).into_owned());
        }
        loop {
            let s = self.i;
            while self.peek().is_some_and(is_label_char) {
                self.i += 1;
            }
            let label = &self.b[s..self.i];
            if label.is_empty() || label[0] == b'-' || label[label.len() - 1] == b'-' {
                return Err(AddressError::MalformedDomain);
            }
            if label.len() > MAX_LABEL {
                return Err(AddressError::DomainTooLong);
            }
            if self.peek() == Some(b'.') {
                self.i += 1;
            } else {
                break;
            }
        }
        if self.i - start > MAX_DOMAIN {
            return Err(AddressError::DomainTooLong);
        }
        Ok(String::from_utf8_lossy(&self.b[start..self.i]).into_owned())
    }
}

/// `1.2.3.4`, `IPv6:...`, or a general `tag:content` literal (RFC 5321
/// 4.1.3), where only the IPv6 tag is interpreted.
fn valid_literal(inner: &[u8]) -> bool {
    let Ok(s) = std::str::from_utf8(inner) else {
        return false;
    };
    if s.parse::<Ipv4Addr>().is_ok() {
        return true;
    }
    if let Some((tag, content)) = s.split_once(':') {
        if tag.eq_ignore_ascii_case("IPv6") {
            return content.parse::<Ipv6Addr>().is_ok();
        }
        if tag.eq_ignore_ascii_case("IPv4") {
            return content.parse::<Ipv4Addr>().is_ok();
        }
        let tag_ok = !tag.is_empty()
            && tag.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
            && !tag.ends_with('-');
        let content_ok = !content.is_empty()
            && content
                .bytes()
                .all(|c| (33..=126).contains(&c) && c != b'[' && c != b']' && c != b'\\');
        return tag_ok && content_ok;
    }
    false
}

/// An ESMTP parameter error (before Exim-style wording is applied by the
/// session).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadParam {
    /// Byte offset in the parameter text where the offending token starts.
    pub offset: usize,
    /// Byte offset just after the offending token.
    pub end: usize,
}

/// One ESMTP parameter: keyword (upper-cased) and optional value.
pub type Param = (String, Option<String>);

/// Split ESMTP parameters (`KEY` or `KEY=VALUE`, separated by spaces or tabs).
/// Keywords are upper-cased; values are kept as given. A keyword must be
/// `(ALPHA / DIGIT) *(ALPHA / DIGIT / "-")`; a value must be non-empty and made
/// of printable ASCII other than `=`, or UTF-8.
pub fn parse_params(text: &str) -> Result<Vec<(Param, usize, usize)>, BadParam> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = skip_ws(b, 0);
    while i < b.len() {
        let s = i;
        while i < b.len() && !is_ws(b[i]) {
            i += 1;
        }
        let tok = &text[s..i];
        let bad = BadParam { offset: s, end: i };
        let (k, v) = match tok.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (tok, None),
        };
        let key_ok = k.bytes().next().is_some_and(|c| c.is_ascii_alphanumeric())
            && k.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-');
        let val_ok = v.is_none_or(|v| {
            !v.is_empty()
                && v.bytes()
                    .all(|c| (33..=126).contains(&c) && c != b'=' || c >= 0x80)
        });
        if !key_ok || !val_ok {
            return Err(bad);
        }
        out.push(((k.to_ascii_uppercase(), v.map(str::to_owned)), s, i));
        i = skip_ws(b, i);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(arg: &str, null: bool) -> (String, String, String) {
        let p = parse_path_arg(arg, null).unwrap_or_else(|e| panic!("{arg}: {e}"));
        (
            p.path.address().to_owned(),
            p.path_text.to_owned(),
            p.rest.to_owned(),
        )
    }

    #[test]
    fn accepts_common_forms() {
        assert_eq!(
            ok("<a@b.c>", false),
            ("a@b.c".into(), "<a@b.c>".into(), "".into())
        );
        assert_eq!(ok("  <a@b.c>  SIZE=10", false).2, "SIZE=10");
        assert_eq!(
            ok("a@b.c SIZE=1", false),
            ("a@b.c".into(), "a@b.c".into(), "SIZE=1".into())
        );
        assert_eq!(ok("<>", true).0, "");
        assert_eq!(
            ok("<\"name with spaces\"@test.ex>", false).0,
            "\"name with spaces\"@test.ex"
        );
        assert_eq!(ok("<\"a\\\"b\"@x>", false).0, "\"a\\\"b\"@x");
        assert_eq!(ok("<postmaster>", false).0, "postmaster");
        assert_eq!(ok("<u@[127.0.0.1]>", false).0, "u@[127.0.0.1]");
        assert_eq!(ok("<u@[IPv6:::1]>", false).0, "u@[IPv6:::1]");
        assert_eq!(
            ok("<x+tag@sub_domain.example>", false).0,
            "x+tag@sub_domain.example"
        );
        assert_eq!(ok("<用户@例子.广告>", false).0, "用户@例子.广告");
    }

    #[test]
    fn source_route_is_dropped() {
        let p = parse_path_arg("<@a.b,@c.d:u@e.f>", false).unwrap();
        assert_eq!(p.path.address(), "u@e.f");
        assert_eq!(p.path.source_route(), ["a.b", "c.d"]);
        assert_eq!(p.path.domain(), Some("e.f"));
        assert_eq!(p.path.local_part(), "u");
    }

    #[test]
    fn rejects_with_exim_reasons() {
        let err = |a: &str, null| parse_path_arg(a, null).unwrap_err().to_string();
        assert_eq!(err("<bad@>", false), "domain missing or malformed");
        assert_eq!(err("<>", false), "empty address");
        assert_eq!(err("", true), "empty address");
        assert_eq!(err("<a@b", false), "'>' missing at end of address");
        assert_eq!(
            err("<a@b>x", false),
            "malformed address: x may not follow <a@b>"
        );
        assert_eq!(
            err("<a@b c>", false),
            "malformed address: c> may not follow <a@b"
        );
        assert_eq!(
            err("<\"abc@d>", false),
            "unmatched doublequote in local part"
        );
        assert_eq!(
            err("<a..b@c>", false),
            "missing or malformed local part (expected word or \"<\")"
        );
        assert_eq!(
            err("<@a:u>", false),
            "domain missing in source-routed address"
        );
        assert_eq!(err("<u@[1.2.3]>", false), "malformed domain literal");
        assert_eq!(err("<u@a..b>", false), "domain missing or malformed");
        assert_eq!(err("<u@-a.b>", false), "domain missing or malformed");
        let long = format!("<{}@x>", "a".repeat(MAX_LOCAL_PART + 1));
        assert_eq!(err(&long, false), "local part too long");
        let label = format!("<a@{}.x>", "b".repeat(64));
        assert_eq!(err(&label, false), "domain too long");
    }

    #[test]
    fn params() {
        let p = parse_params("SIZE=10 body=8BITMIME  SMTPUTF8").unwrap();
        let kv: Vec<_> = p.into_iter().map(|(kv, _, _)| kv).collect();
        assert_eq!(
            kv,
            vec![
                ("SIZE".into(), Some("10".into())),
                ("BODY".into(), Some("8BITMIME".into())),
                ("SMTPUTF8".into(), None)
            ]
        );
        assert_eq!(parse_params("").unwrap(), vec![]);
        assert_eq!(
            parse_params("A=1 =x").unwrap_err(),
            BadParam { offset: 4, end: 6 }
        );
        assert!(parse_params("SIZE=").is_err());
        assert!(parse_params("-X").is_err());
    }
}
