//! The Sieve reader: lexical rules (white space, `#` and `/* */`
//! comments, quoted and `text:` strings, string lists, numbers) and the
//! grammar of commands and tests, with Exim's error texts and its way of
//! counting lines (a newline inside a `/* */` comment is not counted).

use super::*;

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    line: usize,
    opts: ParseOptions,
    envelope: bool,
    fileinto: bool,
    encoded: bool,
    subaddress: bool,
    vacation: bool,
    copy: bool,
    ascii_numeric: bool,
    err: Option<SieveError>,
}

/// Failure: the error is in `Parser::err`.
type R<T> = Result<T, ()>;

/// Read a Sieve script (the whole file; its `# Sieve filter` line is a
/// comment).
pub fn parse(text: &str, opts: ParseOptions) -> Script {
    let mut p = Parser {
        s: text.as_bytes(),
        pos: 0,
        line: 1,
        opts,
        envelope: false,
        fileinto: false,
        encoded: false,
        subaddress: false,
        vacation: false,
        copy: false,
        ascii_numeric: false,
        err: None,
    };
    let mut commands = Vec::new();
    let _ = p.start(&mut commands);
    Script {
        commands,
        error: p.err,
        ascii_numeric: p.ascii_numeric,
    }
}

fn is_ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

impl Parser<'_> {
    fn fail<T>(&mut self, msg: impl Into<String>) -> R<T> {
        self.err = Some(SieveError {
            msg: msg.into(),
            line: self.line,
        });
        Err(())
    }

    fn peek(&self) -> u8 {
        self.s.get(self.pos).copied().unwrap_or(0)
    }

    fn peek_at(&self, n: usize) -> u8 {
        self.s.get(self.pos + n).copied().unwrap_or(0)
    }

    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    fn hash_comment(&mut self) -> R<()> {
        self.pos += 1;
        while !self.at_end() {
            let c = self.peek();
            self.pos += 1;
            if c == b'\n' {
                self.line += 1;
                return Ok(());
            }
        }
        self.fail("missing end of comment")
    }

    fn white(&mut self) -> R<()> {
        while !self.at_end() {
            match self.peek() {
                b' ' | b'\t' => self.pos += 1,
                b'\n' => {
                    self.pos += 1;
                    self.line += 1;
                }
                b'#' => self.hash_comment()?,
                b'/' if self.peek_at(1) == b'*' => {
                    self.pos += 2;
                    loop {
                        if self.at_end() {
                            return self.fail("missing end of comment");
                        }
                        if self.peek() == b'*' && self.peek_at(1) == b'/' {
                            self.pos += 2;
                            break;
                        }
                        self.pos += 1;
                    }
                }
                _ => break,
            }
        }
        Ok(())
    }

    /// A given identifier (any case), not followed by an identifier
    /// character.
    fn ident(&mut self, id: &str) -> bool {
        let n = id.len();
        if self.pos + n > self.s.len()
            || !self.s[self.pos..self.pos + n].eq_ignore_ascii_case(id.as_bytes())
        {
            return false;
        }
        if is_ident_char(self.peek_at(n)) {
            return false;
        }
        self.pos += n;
        true
    }

    /// A string, or None when there is none here.
    fn string(&mut self) -> R<Option<String>> {
        let mut out: Vec<u8> = Vec::new();
        if self.peek() == b'"' {
            self.pos += 1;
            while !self.at_end() {
                let c = self.peek();
                if c == b'"' {
                    self.pos += 1;
                    return self.finish_string(out).map(Some);
                } else if c == b'\\' && self.pos + 1 < self.s.len() {
                    out.push(self.s[self.pos + 1]);
                    self.pos += 2;
                } else {
                    if c == b'\n' {
                        out.push(b'\r');
                        self.line += 1;
                    }
                    out.push(c);
                    self.pos += 1;
                }
            }
            return self.fail("missing end of string");
        }
        if !self.s[self.pos..].starts_with(b"text:") {
            return Ok(None);
        }
        self.pos += 5;
        while matches!(self.peek(), b' ' | b'\t') {
            self.pos += 1;
        }
        match self.peek() {
            b'#' => self.hash_comment()?,
            b'\n' => {
                self.pos += 1;
                self.line += 1;
            }
            _ => return self.fail("syntax error"),
        }
        // The first line is checked for the end mark only after a newline
        // (so "." straight after "text:" is literal), as Exim reads it.
        while !self.at_end() {
            let c = self.peek();
            if c == b'\n' {
                out.extend_from_slice(b"\r\n");
                self.pos += 1;
                self.line += 1;
                if self.peek() == b'.' && self.peek_at(1) == b'\n' {
                    self.pos += 2;
                    self.line += 1;
                    return self.finish_string(out).map(Some);
                } else if self.peek() == b'.' && self.peek_at(1) == b'.' {
                    out.push(b'.');
                    self.pos += 2;
                }
            } else {
                out.push(c);
                self.pos += 1;
            }
        }
        self.fail("missing end of multi line string")
    }

    fn finish_string(&mut self, raw: Vec<u8>) -> R<String> {
        let raw = if self.encoded {
            match decode_encoded(&raw) {
                Ok(d) => d,
                Err(msg) => return self.fail(msg),
            }
        } else {
            raw
        };
        Ok(String::from_utf8_lossy(&raw).into_owned())
    }

    /// `[ "a", "b" ]` or a single string; None when neither starts here.
    fn string_list(&mut self) -> R<Option<Vec<String>>> {
        if self.peek() != b'[' {
            return Ok(self.string()?.map(|s| vec![s]));
        }
        self.pos += 1;
        let mut list = Vec::new();
        let r: R<()> = (|| {
            loop {
                self.white()?;
                match self.string()? {
                    Some(s) => list.push(s),
                    None if list.is_empty() => break,
                    None => return Err(()),
                }
                self.white()?;
                if self.peek() == b',' {
                    self.pos += 1;
                } else {
                    break;
                }
            }
            if self.peek() == b']' {
                self.pos += 1;
                Ok(())
            } else {
                Err(())
            }
        })();
        match r {
            Ok(()) => Ok(Some(list)),
            // Whatever went wrong inside the brackets, Exim says this.
            Err(()) => self.fail("missing string list"),
        }
    }

    fn number(&mut self) -> R<u64> {
        let start = self.pos;
        while self.peek().is_ascii_digit() {
            self.pos += 1;
        }
        if start == self.pos {
            return self.fail("missing number");
        }
        let digits = std::str::from_utf8(&self.s[start..self.pos]).unwrap_or("0");
        let Ok(mut n) = digits.parse::<u64>() else {
            return self.fail("Numerical result out of range");
        };
        let unit: u64 = match self.peek() {
            b'K' => 1 << 10,
            b'M' => 1 << 20,
            b'G' => 1 << 30,
            _ => 1,
        };
        if unit > 1 {
            self.pos += 1;
            n = match n.checked_mul(unit) {
                Some(n) => n,
                None => return self.fail("Numerical result out of range"),
            };
        }
        Ok(n)
    }

    fn semicolon(&mut self) -> R<()> {
        self.white()?;
        if self.peek() == b';' {
            self.pos += 1;
            Ok(())
        } else {
            self.fail("missing semicolon")
        }
    }

    fn start(&mut self, out: &mut Vec<Command>) -> R<()> {
        self.white()?;
        while self.ident("require") {
            self.white()?;
            let Some(caps) = self.string_list()? else {
                return self.fail("capability string list expected");
            };
            for cap in caps {
                match cap.as_str() {
                    "envelope" => self.envelope = true,
                    "fileinto" => self.fileinto = true,
                    "encoded-character" => self.encoded = true,
                    "subaddress" => self.subaddress = true,
                    "copy" => self.copy = true,
                    "vacation" => {
                        if !self.opts.vacation {
                            return self.fail("vacation disabled");
                        }
                        self.vacation = true;
                    }
                    "enotify" => return self.fail("enotify not supported by oxim"),
                    "comparator-i;octet"
                    | "comparator-i;ascii-casemap"
                    | "comparator-en;ascii-casemap" => {}
                    "comparator-i;ascii-numeric" => self.ascii_numeric = true,
                    _ => return self.fail("unknown capability"),
                }
            }
            self.semicolon()?;
        }
        self.commands(out)?;
        if !self.at_end() {
            return self.fail("syntax error");
        }
        Ok(())
    }

    /// Commands up to something that is not one (a `}`, the end, or an
    /// error).
    fn commands(&mut self, out: &mut Vec<Command>) -> R<()> {
        while !self.at_end() {
            self.white()?;
            if self.ident("if") {
                self.white()?;
                let Some(test) = self.test()? else {
                    return self.fail("missing test");
                };
                out.push(Command::If {
                    branches: vec![(test, Vec::new())],
                    otherwise: None,
                });
                let Some(Command::If {
                    branches,
                    otherwise,
                }) = out.last_mut()
                else {
                    unreachable!()
                };
                self.block(&mut branches[0].1)?;
                loop {
                    self.white()?;
                    if !self.ident("elsif") {
                        break;
                    }
                    self.white()?;
                    let Some(test) = self.test()? else {
                        return self.fail("missing test");
                    };
                    branches.push((test, Vec::new()));
                    let last = branches.len() - 1;
                    self.block(&mut branches[last].1)?;
                }
                self.white()?;
                if self.ident("else") {
                    self.block(otherwise.insert(Vec::new()))?;
                }
            } else if self.ident("stop") {
                self.semicolon()?;
                out.push(Command::Stop);
            } else if self.ident("keep") {
                self.semicolon()?;
                out.push(Command::Keep);
            } else if self.ident("discard") {
                self.semicolon()?;
                out.push(Command::Discard);
            } else if self.ident("redirect") {
                let copy = self.copy_option()?;
                self.white()?;
                let Some(address) = self.string()? else {
                    return self.fail("missing redirect recipient string");
                };
                if !address.contains('@') {
                    return self.fail("unqualified recipient address");
                }
                self.semicolon()?;
                out.push(Command::Redirect { address, copy });
            } else if self.ident("fileinto") {
                if !self.fileinto {
                    return self.fail("missing previous require \"fileinto\";");
                }
                let copy = self.copy_option()?;
                self.white()?;
                let Some(folder) = self.string()? else {
                    return self.fail("missing fileinto folder string");
                };
                if folder.is_empty()
                    || folder == ".."
                    || folder.starts_with("../")
                    || folder.contains("/../")
                    || folder.ends_with("/..")
                {
                    return self.fail("invalid folder");
                }
                self.semicolon()?;
                out.push(Command::FileInto { folder, copy });
            } else if self.ident("vacation") {
                let v = self.vacation()?;
                out.push(Command::Vacation(Box::new(v)));
            } else {
                break;
            }
        }
        Ok(())
    }

    fn copy_option(&mut self) -> R<bool> {
        let mut copy = false;
        loop {
            self.white()?;
            if !self.ident(":copy") {
                return Ok(copy);
            }
            if !self.copy {
                return self.fail("missing previous require \"copy\";");
            }
            copy = true;
        }
    }

    /// `{ commands }`.
    fn block(&mut self, out: &mut Vec<Command>) -> R<()> {
        self.white()?;
        if self.peek() != b'{' {
            return self.fail("missing block");
        }
        self.pos += 1;
        self.commands(out)?;
        if self.peek() == b'}' {
            self.pos += 1;
            Ok(())
        } else {
            self.fail("expecting command or closing brace")
        }
    }

    fn vacation(&mut self) -> R<Vacation> {
        if !self.vacation {
            return self.fail("missing previous require \"vacation\";");
        }
        let line = self.line;
        let mut v = Vacation {
            days: 7,
            subject: None,
            from: None,
            addresses: Vec::new(),
            mime: false,
            handle: None,
            reason: String::new(),
            line,
        };
        loop {
            self.white()?;
            if self.ident(":days") {
                self.white()?;
                v.days = self.number()?.clamp(1, 31);
            } else if self.ident(":subject") {
                self.white()?;
                let Some(s) = self.string()? else {
                    return self.fail("subject string expected");
                };
                v.subject = Some(s);
            } else if self.ident(":from") {
                self.white()?;
                let Some(s) = self.string()? else {
                    return self.fail("from string expected");
                };
                if s.is_empty() {
                    return self.fail("empty address");
                }
                if crate::expand::extract_address(&s, false).is_none() {
                    return self.fail(format!("malformed address \"{s}\""));
                }
                v.from = Some(s);
            } else if self.ident(":addresses") {
                self.white()?;
                let Some(list) = self.string_list()? else {
                    return self.fail("addresses string list expected");
                };
                v.addresses = list;
            } else if self.ident(":mime") {
                v.mime = true;
            } else if self.ident(":handle") {
                self.white()?;
                let Some(s) = self.string()? else {
                    return self.fail("handle string expected");
                };
                v.handle = Some(s);
            } else {
                break;
            }
        }
        self.white()?;
        let Some(reason) = self.string()? else {
            return self.fail("missing reason string");
        };
        if v.mime && !reason.is_ascii() {
            return self.fail("MIME reason string contains 8bit text");
        }
        v.reason = reason;
        self.semicolon()?;
        Ok(v)
    }

    fn comparator(&mut self) -> R<Option<Comparator>> {
        if !self.ident(":comparator") {
            return Ok(None);
        }
        self.white()?;
        let Some(name) = self.string()? else {
            return self.fail("missing comparator");
        };
        Ok(Some(match name.to_ascii_lowercase().as_str() {
            "i;octet" => Comparator::Octet,
            "i;ascii-casemap" | "en;ascii-casemap" => Comparator::AsciiCasemap,
            "i;ascii-numeric" => Comparator::AsciiNumeric,
            _ => return self.fail("invalid comparator"),
        }))
    }

    fn match_type(&mut self) -> Option<MatchType> {
        if self.ident(":is") {
            Some(MatchType::Is)
        } else if self.ident(":contains") {
            Some(MatchType::Contains)
        } else if self.ident(":matches") {
            Some(MatchType::Matches)
        } else {
            None
        }
    }

    fn address_part(&mut self) -> R<Option<AddressPart>> {
        let part = if self.ident(":user") {
            AddressPart::User
        } else if self.ident(":detail") {
            AddressPart::Detail
        } else if self.ident(":localpart") {
            return Ok(Some(AddressPart::LocalPart));
        } else if self.ident(":domain") {
            return Ok(Some(AddressPart::Domain));
        } else if self.ident(":all") {
            return Ok(Some(AddressPart::All));
        } else {
            return Ok(None);
        };
        if !self.subaddress {
            return self.fail("missing previous require \"subaddress\";");
        }
        Ok(Some(part))
    }

    /// The tagged arguments of `address`, `header` and `envelope`, then
    /// the two string lists; `what` names the first list in the error.
    fn match_args(&mut self, with_part: bool, what: &str) -> R<(AddressPart, Vec<String>, Match)> {
        let mut part = None;
        let mut comparator = None;
        let mut mt = None;
        loop {
            self.white()?;
            if with_part {
                if let Some(p) = self.address_part()? {
                    if part.is_some() {
                        return self.fail("address part already specified");
                    }
                    part = Some(p);
                    continue;
                }
            }
            if let Some(c) = self.comparator()? {
                if comparator.is_some() {
                    return self.fail("comparator already specified");
                }
                comparator = Some(c);
            } else if let Some(m) = self.match_type() {
                if mt.is_some() {
                    return self.fail("match type already specified");
                }
                mt = Some(m);
            } else {
                break;
            }
        }
        self.white()?;
        let Some(names) = self.string_list()? else {
            return self.fail(format!("{what} string list expected"));
        };
        self.white()?;
        let Some(keys) = self.string_list()? else {
            return self.fail("key string list expected");
        };
        let m = Match {
            comparator: comparator.unwrap_or(Comparator::AsciiCasemap),
            match_type: mt.unwrap_or(MatchType::Is),
            keys,
            line: self.line,
        };
        Ok((part.unwrap_or(AddressPart::All), names, m))
    }

    fn test_list(&mut self) -> R<Option<Vec<Test>>> {
        self.white()?;
        if self.peek() != b'(' {
            return Ok(None);
        }
        self.pos += 1;
        let mut tests = Vec::new();
        loop {
            let Some(t) = self.test()? else {
                return self.fail("missing test");
            };
            tests.push(t);
            self.white()?;
            if self.peek() == b',' {
                self.pos += 1;
            } else {
                break;
            }
        }
        if self.peek() == b')' {
            self.pos += 1;
            Ok(Some(tests))
        } else {
            self.fail("missing closing paren")
        }
    }

    fn test(&mut self) -> R<Option<Test>> {
        self.white()?;
        let t = if self.ident("address") {
            let (part, headers, m) = self.match_args(true, "header")?;
            const ADDRESS_HEADERS: &[&str] = &[
                "from",
                "to",
                "cc",
                "bcc",
                "sender",
                "resent-from",
                "resent-to",
            ];
            if headers
                .iter()
                .any(|h| !ADDRESS_HEADERS.contains(&h.to_ascii_lowercase().as_str()))
            {
                return self.fail("invalid header field");
            }
            Test::Address { part, headers, m }
        } else if self.ident("allof") {
            match self.test_list()? {
                Some(l) => Test::AllOf(l),
                None => return self.fail("missing test list"),
            }
        } else if self.ident("anyof") {
            match self.test_list()? {
                Some(l) => Test::AnyOf(l),
                None => return self.fail("missing test list"),
            }
        } else if self.ident("exists") {
            self.white()?;
            match self.string_list()? {
                Some(l) => Test::Exists(l),
                None => return self.fail("header string list expected"),
            }
        } else if self.ident("false") {
            Test::False
        } else if self.ident("header") {
            let (_, headers, m) = self.match_args(false, "header")?;
            if headers
                .iter()
                .any(|h| h.is_empty() || h.bytes().any(|c| c < 33 || c == b':' || c == 127))
            {
                return self.fail("invalid header field");
            }
            Test::Header { headers, m }
        } else if self.ident("not") {
            self.white()?;
            match self.test()? {
                Some(t) => Test::Not(Box::new(t)),
                None => return self.fail("missing test"),
            }
        } else if self.ident("size") {
            self.white()?;
            let over = if self.ident(":over") {
                true
            } else if self.ident(":under") {
                false
            } else {
                return self.fail("missing :over or :under");
            };
            self.white()?;
            let limit = self.number()?;
            Test::Size { over, limit }
        } else if self.ident("true") {
            Test::True
        } else if self.ident("envelope") {
            if !self.envelope {
                return self.fail("missing previous require \"envelope\";");
            }
            let (part, parts, m) = self.match_args(true, "envelope")?;
            if parts
                .iter()
                .any(|e| !e.eq_ignore_ascii_case("from") && !e.eq_ignore_ascii_case("to"))
            {
                return self.fail("invalid envelope string");
            }
            Test::Envelope { part, parts, m }
        } else {
            return Ok(None);
        };
        Ok(Some(t))
    }
}

/// `encoded-character`: `${hex:...}` and `${unicode:...}` in a string.
fn decode_encoded(src: &[u8]) -> Result<Vec<u8>, &'static str> {
    let mut out = Vec::with_capacity(src.len());
    let mut i = 0;
    while i < src.len() {
        let rest = &src[i..];
        let close = |from: usize| {
            rest[from..]
                .iter()
                .position(|&c| c == b'}')
                .map(|p| p + from)
        };
        if rest.len() >= 6 && rest[..6].eq_ignore_ascii_case(b"${hex:") {
            if let Some(end) = close(6) {
                if let Some(bytes) = hex_seq(&rest[6..end]) {
                    out.extend(bytes);
                    i += end + 1;
                    continue;
                }
            }
        } else if rest.len() >= 10 && rest[..10].eq_ignore_ascii_case(b"${unicode:") {
            if let Some(end) = close(10) {
                match unicode_seq(&rest[10..end]) {
                    Err(true) => return Err("unicode character out of range"),
                    Err(false) => {}
                    Ok(s) => {
                        out.extend_from_slice(s.as_bytes());
                        i += end + 1;
                        continue;
                    }
                }
            }
        }
        out.push(src[i]);
        i += 1;
    }
    Ok(out)
}

fn is_blank(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r')
}

/// Pairs of hex digits separated by blanks.
fn hex_seq(s: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(s).ok()?;
    let mut out = Vec::new();
    let mut any = false;
    for word in text.split(|c: char| c.is_ascii() && is_blank(c as u8)) {
        if word.is_empty() {
            continue;
        }
        if word.len() > 2 || !word.bytes().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        out.push(u8::from_str_radix(word, 16).ok()?);
        any = true;
    }
    any.then_some(out)
}

/// Unicode code points in hex separated by blanks; Err(true) for one out
/// of range, Err(false) for bad syntax (the text is then left as it is).
fn unicode_seq(s: &[u8]) -> Result<String, bool> {
    let text = std::str::from_utf8(s).map_err(|_| false)?;
    let mut out = String::new();
    let mut any = false;
    for word in text.split(|c: char| c.is_ascii() && is_blank(c as u8)) {
        if word.is_empty() {
            continue;
        }
        if !word.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(false);
        }
        let digits = word.trim_start_matches('0');
        if digits.len() > 6 {
            return Err(true);
        }
        let v = if digits.is_empty() {
            0
        } else {
            u32::from_str_radix(digits, 16).map_err(|_| false)?
        };
        out.push(char::from_u32(v).ok_or(true)?);
        any = true;
    }
    if any {
        Ok(out)
    } else {
        Err(false)
    }
}
