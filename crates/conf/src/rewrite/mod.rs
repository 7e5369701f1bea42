//! Exim's address rewriting (spec chapter "Address rewriting"): the rules
//! of `begin rewrite` and of a transport's `headers_rewrite`, applied to
//! envelope addresses, to the addresses in `Sender:`, `From:`, `To:`,
//! `Cc:`, `Bcc:` and `Reply-To:` (and their `Resent-` forms), and at SMTP
//! time (`S`). Pure: what must be logged comes back as [`Note`]s for the
//! caller to write.

use crate::config::{Config, RewriteRule};
use crate::expand::{self, EntryKind, ExpandContext, HostFind};
use crate::lists::ListIter;
use crate::trace::Trace;

pub mod mailbox;
pub mod phrase;
mod testing;

pub use mailbox::{extract_address, find_address_end, find_at, Extracted, Group};
pub use phrase::{fix_phrase, quote_2047};

/// Flag bits of a rule (Exim's values).
pub mod flag {
    /// `s`: Sender:
    pub const SENDER: u32 = 0x0001;
    /// `f`: From:
    pub const FROM: u32 = 0x0002;
    /// `t`: To:
    pub const TO: u32 = 0x0004;
    /// `c`: Cc:
    pub const CC: u32 = 0x0008;
    /// `b`: Bcc:
    pub const BCC: u32 = 0x0010;
    /// `r`: Reply-To:
    pub const REPLY_TO: u32 = 0x0020;
    /// `h`: all the address headers.
    pub const ALL_HEADERS: u32 = 0x003F;
    /// `F`: the envelope sender.
    pub const ENV_FROM: u32 = 0x0040;
    /// `T`: the envelope recipients.
    pub const ENV_TO: u32 = 0x0080;
    /// `E`: both envelope fields.
    pub const ALL_ENVELOPE: u32 = 0x00C0;
    /// Headers and envelope.
    pub const ALL: u32 = ALL_HEADERS | ALL_ENVELOPE;
    /// `S`: at SMTP time.
    pub const SMTP: u32 = 0x0100;
    /// With `SMTP`: the MAIL command (`<>` allowed).
    pub const SMTP_SENDER: u32 = 0x0200;
    /// `Q`: an unqualified result is qualified.
    pub const QUALIFY: u32 = 0x0400;
    /// `R`: repeat a successful rule (up to 10 times).
    pub const REPEAT: u32 = 0x0800;
    /// `w`: replace the whole header item.
    pub const WHOLE: u32 = 0x1000;
    /// `q`: no further rules after this one applies.
    pub const QUIT: u32 = 0x2000;
}

/// One compiled rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The pattern (a one-item address list, expanded before use).
    pub pattern: String,
    /// The replacement (expanded), or `*` for "leave alone".
    pub replacement: String,
    /// [`flag`] bits.
    pub flags: u32,
}

/// An ordered set of rules and the union of their flags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    /// The rules, in order.
    pub rules: Vec<Rule>,
    /// All flags of all rules (Exim's `rewrite_existflags`).
    pub exist: u32,
}

fn flag_bits(letters: &str) -> u32 {
    let mut f = 0;
    for c in letters.chars() {
        f |= match c {
            'q' => flag::QUIT,
            'w' => flag::WHOLE,
            'h' => flag::ALL_HEADERS,
            's' => flag::SENDER,
            'f' => flag::FROM,
            't' => flag::TO,
            'c' => flag::CC,
            'b' => flag::BCC,
            'r' => flag::REPLY_TO,
            'E' => flag::ALL_ENVELOPE,
            'F' => flag::ENV_FROM,
            'T' => flag::ENV_TO,
            'Q' => flag::QUALIFY,
            'R' => flag::REPEAT,
            'S' => flag::SMTP,
            _ => 0,
        };
    }
    f
}

impl Rules {
    /// The global rules (`begin rewrite`): a rule without field flags
    /// applies to all headers and the envelope.
    pub fn global(rules: &[RewriteRule]) -> Rules {
        Self::build(rules, flag::ALL)
    }

    fn build(rules: &[RewriteRule], default: u32) -> Rules {
        let mut out = Rules::default();
        for r in rules {
            let mut flags = flag_bits(&r.flags);
            if flags & (flag::ALL | flag::SMTP) == 0 {
                flags |= default;
            }
            out.exist |= flags;
            out.rules.push(Rule {
                pattern: r.pattern.clone(),
                replacement: r.replacement.clone(),
                flags,
            });
        }
        out
    }

    /// A transport's `headers_rewrite`: a colon-separated list of rules
    /// that may rewrite headers only.
    pub fn transport(list: &str) -> Result<Rules, String> {
        let mut parsed = Vec::new();
        for item in ListIter::new(list) {
            parsed.push(crate::config::parse_rewrite_line(&item)?);
        }
        let r = Self::build(&parsed, flag::ALL_HEADERS);
        if r.exist & (flag::ALL_ENVELOPE | flag::SMTP) != 0 {
            return Err(
                "rewrite rule specifies a non-header rewrite - not allowed at \
                 transport time -"
                    .into(),
            );
        }
        Ok(r)
    }

    /// No rules at all.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

/// Something rewriting wants written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// A main-log line under the `address_rewrite` selector.
    Rewritten(String),
    /// A main-log line written whatever the selectors.
    Log(String),
    /// A main- and panic-log line (a broken rule).
    Panic(String),
    /// An "old" (never transmitted) header recording what was rewritten:
    /// `X-rewrote-sender: a@b\n`.
    OldHeader(String),
}

/// What rewriting needs from its caller.
pub struct Env<'a> {
    /// The configuration (named lists in patterns and expansions).
    pub cfg: &'a Config,
    /// Variables and files for expansions and lookups.
    pub ctx: &'a dyn ExpandContext,
    /// Domain for unqualified sender addresses.
    pub qualify_sender: &'a str,
    /// Domain for unqualified recipient addresses.
    pub qualify_recipient: &'a str,
    /// Character set for RFC 2047 encoding of phrases (`headers_charset`).
    pub charset: &'a str,
}

/// The context an expansion inside rewriting sees: `$local_part`,
/// `$domain` and the numeric variables of the match, the rest from the
/// caller.
struct RuleCtx<'a> {
    inner: &'a dyn ExpandContext,
    local_part: Option<String>,
    domain: Option<String>,
    numeric: Vec<String>,
}

impl ExpandContext for RuleCtx<'_> {
    fn var(&self, name: &str) -> Option<String> {
        match name {
            "local_part" if self.local_part.is_some() => self.local_part.clone(),
            "domain" if self.domain.is_some() => self.domain.clone(),
            _ => self.inner.var(name),
        }
    }
    fn auth_results(&self, sysname: &str) -> Option<String> {
        self.inner.auth_results(sysname)
    }
    fn read_file(&self, path: &str) -> Option<String> {
        self.inner.read_file(path)
    }
    fn file_exists(&self, path: &str) -> bool {
        self.inner.file_exists(path)
    }
    fn entry_kind(&self, path: &str) -> Option<EntryKind> {
        self.inner.entry_kind(path)
    }
    fn state_flag(&self, name: &str) -> Option<bool> {
        self.inner.state_flag(name)
    }
    fn numeric_vars(&self) -> Vec<String> {
        self.numeric.clone()
    }
    fn host_addresses(&self, name: &str) -> Option<Vec<std::net::IpAddr>> {
        self.inner.host_addresses(name)
    }
    fn find_host(&self, name: &str, trace: &mut Trace) -> Option<HostFind> {
        self.inner.find_host(name, trace)
    }
    fn sender_host_names(&self, trace: &mut Trace) -> Option<Result<Vec<String>, String>> {
        self.inner.sender_host_names(trace)
    }
}

/// Where an address is, for the `address_rewrite` log line.
fn where_name(f: u32) -> &'static str {
    match f {
        flag::SENDER => "sender:",
        flag::FROM => "from:",
        flag::TO => "to:",
        flag::CC => "cc:",
        flag::BCC => "bcc:",
        flag::REPLY_TO => "reply-to:",
        flag::ENV_FROM => "env-from",
        flag::ENV_TO => "env-to",
        flag::SMTP => "smtp recipient",
        x if x == flag::SMTP | flag::SMTP_SENDER => "smtp sender",
        _ => "?",
    }
}

/// `s` with `@domain` added when it has no domain.
pub fn qualify(s: &str, domain: &str) -> String {
    if find_at(s).is_some() {
        s.to_string()
    } else {
        format!("{s}@{domain}")
    }
}

impl Env<'_> {
    fn qualify_for(&self, s: &str, is_recipient: bool) -> String {
        qualify(
            s,
            if is_recipient {
                self.qualify_recipient
            } else {
                self.qualify_sender
            },
        )
    }

    fn expand(&self, s: &str, ctx: &dyn ExpandContext) -> Result<String, expand::ExpandError> {
        expand::expand_with_config(s, ctx, self.cfg)
    }

    /// Exim's `rewrite_one`: applies the rules that have `flag` to the
    /// address `s`. `whole`, for a header address, is set when a `w` rule
    /// replaced the whole item (the result is then the whole item).
    /// `add_header` names the `X-rewrote-` header to record the old address
    /// in. `None` when no rule rewrote the address.
    pub fn rewrite_one(
        &self,
        rules: &Rules,
        s: &str,
        flag_: u32,
        mut whole: Option<&mut bool>,
        add_header: Option<&str>,
        notes: &mut Vec<Note>,
    ) -> Option<String> {
        let mut yield_ = s.to_string();
        let mut subject = s.to_string();
        let (mut yield_start, mut yield_end) = (0usize, 0usize);
        let mut changed = false;
        if let Some(w) = whole.as_deref_mut() {
            *w = false;
        }
        let allow_null = flag_ == flag::ENV_FROM || flag_ == flag::SMTP | flag::SMTP_SENDER;
        'rules: for (i, rule) in rules.rules.iter().enumerate() {
            if rule.flags & flag_ == 0 {
                continue;
            }
            let rule_number = i + 1;
            let mut count = 0;
            loop {
                let result = if flag_ & flag::SMTP != 0 {
                    let key = match self.expand(&rule.pattern, self.ctx) {
                        Ok(k) => k,
                        Err(e) => {
                            if !e.is_forced_fail() {
                                notes.push(Note::Panic(format!(
                                    "failed to expand \"{}\" while checking for SMTP rewriting: {e}",
                                    rule.pattern
                                )));
                            }
                            continue 'rules;
                        }
                    };
                    let key = key
                        .strip_prefix("\\N")
                        .map(|k| k.strip_suffix("\\N").unwrap_or(k))
                        .unwrap_or(&key);
                    let re = match regex::Regex::new(key) {
                        Ok(r) => r,
                        Err(e) => {
                            notes.push(Note::Panic(format!(
                                "regular expression error in \"{key}\": {e}"
                            )));
                            continue 'rules;
                        }
                    };
                    let Some(caps) = re.captures(&subject) else {
                        continue 'rules;
                    };
                    let numeric = caps
                        .iter()
                        .map(|m| m.map_or(String::new(), |m| m.as_str().to_string()))
                        .collect();
                    let ctx = RuleCtx {
                        inner: self.ctx,
                        local_part: None,
                        domain: None,
                        numeric,
                    };
                    self.expand(&rule.replacement, &ctx)
                } else {
                    let key = match self.expand(&rule.pattern, self.ctx) {
                        Ok(k) => k,
                        Err(e) => {
                            if !e.is_forced_fail() {
                                notes.push(Note::Panic(format!(
                                    "failed to expand \"{}\" while rewriting: {e}",
                                    rule.pattern
                                )));
                            }
                            continue 'rules;
                        }
                    };
                    let numeric = match crate::lists::match_address_item_setup(
                        &key, &subject, self.cfg, self.ctx,
                    ) {
                        Ok(Some(n)) => n,
                        Ok(None) => continue 'rules,
                        Err(e) => {
                            notes.push(Note::Panic(format!(
                                "error in rewrite pattern \"{key}\": {e}"
                            )));
                            continue 'rules;
                        }
                    };
                    if rule.replacement == "*" {
                        break 'rules;
                    }
                    let (lp, dom) = match subject.rsplit_once('@') {
                        Some((l, d)) => (l.to_string(), d.to_string()),
                        None => (subject.clone(), String::new()),
                    };
                    let ctx = RuleCtx {
                        inner: self.ctx,
                        local_part: Some(lp),
                        domain: Some(dom),
                        numeric,
                    };
                    self.expand(&rule.replacement, &ctx)
                };
                let mut new = match result {
                    Ok(n) => n,
                    Err(e) if e.is_forced_fail() => {
                        if rule.flags & flag::QUIT != 0 {
                            break 'rules;
                        }
                        continue 'rules;
                    }
                    Err(e) => {
                        notes.push(Note::Panic(format!(
                            "Expansion of {} failed while rewriting: {e}",
                            rule.replacement
                        )));
                        break 'rules;
                    }
                };
                let parsed = match extract_address(&new, allow_null, true, &mut Group::default()) {
                    Ok(p) => p,
                    Err(e) => {
                        notes.push(Note::Panic(format!(
                            "Rewrite of {subject} yielded unparseable address: {e} in address {new}"
                        )));
                        break 'rules;
                    }
                };
                let (start, mut end) = (parsed.start, parsed.end);
                let mut newparsed = parsed.address;
                if parsed.domain == 0 && (!newparsed.is_empty() || !allow_null) {
                    if rule.flags & flag::QUALIFY != 0 {
                        newparsed = qualify(&newparsed, self.qualify_recipient);
                        new = format!("{}{}{}", &new[..start], newparsed, &new[end..]);
                        end = start + newparsed.len();
                    } else {
                        notes.push(Note::Panic(format!(
                            "Rewrite of {subject} yielded unqualified address \"{new}\""
                        )));
                        break 'rules;
                    }
                }
                let how = if rule.flags & flag::WHOLE != 0 || !new.contains('<') {
                    "as"
                } else {
                    "with (address part of)"
                };
                notes.push(Note::Rewritten(format!(
                    "\"{yield_}\" from {} rewritten {how} \"{new}\" by rule {rule_number}",
                    where_name(flag_)
                )));
                if let Some(name) = add_header {
                    notes.push(Note::OldHeader(format!("X-rewrote-{name}: {subject}\n")));
                }
                changed = true;
                match whole.as_deref_mut() {
                    Some(w) if flag_ & flag::ALL_HEADERS != 0 => {
                        if rule.flags & flag::WHOLE != 0 {
                            let (mut start, mut end) = (start, end);
                            let nb = new.as_bytes();
                            if start > 0 && nb[start - 1] == b'<' {
                                let mut p1 = start - 1;
                                while p1 > 0 && nb[p1 - 1] == b' ' {
                                    p1 -= 1;
                                }
                                let pf1 = fix_phrase(&nb[..p1], self.charset);
                                let mut p2 = (end + 1).min(nb.len());
                                while p2 < nb.len() && nb[p2] == b' ' {
                                    p2 += 1;
                                }
                                let pf2 = fix_phrase(&nb[p2..], self.charset);
                                start = pf1.len() + start - p1;
                                end = start + newparsed.len();
                                let mut v = pf1;
                                v.extend_from_slice(&nb[p1..p2]);
                                v.extend_from_slice(&pf2);
                                new = String::from_utf8_lossy(&v).into_owned();
                            }
                            yield_ = new;
                            yield_start = start;
                            yield_end = end;
                            subject = newparsed;
                            *w = true;
                        } else if !*w {
                            subject = newparsed.clone();
                            yield_ = newparsed;
                        } else {
                            subject = newparsed;
                            let n = format!(
                                "{}{}{}",
                                &yield_[..yield_start],
                                subject,
                                &yield_[yield_end..]
                            );
                            yield_end = yield_start + subject.len();
                            yield_ = n;
                        }
                    }
                    _ => {
                        subject = newparsed.clone();
                        yield_ = newparsed;
                    }
                }
                let done = rule.flags & flag::QUIT != 0;
                if rule.flags & flag::REPEAT != 0 {
                    if count < 10 {
                        count += 1;
                        continue;
                    }
                    notes.push(Note::Panic(
                        "rewrite rule repeat ignored after 10 times".into(),
                    ));
                }
                if done {
                    break 'rules;
                }
                break;
            }
        }
        changed.then_some(yield_)
    }

    /// Exim's `rewrite_address`: qualifies an envelope address and applies
    /// the `F` (sender) or `T` (recipient) rules. `add_header` records the
    /// old address in an `X-rewrote-` old header (at reception).
    pub fn rewrite_address(
        &self,
        rules: &Rules,
        s: &str,
        is_recipient: bool,
        add_header: bool,
        notes: &mut Vec<Note>,
    ) -> String {
        let q = self.qualify_for(s, is_recipient);
        let f = if is_recipient {
            flag::ENV_TO
        } else {
            flag::ENV_FROM
        };
        if rules.exist & f == 0 {
            return q;
        }
        let name = if is_recipient {
            "original-recipient"
        } else {
            "sender"
        };
        self.rewrite_one(rules, &q, f, None, add_header.then_some(name), notes)
            .unwrap_or(q)
    }

    /// Exim's `rewrite_header`: qualifies (where `allow_sender` /
    /// `allow_recipient` permit) and rewrites the addresses of one header
    /// line (`text`, with its name and final newline). `None` when the
    /// header is not an address header or nothing changed.
    pub fn rewrite_header(
        &self,
        rules: &Rules,
        text: &str,
        allow_sender: bool,
        allow_recipient: bool,
        notes: &mut Vec<Note>,
    ) -> Option<String> {
        let f = header_flag(text)?;
        let colon = text.find(':')?;
        let mut cur = text.to_string();
        let mut s = colon + 1;
        while s < cur.len() && cur.as_bytes()[s].is_ascii_whitespace() {
            s += 1;
        }
        let mut group = Group {
            allow: true,
            found: false,
        };
        let mut any = false;
        let mut lastnewline = 0usize;
        let is_recipient = f & (flag::SENDER | flag::FROM | flag::REPLY_TO) == 0;
        while s < cur.len() {
            let b = cur.as_bytes();
            let sprev = s;
            let ss = find_address_end(b, s, false);
            let mut ss1 = ss;
            if ss >= b.len() {
                while ss1 > s && b[ss1 - 1].is_ascii_whitespace() {
                    ss1 -= 1;
                }
            }
            let item = cur[s..ss1].to_string();
            let parsed = extract_address(&item, false, true, &mut group);
            s = if ss < b.len() { ss + 1 } else { ss };
            while s < b.len() && b[s].is_ascii_whitespace() {
                s += 1;
            }
            let p = match parsed {
                Ok(p) => p,
                Err(e) => {
                    if e != "empty address" {
                        notes.push(Note::Log(format!("qualify/rewrite: {e}")));
                    }
                    continue;
                }
            };
            let (mut start, mut end) = (p.start, p.end);
            let mut new = self.qualify_for(&p.address, is_recipient);
            let mut changed = new != p.address;
            if changed && ((is_recipient && !allow_recipient) || (!is_recipient && !allow_sender)) {
                continue;
            }
            if rules.exist & f != 0 {
                let mut whole = false;
                if let Some(n) = self.rewrite_one(rules, &new, f, Some(&mut whole), None, notes) {
                    changed = true;
                    new = n;
                    if whole {
                        start = 0;
                        end = ss - sprev;
                        if cur.as_bytes()[sprev + end - 1] == b'\n' {
                            end -= 1;
                        }
                    }
                }
            }
            if !changed {
                continue;
            }
            any = true;
            let oldlen = end - start;
            let newlen = new.len();
            let mut newt = String::with_capacity(cur.len() + newlen + 4);
            newt.push_str(&cur[..sprev + start]);
            newt.push_str(&new);
            if s > sprev + end {
                newt.push_str(&cur[sprev + end..s]);
            }
            if newlen > oldlen && newt.len() - lastnewline > 40 {
                let cb = cur.as_bytes();
                let mut p = s;
                while p > 0 && matches!(cb[p - 1], b' ' | b'\t') {
                    p -= 1;
                }
                if p == 0 || cb[p - 1] != b'\n' {
                    lastnewline = newt.len();
                    newt.push_str("\n\t");
                }
            }
            let remlen = s - oldlen + newlen;
            newt.push_str(&cur[s..]);
            cur = newt;
            s = remlen;
        }
        any.then_some(cur)
    }
}

/// The rewrite flag of an address header (`Resent-` forms included), from
/// the header's text.
pub fn header_flag(text: &str) -> Option<u32> {
    let name = text.split_once(':')?.0.trim_end().to_ascii_lowercase();
    let base = name.strip_prefix("resent-").unwrap_or(&name);
    Some(match base {
        "sender" => flag::SENDER,
        "from" => flag::FROM,
        "to" => flag::TO,
        "cc" => flag::CC,
        "bcc" => flag::BCC,
        "reply-to" => flag::REPLY_TO,
        _ => return None,
    })
}

#[cfg(test)]
mod tests;
