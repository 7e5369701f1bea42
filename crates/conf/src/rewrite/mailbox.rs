//! RFC 2822 mailbox parsing as Exim's rewriting needs it: the operative
//! address of a header item (`Name <a@b> (comment)`), where it sits in the
//! item (so that only that part is replaced), whether it has a domain, and
//! Exim's error texts for what cannot be parsed. Source routes are
//! recognised and dropped; group syntax (`name: a, b;`) is accepted when
//! scanning a header.

/// The operative address found in a mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extracted {
    /// The address, comments and white space removed (quotes kept).
    pub address: String,
    /// Offset in the mailbox text of its first character.
    pub start: usize,
    /// Offset in the mailbox text one past its last character.
    pub end: usize,
    /// Offset in `address` of the domain (after `@`); 0 when unqualified.
    pub domain: usize,
}

/// Group-syntax state kept across the addresses of one header line.
#[derive(Debug, Clone, Copy, Default)]
pub struct Group {
    /// A group may start here (`phrase:`).
    pub allow: bool,
    /// Inside a group: a `;` may end it.
    pub found: bool,
}

pub(super) fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// Control characters, space and RFC 822 specials (and the end of text).
fn cntrl_or_special(c: u8) -> bool {
    c < 0x20 || c == 0x7f || b" ()<>@,;:\\\".[]".contains(&c)
}

/// Where the address that starts at `pos` ends: at a comma outside
/// quotes, comments and angle brackets (and outside a source route), or at
/// the end of the text. `nl_ends`: a newline also ends it.
pub fn find_address_end(s: &[u8], mut pos: usize, nl_ends: bool) -> usize {
    let at = |i: usize| s.get(i).copied().unwrap_or(0);
    let mut source_routing = at(pos) == b'@';
    let mut no_term: i32 = i32::from(source_routing);
    while pos < s.len() && (s[pos] != b',' || no_term > 0) && (s[pos] != b'\n' || !nl_ends) {
        let c = s[pos];
        if c == b'\\' && pos + 1 < s.len() {
            pos += 2;
        } else if c == b'"' {
            pos += 1;
            while pos < s.len() && (s[pos] != b'\n' || !nl_ends) {
                if s[pos] == b'\\' && pos + 1 < s.len() {
                    pos += 1;
                } else if s[pos] == b'"' {
                    pos += 1;
                    break;
                }
                pos += 1;
            }
        } else if c == b'(' {
            let mut level = 1;
            pos += 1;
            while pos < s.len() && (s[pos] != b'\n' || !nl_ends) {
                if s[pos] == b'\\' && pos + 1 < s.len() {
                    pos += 1;
                } else if s[pos] == b'(' {
                    level += 1;
                } else if s[pos] == b')' {
                    level -= 1;
                    if level <= 0 {
                        pos += 1;
                        break;
                    }
                }
                pos += 1;
            }
        } else {
            if c == b'<' {
                source_routing = at(pos + 1) == b'@';
                no_term = if source_routing { 2 } else { 1 };
            } else if c == b'>' || (source_routing && c == b':') {
                no_term -= 1;
            }
            pos += 1;
        }
    }
    pos
}

/// The offset of the `@` before the domain of a possibly unqualified
/// address (`"a@b"` has none; an escaped `\@` does not count).
pub fn find_at(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut t = b.len();
    while t > 0 {
        t -= 1;
        if b[t] == b'@' {
            let mut backslashes = 0;
            let mut tt = t;
            while tt > 0 && b[tt - 1] == b'\\' {
                backslashes += 1;
                tt -= 1;
            }
            if backslashes % 2 == 0 {
                return Some(t);
            }
        } else if b[t] == b'"' {
            return None;
        }
    }
    None
}

struct Parser<'a> {
    s: &'a [u8],
    last_comment: usize,
    allow_domain_literals: bool,
}

impl Parser<'_> {
    fn at(&self, i: usize) -> u8 {
        self.s.get(i).copied().unwrap_or(0)
    }

    fn skip_comment(&mut self, mut p: usize) -> usize {
        self.last_comment = p;
        while p < self.s.len() {
            while is_space(self.at(p)) {
                p += 1;
            }
            if self.at(p) != b'(' {
                break;
            }
            let mut level = 1;
            p += 1;
            while p < self.s.len() {
                let c = self.s[p];
                if c == b'(' {
                    level += 1;
                } else if c == b')' {
                    level -= 1;
                    if level <= 0 {
                        p += 1;
                        break;
                    }
                } else if c == b'\\' && p + 1 < self.s.len() {
                    p += 1;
                }
                p += 1;
            }
        }
        p
    }

    /// Reads a domain into `t`; on a syntax error sets `err` and leaves
    /// nothing of the domain in `t`.
    fn read_domain(
        &mut self,
        mut p: usize,
        t: &mut Vec<u8>,
        literals: bool,
        err: &mut Option<String>,
    ) -> usize {
        let tt = t.len();
        p = self.skip_comment(p);
        if self.at(p) == b'[' {
            t.push(b'[');
            p += 1;
            let tag = self.s.get(p..p + 5).unwrap_or(b"");
            if tag.eq_ignore_ascii_case(b"IPv6:") || tag.eq_ignore_ascii_case(b"IPv4:") {
                t.extend_from_slice(tag);
                p += 5;
            }
            while matches!(self.at(p), b'.' | b':') || self.at(p).is_ascii_hexdigit() {
                t.push(self.s[p]);
                p += 1;
            }
            if self.at(p) == b']' {
                t.push(b']');
                p += 1;
            } else {
                *err = Some("malformed domain literal".into());
                t.truncate(tt);
            }
            if !self.allow_domain_literals && !literals {
                *err = Some("domain literals not allowed".into());
                t.truncate(tt);
            }
            return self.skip_comment(p);
        }
        loop {
            let tsave = t.len();
            if self.at(p) != b'-' {
                while self.at(p).is_ascii_alphanumeric() || self.at(p) == b'-' {
                    t.push(self.s[p]);
                    p += 1;
                }
            }
            p = self.skip_comment(p);
            if t.len() == tsave {
                *err = Some("domain missing or malformed".into());
                t.truncate(tt);
                return p;
            }
            if self.at(p) != b'.' {
                break;
            }
            t.push(b'.');
            p += 1;
            p = self.skip_comment(p);
        }
        p
    }

    fn read_local_part(
        &mut self,
        mut p: usize,
        t: &mut Vec<u8>,
        allow_null: bool,
    ) -> (usize, Option<String>) {
        let tt = t.len();
        loop {
            let tsave = t.len();
            p = self.skip_comment(p);
            if self.at(p) == b'"' {
                t.push(b'"');
                p += 1;
                let mut closed = false;
                while p < self.s.len() {
                    let c = self.s[p];
                    if c == b'"' {
                        closed = true;
                        break;
                    }
                    t.push(c);
                    if c == b'\\' && p + 1 < self.s.len() {
                        p += 1;
                        t.push(self.s[p]);
                    }
                    p += 1;
                }
                if closed {
                    p += 1;
                    t.push(b'"');
                } else {
                    return (p, Some("unmatched doublequote in local part".into()));
                }
            } else {
                while p < self.s.len() && (!cntrl_or_special(self.s[p]) || self.s[p] == b'\\') {
                    let c = self.s[p];
                    t.push(c);
                    p += 1;
                    if c == b'\\' && p < self.s.len() {
                        t.push(self.s[p]);
                        p += 1;
                    }
                }
            }
            p = self.skip_comment(p);
            if t.len() == tsave && self.at(p) != b'.' {
                if t.len() == tt && !allow_null {
                    return (p, Some("missing or malformed local part".into()));
                }
                return (p, None);
            }
            if self.at(p) != b'.' {
                break;
            }
            while self.at(p) == b'.' {
                t.push(b'.');
                p += 1;
            }
        }
        (p, None)
    }

    /// A source route (`@a,@b:`), read and dropped.
    fn read_route(&mut self, mut p: usize) -> (usize, Option<String>) {
        let mut commas = false;
        let mut scratch = Vec::new();
        while self.at(p) == b'@' {
            scratch.clear();
            let mut err = None;
            p = self.read_domain(p + 1, &mut scratch, false, &mut err);
            if scratch.is_empty() {
                return (p, err);
            }
            if self.at(p) != b',' {
                break;
            }
            p += 1;
            commas = true;
            p = self.skip_comment(p);
        }
        if self.at(p) == b':' {
            p += 1;
            (self.skip_comment(p), None)
        } else {
            let e = if commas {
                "colon expected after route list"
            } else {
                "no local part"
            };
            (self.skip_comment(p), Some(e.into()))
        }
    }

    /// `local-part@domain` up to `term`; returns the domain offset in `t`.
    fn read_addr_spec(
        &mut self,
        p: usize,
        t: &mut Vec<u8>,
        term: u8,
        domain: &mut usize,
    ) -> (usize, Option<String>) {
        let (mut p, err) = self.read_local_part(p, t, false);
        if err.is_some() {
            return (p, err);
        }
        if self.at(p) != term {
            if self.at(p) != b'@' {
                let e = format!(
                    "\"@\" or \".\" expected after \"{}\"",
                    String::from_utf8_lossy(t)
                );
                return (p, Some(e));
            }
            t.push(b'@');
            p += 1;
            *domain = t.len();
            let mut err = None;
            p = self.read_domain(p, t, false, &mut err);
            return (p, err);
        }
        (p, None)
    }
}

/// Exim's `parse_extract_address`: the operative address of `mailbox`.
/// `allow_null` accepts `<>`. `group` carries group syntax across the
/// items of a header (use `Group::default()` outside headers).
pub fn extract_address(
    mailbox: &str,
    allow_null: bool,
    allow_domain_literals: bool,
    group: &mut Group,
) -> Result<Extracted, String> {
    let s = mailbox.as_bytes();
    let mut ps = Parser {
        s,
        last_comment: 0,
        allow_domain_literals,
    };
    let mut t: Vec<u8> = Vec::new();
    let mut domain = 0usize;
    let fail = |p: usize, e: String, group: &mut Group| {
        if group.found && s.get(p) == Some(&b';') {
            group.found = false;
            group.allow = true;
        }
        Err(e)
    };
    let mut p = 0;
    let startptr;
    let endptr;
    'restart: loop {
        p = ps.skip_comment(p);
        let start_here = p;
        t.clear();
        let (np, err) = ps.read_local_part(p, &mut t, true);
        p = np;
        if let Some(e) = err {
            return fail(p, e, group);
        }
        let c = ps.at(p);
        if c != b'@' && c != b'<' {
            if c == 0 || c == b';' {
                if t.is_empty() {
                    return fail(p, "empty address".into(), group);
                }
                startptr = start_here;
                endptr = ps.last_comment;
                break 'restart;
            }
            while ps.at(p) != b'<' && (!group.allow || ps.at(p) != b':') {
                let mut phrase = Vec::new();
                let (np, err) = ps.read_local_part(p, &mut phrase, false);
                p = np;
                if let Some(e) = err {
                    return fail(p, format!("{e} (expected word or \"<\")"), group);
                }
            }
            if ps.at(p) == b':' {
                group.found = true;
                group.allow = false;
                p += 1;
                continue 'restart;
            }
        }
        if ps.at(p) == b'<' {
            p += 1;
            t.clear();
            let sp = p;
            p = ps.skip_comment(p);
            let mut source_routed = false;
            if ps.at(p) == b'@' {
                let (np, err) = ps.read_route(p);
                p = np;
                if let Some(e) = err {
                    return fail(p, e, group);
                }
                source_routed = true;
            }
            if allow_null && !source_routed && ps.at(p) == b'>' {
                t.clear();
            } else {
                let (np, err) = ps.read_addr_spec(p, &mut t, b'>', &mut domain);
                p = np;
                if let Some(e) = err {
                    return fail(p, e, group);
                }
                if source_routed && domain == 0 {
                    return fail(p, "domain missing in source-routed address".into(), group);
                }
            }
            endptr = p;
            if ps.at(p) != b'>' {
                let e = if p >= s.len() {
                    "'>' missing at end of address".to_string()
                } else {
                    let rest = &mailbox[p..];
                    let rest: String = rest.chars().take(32).collect();
                    format!("malformed address: {rest} may not follow {}", &mailbox[..p])
                };
                return fail(p + 1, e, group);
            }
            p += 1;
            p = ps.skip_comment(p);
            startptr = sp;
        } else if t.is_empty() {
            let (np, err) = ps.read_route(p);
            p = np;
            if let Some(e) = err {
                return fail(p, e, group);
            }
            t.clear();
            let (np, err) = ps.read_addr_spec(p, &mut t, 0, &mut domain);
            p = np;
            if let Some(e) = err {
                return fail(p, e, group);
            }
            endptr = ps.last_comment;
            if domain == 0 {
                return fail(p, "domain missing in source-routed address".into(), group);
            }
            startptr = start_here;
        } else {
            t.push(b'@');
            p += 1;
            domain = t.len();
            let mut err = None;
            p = ps.read_domain(p, &mut t, true, &mut err);
            if t.len() == domain {
                return fail(
                    p,
                    err.unwrap_or_else(|| "domain missing or malformed".into()),
                    group,
                );
            }
            endptr = ps.last_comment;
            startptr = start_here;
        }
        break 'restart;
    }
    if p < s.len() {
        if group.found && s[p] == b';' {
            group.found = false;
            group.allow = true;
        } else {
            let rest: String = mailbox[p..].chars().take(32).collect();
            return Err(format!(
                "malformed address: {rest} may not follow {}",
                &mailbox[..p]
            ));
        }
    }
    let mut end = endptr;
    while end > 0 && is_space(s[end - 1]) {
        end -= 1;
    }
    // RFC 5321 limits addresses to 256 characters; Exim refuses longer ones.
    if end.saturating_sub(startptr) > 256 {
        let shown: String = String::from_utf8_lossy(&t).chars().take(64).collect();
        return Err(format!("address is ridiculously long: {shown}..."));
    }
    Ok(Extracted {
        address: String::from_utf8_lossy(&t).into_owned(),
        start: startptr,
        end,
        domain,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn x(s: &str) -> Result<(String, usize, usize, usize), String> {
        extract_address(s, false, true, &mut Group::default())
            .map(|e| (e.address, e.start, e.end, e.domain))
    }

    #[test]
    fn forms() {
        assert_eq!(x("a@b.c"), Ok(("a@b.c".into(), 0, 5, 2)));
        assert_eq!(x("Name <a@b.c> (x)"), Ok(("a@b.c".into(), 6, 11, 2)));
        assert_eq!(x("  a@b (comment)  "), Ok(("a@b".into(), 2, 5, 2)));
        assert_eq!(x("user"), Ok(("user".into(), 0, 4, 0)));
        assert_eq!(
            x("<@x.y,@a.b:xxx@test.ex>"),
            Ok(("xxx@test.ex".into(), 1, 22, 4))
        );
        assert_eq!(x("\"a b\"@c"), Ok(("\"a b\"@c".into(), 0, 7, 6)));
        assert_eq!(x("").unwrap_err(), "empty address");
        assert_eq!(
            x("a@b@c").unwrap_err(),
            "malformed address: @c may not follow a@b"
        );
        assert_eq!(x("<a@b").unwrap_err(), "'>' missing at end of address");
        let long = format!("{}@b", "l".repeat(300));
        assert_eq!(
            x(&long).unwrap_err(),
            format!("address is ridiculously long: {}...", "l".repeat(64))
        );
    }

    #[test]
    fn groups() {
        let mut g = Group {
            allow: true,
            found: false,
        };
        let e = extract_address("list: a@b", false, true, &mut g).unwrap();
        assert_eq!((e.address.as_str(), e.start), ("a@b", 6));
        assert!(g.found);
        let e = extract_address("c@d;", false, true, &mut g).unwrap();
        assert_eq!(e.address, "c@d");
        assert!(g.allow && !g.found);
    }

    #[test]
    fn address_end() {
        let s = b"a <b,c@d>, e@f";
        assert_eq!(find_address_end(s, 0, false), 9);
        assert_eq!(find_at("\"a@b\""), None);
        assert_eq!(find_at("x@y"), Some(1));
    }
}
