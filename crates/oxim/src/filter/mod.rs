//! Running an Exim filter (parsed by [`oxim_conf::filter`]): conditions are
//! tested and arguments expanded as the commands are obeyed. The result is
//! a verdict plus the deliveries the filter set up (addresses, files,
//! pipes, replies), which the redirect router (or `-bf`) acts on. In test
//! mode (`-bf`/`-bF`) nothing is done: each action is described in Exim's
//! words instead.

mod cond;
mod forbid;
mod personal;
pub mod sieve;

use oxim_conf::filter::{
    CmdKind, Command, HeadersOp, MailArgs, Stop, MAIL_ARGS, MAIL_FILE, MAIL_HEADERS, MAIL_TEXT,
};

use crate::vars::Vars;

pub use forbid::Forbid;

/// How a filter ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// At least one significant ("seen") action: no other delivery.
    Delivered,
    /// Nothing significant: normal delivery goes on.
    NotDelivered,
    Defer(String),
    Fail(String),
    Freeze(String),
    /// The filter is broken (or forbidden an action); the message.
    Error(String),
}

/// A delivery or reply the filter set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Deliver {
        address: String,
        errors_to: Option<String>,
        noerror: bool,
    },
    Save {
        path: String,
        mode: Option<u32>,
        noerror: bool,
    },
    Pipe {
        command: String,
        noerror: bool,
        /// `$thisaddress` and the numeric variables when it was set up
        /// (the transport expands the command's arguments with them).
        thisaddress: Option<String>,
        numeric: Vec<String>,
    },
    Reply {
        vacation: bool,
        noerror: bool,
        /// Expanded values of [`MAIL_ARGS`] (`to` filled from
        /// `$reply_address` when absent).
        values: Box<[Option<String>; 12]>,
        expand_file: bool,
        return_message: bool,
    },
}

/// Where `logwrite` goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogMode {
    /// Write to the `logfile`.
    Real,
    /// Verifying or testing: do nothing.
    Skip,
    /// `forbid_filter_logwrite`.
    Forbidden,
}

/// What a filter run knows about its message and address.
pub struct Env<'a> {
    pub cfg: &'a oxim_conf::Config,
    /// Variables for expansions (`$local_part`, `$domain`, `$home`, ...);
    /// the filter adds `$n0`..`$n9`, `$sn0`..`$sn9`, `$thisaddress`.
    pub vars: Vars,
    /// The message's live header fields (name, value, final newline).
    pub headers: Vec<String>,
    /// `-bf`/`-bF`: describe, do not act.
    pub testing: bool,
    /// A system filter.
    pub system: bool,
    /// A real message (not address testing or verification).
    pub message: bool,
    pub first_delivery: bool,
    pub manually_thawed: bool,
    pub sender: String,
    pub return_path: String,
    /// The system filter's `$n` values, seen as `$sn` by user filters.
    pub sn: [i64; 10],
    pub log: LogMode,
    /// `filter_prepend_home`: a relative `save` path gets `$home/`.
    pub prepend_home: bool,
    /// Expansion items the filter may not use (`forbid_filter_*`).
    pub forbid: Forbid,
}

/// The result of one run.
#[derive(Debug)]
pub struct Outcome {
    pub verdict: Verdict,
    pub actions: Vec<Action>,
    /// Test mode's description, line by line.
    pub out: String,
    /// The final `$n` values (a system filter passes them on as `$sn`).
    pub n: [i64; 10],
    /// The header fields after `headers add`/`remove` (system filter).
    pub headers: Vec<String>,
    /// The `headers add` (a field's text) and `headers remove` (a name)
    /// obeyed, in order, for the spool copy of the headers.
    pub header_ops: Vec<(HeadersOp, String)>,
}

struct Run<'a> {
    env: Env<'a>,
    n: [i64; 10],
    delivered: bool,
    finished: bool,
    actions: Vec<Action>,
    out: String,
    log_file: Option<(String, u32)>,
    header_ops: Vec<(HeadersOp, String)>,
    thisaddress: Option<String>,
    numeric: Vec<String>,
}

/// Obey `commands` (a parsed filter).
pub fn run(commands: &[Command], env: Env<'_>) -> Outcome {
    let mut r = Run {
        env,
        n: [0; 10],
        delivered: false,
        finished: false,
        actions: Vec::new(),
        out: String::new(),
        log_file: None,
        header_ops: Vec::new(),
        thisaddress: None,
        numeric: Vec::new(),
    };
    for i in 0..10 {
        let sn = r.env.sn[i];
        r.env.vars.set(&format!("sn{i}"), sn.to_string());
    }
    r.sync_vars();
    let verdict = match r.list(commands) {
        Ok(()) if r.delivered => Verdict::Delivered,
        Ok(()) => Verdict::NotDelivered,
        Err(v) => v,
    };
    if r.env.testing {
        r.out.push_str(&final_words(&verdict));
        r.out.push('\n');
    }
    Outcome {
        verdict,
        actions: r.actions,
        out: r.out,
        n: r.n,
        headers: r.env.headers,
        header_ops: r.header_ops,
    }
}

/// `$message_body` / `$message_body_end`: up to `n` bytes from the start or
/// the end of the body, newlines and NULs shown as spaces.
pub fn body_window(body: &[u8], n: usize, end: bool) -> String {
    let part = if end {
        &body[body.len().saturating_sub(n)..]
    } else {
        &body[..body.len().min(n)]
    };
    String::from_utf8_lossy(part)
        .chars()
        .map(|c| if c == '\n' || c == '\0' { ' ' } else { c })
        .collect()
}

/// Test mode's last line(s) for a verdict.
pub fn final_words(v: &Verdict) -> String {
    match v {
        Verdict::Defer(_) => "Filtering ended by \"defer\".".into(),
        Verdict::Freeze(_) => "Filtering ended by \"freeze\".".into(),
        Verdict::Fail(_) => "Filtering ended by \"fail\".".into(),
        Verdict::Delivered => "Filtering set up at least one significant delivery or other action.\nNo other deliveries will occur.".into(),
        Verdict::NotDelivered => "Filtering did not set up a significant delivery.\nNormal delivery will occur.".into(),
        Verdict::Error(e) => format!("Filter error: {e}"),
    }
}

fn quoted(s: &str) -> String {
    format!("\"{}\"", printing(s, true))
}

/// Exim's `string_printing`: non-printing bytes become `\n`, `\t`, ...
/// or `\ooo`; with `quotes` a double quote becomes `\"`. Unlike the log
/// lines' escaping, a backslash is left alone (as Exim leaves it).
pub fn printing(s: &str, quotes: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            8 => out.push_str("\\b"),
            11 => out.push_str("\\v"),
            12 => out.push_str("\\f"),
            b'"' if quotes => out.push_str("\\\""),
            0x20..=0x7e => out.push(char::from(b)),
            _ => out.push_str(&format!("\\{b:03o}")),
        }
    }
    out
}

/// C's `strtol(s, &end, 0)` wholly consuming `s`.
fn c_integer(s: &str) -> Option<i64> {
    let (neg, t) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let v = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        i64::from_str_radix(h, 16).ok()?
    } else if t.len() > 1 && t.starts_with('0') {
        i64::from_str_radix(&t[1..], 8).ok()?
    } else if t.is_empty() {
        return None;
    } else {
        t.parse::<i64>().ok()?
    };
    Some(if neg { -v } else { v })
}

impl Run<'_> {
    fn sync_vars(&mut self) {
        for i in 0..10 {
            let n = self.n[i];
            self.env.vars.set(&format!("n{i}"), n.to_string());
        }
        match &self.thisaddress {
            Some(a) => {
                self.env.vars.set("thisaddress", a.clone());
            }
            None => {
                self.env.vars.set("thisaddress", "");
            }
        }
        self.env.vars.set_numeric(self.numeric.clone());
    }

    fn expand(&self, s: &str) -> Result<String, String> {
        if let Some(e) = self.env.forbid.check(s) {
            return Err(e.to_string());
        }
        oxim_conf::expand_with_config(s, &self.env.vars, self.env.cfg).map_err(|e| e.to_string())
    }

    fn expand_arg(&self, s: &str, command: &str) -> Result<String, Verdict> {
        self.expand(s).map_err(|e| {
            Verdict::Error(format!(
                "failed to expand {} in {command} command: {e}",
                quoted(s)
            ))
        })
    }

    fn list(&mut self, commands: &[Command]) -> Result<(), Verdict> {
        for c in commands {
            self.command(c)?;
            if self.finished {
                return Ok(());
            }
        }
        Ok(())
    }

    fn line(&mut self, s: String) {
        self.out.push_str(&s);
        self.out.push('\n');
    }

    fn command(&mut self, c: &Command) -> Result<(), Verdict> {
        let testing = self.env.testing;
        let noerror = if c.noerror { " (noerror)" } else { "" };
        match &c.kind {
            CmdKind::Add { value, var } => {
                let v = self.expand_arg(value, "add")?;
                let name = self.expand_arg(var, "add")?;
                let idx = match name.as_bytes() {
                    [b'n', d @ b'0'..=b'9'] => usize::from(d - b'0'),
                    _ => {
                        return Err(Verdict::Error(format!(
                            "unknown variable {} in \"add\" command",
                            quoted(&name)
                        )))
                    }
                };
                let mut t = v.as_str();
                while t.starts_with("--") {
                    t = &t[2..];
                }
                let Some(num) = c_integer(t) else {
                    return Err(Verdict::Error(format!(
                        "malformed number {} in \"add\" command",
                        quoted(t)
                    )));
                };
                if c.seen {
                    self.delivered = true;
                }
                self.n[idx] += num;
                self.sync_vars();
                if testing {
                    self.line(format!("Add {num} to n{idx}"));
                }
            }
            CmdKind::Deliver { address, errors_to } => {
                let a = self.expand_arg(address, "deliver")?;
                let a = self.address(&a)?;
                let e = match errors_to {
                    Some(e) => {
                        let e = self.expand_arg(e, "deliver")?;
                        Some(self.address(&e)?)
                    }
                    None => None,
                };
                if c.seen {
                    self.delivered = true;
                }
                if let (Some(e), false) = (&e, self.env.system) {
                    let own = self.expand("$local_part@$domain").unwrap_or_default();
                    if !own.eq_ignore_ascii_case(e) {
                        return Err(Verdict::Error(
                            "errors_to must point to the caller's address".into(),
                        ));
                    }
                }
                if testing {
                    self.line(format!(
                        "{}eliver message to: {a}{noerror}{}",
                        if c.seen { "D" } else { "Unseen d" },
                        e.as_ref()
                            .map(|e| format!(" errors_to {e}"))
                            .unwrap_or_default()
                    ));
                } else {
                    self.actions.push(Action::Deliver {
                        address: a,
                        errors_to: e,
                        noerror: c.noerror,
                    });
                }
            }
            CmdKind::Save { path, mode } => {
                let mut p = self.expand_arg(path, "save")?;
                if c.seen {
                    self.delivered = true;
                }
                if testing {
                    let m = mode.map(|m| format!(" {m:04o}")).unwrap_or_default();
                    self.line(format!(
                        "{}ave message to: {p}{m}{noerror}",
                        if c.seen { "S" } else { "Unseen s" }
                    ));
                } else {
                    let home = self.env.vars.get("home").unwrap_or("").to_string();
                    if !p.starts_with('/') && self.env.prepend_home && !home.is_empty() {
                        p = format!("{home}/{p}");
                    }
                    self.actions.push(Action::Save {
                        path: p,
                        mode: *mode,
                        noerror: c.noerror,
                    });
                }
            }
            CmdKind::Pipe { command } => {
                if c.seen {
                    self.delivered = true;
                }
                if testing {
                    self.line(format!(
                        "{}ipe message to: {command}{noerror}",
                        if c.seen { "P" } else { "Unseen p" }
                    ));
                } else {
                    let command = if command.starts_with('|') {
                        command.clone()
                    } else {
                        format!("|{command}")
                    };
                    self.actions.push(Action::Pipe {
                        command,
                        noerror: c.noerror,
                        thisaddress: self.thisaddress.clone(),
                        numeric: self.numeric.clone(),
                    });
                }
            }
            CmdKind::Logfile { path, mode } => {
                let p = self.expand_arg(path, "logfile")?;
                if c.seen {
                    self.delivered = true;
                }
                if testing {
                    self.line(format!("{}ogfile {p}", if c.seen { "Seen l" } else { "L" }));
                }
                self.log_file = Some((p, mode.unwrap_or(0o600)));
            }
            CmdKind::Logwrite { text } => {
                let t = self.expand_arg(text, "logwrite")?;
                if c.seen {
                    self.delivered = true;
                }
                if testing {
                    self.line(format!(
                        "{}ogwrite {}",
                        if c.seen { "Seen l" } else { "L" },
                        quoted(&t)
                    ));
                } else {
                    self.logwrite(&t)?;
                }
            }
            CmdKind::Testprint { text } => {
                let t = self.expand_arg(text, "testprint")?;
                if testing {
                    self.line(format!("Testprint: {}", printing(&t, false)));
                }
            }
            CmdKind::Headers { op, value } => {
                let v = self.expand_arg(value, "headers")?;
                if testing {
                    let name = match op {
                        HeadersOp::Add => "add",
                        HeadersOp::Remove => "remove",
                        HeadersOp::Charset => "charset",
                    };
                    self.line(format!("Headers {name} {}", quoted(&v)));
                }
                self.headers(*op, &v);
            }
            CmdKind::Stop { kind, text } => {
                let t = self.expand_arg(text, kind.name())?;
                if c.seen {
                    self.delivered = true;
                }
                let mut msg = if t.len() > 1024 {
                    let mut cut = 1000;
                    while !t.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    format!("{} ... (truncated)", &t[..cut])
                } else {
                    t
                };
                if msg.ends_with('\n') {
                    msg.pop();
                }
                let msg = printing(&msg, false);
                if testing {
                    let name = kind.name();
                    self.line(format!(
                        "{}{} text \"{msg}\"",
                        name[..1].to_ascii_uppercase(),
                        &name[1..]
                    ));
                }
                return Err(match kind {
                    Stop::Defer => Verdict::Defer(msg),
                    Stop::Fail => Verdict::Fail(msg),
                    Stop::Freeze => Verdict::Freeze(msg),
                });
            }
            CmdKind::Finish => {
                if c.seen {
                    self.delivered = true;
                }
                if testing {
                    self.line(format!("{}inish", if c.seen { "Seen f" } else { "F" }));
                }
                self.finished = true;
            }
            CmdKind::If {
                branches,
                otherwise,
            } => {
                let saved = self.thisaddress.clone();
                let mut chosen: &[Command] = otherwise;
                for (cond, list) in branches {
                    if self.condition(cond)? {
                        chosen = list;
                        break;
                    }
                }
                let r = self.list(chosen);
                self.thisaddress = saved;
                self.sync_vars();
                r?;
            }
            CmdKind::Mail { vacation, args } => self.mail(c, *vacation, args)?,
        }
        Ok(())
    }

    /// `$reply_address`: the `Reply-To:` field when there is a non-empty
    /// one, else `From:`.
    fn reply_address(&self) -> String {
        let field = |name: &str| {
            self.env.headers.iter().find_map(|h| {
                let (n, v) = h.split_once(':')?;
                n.trim_end()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_string())
            })
        };
        field("reply-to")
            .filter(|v| !v.is_empty())
            .or_else(|| field("from"))
            .unwrap_or_default()
    }

    /// A `deliver` argument: one address, qualified.
    fn address(&self, s: &str) -> Result<String, Verdict> {
        match oxim_conf::expand::extract_address(s, false) {
            Some(a) if !a.is_empty() => Ok(if a.contains('@') {
                a
            } else {
                format!(
                    "{a}@{}",
                    self.env.vars.get("qualify_recipient").unwrap_or("")
                )
            }),
            _ => Err(Verdict::Error(format!(
                "malformed address {} in filter file: {}",
                quoted(s),
                if s.trim().is_empty() {
                    "empty address"
                } else {
                    "malformed address"
                }
            ))),
        }
    }

    fn logwrite(&mut self, text: &str) -> Result<(), Verdict> {
        match self.env.log {
            LogMode::Skip => Ok(()),
            LogMode::Forbidden => Err(Verdict::Error("logwrite command forbidden".into())),
            LogMode::Real => {
                use std::io::Write;
                use std::os::unix::fs::OpenOptionsExt;
                let Some((path, mode)) = self.log_file.clone() else {
                    return Err(Verdict::Error(
                        "attempt to obey \"logwrite\" command without a previous \"logfile\""
                            .into(),
                    ));
                };
                let mut f = std::fs::OpenOptions::new()
                    .append(true)
                    .create(true)
                    .mode(mode)
                    .open(&path)
                    .map_err(|e| {
                        Verdict::Error(format!(
                            "failed to open filter log file \"{path}\": {}",
                            crate::errno::io_text(&e)
                        ))
                    })?;
                f.write_all(text.as_bytes()).map_err(|e| {
                    Verdict::Error(format!(
                        "write error on file \"{path}\": {}",
                        crate::errno::io_text(&e)
                    ))
                })
            }
        }
    }

    fn headers(&mut self, op: HeadersOp, v: &str) {
        match op {
            HeadersOp::Add => {
                let t = v.trim_start();
                if !t.is_empty() {
                    let mut h = t.to_string();
                    if !h.ends_with('\n') {
                        h.push('\n');
                    }
                    self.header_ops.push((HeadersOp::Add, h.clone()));
                    self.env.headers.push(h);
                }
            }
            HeadersOp::Remove => {
                for name in oxim_conf::lists::list_items(v) {
                    self.header_ops.push((HeadersOp::Remove, name.clone()));
                    self.env.headers.retain(|h| {
                        !(h.len() > name.len()
                            && h[..name.len()].eq_ignore_ascii_case(&name)
                            && h[name.len()..].trim_start().starts_with(':'))
                    });
                }
            }
            HeadersOp::Charset => {}
        }
        let h = self.env.headers.clone();
        self.env.vars.set_headers(h);
    }

    fn mail(&mut self, c: &Command, vacation: bool, args: &MailArgs) -> Result<(), Verdict> {
        let name = if vacation { "vacation" } else { "mail" };
        if self.env.return_path.is_empty() {
            if self.env.testing {
                self.line(format!(
                    "{name} command ignored because return_path is empty"
                ));
            }
            return Ok(());
        }
        let mut values: [Option<String>; 12] = Default::default();
        for (i, v) in args.values.iter().enumerate() {
            if let Some(v) = v {
                let t = self.expand_arg(v, name)?;
                check_mail_arg(i, &t, name)?;
                values[i] = Some(t);
            }
        }
        if c.seen {
            self.delivered = true;
        }
        let noerror = if c.noerror { " (noerror)" } else { "" };
        if self.env.testing {
            self.line(format!(
                "{}ail to: {}{}{noerror}",
                if c.seen { "Seen m" } else { "M" },
                values[0].as_deref().unwrap_or("<default>"),
                if vacation { " (vacation)" } else { "" }
            ));
            for (i, v) in values.iter().enumerate().skip(1) {
                if let Some(v) = v {
                    let expanded = if args.expand_file && i == MAIL_FILE {
                        " (expanded)"
                    } else {
                        ""
                    };
                    self.line(format!(
                        "{:>7}: {}{expanded}",
                        MAIL_ARGS[i],
                        printing(v, false)
                    ));
                }
            }
            if args.return_message {
                self.line("Return original message".into());
            }
            return Ok(());
        }
        if values[0].is_none() {
            values[0] = Some(self.reply_address());
        }
        if let Some(to) = values[0].as_mut() {
            *to = to.trim_start().replace('\n', " ");
        }
        self.actions.push(Action::Reply {
            vacation,
            noerror: c.noerror,
            values: Box::new(values),
            expand_file: args.expand_file,
            return_message: args.return_message,
        });
        Ok(())
    }
}

/// The checks Exim makes on the expanded arguments of `mail`: header
/// values may continue only with white space, `extra_headers` lines must
/// be header fields, file names must be printable.
fn check_mail_arg(i: usize, t: &str, command: &str) -> Result<(), Verdict> {
    if i == MAIL_TEXT {
        return Ok(());
    }
    let b = t.as_bytes();
    let mut p = 0;
    while p < b.len() {
        let c = b[p];
        if i > MAIL_TEXT {
            if !(0x20..0x7f).contains(&c) {
                return Err(Verdict::Error(format!(
                    "non-printing character in {} in {command} command",
                    quoted(t)
                )));
            }
        } else if c == b'\n' && !b.get(p + 1).is_some_and(u8::is_ascii_whitespace) {
            let shown: String = printing(t, false).chars().take(1024).collect();
            if i < MAIL_HEADERS {
                return Err(Verdict::Error(format!(
                    "\\n not followed by space in \"{shown}\" in {command} command"
                )));
            }
            let mut q = p + 1;
            loop {
                let c = b.get(q).copied().unwrap_or(0);
                if c == b':' && q != p + 1 {
                    break;
                }
                if c == 0 || c == b':' || c.is_ascii_whitespace() {
                    return Err(Verdict::Error(format!(
                        "\\n not followed by space or valid header name in \"{shown}\" in {command} command"
                    )));
                }
                q += 1;
            }
            p = q;
        }
        p += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
