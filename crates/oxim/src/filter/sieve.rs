//! Running a Sieve script (parsed by [`oxim_conf::sieve`]): tests are
//! evaluated and actions collected in order. The result is what the
//! redirect router (or `-bf`) acts on: addresses to redirect to, folders
//! to file into (the implicit or explicit `keep` files into the inbox), and
//! a vacation reply. An error (found when reading, or when running) ends
//! the script with the actions so far plus a keep, as Exim does.

use oxim_conf::sieve::{AddressPart, Command, Comparator, Match, MatchType, Script, Test};

use crate::vars::Vars;

/// What a Sieve run knows about its message and address.
pub struct SieveEnv<'a> {
    pub cfg: &'a oxim_conf::Config,
    /// `$local_part`, `$domain`, prefix and suffix, `$sender_address`.
    pub vars: Vars,
    /// The message's header fields (name, value, final newline).
    pub headers: Vec<String>,
    pub message_size: u64,
    /// `-bf`: say what happened (only the keep verdict, as Exim).
    pub testing: bool,
    /// `sieve_inbox` (expanded): the folder `keep` files into.
    pub inbox: String,
    /// `sieve_useraddress` and `sieve_subaddress`, unexpanded.
    pub useraddress: Option<String>,
    pub subaddress: Option<String>,
    /// `sieve_vacation_directory`, expanded.
    pub vacation_dir: Option<String>,
}

/// A vacation reply, ready for the autoreply transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VacationReply {
    pub to: String,
    pub from: String,
    pub subject: String,
    /// Extra header lines (MIME), newline separated.
    pub headers: String,
    pub text: String,
    /// The "once" file for this reply, and how long it holds.
    pub oncelog: String,
    pub days: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SieveAction {
    Redirect(String),
    FileInto(String),
    Vacation(Box<VacationReply>),
}

#[derive(Debug)]
pub struct SieveOutcome {
    /// In the order obeyed; duplicates dropped; the implicit keep (or the
    /// keep after an error) included.
    pub actions: Vec<SieveAction>,
    /// Test mode's report.
    pub out: String,
}

struct Run<'a> {
    env: &'a SieveEnv<'a>,
    ascii_numeric: bool,
    keep: bool,
    vacation_ran: bool,
    actions: Vec<SieveAction>,
}

/// How a list of commands ended.
enum Flow {
    Next,
    Stop,
}

/// Obey a parsed script.
pub fn run(script: &Script, env: &SieveEnv<'_>) -> SieveOutcome {
    let mut r = Run {
        env,
        ascii_numeric: script.ascii_numeric,
        keep: true,
        vacation_ran: false,
        actions: Vec::new(),
    };
    let error = match r.list(&script.commands) {
        Ok(Flow::Stop) => None,
        Ok(Flow::Next) => script.error.as_ref().map(|e| e.to_string()),
        Err(e) => Some(e),
    };
    let msg = match &error {
        Some(e) => format!("Sieve error: {e}"),
        None if r.keep => "Implicit keep".to_string(),
        None => "No implicit keep".to_string(),
    };
    if r.keep || error.is_some() {
        let inbox = env.inbox.clone();
        r.add(SieveAction::FileInto(inbox));
    }
    SieveOutcome {
        actions: r.actions,
        out: if env.testing {
            format!("{msg}\n")
        } else {
            String::new()
        },
    }
}

impl Run<'_> {
    fn var(&self, name: &str) -> String {
        self.env.vars.get(name).unwrap_or("").to_string()
    }

    /// Add an action unless the same one is there already (RFC 5228: no
    /// duplicate deliveries).
    fn add(&mut self, a: SieveAction) {
        if !self.actions.contains(&a) {
            self.actions.push(a);
        }
    }

    fn list(&mut self, commands: &[Command]) -> Result<Flow, String> {
        for c in commands {
            if let Flow::Stop = self.command(c)? {
                return Ok(Flow::Stop);
            }
        }
        Ok(Flow::Next)
    }

    fn command(&mut self, c: &Command) -> Result<Flow, String> {
        match c {
            Command::If {
                branches,
                otherwise,
            } => {
                for (test, block) in branches {
                    if self.test(test)? {
                        return self.list(block);
                    }
                }
                if let Some(block) = otherwise {
                    return self.list(block);
                }
            }
            Command::Stop => return Ok(Flow::Stop),
            Command::Keep => {
                let inbox = self.env.inbox.clone();
                self.add(SieveAction::FileInto(inbox));
                self.keep = false;
            }
            Command::Discard => self.keep = false,
            Command::Redirect { address, copy } => {
                self.add(SieveAction::Redirect(address.clone()));
                if !copy {
                    self.keep = false;
                }
            }
            Command::FileInto { folder, copy } => {
                self.add(SieveAction::FileInto(folder.clone()));
                if !copy {
                    self.keep = false;
                }
            }
            Command::Vacation(v) => self.vacation(v)?,
        }
        Ok(Flow::Next)
    }

    fn test(&mut self, t: &Test) -> Result<bool, String> {
        Ok(match t {
            Test::True => true,
            Test::False => false,
            Test::Not(t) => !self.test(t)?,
            Test::AllOf(ts) => {
                // Every test is evaluated (Exim reads them all).
                let mut all = true;
                for t in ts {
                    all &= self.test(t)?;
                }
                all
            }
            Test::AnyOf(ts) => {
                let mut any = false;
                for t in ts {
                    any |= self.test(t)?;
                }
                any
            }
            Test::Exists(names) => names.iter().all(|n| self.raw_header(n).is_some()),
            Test::Size { over, limit } => {
                if *over {
                    self.env.message_size > *limit
                } else {
                    self.env.message_size < *limit
                }
            }
            Test::Header { headers, m } => {
                for name in headers {
                    let Some(raw) = self.raw_header(name) else {
                        continue;
                    };
                    let value = decoded_header(&raw);
                    if self.any_key(m, &value)? {
                        return Ok(true);
                    }
                }
                false
            }
            Test::Address { part, headers, m } => {
                for name in headers {
                    let Some(raw) = self.raw_header(name) else {
                        continue;
                    };
                    for item in oxim_conf::expand::split_addresses(&raw.replace('\n', " ")) {
                        let Some(a) = oxim_conf::expand::extract_address(item, true) else {
                            continue;
                        };
                        let Some(p) = address_part(&a, *part) else {
                            continue;
                        };
                        if self.any_key(m, &p)? {
                            return Ok(true);
                        }
                    }
                }
                false
            }
            Test::Envelope { part, parts, m } => {
                for e in parts {
                    let value = if e.eq_ignore_ascii_case("from") {
                        let sender = self.var("sender_address");
                        address_part(&sender, *part)
                    } else {
                        self.envelope_to(*part)?
                    };
                    if let Some(v) = value {
                        if self.any_key(m, &v)? {
                            return Ok(true);
                        }
                    }
                }
                false
            }
        })
    }

    /// The envelope recipient's part for `envelope "to"`.
    fn envelope_to(&self, part: AddressPart) -> Result<Option<String>, String> {
        let lp = format!(
            "{}{}{}",
            self.var("local_part_prefix"),
            self.var("local_part"),
            self.var("local_part_suffix")
        );
        Ok(match part {
            AddressPart::All => Some(format!("{lp}@{}", self.var("domain"))),
            AddressPart::LocalPart => Some(lp),
            AddressPart::Domain => Some(self.var("domain")),
            AddressPart::User => Some(match &self.env.useraddress {
                Some(u) => self.expand(u)?,
                None => lp,
            }),
            AddressPart::Detail => match &self.env.subaddress {
                Some(s) => Some(self.expand(s)?),
                None => None,
            },
        })
    }

    fn expand(&self, s: &str) -> Result<String, String> {
        oxim_conf::expand_with_config(s, &self.env.vars, self.env.cfg)
            .map_err(|e| format!("failed to expand \"{s}\": {e}"))
    }

    /// All fields of a name, raw and concatenated (Exim's `$rheader_`).
    fn raw_header(&self, name: &str) -> Option<String> {
        let mut found = None::<String>;
        for h in &self.env.headers {
            let Some((n, v)) = h.split_once(':') else {
                continue;
            };
            if n.trim_end().eq_ignore_ascii_case(name) {
                found.get_or_insert_with(String::new).push_str(v);
            }
        }
        found
    }

    fn any_key(&self, m: &Match, value: &str) -> Result<bool, String> {
        for k in &m.keys {
            if self.compare(m, k, value)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn compare(&self, m: &Match, key: &str, value: &str) -> Result<bool, String> {
        let err = |msg: &str| Err(format!("{msg} in line {}", m.line));
        let caseless = match m.comparator {
            Comparator::Octet => false,
            Comparator::AsciiCasemap => true,
            Comparator::AsciiNumeric => {
                if m.match_type != MatchType::Is {
                    return err("comparator does not offer specified matchtype");
                }
                if !self.ascii_numeric {
                    return err("missing previous require \"comparator-i;ascii-numeric\";");
                }
                return Ok(numeric_eq(key, value));
            }
        };
        let (k, v) = (key.as_bytes(), value.as_bytes());
        let eq = |a: u8, b: u8| {
            if caseless {
                a.eq_ignore_ascii_case(&b)
            } else {
                a == b
            }
        };
        Ok(match m.match_type {
            MatchType::Is => k.len() == v.len() && k.iter().zip(v).all(|(&a, &b)| eq(a, b)),
            MatchType::Contains => {
                !v.is_empty()
                    && (k.is_empty()
                        || v.windows(k.len())
                            .any(|w| w.iter().zip(k).all(|(&a, &b)| eq(a, b))))
            }
            MatchType::Matches => match glob(k, v, &eq) {
                Some(r) => r,
                None => return err("syntactically invalid pattern"),
            },
        })
    }

    fn vacation(&mut self, v: &oxim_conf::sieve::Vacation) -> Result<(), String> {
        if self.vacation_ran {
            return Err(format!(
                "trying to execute vacation more than once in line {}",
                v.line
            ));
        }
        self.vacation_ran = true;
        let sender = self.var("sender_address");
        if !super::personal::personal(&self.env.headers, &self.env.vars, &sender, &v.addresses) {
            return Ok(());
        }
        if self.env.testing {
            return Ok(());
        }
        let Some(dir) = &self.env.vacation_dir else {
            return Err(format!("vacation disabled in line {}", v.line));
        };
        let key = match &v.handle {
            Some(h) => h.clone(),
            None => format!(
                "{}{}{}{}",
                v.subject.as_deref().unwrap_or(""),
                v.from.as_deref().unwrap_or(""),
                if v.mime { "1" } else { "0" },
                v.reason
            ),
        };
        let oncelog = format!("{dir}/{}", oxim_conf::expand::md5_upper_hex(key.as_bytes()));
        let subject = match &v.subject {
            Some(s) => s.clone(),
            None => match self.raw_header("subject") {
                Some(raw) => format!("Auto: {}", decoded_header(&raw)),
                None => "Automated reply".to_string(),
            },
        };
        let from = match &v.from {
            Some(f) => f.clone(),
            None => format!("{}@{}", self.var("local_part"), self.var("domain")),
        };
        let (headers, text) = if v.mime {
            match v.reason.find("\r\n\r\n") {
                Some(i) => (v.reason[..i].to_string(), v.reason[i + 4..].to_string()),
                None => (v.reason.clone(), String::new()),
            }
        } else {
            (
                "MIME-Version: 1.0\nContent-Type: text/plain;\n\tcharset=\"utf-8\"\n\
                 Content-Transfer-Encoding: quoted-printable"
                    .to_string(),
                quoted_printable(&v.reason),
            )
        };
        self.actions
            .push(SieveAction::Vacation(Box::new(VacationReply {
                to: sender,
                from,
                subject: quote_2047(&subject),
                headers: headers.replace("\r\n", "\n"),
                text: text.replace("\r\n", "\n"),
                oncelog,
                days: v.days,
            })));
        Ok(())
    }
}

/// A header's value for `header`: unfolded, trimmed, RFC 2047 decoded.
fn decoded_header(raw: &str) -> String {
    let unfolded: String = raw.chars().filter(|&c| c != '\n').collect();
    let t = unfolded.trim_matches([' ', '\t']);
    oxim_conf::expand::rfc2047_decode(t, true)
}

/// The part of an address a test looks at (None: the address has none).
fn address_part(a: &str, part: AddressPart) -> Option<String> {
    let (lp, dom) = match a.rsplit_once('@') {
        Some((l, d)) => (l, d),
        None => (a, ""),
    };
    match part {
        AddressPart::All => Some(a.to_string()),
        AddressPart::LocalPart | AddressPart::User => Some(lp.to_string()),
        AddressPart::Domain => Some(dom.to_string()),
        AddressPart::Detail => None,
    }
}

/// `i;ascii-numeric` equality: the leading digits are the value (compared
/// as strings, as Exim does); a string without any is positive infinity
/// (equal only to another such).
fn numeric_eq(a: &str, b: &str) -> bool {
    let digits = |s: &str| -> Option<String> {
        let d: String = s.chars().take_while(char::is_ascii_digit).collect();
        if d.is_empty() {
            None
        } else {
            Some(d)
        }
    };
    digits(a) == digits(b)
}

/// Sieve's `:matches`: `*` any run, `?` one character, `\` quotes the
/// next. None for a pattern ending in a lone `\`.
fn glob(p: &[u8], s: &[u8], eq: &dyn Fn(u8, u8) -> bool) -> Option<bool> {
    if p.is_empty() {
        return Some(s.is_empty());
    }
    match p[0] {
        b'*' => {
            for i in 0..=s.len() {
                if glob(&p[1..], &s[i..], eq)? {
                    return Some(true);
                }
            }
            Some(false)
        }
        b'?' => {
            if s.is_empty() {
                return glob_check(&p[1..]).map(|_| false);
            }
            // One UTF-8 character.
            let mut n = 1;
            while n < s.len() && (s[n] & 0xc0) == 0x80 {
                n += 1;
            }
            glob(&p[1..], &s[n..], eq)
        }
        b'\\' => {
            let c = *p.get(1)?;
            if s.first().is_some_and(|&x| eq(x, c)) {
                glob(&p[2..], &s[1..], eq)
            } else {
                glob_check(&p[2..]).map(|_| false)
            }
        }
        c => {
            if s.first().is_some_and(|&x| eq(x, c)) {
                glob(&p[1..], &s[1..], eq)
            } else {
                glob_check(&p[1..]).map(|_| false)
            }
        }
    }
}

/// Whether the rest of a pattern is well formed (no lone `\` at its end).
fn glob_check(p: &[u8]) -> Option<()> {
    let mut i = 0;
    while i < p.len() {
        if p[i] == b'\\' {
            p.get(i + 1)?;
            i += 1;
        }
        i += 1;
    }
    Some(())
}

/// Quoted-printable for a vacation text (CRLF line ends become plain
/// newlines; lines are split before 76 characters).
fn quoted_printable(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::new();
    let mut line = 0;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if line >= 73 {
            out.push_str("=\n");
            line = 0;
        }
        let crlf_next = i + 2 < b.len() && b[i + 1] == b'\r' && b[i + 2] == b'\n';
        if (b'!'..=b'<').contains(&c)
            || (b'>'..=b'~').contains(&c)
            || ((c == b' ' || c == b'\t') && i + 2 < b.len() && !crlf_next)
        {
            out.push(c as char);
            line += 1;
        } else if c == b'\r' && b.get(i + 1) == Some(&b'\n') {
            out.push('\n');
            line = 0;
            i += 1;
        } else {
            out.push_str(&format!("={c:02X}"));
            line += 3;
        }
        i += 1;
    }
    out
}

/// A header text with non-ASCII characters as one RFC 2047 word (UTF-8,
/// Q encoding); plain ASCII is left as it is.
fn quote_2047(s: &str) -> String {
    if s.is_ascii() {
        return s.to_string();
    }
    let mut out = String::from("=?utf-8?Q?");
    for &c in s.as_bytes() {
        if c.is_ascii_alphanumeric() {
            out.push(c as char);
        } else if c == b' ' {
            out.push('_');
        } else {
            out.push_str(&format!("={c:02X}"));
        }
    }
    out.push_str("?=");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eq(a: u8, b: u8) -> bool {
        a.eq_ignore_ascii_case(&b)
    }

    #[test]
    fn glob_patterns() {
        assert_eq!(
            glob(b"*abc?efgh*", b"marian@abcdefgh.example", &eq),
            Some(true)
        );
        assert_eq!(
            glob(b"MA?AN@abc*", b"marian@abcdefgh.example", &eq),
            Some(false)
        );
        assert_eq!(glob(b"\\?*\\*", b"?a=x*", &eq), Some(true));
        assert_eq!(glob(b"abc\\", b"abc", &eq), None);
    }

    #[test]
    fn numeric_comparison() {
        assert!(numeric_eq("99", "99-"));
        assert!(!numeric_eq("98", "99"));
        assert!(numeric_eq("-99", "-98"));
        assert!(!numeric_eq("007", "7"));
    }

    #[test]
    fn qp() {
        assert_eq!(
            quoted_printable("I am gone.  Not here."),
            "I am gone.  Not here."
        );
        assert_eq!(quoted_printable("a=b\r\nc"), "a=3Db\nc");
    }
}
